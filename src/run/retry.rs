//! Registries the run found down: one image's whole retry schedule met only refused
//! connections to them, so the copies still to run against one fail at once instead of each
//! going through the same schedule. (When and how long to wait before a retry is the
//! [`RetryPolicy`](crate::model::RetryPolicy)'s.)

use std::collections::BTreeSet;

use tokio::sync::watch;

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
}
