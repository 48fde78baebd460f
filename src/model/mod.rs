//! The shared vocabulary of a run: where an entry comes from, what a job copies to where, what
//! the plan found, how far a copy got, how it failed, when it is tried again, and what came of
//! it. Every other module speaks these types; this one depends on nothing but the reference and
//! filter grammars.

mod artifact;
mod digest;
mod failure;
pub mod platform;
mod results;
mod retry;

pub use self::artifact::{
    artifact_tag, is_artifact_tag, ArtifactCounts, ArtifactKind, ArtifactResult, ArtifactState,
    Referrers, Selection, COSIGN_SUFFIXES,
};
pub use self::digest::Digest;
pub use self::failure::{unresolvable_host, FailureKind, ImageError};
pub use self::results::Results;
pub use self::retry::{jitter, RetryPolicy};

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use self::platform::PlatformFilter;
use crate::filter::FilterSpec;
use crate::reference::{ImageRef, RepoPrefix};

/// Which end of a copy a registry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Destination,
}

/// A position in an input file, shown as `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: std::sync::Arc<str>,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Where images are mirrored to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A registry, with images scoped under this prefix.
    Registry(RepoPrefix),
    /// A local directory holding one OCI image layout per repository, scoped the same way.
    OciDir(PathBuf),
}

impl Destination {
    /// The destination as reports name it: the prefix, or `oci:DIR`.
    pub fn label(&self) -> String {
        match self {
            Destination::Registry(prefix) => prefix.to_string(),
            Destination::OciDir(dir) => format!("oci:{}", dir.display()),
        }
    }
}

/// The place one job writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Registry(ImageRef),
    /// An OCI layout directory and the name (tag) the image gets inside it; an image pinned by
    /// digest alone has no name there, and is told apart from the layout's others by `digest`.
    Oci {
        layout: PathBuf,
        name: Option<String>,
        digest: Option<String>,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Registry(reference) => write!(f, "{reference}"),
            Target::Oci {
                layout,
                name,
                digest,
            } => {
                write!(f, "oci:{}", layout.display())?;
                match (name, digest) {
                    (Some(name), _) => write!(f, ":{name}"),
                    (None, Some(digest)) => write!(f, "@{digest}"),
                    (None, None) => Ok(()),
                }
            }
        }
    }
}

/// What a rerun of a run's failed entries needs beyond their list lines, as options of
/// `ferry sync`: how the run reached the registries and which engine copied. Paths are written
/// as given; secrets never are (the credential options the run had are only named).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rerun {
    /// Needed whatever failed: TLS, certificates, auth files, accounts, registries.conf, the
    /// engine.
    pub flags: Vec<String>,
    /// The root of the OCI layouts (`--dest-dir`), for lines that name no target of their own.
    pub dest_dir: Option<String>,
    /// The tag filters, for lines that are whole repositories.
    pub filter_flags: Vec<String>,
    /// The credential options the run had (`--src-creds`, `--dest-creds`), by name only.
    pub credentials: Vec<String>,
}

/// A source and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    pub source: ImageRef,
    pub target: Target,
    /// True when the input named the target (second column) instead of the scoped mapping.
    pub explicit: bool,
    /// Tag filters of this entry, for whole repositories.
    pub filter: Option<Box<FilterSpec>>,
    /// Whether this entry's signatures, attestations, SBOMs and referrers travel with it, as
    /// its input said (`signatures:` of a skopeo YAML registry, of an images.json element);
    /// `None` leaves it to `--signatures`.
    pub signatures: Option<bool>,
}

impl Job {
    /// The job as a line of the list format, so failed jobs can be fed straight back: a
    /// registry target is written out, so the line lands where it did whatever `--dest` the
    /// rerun is given (an OCI layout target is told by `--dest-dir` instead: a line without a
    /// target column is one, see [`names_no_target`]).
    pub fn as_list_line(&self) -> String {
        match &self.target {
            Target::Registry(target) => format!("{} {target}", self.source),
            Target::Oci { .. } => self.source.to_string(),
        }
    }

    /// The same job narrowed to one tag of a whole-repository source.
    pub fn for_tag(&self, tag: &str) -> Result<Job, crate::reference::ReferenceError> {
        let target = match &self.target {
            Target::Registry(target) => Target::Registry(target.with_tag(tag)?),
            Target::Oci { layout, .. } => Target::Oci {
                layout: layout.clone(),
                name: Some(tag.to_owned()),
                digest: None,
            },
        };
        Ok(Job {
            origin: self.origin.clone(),
            source: self.source.with_tag(tag)?,
            target,
            explicit: self.explicit,
            filter: None,
            signatures: self.signatures,
        })
    }
}

/// Whether a line written by [`Job::as_list_line`] leaves its target to `--dest-dir` (an OCI
/// layout target): it has no target column. Sources never hold whitespace.
pub fn names_no_target(list_line: &str) -> bool {
    !list_line.trim().contains(char::is_whitespace)
}

/// What a sync will do with a planned entry, from the digests on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The target does not exist.
    New,
    /// The target exists with another digest.
    Changed,
    /// The target has the source's digest: nothing to do.
    Current,
    /// The source does not exist.
    SourceMissing,
    /// A lookup failed; the copy will tell.
    Unknown,
    /// The source has none of the platforms `--platform` asks for: nothing to copy.
    OtherPlatform,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Changed => "changed",
            State::Current => "current",
            State::SourceMissing => "source-missing",
            State::Unknown => "unknown",
            State::OtherPlatform => "other-platform",
        }
    }

    /// Whether a sync has to run a copy for this state (see also `PlanEntry::needs_copy`).
    pub fn needs_copy(self) -> bool {
        matches!(self, State::New | State::Changed | State::Unknown)
    }
}

/// How far one copy has got, as its engine can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Blobs copied or found present so far.
    pub blobs_done: u32,
    /// Blobs the image has, once the engine knows.
    pub blobs_total: Option<u32>,
    /// Bytes moved so far, for engines that see them.
    pub bytes_done: Option<u64>,
    pub bytes_total: Option<u64>,
}

/// What a copy did, as its engine reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub blobs_copied: u32,
    pub blobs_reused: u32,
    /// Per-platform images the engine found already present at the destination.
    pub images_present: u32,
    pub manifests_written: u32,
    /// Bytes moved, where the engine sees them.
    pub bytes_copied: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Synced,
    Skipped,
    Failed,
}

/// How a result's job is written as a list line ([`Job::as_list_line`]), kept in as little
/// as that takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListLine {
    /// `SOURCE TARGET`: the job's target is a registry's.
    SourceAndTarget,
    /// `SOURCE`: the job's target is an OCI layout, which `--dest-dir` tells.
    Source,
    /// A line of its own.
    Written(String),
}

impl ListLine {
    /// `job`'s line, as [`Job::as_list_line`] writes it from its source and target.
    pub fn of(job: &Job) -> ListLine {
        match job.target {
            Target::Registry(_) => ListLine::SourceAndTarget,
            Target::Oci { .. } => ListLine::Source,
        }
    }
}

/// The outcome of one job (kept by a run in [`Results`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageResult {
    pub origin: Origin,
    pub source: String,
    pub target: String,
    /// The job as a list line, for `--failed-list` (see [`ImageResult::list_line`]).
    pub line: ListLine,
    pub status: Status,
    pub digest: Option<String>,
    pub counts: Counts,
    pub attempts: u32,
    pub duration: Duration,
    pub error: Option<Box<ImageError>>,
    /// What `--platform` did to it: an index of a subset written, or the image skipped (boxed:
    /// rarely there, and every result is sent as an event).
    pub platform: Option<Box<PlatformFilter>>,
    /// What travelled with the image under `--signatures` (`None` when it was not asked for).
    pub artifacts: Option<Vec<ArtifactResult>>,
}

impl ImageResult {
    /// The job as a list line, for `--failed-list`: the same line as its job's
    /// [`Job::as_list_line`].
    pub fn list_line(&self) -> std::borrow::Cow<'_, str> {
        match &self.line {
            ListLine::SourceAndTarget => format!("{} {}", self.source, self.target).into(),
            ListLine::Source => self.source.as_str().into(),
            ListLine::Written(line) => line.as_str().into(),
        }
    }

    /// A result for a job whose target already holds the source's digest.
    pub fn skipped(job: &Job, digest: Option<String>) -> ImageResult {
        ImageResult {
            origin: job.origin.clone(),
            source: job.source.to_string(),
            target: job.target.to_string(),
            line: ListLine::of(job),
            status: Status::Skipped,
            digest,
            counts: Counts::default(),
            attempts: 0,
            duration: Duration::ZERO,
            error: None,
            artifacts: None,
            platform: None,
        }
    }

    /// A result for a job skipped because its source has none of the platforms asked for
    /// (`reason` says which it has), after `attempts` copy attempts (none when the plan knew).
    pub fn skipped_for_platform(
        job: &Job,
        reason: String,
        attempts: u32,
        duration: Duration,
    ) -> ImageResult {
        ImageResult {
            attempts,
            duration,
            platform: Some(Box::new(PlatformFilter::Skipped { reason })),
            ..ImageResult::skipped(job, None)
        }
    }

    /// A result for a job whose copy succeeded.
    pub fn synced(
        job: &Job,
        digest: Option<String>,
        counts: Counts,
        attempts: u32,
        duration: Duration,
    ) -> ImageResult {
        ImageResult {
            status: Status::Synced,
            digest,
            counts,
            attempts,
            duration,
            ..ImageResult::skipped(job, None)
        }
    }

    /// A result for a job that failed with `error` (after `attempts` copy attempts, none
    /// when it ended without or before running its copy).
    pub fn failed(job: &Job, error: ImageError, attempts: u32, duration: Duration) -> ImageResult {
        ImageResult {
            origin: job.origin.clone(),
            source: job.source.to_string(),
            target: job.target.to_string(),
            line: ListLine::of(job),
            status: Status::Failed,
            digest: None,
            counts: Counts::default(),
            attempts,
            duration,
            error: Some(Box::new(error)),
            platform: None,
            artifacts: None,
        }
    }
}

/// Counts over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub synced: usize,
    pub skipped: usize,
    pub failed: usize,
    pub duration_ms: u128,
    /// True when the run was stopped by a signal before every image finished.
    pub interrupted: bool,
    /// The artifacts of the images that had `--signatures`, by state (`None`: none had).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactCounts>,
}

impl Summary {
    #[cfg(test)]
    pub fn of(results: &[ImageResult], duration: Duration, interrupted: bool) -> Summary {
        let mut summary = Summary {
            duration_ms: duration.as_millis(),
            interrupted,
            ..Summary::default()
        };
        for result in results {
            summary.add(result);
        }
        summary
    }

    /// Counts `result` in.
    pub fn add(&mut self, result: &ImageResult) {
        self.total += 1;
        match result.status {
            Status::Synced => self.synced += 1,
            Status::Skipped => self.skipped += 1,
            Status::Failed => self.failed += 1,
        }
        if let Some(artifacts) = &result.artifacts {
            let counts = self.artifacts.get_or_insert_with(ArtifactCounts::default);
            counts.add(artifacts);
        }
    }
}
