//! Pacing requests to one registry: an optional configured rate (`--registry-rps`), slowed
//! down by every 429 (half the pace, and nothing before `Retry-After`), so a throttled run
//! settles near the rate the registry allows instead of hammering it.
//!
//! Once throttled, the pace also finds its way back up: it tries halfway between the pace
//! that passed and the fastest one that drew a 429, and after another 429 goes back to the
//! last pace that passed, so it closes in on the registry's limit from below instead of
//! staying at the slowest pace it ever needed. A try that fails costs a `Retry-After`, so one
//! is made only once staying slow has cost as much as a 429 costs (each request that passed counts
//! what the faster pace would have saved), and twice that after each try that failed: a short
//! run tries little, a long one closes in.
//!
//! A 429 at a pace that has let requests through in a row slows it by a quarter rather than by
//! half: the limit is near. And a throttled pace spaces requests 2 % wider than it believes
//! the registry allows, so requests a few milliseconds early (as some always are) still pass.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The pace after the first 429 of a registry that had none configured (4 requests/s).
pub(crate) const FIRST_THROTTLED_INTERVAL: Duration = Duration::from_millis(250);
/// The slowest pace 429s can push a registry to.
const SLOWEST_INTERVAL: Duration = Duration::from_secs(10);
/// Tries of a faster pace that failed, counted up to this (the wait before the next try
/// doubles with each).
const MAX_FAILED_TRIES: u32 = 6;
/// Requests that must pass at one pace before a faster one is tried, at the least.
const SPEED_UP_AFTER: u32 = 3;
/// Requests in a row that passed at a pace before a 429 that say the limit is near: such a
/// 429 slows the pace by a quarter, not by half. (Twice the limit lets every other one pass.)
const NEAR_THE_LIMIT: u32 = 2;

#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Option<Duration>,
    /// `--registry-rps`: never faster than this.
    configured: Option<Duration>,
    next: Instant,
    /// When the pace last changed: answers to requests reserved before then tell of an older
    /// pace and must not change it again (several are in flight when a registry starts
    /// refusing).
    changed_at: Option<Instant>,
    /// When a 429 last slowed the pace.
    slowed_at: Option<Instant>,
    throttled: bool,
    /// The slowest pace that drew a 429, and the fastest that passed [`SPEED_UP_AFTER`] times
    /// in a row (kept only while it is slower than the other).
    too_fast: Option<Duration>,
    fast_enough: Option<Duration>,
    /// Requests in a row that went through at the current pace since it was set.
    passes: u32,
    /// Since the pace last changed: what staying at it rather than at the next one to try
    /// (halfway to `too_fast`) has cost.
    lost: Duration,
    /// What a faster pace must have saved before it is tried: what a 429 costs (the last wait
    /// the registry asked for, and a slot for the request again), doubled for every try that
    /// failed.
    probe_cost: Duration,
    failed_tries: u32,
}

impl Pacer {
    /// `rate` requests per second, or unpaced until the registry says otherwise.
    pub fn new(rate: Option<f64>, now: Instant) -> Pacer {
        let configured = rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        Pacer {
            interval: configured,
            configured,
            next: now,
            slowed_at: None,
            changed_at: None,
            throttled: false,
            too_fast: None,
            fast_enough: None,
            passes: 0,
            lost: Duration::ZERO,
            probe_cost: Duration::ZERO,
            failed_tries: 0,
        }
    }

    /// Reserves the next slot: the instant the request may go out.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next.max(now);
        let interval = self.interval.unwrap_or(Duration::ZERO);
        let guard = if self.throttled {
            interval / 50
        } else {
            Duration::ZERO
        };
        self.next = slot + interval + guard;
        slot
    }

    /// Whether a 429 slowed the pace after `reserved`: a slot reserved then, still unused, was
    /// spaced for a pace that proved too fast (and may fall within a `Retry-After`), so its
    /// request should reserve another.
    pub fn slowed_since(&self, reserved: Instant) -> bool {
        self.slowed_at.is_some_and(|slowed| slowed > reserved)
    }

    /// Whether a request whose slot was reserved at `sent` went out at the current pace.
    fn at_current_pace(&self, sent: Instant) -> bool {
        self.changed_at.is_none_or(|changed| sent > changed)
    }

    /// A 429 for a request whose slot was reserved at `sent`: nothing before `retry_after`
    /// from now, and a slower pace from then on (the last one that passed [`SPEED_UP_AFTER`]
    /// times, else a quarter slower after [`NEAR_THE_LIMIT`] passes in a row at this pace,
    /// else half the pace), unless the pace changed since that reservation.
    pub fn throttled(&mut self, now: Instant, sent: Instant, retry_after: Duration) {
        if self.at_current_pace(sent) {
            let current = self.interval.unwrap_or(Duration::ZERO);
            self.too_fast = Some(self.too_fast.map_or(current, |t| t.max(current)));
            self.fast_enough = self.fast_enough.filter(|good| *good > current);
            // Back to a pace that passed: the try failed, and the next waits twice as long.
            if self.fast_enough.is_some() {
                self.failed_tries = (self.failed_tries + 1).min(MAX_FAILED_TRIES);
            }
            let slower = match (self.fast_enough, self.interval) {
                (Some(good), _) => good,
                (None, None) => FIRST_THROTTLED_INTERVAL,
                (None, Some(interval)) if self.passes >= NEAR_THE_LIMIT => interval + interval / 4,
                (None, Some(interval)) => interval.saturating_mul(2),
            }
            .min(SLOWEST_INTERVAL);
            // Never faster than now, nor than a configured pace (which may be slower than
            // the cap).
            self.interval = Some(slower.max(current).max(self.configured.unwrap_or_default()));
            self.changed_at = Some(now);
            self.slowed_at = Some(now);
            self.throttled = true;
            self.passes = 0;
            self.lost = Duration::ZERO;
            self.probe_cost =
                (retry_after + self.interval.unwrap_or_default()) * (1 << self.failed_tries);
            // Every slot handed out so far is stale (see `slowed_since`): the new pace
            // starts once the registry's wait is over.
            self.next = now + retry_after;
        } else {
            self.next = self.next.max(now + retry_after);
        }
    }

    /// A request whose slot was reserved at `sent` passed (any answer but 429). Once at least
    /// [`SPEED_UP_AFTER`] passed at the current pace of a throttled registry and staying at it
    /// has cost what a 429 costs, tries a pace halfway to the fastest one known to draw 429s,
    /// while the two are more than 5 % apart.
    pub fn passed(&mut self, now: Instant, sent: Instant) {
        if !self.throttled || !self.at_current_pace(sent) {
            return;
        }
        self.passes += 1;
        let Some(current) = self.interval else {
            return;
        };
        let too_fast = self.too_fast.unwrap_or_default();
        // What this request would have saved at the pace to try next.
        self.lost += current.saturating_sub(too_fast) / 2;
        if self.passes < SPEED_UP_AFTER {
            return;
        }
        self.fast_enough = Some(self.fast_enough.map_or(current, |good| good.min(current)));
        if self.lost < self.probe_cost || current.saturating_sub(too_fast) <= current / 20 {
            return;
        }
        let halfway = ((too_fast + current) / 2).max(self.configured.unwrap_or_default());
        if halfway < current {
            self.interval = Some(halfway);
            self.changed_at = Some(now);
            self.passes = 0;
            self.lost = Duration::ZERO;
        }
    }

    /// Whether the registry has answered 429 at some point.
    pub fn was_throttled(&self) -> bool {
        self.throttled
    }

    #[cfg(test)]
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate (the only form servers must send).
fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_never_speeds_up_a_slow_configured_pace() {
        let now = Instant::now();
        let mut pacer = Pacer::new(Some(0.05), now); // one request every 20 s
        pacer.throttled(now, now, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(Duration::from_secs(20)));
    }

    #[test]
    fn after_429s_the_pace_closes_in_on_the_limit_from_below() {
        // A registry that refuses anything faster than one request every 500 ms.
        let limit = Duration::from_millis(500);
        let start = Instant::now();
        let mut pacer = Pacer::new(None, start);
        let mut now = start;
        let mut last: Option<Instant> = None;
        let mut refused = 0;
        for _ in 0..400 {
            let sent = pacer.reserve(now);
            now = sent + Duration::from_millis(1);
            let too_soon = last.is_some_and(|last| sent - last < limit);
            if too_soon {
                refused += 1;
                pacer.throttled(now, sent, Duration::from_secs(1));
            } else {
                last = Some(sent);
                pacer.passed(now, sent);
            }
        }
        let settled = pacer.interval().unwrap();
        assert!(
            settled >= limit && settled <= limit.mul_f64(1.1),
            "settled at {settled:?} after {refused} refusals"
        );
        assert!(refused < 20, "{refused} refusals");
    }

    #[test]
    fn a_configured_pace_is_never_passed_on_the_way_back_up() {
        let now = Instant::now();
        let mut pacer = Pacer::new(Some(2.0), now);
        let sent = pacer.reserve(now);
        pacer.throttled(now, sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(Duration::from_secs(1)));
        let later = now + Duration::from_secs(1);
        for _ in 0..200 {
            let sent = pacer.reserve(later);
            pacer.passed(sent + Duration::from_millis(1), sent);
        }
        // Back near the configured pace (which had drawn the 429), never faster.
        let settled = pacer.interval().unwrap();
        assert!(
            settled >= Duration::from_millis(500) && settled < Duration::from_millis(550),
            "{settled:?}"
        );
        // An unthrottled pacer is left alone.
        let mut calm = Pacer::new(None, now);
        for _ in 0..10 {
            let sent = calm.reserve(now);
            calm.passed(now, sent);
        }
        assert_eq!(calm.interval(), None);
    }

    #[test]
    fn absurd_http_dates_are_no_dates() {
        let now = SystemTime::now();
        for value in [
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value}");
        }
    }

    #[test]
    fn a_slow_down_makes_every_slot_handed_out_stale() {
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut pacer = Pacer::new(Some(4.0), start);
        let reserved = start;
        let slots: Vec<Instant> = (0..3).map(|_| pacer.reserve(reserved)).collect();
        assert_eq!(slots[2] - start, ms(500));
        assert!(!pacer.slowed_since(reserved));
        pacer.throttled(start + ms(1), slots[0], Duration::from_secs(1));
        // The two slots still ahead were spaced for the old pace and fall within the wait.
        assert!(pacer.slowed_since(reserved));
        let again = pacer.reserve(start + ms(250));
        assert_eq!(again - start, ms(1001), "the first slot after the wait");
        assert!(!pacer.slowed_since(start + ms(250)));
        // A throttled pace spaces requests 2 % wider than it believes allowed.
        assert_eq!(pacer.interval(), Some(ms(500)));
        assert_eq!(pacer.reserve(start + ms(250)) - again, ms(510));
    }

    #[test]
    fn faster_paces_are_tried_once_staying_slow_cost_what_a_429_costs() {
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut pacer = Pacer::new(None, start);
        let mut now = start;
        let mut step = |pacer: &mut Pacer, refused: bool| {
            let sent = pacer.reserve(now);
            now = sent + ms(1);
            if refused {
                pacer.throttled(now, sent, Duration::from_secs(1));
            } else {
                pacer.passed(now, sent);
            }
        };
        step(&mut pacer, true); // 250 ms
        step(&mut pacer, true); // 500 ms: too fast was 250 ms
        assert_eq!(pacer.interval(), Some(ms(500)));
        // Each pass would have saved 125 ms at 375 ms; a 429 costs 1 s + 500 ms: 12 passes.
        let mut passes = 0;
        while pacer.interval() == Some(ms(500)) {
            step(&mut pacer, false);
            passes += 1;
        }
        assert_eq!((passes, pacer.interval()), (12, Some(ms(375))));
        step(&mut pacer, true); // the try failed: back to 500 ms
        assert_eq!(pacer.interval(), Some(ms(500)));
        // Next: 437.5 ms, 62.5 ms saved a pass, against twice 1.5 s: 48 passes.
        let mut passes = 0;
        while pacer.interval() == Some(ms(500)) {
            step(&mut pacer, false);
            passes += 1;
        }
        assert_eq!(passes, 48);
    }

    #[test]
    fn a_429_after_passes_in_a_row_slows_the_pace_by_a_quarter() {
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut pacer = Pacer::new(Some(2.0), start);
        // Nothing passed at 500 ms yet: half the pace.
        let sent = pacer.reserve(start);
        pacer.throttled(start, sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(ms(1000)));
        // One passed at 1 s, then one drew a 429: half the pace again.
        let later = start + ms(10);
        let sent = pacer.reserve(later);
        pacer.passed(sent + ms(1), sent);
        let sent = pacer.reserve(later);
        pacer.throttled(sent + ms(1), sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(ms(2000)));
        // Two passed in a row at 2 s, then one drew a 429: a quarter slower.
        let later = sent + ms(10);
        for _ in 0..2 {
            let sent = pacer.reserve(later);
            pacer.passed(sent + ms(1), sent);
        }
        let sent = pacer.reserve(later);
        pacer.throttled(sent + ms(1), sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(ms(2500)));
        // The passes counted for the old pace: the next 429 at 2.5 s halves it again.
        let sent = pacer.reserve(sent + ms(2));
        pacer.throttled(sent + ms(1), sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(ms(5000)));
    }

    #[test]
    fn a_configured_rate_spaces_requests() {
        let now = Instant::now();
        let mut pacer = Pacer::new(Some(2.0), now);
        let waits: Vec<Duration> = (0..4).map(|_| pacer.reserve(now) - now).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waits, [ms(0), ms(500), ms(1000), ms(1500)]);
    }

    #[test]
    fn unpaced_until_throttled_then_slower_with_each_429() {
        let now = Instant::now();
        let mut pacer = Pacer::new(None, now);
        let first = pacer.reserve(now);
        let second = pacer.reserve(now);
        assert_eq!((first, second), (now, now));
        pacer.throttled(now, first, Duration::from_secs(1));
        // The other request was in flight at the old pace: its 429 does not slow us twice.
        pacer.throttled(now, second, Duration::from_secs(1));
        assert_eq!(pacer.interval(), Some(Duration::from_millis(250)));
        assert_eq!(
            pacer.reserve(now) - now,
            Duration::from_secs(1),
            "nothing before Retry-After"
        );
        let later = now + Duration::from_secs(2);
        let sent = pacer.reserve(later);
        pacer.throttled(later, sent, Duration::ZERO);
        assert_eq!(pacer.interval(), Some(Duration::from_millis(500)));
        for step in 3..30 {
            let sent = pacer.reserve(now + Duration::from_secs(step * 20));
            pacer.throttled(sent, sent, Duration::ZERO);
        }
        assert_eq!(pacer.interval(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
