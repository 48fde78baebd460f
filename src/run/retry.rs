//! Registries the run found down: one image's whole retry schedule met only refused
//! connections to them, so the copies still to run against one fail at once instead of each
//! going through the same schedule. (When and how long to wait before a retry is the
//! [`RetryPolicy`](crate::model::RetryPolicy)'s.)

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::watch;

/// Registries (by host) that refused connections through one image's whole retry schedule
/// in this run. The copies still to run against one, and those waiting to retry against it,
/// would only go through the same schedule: they fail at once instead. A copy that gets
/// through to a host takes it off the list, so a registry that comes back is used again.
///
/// While a copy goes through its schedule against a host that refused it (the host is
/// *suspect*), copies not yet started against that host wait for the verdict instead of each
/// meeting the refusal themselves: one round of retries finds a registry down, whatever
/// `-j` is.
#[derive(Debug)]
pub struct Outages {
    state: watch::Sender<State>,
}

#[derive(Debug, Default)]
struct State {
    down: BTreeSet<String>,
    /// Copies in the middle of a retry schedule against each host that refused them.
    suspect: BTreeMap<String, usize>,
}

impl Default for Outages {
    fn default() -> Outages {
        Outages {
            state: watch::Sender::new(State::default()),
        }
    }
}

/// A copy's say that `host` refused it and it is retrying: the host is suspect until this is
/// dropped.
pub struct Suspect<'a> {
    outages: &'a Outages,
    pub host: String,
}

impl Drop for Suspect<'_> {
    fn drop(&mut self) {
        self.outages.state.send_modify(|state| {
            if let Some(count) = state.suspect.get_mut(&self.host) {
                *count -= 1;
                if *count == 0 {
                    state.suspect.remove(&self.host);
                }
            }
        });
    }
}

impl Outages {
    /// `host` refused every attempt of an image's retry schedule.
    pub fn record(&self, host: &str) {
        self.state
            .send_if_modified(|state| state.down.insert(host.to_owned()));
    }

    /// A copy got through to each of `hosts`.
    pub fn clear(&self, hosts: &[String]) {
        self.state.send_if_modified(|state| {
            let before = state.down.len();
            state.down.retain(|host| !hosts.contains(host));
            state.down.len() != before
        });
    }

    /// `host` refused a copy that goes on retrying: see [`Suspect`].
    pub fn suspect(&self, host: &str) -> Suspect<'_> {
        self.state.send_modify(|state| {
            *state.suspect.entry(host.to_owned()).or_default() += 1;
        });
        Suspect {
            outages: self,
            host: host.to_owned(),
        }
    }

    /// The first of `hosts` that is down.
    pub fn down_among(&self, hosts: &[String]) -> Option<String> {
        let state = self.state.borrow();
        hosts
            .iter()
            .find(|host| state.down.contains(*host))
            .cloned()
    }

    /// The first of `hosts` that is suspect (and not down).
    pub fn suspect_among(&self, hosts: &[String]) -> Option<String> {
        let state = self.state.borrow();
        hosts
            .iter()
            .find(|host| state.suspect.contains_key(*host) && !state.down.contains(*host))
            .cloned()
    }

    /// Resolves with the first of `hosts` to be down, once one is.
    pub async fn wait_down(&self, hosts: &[String]) -> String {
        let mut changes = self.state.subscribe();
        loop {
            if let Some(host) = self.down_among(hosts) {
                return host;
            }
            // The sender lives in `self`, so the channel cannot close while this waits.
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until none of `hosts` is suspect: `Some(host)` when one turned out down, `None`
    /// when the copies retrying against them got through or gave up for another reason.
    pub async fn verdict(&self, hosts: &[String]) -> Option<String> {
        let mut changes = self.state.subscribe();
        loop {
            if let Some(host) = self.down_among(hosts) {
                return Some(host);
            }
            // Still suspect, or the wait is over.
            self.suspect_among(hosts)?;
            if changes.changed().await.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[tokio::test(flavor = "current_thread")]
    async fn copies_wait_for_a_suspect_hosts_verdict() {
        let outages = Outages::default();
        let job = vec!["src.example".to_owned(), "127.0.0.1:5000".to_owned()];
        // Nothing suspect: no wait.
        assert_eq!(outages.verdict(&job).await, None);
        let first = outages.suspect("127.0.0.1:5000");
        let second = outages.suspect("127.0.0.1:5000");
        assert_eq!(
            outages.suspect_among(&job).as_deref(),
            Some("127.0.0.1:5000")
        );
        drop(first);
        assert!(
            outages.suspect_among(&job).is_some(),
            "one copy still retries"
        );
        // The last retrying copy gives up for another reason: no verdict of down.
        let (verdict, ()) = tokio::join!(outages.verdict(&job), async move {
            tokio::task::yield_now().await;
            drop(second);
        });
        assert_eq!(verdict, None);
        // One that ends its round refused: down.
        let third = outages.suspect("127.0.0.1:5000");
        outages.record("127.0.0.1:5000");
        assert_eq!(outages.suspect_among(&job), None, "down, not suspect");
        assert_eq!(
            outages.verdict(&job).await.as_deref(),
            Some("127.0.0.1:5000")
        );
        drop(third);
    }
}
