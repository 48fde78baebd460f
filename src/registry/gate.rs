//! What lets a request go out to a registry host, and when: a slot among the requests in
//! flight to it (8 at most), its turn in the host's pace (see [`pace`]: `--registry-rps`,
//! slowed by every 429 and nothing before its `Retry-After`), and, once the host has answered
//! 429 in this run, turns for copies from it, one at a time. Also the note, once per host, that
//! Docker Hub's pull quota is spent. One [`Gate`] per client, shared by its lookups, the native
//! engine's requests and the copies skopeo and crane make (which report their 429s here).

pub mod pace;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use self::pace::{parse_retry_after, Pacer};
use super::{header, RegistryClient, RegistryError};
use crate::model::Side;

/// The longest `Retry-After` honoured for one wait; longer ones fail the lookup instead.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Times a request gives up a slot that a 429 made stale before it takes the one it has.
const MAX_STALE_SLOTS: u32 = 3;

/// Requests in flight to one registry host at most.
const REQUESTS_IN_FLIGHT: usize = 8;

/// Told of every 429 a lookup waits out: the registry host and the wait.
pub type ThrottleObserver = Box<dyn Fn(&str, Duration) + Send + Sync>;

/// The slots, paces and 429 state of every registry host a client talks to, by endpoint host.
pub struct Gate {
    /// Requests per second per host (`--registry-rps`).
    per_registry_rps: HashMap<String, f64>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    pacers: Mutex<HashMap<String, Pacer>>,
    /// One copy at a time per throttled host: see [`RegistryClient::throttled_turn`].
    turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Hosts whose spent pull quota was already logged.
    quota_spent: Mutex<HashSet<String>>,
    /// 429 responses received so far.
    throttled: AtomicU64,
    /// Told of every 429 a lookup waits out: the registry host and the wait.
    on_throttle: OnceLock<ThrottleObserver>,
}

impl Gate {
    pub fn new(per_registry_rps: HashMap<String, f64>) -> Gate {
        Gate {
            per_registry_rps,
            slots: Mutex::default(),
            pacers: Mutex::default(),
            turns: Mutex::default(),
            quota_spent: Mutex::default(),
            throttled: AtomicU64::new(0),
            on_throttle: OnceLock::new(),
        }
    }

    /// The requests in flight to `host`: a request holds one of its permits while it is sent.
    pub fn slots(&self, host: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().expect("lock");
        Arc::clone(
            slots
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT))),
        )
    }

    /// Waits for this host's next request slot; returns when the slot was reserved, which
    /// tells whether a 429 answered the current pace or an older one. A slot that a 429
    /// made stale while it was awaited (spaced for a pace now known to be too fast, perhaps
    /// inside the `Retry-After`) is given up for a new one, a few times at most.
    pub async fn pace(&self, host: &str) -> Instant {
        let mut stale = 0;
        loop {
            let reserved = Instant::now();
            let slot = self.with_pacer(host, |pacer| pacer.reserve(reserved));
            tokio::time::sleep_until(slot.into()).await;
            if stale < MAX_STALE_SLOTS && self.with_pacer(host, |p| p.slowed_since(reserved)) {
                stale += 1;
                continue;
            }
            return reserved;
        }
    }

    /// A request sent to `host` at `sent` (by its reserved slot) got an answer other than 429.
    pub fn passed(&self, host: &str, sent: Instant) {
        self.with_pacer(host, |pacer| pacer.passed(Instant::now(), sent));
    }

    /// Counts a 429 and slows `host`'s pace (nothing goes out for the wait asked, at most
    /// [`MAX_RETRY_AFTER`]); returns the wait the registry asked for: its `Retry-After`, else
    /// a backoff by `attempt`.
    pub fn throttle(
        &self,
        host: &str,
        sent: Instant,
        response: &Response,
        attempt: u32,
    ) -> Duration {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let asked = header(response.headers(), RETRY_AFTER.as_str())
            .and_then(|v| parse_retry_after(&v, SystemTime::now()))
            .unwrap_or(Duration::from_secs(1 << attempt.min(5)));
        self.with_pacer(host, |pacer| {
            pacer.throttled(Instant::now(), sent, asked.min(MAX_RETRY_AFTER))
        });
        if let Some(observe) = self.on_throttle.get() {
            observe(host, asked.min(MAX_RETRY_AFTER));
        }
        asked
    }

    /// A turn for one copy from `host`, once it has answered 429 in this run; `None` while it
    /// is not throttling.
    async fn turn(&self, host: String) -> Option<OwnedSemaphorePermit> {
        if !self.with_pacer(&host, |pacer| pacer.was_throttled()) {
            return None;
        }
        let turn = {
            let mut turns = self.turns.lock().expect("lock");
            Arc::clone(
                turns
                    .entry(host)
                    .or_insert_with(|| Arc::new(Semaphore::new(1))),
            )
        };
        turn.acquire_owned().await.ok()
    }

    /// Runs `f` on this host's pacer, made on first use at the configured rate.
    fn with_pacer<R>(&self, host: &str, f: impl FnOnce(&mut Pacer) -> R) -> R {
        let mut pacers = self.pacers.lock().expect("lock");
        let rate = self.per_registry_rps.get(host).copied();
        let pacer = pacers
            .entry(host.to_owned())
            .or_insert_with(|| Pacer::new(rate, Instant::now()));
        f(pacer)
    }

    /// Says once per host when its pull quota is spent (Docker Hub's `ratelimit-remaining: 0`),
    /// since the 429s that follow are the quota, not a fault; HEADs, which do not count, go on.
    pub fn note_quota(&self, host: &str, headers: &HeaderMap) {
        if quota_remaining(headers) != Some(0)
            || !self
                .quota_spent
                .lock()
                .expect("lock")
                .insert(host.to_owned())
        {
            return;
        }
        let limit = header(headers, "ratelimit-limit").unwrap_or_else(|| "?".to_owned());
        warn!(
            "{host}: pull quota spent (ratelimit-limit {limit}); lookups and copies wait out its \
             429s (Retry-After, --retry-delay) rather than fail at once"
        );
    }
}

impl RegistryClient {
    /// 429 responses received so far.
    pub fn throttled_responses(&self) -> u64 {
        self.gate.throttled.load(Ordering::Relaxed)
    }

    /// Has `observe` told of every 429 a lookup waits out from now on (the first observer
    /// set stays).
    pub fn observe_throttling(&self, observe: ThrottleObserver) {
        let _ = self.gate.on_throttle.set(observe);
    }

    /// A turn for one copy from the registry serving `name` on `side`, once it has answered
    /// 429 in this run (to this client or to a copy reported through
    /// [`RegistryClient::wait_out_throttled_copy`]): copies then go one at a time, since
    /// parallel ones would only split its allowance and each draw their own 429s. `None` (no
    /// turn needed) while it is not throttling.
    pub async fn throttled_turn(&self, side: Side, name: &str) -> Option<OwnedSemaphorePermit> {
        let host = self.endpoint(side, name).ok()?.host;
        self.gate.turn(host).await
    }

    /// A copy that ran outside this client (skopeo), started at `started`, was refused with a
    /// 429 by the registry serving `name` on `side`: slow that host down as if this client had
    /// been refused, with `backoff` as the wait asked for, then wait for the host's next slot.
    /// Returns how long it waited. Parallel copies refused at once slow the pace only once.
    pub async fn wait_out_throttled_copy(
        &self,
        side: Side,
        name: &str,
        started: Instant,
        backoff: Duration,
    ) -> Result<Duration, RegistryError> {
        let host = self.endpoint(side, name)?.host;
        self.gate.with_pacer(&host, |pacer| {
            pacer.throttled(Instant::now(), started, backoff)
        });
        let waiting = Instant::now();
        self.gate.pace(&host).await;
        Ok(waiting.elapsed())
    }
}

/// The count in Docker Hub's `ratelimit-remaining: 0;w=21600` (pulls left in a window of
/// `w` seconds).
fn quota_remaining(headers: &HeaderMap) -> Option<u64> {
    header(headers, "ratelimit-remaining")?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ClientOptions;

    #[test]
    fn quota_headers_give_the_pulls_left() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert("ratelimit-remaining", value.parse().unwrap());
            map
        };
        assert_eq!(quota_remaining(&headers("0;w=21600")), Some(0));
        assert_eq!(quota_remaining(&headers("76;w=21600")), Some(76));
        assert_eq!(quota_remaining(&headers("many")), None);
        assert_eq!(quota_remaining(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn copies_refused_together_slow_the_pace_once_and_come_back_spaced() {
        let client = RegistryClient::new(ClientOptions::default());
        let started = Instant::now();
        let backoff = Duration::from_millis(100);
        let refused =
            || client.wait_out_throttled_copy(Side::Source, "127.0.0.1:5000/x", started, backoff);
        let (first, second) = tokio::join!(refused(), refused());
        let (first, second) = (first.unwrap(), second.unwrap());
        let pacers = client.gate.pacers.lock().unwrap();
        let interval = pacers["127.0.0.1:5000"].interval();
        // Slowed from unpaced to its first throttled pace once, not once per refused copy.
        assert_eq!(interval, Some(pace::FIRST_THROTTLED_INTERVAL));
        let (early, late) = (first.min(second), first.max(second));
        assert!(early >= backoff, "came back after {early:?}");
        assert!(
            late >= backoff + interval.unwrap(),
            "came back after {late:?}"
        );
    }
}
