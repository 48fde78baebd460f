//! When and how long to wait before trying an image again. Whether a failure is worth
//! retrying is decided here, from the error, and nowhere else: a missing image, bad
//! credentials or a host name that does not resolve will not get better, a dropped
//! connection, a throttled registry or a timeout may. Delays grow exponentially, are capped,
//! and carry jitter so that parallel jobs hit by the same outage do not come back in lockstep.

use std::time::Duration;

use super::failure::unresolvable_host;
use super::{FailureKind, ImageError};

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
    /// Whether another attempt may fare better: by kind, and for a network failure also by
    /// what it says, since a name that does not resolve stays `network` but is final.
    pub fn is_retryable(error: &ImageError) -> bool {
        match error.kind {
            FailureKind::Network => !unresolvable_host(&error.message),
            FailureKind::RateLimited | FailureKind::Timeout => true,
            _ => false,
        }
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
        .filter(|&kind| {
            RetryPolicy::is_retryable(&ImageError {
                kind,
                message: "connection refused".to_owned(),
            })
        })
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
    fn a_host_name_that_does_not_resolve_is_final() {
        let table = [
            ("pinging container registry nonexistent.invalid: Get \"https://nonexistent.invalid/v2/\": dial tcp: lookup nonexistent.invalid on 10.0.0.53:53: no such host", false),
            ("nonexistent.invalid/x:1: error sending request for url (https://nonexistent.invalid/v2/x/manifests/1): client error (Connect): dns error: failed to lookup address information: Name or service not known", false),
            ("r.example/x:1: error sending request: dns error: failed to lookup address information: Temporary failure in name resolution", true),
            ("pinging container registry 127.0.0.1:5999: dial tcp 127.0.0.1:5999: connect: connection refused", true),
            ("dial tcp: lookup r.example on 10.0.0.53:53: read udp 10.0.0.2:1->10.0.0.53:53: i/o timeout", true),
            ("writing blob: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", true),
        ];
        for (message, retried) in table {
            let error = ImageError {
                kind: FailureKind::Network,
                message: message.to_owned(),
            };
            assert_eq!(RetryPolicy::is_retryable(&error), retried, "{message}");
        }
    }
}
