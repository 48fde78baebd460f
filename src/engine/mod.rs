//! The copy engines ferry drives, behind one trait: one job in, one outcome out, progress told
//! as it happens. An engine knows how to run its tool (argv, environment, private files) and
//! how to read what the tool says; the run core (plans, retries, turns, outages) knows no
//! engine by name.

pub mod crane;
pub mod native;
pub mod skopeo;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::exec::Stop;
use crate::model::{Counts, FailureKind, ImageError, Job, Progress, Target};

/// A future an engine returns; boxed so that engines can sit behind `dyn Engine`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One attempt at copying one job.
pub struct Attempt<'a> {
    /// The job's place in the run, unique among its jobs (for private file names).
    pub index: usize,
    pub job: &'a Job,
    /// The source's digest as the plan found it, when it looked: an engine that reads
    /// manifests itself reads this one, so the tag cannot move between plan and copy.
    pub digest: Option<&'a str>,
    /// 1 for the first attempt.
    pub number: u32,
    /// Time the image already spent within this attempt's `--image-timeout`: the first
    /// attempt's share of it went to the image's lookups while planning.
    pub spent: Duration,
    /// Stop the copy (gracefully, then now) when this says so.
    pub stop: watch::Receiver<Stop>,
    /// Told whenever the copy gets further.
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
}

/// A copy that succeeded: the top-level digest written (when the engine reports it) and what
/// it moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub digest: Option<String>,
    pub counts: Counts,
}

/// A copy engine.
pub trait Engine: Send + Sync {
    /// How the engine is called on the command line (`skopeo`, `native`).
    fn name(&self) -> &'static str;

    /// Runs one attempt to its end: copied, or failed with a classified error.
    fn copy<'a>(&'a self, attempt: Attempt<'a>) -> BoxFuture<'a, Result<Copied, ImageError>>;

    /// What the engine would run for `job`, for `--dry-run` (secrets never shown).
    fn describe(&self, job: &Job) -> String;

    /// Whether the engine reads the source's manifest by tag itself when the plan does not
    /// know its digest: then a target that does not exist needs no source lookup first (the
    /// copy's read of the manifest is that lookup).
    fn reads_sources_by_tag(&self) -> bool {
        false
    }

    /// Called once before any copy, with every target of the run, to clear what an earlier,
    /// killed run left there: the temporary blob files in the local layouts (skopeo's and
    /// the native engine's are named alike) that no other ferry process is writing now.
    fn before_run(&self, targets: &[&Target]) {
        let layouts: std::collections::BTreeSet<&std::path::Path> = targets
            .iter()
            .filter_map(|target| match target {
                Target::Oci { layout, .. } => Some(layout.as_path()),
                Target::Registry(_) => None,
            })
            .collect();
        for layout in layouts {
            match crate::layout::remove_stale_temp_blobs(layout) {
                Ok(Some(0)) => {}
                Ok(Some(n)) => tracing::info!(
                    "removed {n} temporary blob files an earlier run left in {}",
                    layout.display()
                ),
                Ok(None) => tracing::info!(
                    "another ferry is writing {}; its temporary files are its own",
                    layout.display()
                ),
                Err(e) => {
                    tracing::warn!("cannot remove temporary blobs in {}: {e}", layout.display())
                }
            }
        }
    }

    /// The registry host among `hosts` that refused the connection, as `message` (a failure
    /// of this engine) tells it; `None` when it was not a refused connection.
    fn refused_by<'h>(&self, message: &str, hosts: &[&'h str]) -> Option<&'h str> {
        refused_by(message, hosts)
    }
}

/// Which of `hosts` (registry hosts as `host[:port]`) refused the connection that a Go program (skopeo,
/// crane) reports in
/// `message`: it names the one it dialled in "dial tcp HOST:PORT: connect: connection
/// refused", or the registry in "pinging container registry HOST". `None` for any other
/// failure, and for a name server that refused a lookup ("dial tcp: lookup …"), which says
/// nothing of the registry.
pub fn refused_by<'a>(message: &str, hosts: &[&'a str]) -> Option<&'a str> {
    if !message.contains("connection refused") || message.contains(": lookup ") {
        return None;
    }
    let named = |marker: &'static str| {
        message
            .match_indices(marker)
            .filter_map(move |(at, _)| message[at + marker.len()..].split(": ").next())
    };
    let mut named = named("dial tcp ").chain(named("pinging container registry "));
    named.find_map(|name| hosts.iter().copied().find(|host| same_host(name, host)))
}

/// Whether two `host[:port]` names are one registry, a default port written or not.
fn same_host(a: &str, b: &str) -> bool {
    let bare = |name: &str| {
        let name = name.trim_matches('"');
        name.strip_suffix(":443")
            .or_else(|| name.strip_suffix(":80"))
            .unwrap_or(name)
            .to_owned()
    };
    bare(a) == bare(b)
}

impl Attempt<'_> {
    /// What is left of `image_timeout` for this attempt (never nothing at all: an image whose
    /// lookups took all of it fails while planning).
    pub fn time_left(&self, image_timeout: Duration) -> Duration {
        image_timeout
            .saturating_sub(self.spent)
            .max(Duration::from_millis(1))
    }
}

/// How an engine's child was cut short: at `--image-timeout`, or by a signal ferry got.
/// `None` when it ran to its end.
pub fn ended_early(
    finished: &crate::exec::Finished,
    image_timeout: Duration,
) -> Option<ImageError> {
    if finished.timed_out {
        return Some(ImageError {
            kind: FailureKind::Timeout,
            message: format!("stopped after --image-timeout {image_timeout:?}"),
        });
    }
    finished.stopped.then(|| ImageError {
        kind: FailureKind::Interrupted,
        message: format!(
            "stopped by a signal ({})",
            crate::exec::describe_status(&finished.status)
        ),
    })
}

/// The last `lines` non-empty lines of `text`, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_put_on_the_host_skopeo_dialled() {
        let hosts = ["127.0.0.1:5000", "registry-1.docker.io", "127.0.0.1:6000"];
        let table = [
            ("initializing source docker://x:1: pinging container registry 127.0.0.1:5000: Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused", Some("127.0.0.1:5000")),
            ("trying to reuse blob sha256:aa at destination: pinging container registry 127.0.0.1:6000: Get \"http://127.0.0.1:6000/v2/\": dial tcp 127.0.0.1:6000: connect: connection refused", Some("127.0.0.1:6000")),
            // A name resolved to an address: the registry is named only where it is pinged.
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp 10.1.2.3:443: connect: connection refused", Some("registry-1.docker.io")),
            ("reading blob sha256:aa: Get \"http://127.0.0.1:5000/v2/x/blobs/sha256:aa\": dial tcp 127.0.0.1:5000: connect: connection refused", Some("127.0.0.1:5000")),
            // Another registry, or another fault, or the name server refusing a lookup.
            ("pinging container registry 127.0.0.1:7000: dial tcp 127.0.0.1:7000: connect: connection refused", None),
            ("pinging container registry 127.0.0.1:5000: dial tcp 127.0.0.1:5000: i/o timeout", None),
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: read udp 10.0.0.2:1->10.0.0.53:53: read: connection refused", None),
        ];
        for (message, expected) in table {
            assert_eq!(refused_by(message, &hosts), expected, "{message}");
        }
        assert!(same_host("harbor.example:443", "harbor.example"));
        assert!(!same_host("harbor.example:5000", "harbor.example"));
    }
}
