//! The copy engines, behind one trait: one attempt in, one outcome out (what was copied, or an
//! [`ImageError`] whose kind, side, refusing host and retryability the engine decided), progress
//! told as it happens. skopeo and crane run a tool per copy through one driver ([`tool`]),
//! which they give their argv, their output lines and their failure words; the native engine
//! copies with ferry's own registry client. The run core (plans, retries, turns, outages)
//! knows no engine by name and reads no engine's words.

pub mod crane;
pub mod native;
pub mod skopeo;
pub mod tool;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::exec::Stop;
use crate::model::platform::PlatformFilter;
use crate::model::{Counts, ImageError, Job, Progress, Target};

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
    /// What `--platform` made of it (native engine): an index of a subset, whose `digest` is
    /// not upstream's, or nothing copied at all.
    pub platform: Option<PlatformFilter>,
    /// The manifests this copy read from the source itself (what a registry that meters
    /// pulls counts), when the engine knows: the native engine shares one read among the
    /// copies of a source to several destinations. `None`: one per manifest written.
    pub pulled: Option<u32>,
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

    /// Called once the run knows what it copies, before any copy, with every job it will copy
    /// (each once, whatever its attempts): an engine that shares what several copies read
    /// (the native engine, with several destinations) learns what is still to come.
    fn copies_planned(&self, _jobs: &[&Job]) {}

    /// Called when the copy of `job` is over, its last attempt done, whatever came of it.
    fn copy_done(&self, _job: &Job) {}

    /// Whether a copy of `job` at `digest` (the plan's) would read nothing from the source
    /// itself: another copy of the same image, to another destination, read it already and
    /// the engine kept it. Such a copy pulls nothing that a metered registry counts.
    fn reads_kept(&self, _job: &Job, _digest: Option<&str>) -> bool {
        false
    }
    /// Whether the engine copies a manifest known only by its digest (an OCI referrer) to the
    /// same digest at the target, its `subject` intact: a job whose source and target are both
    /// pinned by digest alone.
    fn copies_by_digest(&self) -> bool {
        false
    }

    /// Whether copies of one run may go into one repository at once though they share blobs:
    /// the native engine moves such a blob once and the others wait for it; two tool runs
    /// would upload it side by side (which a registry may answer with a manifest whose blob is
    /// unknown).
    fn shares_blobs_between_copies(&self) -> bool {
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
