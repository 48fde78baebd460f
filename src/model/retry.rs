//! When and how long to wait before trying an image again (whether to is the error's own
//! [`ImageError::retryable`](super::ImageError), decided where the failure was seen). Delays
//! grow exponentially, are capped, and carry jitter so that parallel jobs hit by the same
//! outage do not come back in lockstep.

use std::time::Duration;

use super::FailureKind;

/// How often and how far apart an image is tried (`--retry-times`, `--retry-delay`,
/// `--max-retry-delay`).
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

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
    };

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
}
