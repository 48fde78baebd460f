//! When and how long to wait before trying an image again. Whether a failure is worth
//! retrying is decided here, from its kind, and nowhere else: a missing image or bad
//! credentials will not get better, a dropped connection, a throttled registry or a timeout
//! may. Delays grow exponentially, are capped, and carry jitter so that parallel jobs hit by
//! the same outage do not come back in lockstep.

use std::time::Duration;

use crate::engine::FailureKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry.
    pub delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
}

/// A throttled registry needs more room than a flaky network.
const RATE_LIMIT_FACTOR: u32 = 4;

impl RetryPolicy {
    pub fn is_retryable(kind: FailureKind) -> bool {
        matches!(
            kind,
            FailureKind::Network | FailureKind::RateLimited | FailureKind::Timeout
        )
    }

    /// The wait before retry number `retry` (1 for the first retry) after a failure of
    /// `kind`; `jitter` in [0, 1) picks a point in the upper half of the capped delay.
    pub fn backoff(&self, retry: u32, kind: FailureKind, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let mut delay = self.delay.saturating_mul(1 << exponent);
        if kind == FailureKind::RateLimited {
            delay = delay.saturating_mul(RATE_LIMIT_FACTOR);
        }
        delay
            .min(self.max_delay)
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// A number in [0, 1) that differs between calls, for jitter (not for anything secret).
pub fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    // xorshift64*: plenty for spreading retries apart.
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// The forms a duration flag takes, for error messages.
const DURATION_FORMS: &str = "e.g. 500ms, 2s, 5m, 1h";

/// Parses `500ms`, `2s`, `1.5s`, `5m` or `1h`. The unit is required: a bare `5` could mean
/// seconds or minutes, and a wrong guess makes a timeout 60 times too short or too long. Zero
/// is refused too: no duration flag means anything useful at zero (a zero `--image-timeout`
/// fails every image at once).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration ({DURATION_FORMS})"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => return Err(format!("a duration needs a unit ({DURATION_FORMS})")),
        _ => {
            return Err(format!(
                "unknown unit \"{unit}\" (ms, s, m or h: {DURATION_FORMS})"
            ))
        }
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if duration.is_zero() => {
            Err(format!("must be longer than zero ({DURATION_FORMS})"))
        }
        Ok(duration) => Ok(duration),
        Err(_) => Err(format!("not a duration ({DURATION_FORMS})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
    };

    #[test]
    fn only_transient_failures_are_retried() {
        let retried: Vec<FailureKind> = [
            FailureKind::NotFound,
            FailureKind::Unauthorized,
            FailureKind::RateLimited,
            FailureKind::Network,
            FailureKind::Tls,
            FailureKind::Timeout,
            FailureKind::Interrupted,
            FailureKind::Internal,
            FailureKind::Other,
        ]
        .into_iter()
        .filter(|k| RetryPolicy::is_retryable(*k))
        .collect();
        assert_eq!(
            retried,
            [
                FailureKind::RateLimited,
                FailureKind::Network,
                FailureKind::Timeout
            ]
        );
    }

    #[test]
    fn delays_double_cap_and_jitter_within_the_upper_half() {
        let at = |retry, kind, jitter| POLICY.backoff(retry, kind, jitter);
        assert_eq!(at(1, FailureKind::Network, 1.0), Duration::from_secs(2));
        assert_eq!(at(1, FailureKind::Network, 0.0), Duration::from_secs(1));
        assert_eq!(at(2, FailureKind::Network, 1.0), Duration::from_secs(4));
        assert_eq!(at(3, FailureKind::Network, 1.0), Duration::from_secs(8));
        assert_eq!(at(10, FailureKind::Network, 1.0), Duration::from_secs(60));
        assert_eq!(at(1, FailureKind::RateLimited, 1.0), Duration::from_secs(8));
        assert_eq!(
            at(40, FailureKind::RateLimited, 0.0),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let samples: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        let low = samples.iter().filter(|j| **j < 0.5).count();
        assert!((300..700).contains(&low), "{low} of 1000 below 0.5");
    }

    #[test]
    fn durations_parse_with_units() {
        let table = [
            ("500ms", 500),
            ("2s", 2000),
            (" 2s ", 2000),
            ("1.5s", 1500),
            ("5m", 300_000),
            ("1h", 3_600_000),
        ];
        for (text, millis) in table {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_without_a_unit_or_of_zero_are_refused() {
        let forms = "e.g. 500ms, 2s, 5m, 1h";
        let table = [
            ("2", format!("a duration needs a unit ({forms})")),
            ("1.5", format!("a duration needs a unit ({forms})")),
            ("0", format!("a duration needs a unit ({forms})")),
            ("0s", format!("must be longer than zero ({forms})")),
            ("0ms", format!("must be longer than zero ({forms})")),
            ("0.0h", format!("must be longer than zero ({forms})")),
            (
                "0.0000000001s",
                format!("must be longer than zero ({forms})"),
            ),
            ("2d", format!("unknown unit \"d\" (ms, s, m or h: {forms})")),
            (
                "2 s",
                format!("unknown unit \" s\" (ms, s, m or h: {forms})"),
            ),
            ("", format!("not a duration ({forms})")),
            ("s", format!("not a duration ({forms})")),
            ("-1s", format!("not a duration ({forms})")),
            ("fast", format!("not a duration ({forms})")),
            ("99999999999999999999h", format!("not a duration ({forms})")),
        ];
        for (text, expected) in table {
            assert_eq!(parse_duration(text), Err(expected), "{text:?}");
        }
    }
}
