//! ferry's own copy engine, on its registry client: no process per image, every request paced
//! and retried alone, and a blob that several images share moved once per run.
//!
//! One copy: the source manifest is read once (by the digest the plan found, so no tag can
//! move under it), then the manifests an index names, each checked against its digest. Each
//! blob is then found at the destination (HEAD), or mounted from a repository of the same
//! registry this run pushed or saw it in, or streamed from the source into an upload, its
//! sha256 checked on the way (see [`blobs`]). Then the child manifests go up by digest and the
//! top one by tag, byte for byte as read: every digest is upstream's, and the tag is written
//! last, so an interrupted copy never leaves a tag on an incomplete image. What cannot be
//! copied exactly (schema 1, foreign layers) fails the image with the reason.

mod blobs;
mod layout;
mod manifest;
mod shared;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tracing::{debug, info};

use self::blobs::{
    channel_body, pump, pumped, BundleBlob, Failed, Ledger, Reader, SourceBlob, Watch, CHUNK,
    MONOLITHIC_MAX,
};
use self::manifest::{Descriptor, Manifest, OCI_INDEX};
use self::shared::Shared;
use super::{Attempt, BoxFuture, Copied, Engine};
use crate::exec::{wait_for, Stop};
use crate::input::bundle::{self, Bundle};
use crate::model::platform::{self, Filtered, PlatformFilter, Platforms};
use crate::model::{Counts, FailureKind, ImageError, Job, Progress, Side, Target};
use crate::registry::api::{Upload, UploadStart};
use crate::registry::{RegistryClient, MAX_MANIFEST_BYTES};
use crate::words::count;

/// Blobs of one image in flight at once (images run in parallel too, under `-j`).
const BLOBS_AT_ONCE: usize = 3;
/// Indexes one image may stack: its top index and indexes it names. OCI lets an index name
/// another, which is rare; deeper than this is a registry leading the copy on.
const MAX_INDEX_DEPTH: usize = 2;
/// Manifests one image's indexes may name, all told (each digest once).
const MAX_CHILDREN: usize = 1_000;
/// The bytes of one image's manifests, all told: what a copy holds until it writes them.
const MAX_MANIFESTS_BYTES: u64 = 64 << 20;
/// Times one blob's upload starts again after a 429 or a dropped connection on the way.
const BLOB_RETRIES: u32 = 2;
/// Progress is told at least every this many bytes moved.
const PROGRESS_STEP: u64 = 1 << 20;
/// Blobs up to this size go to a repository the registry said does not exist without a HEAD
/// first (see [`Run::move_blob`]).
const NEW_REPOSITORY_UNASKED_MAX: u64 = 1 << 20;

/// The native engine: the run's registry client (its pace, tokens and limits), what it
/// learnt about blobs at the destinations, and with several destinations the source reads
/// their copies share.
pub struct Native {
    client: Arc<RegistryClient>,
    image_timeout: Duration,
    ledger: Ledger,
    shared: Option<Shared>,
    /// Only these platforms of an index are copied (`--platform`).
    platforms: Option<Platforms>,
    /// The bundle the sources are read from (`--from-dir`), instead of their registries.
    bundle: Option<std::path::PathBuf>,
}

impl Native {
    pub fn new(client: Arc<RegistryClient>, image_timeout: Duration) -> Native {
        Native {
            client,
            image_timeout,
            ledger: Ledger::default(),
            shared: None,
            platforms: None,
            bundle: None,
        }
    }

    /// The engine reading every source from the bundle at `path` (a directory of OCI layouts
    /// or a bundle tar, see [`crate::input::bundle`]): manifests and blobs by digest, each
    /// checked against it, no request to any source registry.
    pub fn reading_bundle(self, path: Option<std::path::PathBuf>) -> Native {
        Native {
            bundle: path,
            ..self
        }
    }

    /// The bundle the sources come from, as indexed when the inputs were read.
    fn bundle(&self) -> Result<Option<Arc<Bundle>>, ImageError> {
        let Some(path) = &self.bundle else {
            return Ok(None);
        };
        Bundle::open_shared(path).map(Some).map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ImageError::new(FailureKind::Other, reasons.join("; ")).on(Side::Source)
        })
    }

    /// The engine of a run into several destinations: each source manifest and blob is read
    /// once for all of them, blobs spooled into `spool` (a directory of the run's private
    /// one) while another destination's copy of their image is still to come.
    pub fn sharing_reads(self, spool: std::path::PathBuf) -> Native {
        Native {
            shared: Some(Shared::new(spool)),
            ..self
        }
    }

    /// The engine copying only `platforms` of an index, when given: an index of just those
    /// children (and their attestations) is written at the tag, recording upstream's digest;
    /// a source with none of them is skipped (see [`platform::filter_index`]).
    pub fn with_platforms(self, platforms: Option<Platforms>) -> Native {
        Native { platforms, ..self }
    }

    async fn attempt(&self, attempt: Attempt<'_>) -> Result<Copied, ImageError> {
        let mut stop = attempt.stop.clone();
        let time_left = attempt.time_left(self.image_timeout);
        let copy = self.copy(&attempt);
        tokio::select! {
            copied = tokio::time::timeout(time_left, copy) => {
                copied.unwrap_or_else(|_| Err(ImageError::new(FailureKind::Timeout, format!("stopped after --image-timeout {:?}", self.image_timeout))))
            }
            () = wait_for(&mut stop, Stop::Graceful) => Err(ImageError::new(FailureKind::Interrupted, "stopped by a signal; no tag was written".to_owned())),
        }
    }

    async fn copy(&self, attempt: &Attempt<'_>) -> Result<Copied, ImageError> {
        let job = attempt.job;
        let source = job.source.repository();
        let pinned = attempt.digest.or(job.source.digest());
        let reference = pinned.or(job.source.tag()).unwrap_or("latest");
        let key = shared::source_of(job);
        let top = self.fetch(&key, &source, reference, pinned).await?;
        let top_pulled = u32::from(top.pulled);
        let (top, filtered) = match self.platforms.as_ref() {
            Some(platforms) if platform::applies_to(job) => {
                match self.subset(&source, top, platforms).await? {
                    Subset::Copy(top, filtered) => (top, filtered),
                    Subset::Skip(reason) => {
                        info!("{}: nothing copied: {reason}", job.target);
                        return Ok(Copied {
                            platform: Some(PlatformFilter::Skipped { reason }),
                            pulled: Some(top_pulled),
                            ..Copied::default()
                        });
                    }
                }
            }
            _ => (top, None),
        };
        let mut tree = Tree::default();
        self.children(&key, &source, &top, 1, &mut tree).await?;
        let tree = tree.manifests;
        let pulled = top_pulled + tree.iter().map(|m| u32::from(m.pulled)).sum::<u32>();
        let place = self.place(&job.target)?;
        let mut seen = HashSet::new();
        let needed: Vec<&Descriptor> = tree
            .iter()
            .chain(std::iter::once(&top))
            .flat_map(|m| &m.manifest.blobs)
            .filter(|b| seen.insert(b.digest.clone()))
            .collect();
        let run = Run::new(self, source, key, &place, &needed, attempt.progress);
        run.tell();
        // Collected first: a stream over a closure would not be `Send` for every lifetime.
        let moves: Vec<_> = needed.iter().map(|blob| run.blob(blob)).collect();
        let mut moving = futures_util::stream::iter(moves).buffer_unordered(BLOBS_AT_ONCE);
        while let Some(moved) = moving.next().await {
            moved?;
        }
        drop(moving);
        let mut written = 0;
        for child in &tree {
            self.put(&place, child, None, &[]).await?;
            written += 1;
        }
        // A layout records where the image came from, for `--from-dir` to push it back there.
        let reference = match job.source.tag() {
            Some(_) => job.source.without_digest().to_string(),
            None => job.source.to_string(),
        };
        let upstream = match &filtered {
            Some(PlatformFilter::Filtered { upstream, .. }) => upstream.clone(),
            _ => top.digest.clone(),
        };
        let recorded = [
            (bundle::SOURCE_REFERENCE, reference.as_str()),
            (bundle::SOURCE_DIGEST, upstream.as_str()),
        ];
        self.put(&place, &top, Some(&job.target), &recorded).await?;
        written += 1;
        info!(
            "{}: {} copied, {} reused, {} written ({} bytes moved)",
            job.target,
            count(run.copied.load(Ordering::Relaxed), "blob", "blobs"),
            run.reused.load(Ordering::Relaxed),
            count(written, "manifest", "manifests"),
            run.bytes_done.load(Ordering::Relaxed)
        );
        Ok(Copied {
            digest: Some(top.digest.clone()),
            counts: Counts {
                blobs_copied: run.copied.load(Ordering::Relaxed),
                blobs_reused: run.reused.load(Ordering::Relaxed),
                images_present: 0,
                manifests_written: written,
                bytes_copied: Some(run.bytes_done.load(Ordering::Relaxed)),
            },
            platform: filtered,
            pulled: Some(pulled),
        })
    }

    /// What `platforms` keep of `top` (source `name`'s): an index's children of those
    /// platforms, in an index of its own ([`platform::filter_index`]), or all of it when every
    /// child is kept; a single-platform image whole when its config names one of them. Else
    /// nothing: why.
    async fn subset(
        &self,
        name: &str,
        top: Fetched,
        platforms: &Platforms,
    ) -> Result<Subset, ImageError> {
        let refuse = |reason: String| {
            ImageError::new(
                FailureKind::Other,
                format!("{name}@{}: {reason}", top.digest),
            )
        };
        if top.manifest.is_index() {
            let filtered =
                platform::filter_index(&top.bytes, &top.digest, platforms).map_err(refuse)?;
            return match filtered {
                Filtered::Whole => Ok(Subset::Copy(top, None)),
                Filtered::Nothing(reason) => Ok(Subset::Skip(reason)),
                Filtered::Subset { bytes, kept } => {
                    let children = &top.manifest.children;
                    let children: Vec<Descriptor> = kept
                        .iter()
                        .map(|&at| children.get(at).cloned())
                        .collect::<Option<_>>()
                        .ok_or_else(|| refuse("its manifests could not be read".to_owned()))?;
                    let filter = PlatformFilter::Filtered {
                        upstream: top.digest.clone(),
                        platforms: platforms.label(),
                    };
                    let index = Fetched {
                        digest: format!("sha256:{:x}", Sha256::digest(&bytes)),
                        bytes,
                        manifest: Manifest {
                            media_type: OCI_INDEX.to_owned(),
                            children,
                            blobs: Vec::new(),
                        },
                        pulled: top.pulled,
                    };
                    Ok(Subset::Copy(index, Some(filter)))
                }
            };
        }
        let config = top
            .manifest
            .blobs
            .first()
            .ok_or_else(|| refuse("an image without a config".to_owned()))?;
        let what = format!("reading the config of {name}@{}", top.digest);
        let bytes = self.config(name, &config.digest, &what).await?;
        Ok(match platform::image_mismatch(&bytes, platforms) {
            None => Subset::Copy(top, None),
            Some(reason) => Subset::Skip(reason),
        })
    }

    /// The manifest `reference` of source `name`, checked against `expected` when known; read
    /// once for every copy of `key` (the job's source) when reads are shared.
    async fn fetch(
        &self,
        key: &str,
        name: &str,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<Fetched, ImageError> {
        let at = if reference.starts_with("sha256:") {
            format!("{name}@{reference}")
        } else {
            format!("{name}:{reference}")
        };
        let what = format!("reading manifest {at}");
        if let Some(bundle) = self.bundle()? {
            let bytes = bundle
                .read_small(name, reference, MAX_MANIFEST_BYTES)
                .map_err(|reason| {
                    ImageError::new(FailureKind::Other, format!("{what}: {reason}"))
                        .on(Side::Source)
                })?;
            return checked(name, &what, bytes, None, None, expected, false);
        }
        let read = self.client.manifest(Side::Source, name, reference, &what);
        // Whether this copy's own request read it, or another copy's read is shared.
        let pulled = std::sync::atomic::AtomicBool::new(false);
        let read = async {
            pulled.store(true, Ordering::Relaxed);
            read.await
        };
        let read = match &self.shared {
            Some(shared) => shared.manifest(key, name, reference, read).await,
            None => read.await,
        };
        let pulled = pulled.load(Ordering::Relaxed);
        let raw = read
            .map_err(|e| e.image_error(Side::Source))?
            .ok_or_else(|| {
                ImageError::new(
                    FailureKind::NotFound,
                    format!("manifest unknown: {at} does not exist in the source"),
                )
            })?;
        checked(
            name,
            &what,
            raw.bytes,
            raw.advertised.as_deref(),
            raw.content_type.as_deref(),
            expected,
            pulled,
        )
    }

    /// The bytes of config `digest` of source `name` (`--platform` on a single image).
    async fn config(&self, name: &str, digest: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        if let Some(bundle) = self.bundle()? {
            return bundle
                .read_small(name, digest, MAX_MANIFEST_BYTES)
                .map_err(|reason| {
                    ImageError::new(FailureKind::Other, format!("{what}: {reason}"))
                        .on(Side::Source)
                });
        }
        self.client
            .small_blob(name, digest, false, what)
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|e| e.image_error(Side::Source))
    }
}

/// A manifest read (`bytes`, of source `name`, advertised and served as the source said) that
/// is the one asked for: its digest is `expected`'s and the advertised one, and it parses.
/// `pulled`: read from the source registry by this copy's own request.
fn checked(
    name: &str,
    what: &str,
    bytes: Vec<u8>,
    advertised: Option<&str>,
    content_type: Option<&str>,
    expected: Option<&str>,
    pulled: bool,
) -> Result<Fetched, ImageError> {
    {
        // Nothing is written before the bytes are the ones the registry advertised (and the
        // plan saw): a tag's body that hashes to something else is an image upstream never
        // named, and a mirror holding it would disagree with the source from then on.
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        if let Some(advertised) = advertised.filter(|a| **a != *digest) {
            return Err(ImageError::new(
                FailureKind::Other,
                format!(
                    "{what}: digest mismatch: the source advertised {advertised}, but the \
                     manifest it served hashes to {digest}; nothing was written"
                ),
            ));
        }
        if let Some(expected) = expected.filter(|e| **e != *digest) {
            return Err(ImageError::new(
                FailureKind::Other,
                format!("{what}: digest mismatch: it hashes to {digest}, not {expected}"),
            ));
        }
        let manifest = manifest::parse(&bytes, content_type).map_err(|reason| {
            ImageError::new(FailureKind::Other, format!("{name}@{digest} is {reason}"))
        })?;
        Ok(Fetched {
            digest,
            bytes,
            manifest,
            pulled,
        })
    }
}

impl Native {
    /// Every manifest under `index` (the `depth`th index down, from 1), each read once by its
    /// digest however often it is named, children before their parents. An image whose indexes
    /// stack deeper than [`MAX_INDEX_DEPTH`], name more than [`MAX_CHILDREN`] manifests or
    /// weigh more than [`MAX_MANIFESTS_BYTES`] fails before the read that would pass the bound.
    async fn children(
        &self,
        key: &str,
        name: &str,
        index: &Fetched,
        depth: usize,
        tree: &mut Tree,
    ) -> Result<(), ImageError> {
        let refuse = |message: String| {
            ImageError::new(
                FailureKind::Other,
                format!(
                    "{name}@{}: {message}; ferry refuses such an image",
                    index.digest
                ),
            )
        };
        let children = &index.manifest.children;
        tree.named
            .extend(children.iter().map(|child| child.digest.clone()));
        if tree.named.len() > MAX_CHILDREN {
            return Err(refuse(format!(
                "its indexes name more than {MAX_CHILDREN} manifests"
            )));
        }
        for child in children {
            // Read once, however often named: here, elsewhere, or under an index before it
            // (which then writes it before itself).
            if !tree.read.insert(child.digest.clone()) {
                continue;
            }
            if child.size > MAX_MANIFEST_BYTES {
                return Err(refuse(format!(
                    "it names manifest {} of {} bytes, more than the {MAX_MANIFEST_BYTES} \
                     ferry reads",
                    child.digest, child.size
                )));
            }
            tree.bytes += child.size;
            if tree.bytes > MAX_MANIFESTS_BYTES {
                return Err(refuse(format!(
                    "its manifests come to more than {} MiB",
                    MAX_MANIFESTS_BYTES >> 20
                )));
            }
            let fetched = self
                .fetch(key, name, &child.digest, Some(&child.digest))
                .await?;
            if fetched.bytes.len() as u64 != child.size {
                return Err(ImageError::new(
                    FailureKind::Other,
                    format!(
                        "digest mismatch: manifest {name}@{} is {} bytes, its index says {}",
                        child.digest,
                        fetched.bytes.len(),
                        child.size
                    ),
                ));
            }
            if fetched.manifest.is_index() {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(refuse(format!(
                        "it stacks indexes more than {MAX_INDEX_DEPTH} deep ({} is one)",
                        fetched.digest
                    )));
                }
                Box::pin(self.children(key, name, &fetched, depth + 1, tree)).await?;
            }
            tree.manifests.push(fetched);
        }
        Ok(())
    }

    /// Where a job writes.
    fn place(&self, target: &Target) -> Result<Place, ImageError> {
        match target {
            Target::Registry(target) => {
                let name = target.repository();
                let (host, _) = self
                    .client
                    .registry_of(Side::Destination, &name)
                    .map_err(|e| e.image_error(Side::Destination))?;
                Ok(Place::Registry { name, host })
            }
            Target::Oci { layout, .. } => {
                std::fs::create_dir_all(layout).map_err(|e| {
                    ImageError::new(
                        FailureKind::Internal,
                        format!("cannot create {}: {e}", layout.display()),
                    )
                })?;
                Ok(Place::Layout(layout.clone()))
            }
        }
    }

    /// Writes one manifest as read: a child by its digest, the top one (`target`) by the
    /// target's tag, or its digest when it has none.
    async fn put(
        &self,
        place: &Place,
        fetched: &Fetched,
        target: Option<&Target>,
        recorded: &[(&str, &str)],
    ) -> Result<(), ImageError> {
        let media_type = &fetched.manifest.media_type;
        match place {
            Place::Registry { name, .. } => {
                let reference = match target {
                    Some(Target::Registry(target)) => target.tag().unwrap_or(&fetched.digest),
                    _ => &fetched.digest,
                };
                let what = format!("writing manifest {reference} to {name}");
                let stored = self
                    .client
                    .put_manifest(name, reference, media_type, &fetched.bytes, &what)
                    .await
                    .map_err(|e| e.image_error(Side::Destination))?;
                match stored {
                    Some(stored) if stored != fetched.digest => Err(ImageError::new(
                        FailureKind::Other,
                        format!(
                            "{what}: digest mismatch: the registry stored {stored}, not {}",
                            fetched.digest
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            Place::Layout(dir) => {
                let internal = |e: std::io::Error| {
                    ImageError::new(
                        FailureKind::Internal,
                        format!("cannot write to the OCI layout {}: {e}", dir.display()),
                    )
                };
                layout::write_blob(dir, &fetched.digest, &fetched.bytes).map_err(internal)?;
                if let Some(Target::Oci { name, .. }) = target {
                    let size = fetched.bytes.len() as u64;
                    layout::add_to_index(
                        dir,
                        media_type,
                        &fetched.digest,
                        size,
                        name.as_deref(),
                        recorded,
                    )
                    .map_err(internal)?;
                }
                Ok(())
            }
        }
    }
}

impl Engine for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    /// Not when reads are shared: every copy then reads its source by the digest the plan
    /// found, so the copies of one source to each destination read one manifest.
    fn reads_sources_by_tag(&self) -> bool {
        self.shared.is_none()
    }

    fn copies_planned(&self, jobs: &[&Job]) {
        if let Some(shared) = &self.shared {
            shared.planned(jobs);
        }
    }

    fn copy_done(&self, job: &Job) {
        if let Some(shared) = &self.shared {
            shared.done(job);
        }
    }

    fn reads_kept(&self, job: &Job, digest: Option<&str>) -> bool {
        let pinned = digest.or(job.source.digest());
        match (&self.shared, pinned) {
            (Some(shared), Some(digest)) => shared.holds_manifest(&job.source.repository(), digest),
            _ => false,
        }
    }

    fn copies_by_digest(&self) -> bool {
        true
    }

    fn shares_blobs_between_copies(&self) -> bool {
        true
    }

    fn copy<'a>(&'a self, attempt: Attempt<'a>) -> BoxFuture<'a, Result<Copied, ImageError>> {
        Box::pin(self.attempt(attempt))
    }

    fn describe(&self, job: &Job) -> String {
        let target = match &job.target {
            Target::Registry(target) => format!("docker://{target}"),
            Target::Oci { .. } => job.target.to_string(),
        };
        let what = match &self.platforms {
            Some(platforms) if platform::applies_to(job) => format!(
                "{} only: an index of them recording upstream's digest",
                platforms.label()
            ),
            _ => "every platform, digests kept".to_owned(),
        };
        match &self.bundle {
            Some(bundle) => format!(
                "ferry native copy {}@{} from {} {target} ({what})",
                job.source.repository(),
                job.source.digest().unwrap_or_default(),
                bundle.display()
            ),
            None => format!(
                "ferry native copy docker://{} {target} ({what})",
                job.source
            ),
        }
    }
}

/// The manifests under an image's top index, as they are read.
#[derive(Default)]
struct Tree {
    /// Children before their parents.
    manifests: Vec<Fetched>,
    /// Every digest an index named so far.
    named: HashSet<String>,
    /// Those read or being read.
    read: HashSet<String>,
    /// The sizes of those read or being read.
    bytes: u64,
}

/// What a platform filter keeps of an image: the top manifest to copy (upstream's, or an index
/// of a subset, with what it records), or nothing, and why.
enum Subset {
    Copy(Fetched, Option<PlatformFilter>),
    Skip(String),
}

/// A manifest as read from the source, with its digest.
struct Fetched {
    digest: String,
    bytes: Vec<u8>,
    manifest: Manifest,
    /// Read by this copy's own request (not shared from another copy's).
    pulled: bool,
}

/// Where one job writes: a destination repository (`domain/path`) and the registry host it
/// lives on, or a local OCI layout.
enum Place {
    Registry { name: String, host: String },
    Layout(std::path::PathBuf),
}

/// One attempt's blobs and what it tells of them.
struct Run<'a> {
    engine: &'a Native,
    source: String,
    /// The job's source as written: what shared reads are kept for.
    key: String,
    place: &'a Place,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
    blobs_total: u32,
    blobs_done: AtomicU32,
    /// Bytes still to move: the blobs' sizes less those found at the destination.
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    told_at: AtomicU64,
    copied: AtomicU32,
    reused: AtomicU32,
}

impl<'a> Run<'a> {
    fn new(
        engine: &'a Native,
        source: String,
        key: String,
        place: &'a Place,
        blobs: &[&Descriptor],
        progress: &'a (dyn Fn(Progress) + Send + Sync),
    ) -> Run<'a> {
        Run {
            engine,
            source,
            key,
            place,
            progress,
            blobs_total: blobs.len() as u32,
            blobs_done: AtomicU32::new(0),
            bytes_total: AtomicU64::new(blobs.iter().map(|b| b.size).sum()),
            bytes_done: AtomicU64::new(0),
            told_at: AtomicU64::new(0),
            copied: AtomicU32::new(0),
            reused: AtomicU32::new(0),
        }
    }

    fn tell(&self) {
        let done = self.bytes_done.load(Ordering::Relaxed);
        self.told_at.store(done, Ordering::Relaxed);
        (self.progress)(Progress {
            blobs_done: self.blobs_done.load(Ordering::Relaxed),
            blobs_total: Some(self.blobs_total),
            bytes_done: Some(done),
            bytes_total: Some(self.bytes_total.load(Ordering::Relaxed)),
        });
    }

    fn moved(&self, bytes: u64) {
        let done = self.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if done - self.told_at.load(Ordering::Relaxed) >= PROGRESS_STEP {
            self.tell();
        }
    }

    fn finished(&self, blob: &Descriptor, copied: bool) {
        if copied {
            self.copied.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reused.fetch_add(1, Ordering::Relaxed);
            self.bytes_total.fetch_sub(blob.size, Ordering::Relaxed);
        }
        self.blobs_done.fetch_add(1, Ordering::Relaxed);
        self.tell();
    }

    async fn blob(&self, blob: &Descriptor) -> Result<(), ImageError> {
        let copied = match self.place {
            Place::Registry { name, host } => self.to_registry(blob, name, host).await?,
            Place::Layout(dir) => self.to_layout(blob, dir).await?,
        };
        self.finished(blob, copied);
        Ok(())
    }

    /// Gets `blob` into destination repository `name` on `host`; true when it was moved,
    /// false when it was there already or mounted.
    async fn to_registry(
        &self,
        blob: &Descriptor,
        name: &str,
        host: &str,
    ) -> Result<bool, ImageError> {
        let entry = self.engine.ledger.entry(host, &blob.digest);
        let seen = entry.failures();
        // Held until the blob is in: an image wanting it meanwhile waits, then mounts it.
        let mut holders = entry.holders.lock().await;
        if holders.contains(name) {
            return Ok(false);
        }
        let what = format!("blob {} in {name}", blob.digest);
        if let Some(error) = entry.failed_since(seen) {
            let message = format!(
                "{what}: another image's transfer of it, which this one waited for, failed: {}",
                error.message
            );
            return Err(error.reworded(message));
        }
        let moved = self.move_blob(blob, name, &mut holders, &what).await;
        if let Err(error) = &moved {
            entry.failed(error);
        }
        moved
    }

    /// Moves `blob` into `name` for [`Run::to_registry`], which holds `holders` for it.
    async fn move_blob(
        &self,
        blob: &Descriptor,
        name: &str,
        holders: &mut std::collections::BTreeSet<String>,
        what: &str,
    ) -> Result<bool, ImageError> {
        let client = &self.engine.client;
        let from = holders.iter().next().cloned();
        // With a repository to mount from, the mount's answer tells whether the blob is in
        // (201) or opens the upload (202): no HEAD first. Nor for a small blob (a config) in
        // a repository the registry said does not exist: uploading it again, should another
        // writer have put it there meanwhile, costs what the HEAD would.
        let new_repository = blob.size <= NEW_REPOSITORY_UNASKED_MAX && client.was_unknown(name);
        if from.is_none() && !new_repository {
            let present = client
                .blob_exists(Side::Destination, name, &blob.digest, what)
                .await
                .map_err(|e| e.image_error(Side::Destination))?;
            if present {
                holders.insert(name.to_owned());
                return Ok(false);
            }
        }
        let mut tries = 0;
        let mut reauthorized = false;
        loop {
            let mount = from.as_deref().map(|from| (blob.digest.as_str(), from));
            let started = client
                .start_upload(name, mount, what)
                .await
                .map_err(|e| e.image_error(Side::Destination))?;
            let (location, chunk_min) = match started {
                UploadStart::Mounted => {
                    debug!("{what}: mounted from {}", from.unwrap_or_default());
                    holders.insert(name.to_owned());
                    return Ok(false);
                }
                UploadStart::Session {
                    location,
                    chunk_min,
                } => (location, chunk_min),
            };
            let failed = match self.upload(blob, name, &location, chunk_min, what).await {
                Ok(()) => break,
                Err(failed) => failed,
            };
            // A streamed body goes out once, so the blob starts again (a new session, the
            // bytes read again) after what a second try may pass: a 429 or a dropped
            // connection (the pace has slowed meanwhile), and once a 401, after which the
            // client holds renewed credentials (a token that expired during the run, or a
            // session opened by a request of another scope).
            let retry = match &failed {
                Failed::Upload(error) if error.kind == FailureKind::Unauthorized => {
                    let first = !reauthorized;
                    reauthorized = true;
                    first
                }
                Failed::Upload(error) if tries < BLOB_RETRIES => {
                    tries += 1;
                    matches!(error.kind, FailureKind::RateLimited | FailureKind::Network)
                }
                _ => false,
            };
            let error = failed.into_error();
            // A registry that did not answer would not answer the cancel either.
            if !matches!(error.kind, FailureKind::Network | FailureKind::Timeout) {
                client.cancel_upload(name, &location, what).await;
            }
            if !retry {
                return Err(error);
            }
            info!(
                "{what}: the upload failed ({}); starting it again",
                error.message
            );
            if error.kind == FailureKind::Network {
                tokio::time::sleep(crate::registry::request::transient_backoff(tries)).await;
            }
        }
        holders.insert(name.to_owned());
        Ok(true)
    }

    /// Streams `blob` from the source into the upload at `location`: in one `PUT`, or in
    /// chunks when it is large or the registry wants chunks of at least `chunk_min`.
    async fn upload(
        &self,
        blob: &Descriptor,
        name: &str,
        location: &str,
        chunk_min: Option<u64>,
        what: &str,
    ) -> Result<(), Failed> {
        let client = &self.engine.client;
        let timeout = self.engine.image_timeout;
        let moved = |bytes| self.moved(bytes);
        let mut source = self.reader(blob, &moved).await.map_err(Failed::Source)?;
        let (size, digest) = (blob.size, blob.digest.as_str());
        let mut upload = Upload {
            name,
            location: location.to_owned(),
            timeout,
            what,
        };
        let stall = client.limits().stall_timeout;
        if size <= MONOLITHIC_MAX && chunk_min.is_none() {
            let watch = Watch::new(stall);
            let (sender, body) = channel_body(&watch);
            let put = client.finish_upload(&upload, digest, size, Some(body));
            return pumped(put, pump(&mut source, sender, size), &watch, what).await;
        }
        let chunk = CHUNK.max(chunk_min.unwrap_or(0));
        let mut offset = 0;
        while offset < size {
            let length = chunk.min(size - offset);
            let watch = Watch::new(stall);
            let (sender, body) = channel_body(&watch);
            let patch = client.patch_upload(&upload, offset, length, body);
            let pumping = pump(&mut source, sender, length);
            upload.location = pumped(patch, pumping, &watch, what).await?;
            offset += length;
        }
        client
            .finish_upload(&upload, digest, 0, None)
            .await
            .map_err(|e| Failed::Upload(e.image_error(Side::Destination)))
    }

    /// `blob` to upload: from the spool when several destinations share it (the first to
    /// want it spools it, see [`shared`]), else streamed from the source. `moved` is told of
    /// the bytes that go up.
    async fn reader<'b>(
        &'b self,
        blob: &'b Descriptor,
        moved: &'b (dyn Fn(u64) + Send + Sync),
    ) -> Result<Reader<'b>, ImageError> {
        let client = &self.engine.client;
        let timeout = self.engine.image_timeout;
        let open = |moved: &'b (dyn Fn(u64) + Send + Sync)| {
            SourceBlob::open(
                client,
                &self.source,
                &blob.digest,
                blob.size,
                timeout,
                moved,
            )
        };
        if let Some(bundle) = self.engine.bundle()? {
            let located = bundle
                .locate(&self.source, &blob.digest)
                .map_err(|reason| ImageError::new(FailureKind::Other, reason).on(Side::Source))?;
            let bundled =
                BundleBlob::open(located, &self.source, &blob.digest, blob.size, moved).await?;
            return Ok(Reader::Bundled(Box::new(bundled)));
        }
        let spool = self
            .engine
            .shared
            .as_ref()
            .and_then(|shared| shared.spool(&self.key, &blob.digest));
        match spool {
            Some(spool) => {
                let what = format!("blob {} of {}", blob.digest, self.source);
                let spooled = spool.open(what, blob.size, open(&|_| {}), moved).await?;
                Ok(Reader::Spooled(spooled))
            }
            None => Ok(Reader::Live(Box::new(open(moved).await?))),
        }
    }

    /// Gets `blob` into the layout at `dir`; true when it was moved.
    async fn to_layout(&self, blob: &Descriptor, dir: &Path) -> Result<bool, ImageError> {
        if layout::has_blob(dir, &blob.digest, blob.size) {
            return Ok(false);
        }
        let moved = |bytes| self.moved(bytes);
        let mut source = self.reader(blob, &moved).await?;
        blobs::to_layout(&mut source, dir, &blob.digest).await?;
        Ok(true)
    }
}
