//! Pacing requests to one registry: an optional configured rate (`--registry-rps`), slowed
//! down by every 429 (half the pace, and nothing before `Retry-After`), so a throttled run
//! settles near the rate the registry allows instead of hammering it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The pace after the first 429 of a registry that had none configured (4 requests/s).
pub(crate) const FIRST_THROTTLED_INTERVAL: Duration = Duration::from_millis(250);
/// The slowest pace 429s can push a registry to.
const SLOWEST_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Option<Duration>,
    next: Instant,
    /// When the pace last slowed: 429s for requests sent before then were answers to the old
    /// pace and must not slow it again (several are in flight when a registry starts refusing).
    slowed_at: Option<Instant>,
}

impl Pacer {
    /// `rate` requests per second, or unpaced until the registry says otherwise.
    pub fn new(rate: Option<f64>, now: Instant) -> Pacer {
        Pacer {
            interval: rate
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: now,
            slowed_at: None,
        }
    }

    /// Reserves the next slot: the instant the request may go out.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next.max(now);
        self.next = slot + self.interval.unwrap_or(Duration::ZERO);
        slot
    }

    /// A 429 for a request whose slot was reserved at `sent`: nothing before `retry_after`
    /// from now, and half the pace from then on, unless the pace already slowed since that
    /// reservation (it was spaced at the old pace).
    pub fn throttled(&mut self, now: Instant, sent: Instant, retry_after: Duration) {
        if self.slowed_at.is_none_or(|slowed| sent > slowed) {
            let slower = match self.interval {
                None => FIRST_THROTTLED_INTERVAL,
                // Never faster: a configured pace may already be slower than the cap.
                Some(interval) => interval
                    .saturating_mul(2)
                    .min(SLOWEST_INTERVAL)
                    .max(interval),
            };
            self.interval = Some(slower);
            self.slowed_at = Some(now);
        }
        self.next = self.next.max(now + retry_after);
    }

    /// Whether the registry has answered 429 at some point.
    pub fn was_throttled(&self) -> bool {
        self.slowed_at.is_some()
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
