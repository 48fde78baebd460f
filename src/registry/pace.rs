//! Pacing requests to one registry: an optional configured rate (`--registry-rps`), slowed
//! down by every 429 (half the pace, and nothing before `Retry-After`), so a throttled run
//! settles near the rate the registry allows instead of hammering it. Once throttled, the pace
//! also finds its way back up: after a run of requests that passed it tries halfway between
//! the pace that passed and the fastest one that drew a 429, and after another 429 goes back
//! to the last pace that passed, so it closes in on the registry's limit from below instead of
//! staying at the slowest pace it ever needed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The pace after the first 429 of a registry that had none configured (4 requests/s).
pub(crate) const FIRST_THROTTLED_INTERVAL: Duration = Duration::from_millis(250);
/// The slowest pace 429s can push a registry to.
const SLOWEST_INTERVAL: Duration = Duration::from_secs(10);
/// Requests in a row that must pass at one pace before a faster one is tried.
const SPEED_UP_AFTER: u32 = 3;

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
    throttled: bool,
    /// The slowest pace that drew a 429, and the fastest that passed [`SPEED_UP_AFTER`] times
    /// in a row (kept only while it is slower than the other).
    too_fast: Option<Duration>,
    fast_enough: Option<Duration>,
    passes: u32,
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
            changed_at: None,
            throttled: false,
            too_fast: None,
            fast_enough: None,
            passes: 0,
        }
    }

    /// Reserves the next slot: the instant the request may go out.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next.max(now);
        self.next = slot + self.interval.unwrap_or(Duration::ZERO);
        slot
    }

    /// Whether a request whose slot was reserved at `sent` went out at the current pace.
    fn at_current_pace(&self, sent: Instant) -> bool {
        self.changed_at.is_none_or(|changed| sent > changed)
    }

    /// A 429 for a request whose slot was reserved at `sent`: nothing before `retry_after`
    /// from now, and a slower pace from then on (the last one that passed, else half the
    /// pace), unless the pace changed since that reservation.
    pub fn throttled(&mut self, now: Instant, sent: Instant, retry_after: Duration) {
        if self.at_current_pace(sent) {
            let current = self.interval.unwrap_or(Duration::ZERO);
            self.too_fast = Some(self.too_fast.map_or(current, |t| t.max(current)));
            self.fast_enough = self.fast_enough.filter(|good| *good > current);
            let slower = match (self.fast_enough, self.interval) {
                (Some(good), _) => good,
                (None, None) => FIRST_THROTTLED_INTERVAL,
                (None, Some(interval)) => interval.saturating_mul(2).min(SLOWEST_INTERVAL),
            };
            // Never faster than now, nor than a configured pace (which may be slower than
            // the cap).
            self.interval = Some(slower.max(current).max(self.configured.unwrap_or_default()));
            self.changed_at = Some(now);
            self.throttled = true;
            self.passes = 0;
        }
        self.next = self.next.max(now + retry_after);
    }

    /// A request whose slot was reserved at `sent` passed (any answer but 429). After
    /// [`SPEED_UP_AFTER`] in a row at the current pace of a throttled registry, tries a pace
    /// halfway to the fastest one known to draw 429s, while the two are more than 5 % apart.
    pub fn passed(&mut self, now: Instant, sent: Instant) {
        if !self.throttled || !self.at_current_pace(sent) {
            return;
        }
        self.passes += 1;
        let Some(current) = self.interval.filter(|_| self.passes >= SPEED_UP_AFTER) else {
            return;
        };
        self.passes = 0;
        self.fast_enough = Some(self.fast_enough.map_or(current, |good| good.min(current)));
        let too_fast = self.too_fast.unwrap_or_default();
        if current.saturating_sub(too_fast) > current / 20 {
            let halfway = (too_fast + current) / 2;
            let floor = self.configured.unwrap_or_default();
            if halfway.max(floor) < current {
                self.interval = Some(halfway.max(floor));
                self.changed_at = Some(now);
            }
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
        for _ in 0..50 {
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
