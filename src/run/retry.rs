//! When and how long to wait before trying an image again. Whether a failure is worth
//! retrying is decided here, from the error, and nowhere else: a missing image, bad
//! credentials or a host name that does not resolve will not get better, a dropped
//! connection, a throttled registry or a timeout may. Delays grow exponentially, are capped,
//! and carry jitter so that parallel jobs hit by the same outage do not come back in lockstep.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::FailureKind;
use crate::model::ImageError;

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

/// Registries (by host) that refused connections through one image's whole retry schedule
/// in this run. The copies still to run against one, and those waiting to retry against it,
/// would only go through the same schedule: they fail at once instead. A copy that gets
/// through to a host takes it off the list, so a registry that comes back is used again.
#[derive(Debug)]
pub struct Outages {
    down: watch::Sender<BTreeSet<String>>,
}

impl Default for Outages {
    fn default() -> Outages {
        Outages {
            down: watch::Sender::new(BTreeSet::new()),
        }
    }
}

impl Outages {
    /// `host` refused every attempt of an image's retry schedule.
    pub fn record(&self, host: &str) {
        self.down
            .send_if_modified(|down| down.insert(host.to_owned()));
    }

    /// A copy got through to each of `hosts`.
    pub fn clear(&self, hosts: &[String]) {
        self.down.send_if_modified(|down| {
            let before = down.len();
            down.retain(|host| !hosts.contains(host));
            down.len() != before
        });
    }

    /// The first of `hosts` that is down.
    pub fn down_among(&self, hosts: &[String]) -> Option<String> {
        let down = self.down.borrow();
        hosts.iter().find(|host| down.contains(*host)).cloned()
    }

    /// Resolves with the first of `hosts` to be down, once one is.
    pub async fn wait_down(&self, hosts: &[String]) -> String {
        let mut down = self.down.subscribe();
        loop {
            if let Some(host) = self.down_among(hosts) {
                return host;
            }
            // The sender lives in `self`, so the channel cannot close while this waits.
            if down.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Why a copy against `host` was not tried.
    pub fn message(host: &str) -> String {
        format!(
            "{host} refused connections through a whole round of retries; not tried again in \
             this run"
        )
    }
}

/// Whether a network failure says the registry's host name does not exist: skopeo's "no such
/// host", reqwest's "dns error: failed to lookup address information". A resolver that could
/// not answer for now ("temporary failure in name resolution") is not that.
pub fn unresolvable_host(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    !m.contains("temporary failure in name resolution")
        && [
            "no such host",
            "failed to lookup address information",
            "dns error",
        ]
        .iter()
        .any(|needle| m.contains(needle))
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

/// A duration as the flags take it, for messages: `2s`, `1.5s`, `500ms`, `30m` (whole
/// minutes and hours in their unit).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() == 0 && secs >= 3600 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if duration.subsec_nanos() == 0 && secs >= 60 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else if duration.subsec_millis() == 0 {
        format!("{secs}s")
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back_as_they_were_written() {
        for text in ["500ms", "2s", "1.5s", "90s", "5m", "1h", "61m"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

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

    #[tokio::test(flavor = "current_thread")]
    async fn a_host_is_down_from_its_failed_round_until_a_copy_gets_through() {
        let outages = std::sync::Arc::new(Outages::default());
        let hosts = |names: &[&str]| names.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        let job = hosts(&["src.example", "127.0.0.1:5000"]);
        assert_eq!(outages.down_among(&job), None);
        let waiting = tokio::spawn({
            let (outages, job) = (std::sync::Arc::clone(&outages), job.clone());
            async move { outages.wait_down(&job).await }
        });
        tokio::task::yield_now().await;
        outages.record("other.example");
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "another host's outage woke it");
        outages.record("127.0.0.1:5000");
        let woken = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(woken.unwrap().unwrap(), "127.0.0.1:5000");
        assert_eq!(outages.down_among(&job).as_deref(), Some("127.0.0.1:5000"));
        outages.clear(&hosts(&["127.0.0.1:5000"]));
        assert_eq!(outages.down_among(&job), None);
        assert_eq!(
            outages.down_among(&hosts(&["other.example"])).as_deref(),
            Some("other.example")
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
