//! Digest-first planning: before any copy, find out what each job would change. Whole
//! repositories are expanded to their tags (through the tag filters), then one `HEAD` per tag
//! on each side resolves every job to `new`, `changed`, `current` or `source-missing`. Only
//! `new` and `changed` jobs (and `unknown` ones, whose lookups failed) need a copy. Under
//! `--platform`, a target is read whole instead (one `GET`): an index ferry wrote of a platform
//! subset is compared by the upstream digest it records ([`decide_filtered`]), and a source with
//! none of the platforms asked for is `other-platform`.
//!
//! `decide` is pure; the async functions only gather lookups, over the [`PlanOptions`] that
//! settings built (the tag filters, the retry policy for listings, `--force`,
//! `--image-timeout`). Lookups run side by side, capped per source registry, so a registry that
//! does not answer holds up no other registry's; each request is bounded by `--lookup-timeout`,
//! and in a sync an image's lookups by its `--image-timeout`.

pub mod artifacts;
pub mod namespace;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::exec::{wait_for, Stop};
use crate::filter::{DropReason, TagFilter};
use crate::input::InputError;
use crate::model::platform::{self, Filtered, PlatformFilter, Platforms, Recorded};
use crate::model::ImageError;
use crate::model::Origin;
use crate::model::RetryPolicy;
use crate::model::Side;
use crate::model::{Digest, FailureKind};
use crate::model::{Job, State, Target};
use crate::queue::{place, Queue};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;

/// Images looked up at once per source registry (each registry host also caps its requests in
/// flight): a registry that does not answer holds up only its own images.
const LOOKUPS_IN_FLIGHT: usize = 64;

/// A destination repository with at least this many tags to look up is scouted (see
/// [`Scouts`]): below it, asking whether the repository exists saves no request.
const SCOUTED_TAGS: usize = 3;

/// One planned job.
#[derive(Debug, Clone)]
pub struct PlanEntry {
    pub job: Job,
    pub state: State,
    pub source_digest: Option<Digest>,
    pub target_digest: Option<Digest>,
    pub error: Option<Box<ImageError>>,
    /// Whether `error` fails the image without a copy: the source answered as no working
    /// registry does (a digest header that is no digest, a manifest past 4 MiB), or the
    /// lookups ran past `--image-timeout`. A copy by tag would only take its chances with it.
    pub fails: bool,
    /// How long the image's own lookups took: its first copy attempt has that much less time.
    pub looked_up_in: Duration,
    /// With `--platform`: the target's index of a platform subset and the upstream digest it
    /// records, or why the source has nothing to copy (`State::OtherPlatform`).
    pub platform: Option<Box<PlatformFilter>>,
}

impl PlanEntry {
    /// A job a stop came before planning ended for: one image is handed on to be stopped (it
    /// is reported `interrupted`); a whole repository, whose tags were never listed, is
    /// interrupted here, never mistaken for one the source does not have.
    pub fn stopped(job: Job) -> PlanEntry {
        if !job.source.is_whole_repository() {
            return PlanEntry::unlooked(job);
        }
        let error = ImageError::new(
            FailureKind::Interrupted,
            format!(
                "stopped before the tags of {} were listed",
                job.source.repository()
            ),
        );
        PlanEntry {
            state: State::Unknown,
            error: Some(Box::new(error)),
            ..PlanEntry::unlooked(job)
        }
    }

    /// Whether a sync copies this entry: its state needs a copy, its lookups did not fail it,
    /// and it names one image. A whole repository left in the plan is one whose tags could
    /// not be listed; it is never handed to an engine as a whole.
    pub fn needs_copy(&self) -> bool {
        self.state.needs_copy() && !self.fails && !self.job.source.is_whole_repository()
    }

    /// An entry planned without lookups (`--force`, or a run stopped while planning): a copy.
    pub fn unlooked(job: Job) -> PlanEntry {
        PlanEntry {
            job,
            state: State::New,
            source_digest: None,
            target_digest: None,
            error: None,
            fails: false,
            looked_up_in: Duration::ZERO,
            platform: None,
        }
    }
}

/// What planning needs from the configuration (built by `settings`).
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The tag filters for whole repositories.
    pub filter: TagFilter,
    /// For tag listings (and a sync's copies).
    pub retry: RetryPolicy,
    /// The inputs as named, in the order given: entries are planned in list order.
    pub inputs: Vec<String>,
    /// Skip the digest lookups: every job is planned as new (`sync --force`).
    pub force: bool,
    /// An image whose lookups run past this fails as `timeout` (a sync's `--image-timeout`).
    pub image_timeout: Option<Duration>,
    /// Only these platforms of an index are mirrored (`--platform`): a target is then compared
    /// by the upstream digest its index records.
    pub platforms: Option<Platforms>,
    /// Whether `--signatures` was given: a whole repository's artifact tags then travel with
    /// their images, and are no entries of their own (an entry's `signatures:` key decides
    /// for it).
    pub signatures: bool,
    /// `--missing-only`: a tag present at the destination is current without a source lookup.
    pub missing_only: Option<MissingOnly>,
    /// How namespace lines are listed (`--exclude-repos`, `--max-repos`, `--max-catalog`).
    pub namespaces: namespace::NamespaceOptions,
}

/// `--missing-only`: a tag already at the destination is taken as current without asking the
/// source, unless it matches `always_check` (`--always-check`, anchored), whose tags are
/// compared as usual. A tag moved upstream is not noticed; an image pinned by digest needs no
/// source request anyway.
#[derive(Debug, Clone)]
pub struct MissingOnly {
    pub always_check: regex::Regex,
}

impl MissingOnly {
    /// The tags compared even with `--missing-only`, when `--always-check` names none: the
    /// ones that move by design.
    pub const DEFAULT_ALWAYS_CHECK: &'static str = "latest|main|edge|nightly|stable";

    /// `--always-check REGEX`, which the whole tag must match.
    pub fn new(always_check: &str) -> Result<MissingOnly, regex::Error> {
        Ok(MissingOnly {
            always_check: regex::Regex::new(&format!("^(?:{always_check})$"))?,
        })
    }

    /// Whether `job`'s source is left unasked when its target exists: a tag (not pulled by
    /// digest) that `--always-check` does not name.
    pub fn skips_source(&self, job: &Job) -> bool {
        match (job.source.tag(), job.source.digest()) {
            (Some(tag), None) => !self.always_check.is_match(tag),
            _ => false,
        }
    }
}

/// A lookup's answer: a digest, `None` for "not there", or why it could not be answered.
pub type Lookup = Result<Option<String>, ImageError>;

/// The state from both sides' lookups. Pure. A source that does not exist is missing whatever
/// the target's lookup says, so an error is the source's exactly when the source's digest is
/// not known (what `plan` shows in which column relies on that).
pub fn decide(source: &Lookup, target: &Lookup) -> (State, Option<ImageError>) {
    match (source, target) {
        (Ok(None), _) => (State::SourceMissing, None),
        (Err(e), _) | (_, Err(e)) => (State::Unknown, Some(e.clone())),
        (Ok(Some(_)), Ok(None)) => (State::New, None),
        (Ok(Some(s)), Ok(Some(t))) if s == t => (State::Current, None),
        (Ok(Some(_)), Ok(Some(_))) => (State::Changed, None),
    }
}

/// A tag a filter left out, for `plan -v`.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub origin: Origin,
    pub source: String,
    pub reason: DropReason,
}

/// Whole repositories turned into one job per selected tag.
#[derive(Debug, Default)]
pub struct Expansion {
    pub jobs: Vec<Job>,
    pub dropped: Vec<Dropped>,
    /// Repositories that could not be listed, already planned (missing or unknown).
    pub failed: Vec<PlanEntry>,
    /// Whole repositories that stand for no tag at all: none listed, or the filters kept none.
    pub warnings: Vec<String>,
    /// A stop came while listing: `jobs` are the jobs as given, none expanded.
    pub stopped: bool,
}

/// Lists every whole-repository job's tags (in parallel, each listing retried under `retry`
/// like a copy; a repository that several jobs name, one per destination, is listed once) and
/// applies the filter; other jobs pass through. Job order is kept, with a repository's tags in
/// the registry's order. A repository that cannot be listed is planned
/// as failed, never copied as a whole: only ferry's own listing (through the filters and the
/// registries.conf redirects) decides which tags a whole-repository line stands for.
pub async fn expand(
    client: &Arc<RegistryClient>,
    filter: &TagFilter,
    retry: &RetryPolicy,
    signatures: bool,
    jobs: Vec<Job>,
    stop: &watch::Receiver<Stop>,
) -> Expansion {
    let mut listings = JoinSet::new();
    // Each repository's listing, by the index of the first job that names it.
    let mut listing_of: HashMap<String, usize> = HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        if job.source.is_whole_repository() {
            let name = job.source.repository();
            if listing_of.contains_key(&name) {
                continue;
            }
            listing_of.insert(name.clone(), index);
            let client = Arc::clone(client);
            let retry = *retry;
            listings.spawn(async move { (index, list_tags(&client, &retry, &name).await) });
        }
    }
    if listing_of.is_empty() {
        // Nothing to expand: the list goes on as it is, not copied job by job.
        return Expansion {
            jobs,
            ..Expansion::default()
        };
    }
    let mut listed = vec![None; jobs.len()];
    let mut stopping = stop.clone();
    loop {
        let joined = tokio::select! {
            biased;
            () = wait_for(&mut stopping, Stop::Graceful) => {
                return Expansion {
                    jobs,
                    stopped: true,
                    ..Expansion::default()
                };
            }
            joined = listings.join_next() => joined,
        };
        let Some(joined) = joined else { break };
        let (index, result) = joined.expect("a tag listing task panicked");
        listed[index] = Some(result);
    }
    for (index, job) in jobs.iter().enumerate() {
        if listed[index].is_none() && job.source.is_whole_repository() {
            listed[index] = listed[listing_of[&job.source.repository()]].clone();
        }
    }
    let mut expansion = Expansion::default();
    for (job, listing) in jobs.into_iter().zip(listed) {
        let tags = match listing {
            None => {
                expansion.jobs.push(job);
                continue;
            }
            Some(Ok(Some(tags))) if job.signatures.unwrap_or(signatures) => {
                let (artifacts, tags): (Vec<String>, Vec<String>) = tags
                    .into_iter()
                    .partition(|tag| crate::model::is_artifact_tag(tag));
                expansion
                    .dropped
                    .extend(artifacts.into_iter().map(|tag| Dropped {
                        origin: job.origin.clone(),
                        source: format!("{}:{tag}", job.source),
                        reason: DropReason::Artifact,
                    }));
                tags
            }
            Some(Ok(Some(tags))) => tags,
            Some(Ok(None)) => {
                expansion
                    .failed
                    .push(unlisted(job, State::SourceMissing, None));
                continue;
            }
            Some(Err(error)) => {
                expansion
                    .failed
                    .push(unlisted(job, State::Unknown, Some(error)));
                continue;
            }
        };
        let selection = match &job.filter {
            None => filter.select(&tags),
            Some(spec) => match filter.overridden_by(spec) {
                Ok(own) => own.select(&tags),
                Err(e) => {
                    let error =
                        ImageError::new(FailureKind::Other, format!("invalid tag filter: {e}"));
                    expansion
                        .failed
                        .push(unlisted(job, State::Unknown, Some(error)));
                    continue;
                }
            },
        };
        if selection.kept.is_empty() {
            expansion.warnings.push(if tags.is_empty() {
                format!(
                    "{}: {} lists no tags, so nothing is copied for it",
                    job.origin, job.source
                )
            } else {
                format!(
                    "{}: the tag filters keep none of the {} tag{} of {}, so nothing is copied \
                     for it (plan -v says why each was left out)",
                    job.origin,
                    tags.len(),
                    if tags.len() == 1 { "" } else { "s" },
                    job.source
                )
            });
        }
        for (tag, reason) in selection.dropped {
            expansion.dropped.push(Dropped {
                origin: job.origin.clone(),
                source: format!("{}:{tag}", job.source),
                reason,
            });
        }
        // A tag the registry lists but the grammar rejects cannot be copied by name; skip it.
        expansion.jobs.extend(
            selection
                .kept
                .iter()
                .filter_map(|tag| job.for_tag(tag).ok()),
        );
    }
    expansion
}

/// The tags of `name`, retrying transient failures (network, rate limit) under `retry`; an
/// error says the tags could not be listed, with the last failure's kind.
async fn list_tags(
    client: &RegistryClient,
    retry: &RetryPolicy,
    name: &str,
) -> Result<Option<Vec<String>>, ImageError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match client.tags(Side::Source, name).await {
            Ok(tags) => return Ok(tags),
            Err(e) => e.image_error(Side::Source),
        };
        if !error.retryable || attempt > retry.retries {
            let attempts = match attempt {
                1 => "1 attempt".to_owned(),
                n => format!("{n} attempts"),
            };
            let cause = error.message.strip_prefix(&format!("tags of {name}: "));
            let message = format!(
                "could not list the tags of {name} ({attempts}), so nothing was copied for it: {}",
                cause.unwrap_or(&error.message)
            );
            return Err(error.reworded(message));
        }
        let delay = retry.backoff(attempt, error.kind, crate::model::jitter());
        info!(
            "listing the tags of {name} failed ({}: {}); retrying in {:.1}s",
            error.kind,
            error.message,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

/// Expands and plans `jobs`; with `options.force`, skips the digest lookups and plans every job
/// as new. A tag that two lines ask for (a whole repository and a line naming one of its tags)
/// is planned once; two sources expanded onto one target are input errors, found before any
/// copy. With `options.image_timeout`, an image whose lookups run past it fails (see [`plan`]).
pub async fn plan_all(
    client: &Arc<RegistryClient>,
    options: &PlanOptions,
    jobs: Vec<Job>,
    lookups: Lookups,
    stop: &watch::Receiver<Stop>,
) -> Result<(Vec<PlanEntry>, Vec<Dropped>), Vec<InputError>> {
    let expansion = expand(
        client,
        &options.filter,
        &options.retry,
        options.signatures,
        jobs,
        stop,
    )
    .await;
    if expansion.stopped {
        let entries = expansion.jobs.into_iter().map(PlanEntry::stopped);
        return Ok((entries.collect(), Vec::new()));
    }
    let expanded = crate::mapping::one_per_target(expansion.jobs);
    if !expanded.errors.is_empty() {
        return Err(expanded.errors);
    }
    for warning in &expanded.warnings {
        warn!("{warning}");
    }
    for warning in &expansion.warnings {
        warn!("{warning}");
    }
    let mut entries = if options.force {
        expanded.jobs.into_iter().map(PlanEntry::unlooked).collect()
    } else {
        let missing_only = options.missing_only.as_ref();
        plan(
            client,
            expanded.jobs,
            lookups,
            options.image_timeout,
            missing_only,
            options.platforms.as_ref(),
            stop,
        )
        .await
    };
    entries.extend(expansion.failed);
    // Back into list order (files as given, then lines); the sort is stable, so a repository's
    // tags keep the registry's order.
    let file_rank = |file: &str| options.inputs.iter().position(|input| input == file);
    let key = |e: &PlanEntry| (file_rank(&e.job.origin.file), e.job.origin.line);
    // Mostly in order already: a sort's room for half the plan is taken only when not.
    if !entries.is_sorted_by_key(key) {
        entries.sort_by_key(key);
    }
    Ok((by_source(entries), expansion.dropped))
}

/// With several destinations, a line's copies of one source side by side (the tag's copy to
/// each destination, then the next tag's), so that what they share is read while it is
/// wanted: entries in the order of the first entry of their line and source, else as they
/// are. With one destination a line names each source once, and nothing moves.
fn by_source(mut entries: Vec<PlanEntry>) -> Vec<PlanEntry> {
    // Entries are in list order: a line's entries are side by side, and only they move
    // among themselves. Nothing the size of the whole plan is made for it.
    let mut start = 0;
    while start < entries.len() {
        let origin = &entries[start].job.origin;
        let length = entries[start..]
            .iter()
            .take_while(|e| &e.job.origin == origin)
            .count();
        let line = &mut entries[start..start + length];
        start += length;
        if line.len() < 3 {
            continue;
        }
        let mut first: HashMap<ImageRef, usize> = HashMap::new();
        let mut moves = false;
        for (index, entry) in line.iter().enumerate() {
            let at = *first.entry(entry.job.source.clone()).or_insert(index);
            moves |= at != index && line[index - 1].job.source != entry.job.source;
        }
        // Stable: a source's copies keep the destinations' order.
        if moves {
            line.sort_by_key(|e| first[&e.job.source]);
        }
    }
    entries
}

fn unlisted(job: Job, state: State, error: Option<ImageError>) -> PlanEntry {
    PlanEntry {
        state,
        error: error.map(Box::new),
        ..PlanEntry::unlooked(job)
    }
}

/// Which sides the plan looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookups {
    /// Both sides of every job, at once: what `plan` and `verify` show.
    Both,
    /// The target first, and the source only where the target exists (to compare): for an
    /// engine that reads the source's manifest by tag anyway, a new target costs no source
    /// request before its copy.
    SourceWhereTargetExists,
}

/// Looks up the sides of every job (in parallel, capped per source registry) and decides each
/// state. With `image_timeout`, an image whose lookups (from their start, not from the wait for
/// their turn) run past it fails as `timeout`; with `missing_only`, a target that exists is
/// current without a source lookup (see [`MissingOnly`]). With `platforms`, a target is read
/// whole (one `GET`) and compared by what it records of upstream (see [`decide_filtered`]).
pub async fn plan(
    client: &Arc<RegistryClient>,
    jobs: Vec<Job>,
    sides: Lookups,
    image_timeout: Option<Duration>,
    missing_only: Option<&MissingOnly>,
    platforms: Option<&Platforms>,
    stop: &watch::Receiver<Stop>,
) -> Vec<PlanEntry> {
    let platforms = platforms.cloned().map(Arc::new);
    let total = jobs.len();
    let sources = SourceLookups::new(&jobs);
    let mut scouts = Scouts::new(&jobs, platforms.as_deref());
    // Each source registry's jobs in list order, made tasks a window at a time (see
    // LOOKUPS_QUEUED): a registry that does not answer holds up only its own.
    let mut hosts: HashMap<String, usize> = HashMap::new();
    let mut queues: Vec<HostQueue> = Vec::new();
    // The list's room given back as its jobs move into their registries' queues.
    for (index, job) in Queue::from(jobs).enumerate() {
        let host = client
            .endpoint_host(Side::Source, &job.source.repository())
            .unwrap_or_default();
        let at = *hosts.entry(host).or_insert_with(|| {
            queues.push(HostQueue::default());
            queues.len() - 1
        });
        // In list order, so a repository's scout is always ahead of the tags that wait for it.
        let scout = scouts.role(&job, platforms.as_deref());
        queues[at].waiting.push_back((index, job, scout));
    }
    // The roles are given: each tag holds its own end of its scout's verdict.
    drop((hosts, scouts));
    let one = |at: usize, (index, job, scout): (usize, Job, Scout), permits: Arc<Semaphore>| {
        let client = Arc::clone(client);
        let sources = sources.clone();
        let skips_source = missing_only.is_some_and(|m| m.skips_source(&job));
        let platforms = platforms.clone();
        let mut stop = stop.clone();
        async move {
            let entry = async {
                // Before taking a turn: a tag that waits for its repository's scout holds none.
                let target = scout.settle().await;
                let _permit = permits.acquire_owned().await.expect("never closed");
                let started = Instant::now();
                // Boxed once its turn came: a task still waiting for one holds a few words, not
                // the lookup's requests (LOOKUPS_QUEUED tasks per registry wait at once).
                let looked_up = Box::pin(look_up(
                    &client,
                    &sources,
                    &job,
                    sides,
                    platforms.as_deref(),
                    skips_source,
                    target,
                ));
                let looked_up = async {
                    match image_timeout {
                        Some(limit) => tokio::time::timeout(limit, looked_up).await.ok(),
                        None => Some(looked_up.await),
                    }
                };
                let looked_up = tokio::select! {
                    biased;
                    () = wait_for(&mut stop, Stop::Graceful) => None,
                    looked_up = looked_up => Some(looked_up),
                };
                let Some(looked_up) = looked_up else {
                    return PlanEntry::stopped(job);
                };
                let looked_up_in = started.elapsed();
                let Some(looked_up) = looked_up else {
                    let limit = image_timeout.unwrap_or_default();
                    let error = ImageError::new(
                        FailureKind::Timeout,
                        format!(
                            "its lookups ran past --image-timeout {}; no copy was tried",
                            crate::words::format_duration(limit)
                        ),
                    );
                    return PlanEntry {
                        state: State::Unknown,
                        error: Some(Box::new(error)),
                        fails: true,
                        looked_up_in,
                        ..PlanEntry::unlooked(job)
                    };
                };
                match looked_up {
                    LookedUp::NewTarget => PlanEntry {
                        looked_up_in,
                        ..PlanEntry::unlooked(job)
                    },
                    LookedUp::Present(digest) => PlanEntry {
                        state: State::Current,
                        target_digest: Some(Digest::new(&digest)),
                        looked_up_in,
                        ..PlanEntry::unlooked(job)
                    },
                    LookedUp::Both {
                        source,
                        target,
                        broken,
                    } => {
                        let (state, error) = decide(&source, &target);
                        PlanEntry {
                            state,
                            source_digest: source.ok().flatten().map(Digest::from),
                            target_digest: target.ok().flatten().map(Digest::from),
                            error: error.map(Box::new),
                            fails: broken,
                            looked_up_in,
                            platform: None,
                            job,
                        }
                    }
                    LookedUp::Decided(decided) => PlanEntry {
                        state: decided.state,
                        source_digest: decided.source_digest.map(Digest::from),
                        target_digest: decided.target_digest.map(Digest::from),
                        error: decided.error.map(Box::new),
                        fails: decided.broken,
                        looked_up_in,
                        platform: decided.platform.map(Box::new),
                        job,
                    },
                }
            }
            .await;
            sources.done(&entry.job.source);
            (at, index, entry)
        }
    };
    let mut lookups = JoinSet::new();
    for (at, queue) in queues.iter_mut().enumerate() {
        while let Some(next) = queue.next() {
            lookups.spawn(one(at, next, Arc::clone(&queue.permits)));
        }
    }
    // Each entry in its job's place, room made as they come (lookups end about in job order),
    // and the whole handed on in place.
    let mut entries: Vec<Option<PlanEntry>> = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        let (at, index, entry) = joined.expect("a lookup task panicked");
        place(&mut entries, index, entry);
        let queue = &mut queues[at];
        queue.tasks -= 1;
        while let Some(next) = queue.next() {
            lookups.spawn(one(at, next, Arc::clone(&queue.permits)));
        }
    }
    assert_eq!(entries.len(), total, "every job is planned");
    entries
        .into_iter()
        .map(|entry| entry.expect("every job is planned"))
        .collect()
}

/// Lookup tasks of one source registry not yet ended at once, those waiting for their turn
/// (of LOOKUPS_IN_FLIGHT) or for their repository's scout included: enough to keep its
/// turns busy, few enough that a long list is not a task per job.
const LOOKUPS_QUEUED: usize = 4 * LOOKUPS_IN_FLIGHT;

/// One source registry's jobs still to be made lookup tasks, and its turns.
struct HostQueue {
    waiting: Queue<(usize, Job, Scout)>,
    /// Its tasks not yet ended.
    tasks: usize,
    permits: Arc<Semaphore>,
}

impl Default for HostQueue {
    fn default() -> HostQueue {
        HostQueue {
            waiting: Queue::default(),
            tasks: 0,
            permits: Arc::new(Semaphore::new(LOOKUPS_IN_FLIGHT)),
        }
    }
}

impl HostQueue {
    /// The next job to make a task, while the registry has room for one.
    fn next(&mut self) -> Option<(usize, Job, Scout)> {
        if self.tasks >= LOOKUPS_QUEUED {
            return None;
        }
        let next = self.waiting.next()?;
        self.tasks += 1;
        Some(next)
    }
}

/// What the lookups of one job found.
enum LookedUp {
    /// The target does not exist, and the source was not asked (see [`Lookups`]).
    NewTarget,
    /// The target exists with this digest, and the source was not asked (`--missing-only`).
    Present(String),
    /// Both sides' answers; `broken` when the source's is one no working registry gives.
    Both {
        source: Lookup,
        target: Lookup,
        broken: bool,
    },
    /// Decided with a platform filter (see [`look_up_filtered`]).
    Decided(Decided),
}

/// The source lookups of one plan, each source's answer shared by the jobs that copy it (one
/// per destination): a source is asked once however many destinations receive it. Only a
/// source that several jobs copy is kept, and only until the last of them is planned.
#[derive(Clone)]
struct SourceLookups(Arc<SharedSources>);

struct SharedSources {
    /// How many jobs copy each source copied more than once, by the hash of its name (two
    /// sources whose names collide are merely both kept until the plan ends).
    sharers: HashMap<u64, usize>,
    hasher: std::hash::RandomState,
    /// Each shared source's lookup, and how many of its jobs are still to be planned.
    cells: std::sync::Mutex<HashMap<ImageRef, (SourceLookup, usize)>>,
}

/// One source's digest lookup, and whether its registry answered as no working one does.
type SourceLookup = Arc<tokio::sync::OnceCell<(Lookup, bool)>>;

impl SourceLookups {
    fn new(jobs: &[Job]) -> SourceLookups {
        use std::hash::BuildHasher;
        let hasher = std::hash::RandomState::new();
        let mut sharers: HashMap<u64, usize> = HashMap::new();
        for job in jobs {
            *sharers.entry(hasher.hash_one(&job.source)).or_default() += 1;
        }
        sharers.retain(|_, n| *n > 1);
        sharers.shrink_to_fit();
        SourceLookups(Arc::new(SharedSources {
            sharers,
            hasher,
            cells: std::sync::Mutex::default(),
        }))
    }

    /// `source`'s cell and its jobs still to be planned, made when first asked; `None` for a
    /// source only one job copies.
    fn cell<T>(
        &self,
        source: &ImageRef,
        with: impl FnOnce(&mut (SourceLookup, usize)) -> T,
    ) -> Option<T> {
        use std::hash::BuildHasher;
        let shared = &self.0;
        let sharers = *shared.sharers.get(&shared.hasher.hash_one(source))?;
        let mut cells = shared.cells.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cells
            .entry(source.clone())
            .or_insert_with(|| (SourceLookup::default(), sharers));
        let out = with(entry);
        if entry.1 == 0 {
            cells.remove(source);
        }
        Some(out)
    }

    /// `source`'s digest (see [`source_digest`]), asked once and shared.
    async fn digest(&self, client: &RegistryClient, source: &ImageRef) -> (Lookup, bool) {
        let Some(cell) = self.cell(source, |(cell, _)| Arc::clone(cell)) else {
            return source_digest(client, source).await;
        };
        cell.get_or_init(|| source_digest(client, source))
            .await
            .clone()
    }

    /// A job copying `source` is planned, whether it asked the source or not.
    fn done(&self, source: &ImageRef) {
        self.cell(source, |(_, left)| *left = left.saturating_sub(1));
    }
}

/// The scouting of destination repositories: in each repository with [`SCOUTED_TAGS`] tags
/// or more to look up (at a registry, outside a platform filter), the first tag's lookup goes
/// alone, and where it finds no tag, one `GET /v2/NAME/tags/list` asks whether the repository
/// exists at all ([`RegistryClient::repository_unknown`]). Where the registry says it does not
/// (`NAME_UNKNOWN`), the repository's other tags are new without a request; otherwise (the tag
/// found, the repository there, any other answer) they are looked up one by one as ever. A
/// repository mirrored before costs nothing more; one new to the destination costs 2 requests
/// rather than one per tag.
struct Scouts {
    /// Tags to look up per scouted destination repository.
    tags: HashMap<String, usize>,
    /// The scouted repositories whose first tag went out: their scout's verdict to come.
    verdicts: HashMap<String, watch::Receiver<Option<bool>>>,
}

/// How one job's target is to be looked up.
enum Scout {
    /// As ever: its own lookup.
    Own,
    /// The first tag of a scouted repository: its lookup, and its verdict for the others.
    First(watch::Sender<Option<bool>>),
    /// A later tag of a scouted repository: the first's verdict, to wait for.
    Later(watch::Receiver<Option<bool>>),
}

impl Scouts {
    fn new(jobs: &[Job], platforms: Option<&Platforms>) -> Scouts {
        let mut tags: HashMap<String, usize> = HashMap::new();
        for job in jobs {
            if let Some(repository) = scouted_repository(job, platforms) {
                *tags.entry(repository).or_default() += 1;
            }
        }
        tags.retain(|_, n| *n >= SCOUTED_TAGS);
        Scouts {
            tags,
            verdicts: HashMap::new(),
        }
    }

    fn role(&mut self, job: &Job, platforms: Option<&Platforms>) -> Scout {
        if self.tags.is_empty() {
            return Scout::Own;
        }
        let Some(repository) =
            scouted_repository(job, platforms).filter(|r| self.tags.contains_key(r))
        else {
            return Scout::Own;
        };
        if let Some(verdict) = self.verdicts.get(&repository) {
            return Scout::Later(verdict.clone());
        }
        let (first, verdict) = watch::channel(None);
        self.verdicts.insert(repository, verdict);
        Scout::First(first)
    }
}

/// The destination repository whose tags the scouting counts: a registry target's, unless a
/// platform filter reads it whole.
fn scouted_repository(job: &Job, platforms: Option<&Platforms>) -> Option<String> {
    if platforms.is_some() && platform::applies_to(job) {
        return None;
    }
    match &job.target {
        Target::Registry(reference) => Some(reference.repository()),
        Target::Oci { .. } => None,
    }
}

impl Scout {
    /// How the target is to be looked up, once the repository's scout (for a tag that waits
    /// for one) has said: a scout that ended without a verdict leaves each tag to its own lookup.
    async fn settle(self) -> TargetLookup {
        match self {
            Scout::Own => TargetLookup::Own,
            Scout::First(first) => TargetLookup::First(first),
            Scout::Later(mut verdict) => match verdict.wait_for(Option::is_some).await {
                Ok(unknown) if *unknown == Some(true) => TargetLookup::Unknown,
                _ => TargetLookup::Own,
            },
        }
    }
}

/// How [`look_up`] finds the target's digest.
enum TargetLookup {
    /// One lookup of its own.
    Own,
    /// Its own lookup, then, when it finds nothing, whether the repository exists, told to
    /// the repository's other tags.
    First(watch::Sender<Option<bool>>),
    /// The registry said the repository does not exist: the tag is not there, no request.
    Unknown,
}

impl TargetLookup {
    async fn digest(self, client: &RegistryClient, job: &Job) -> Lookup {
        let pinned = job.source.digest();
        match self {
            TargetLookup::Own => target_digest(client, &job.target, pinned).await,
            TargetLookup::Unknown => Ok(None),
            TargetLookup::First(verdict) => {
                let found = target_digest(client, &job.target, pinned).await;
                let unknown = match (&found, &job.target) {
                    (Ok(None), Target::Registry(reference)) => {
                        let repository = reference.repository();
                        let unknown = client
                            .repository_unknown(Side::Destination, &repository)
                            .await;
                        if unknown {
                            debug!("{repository} does not exist: its other tags are new");
                        }
                        unknown
                    }
                    _ => false,
                };
                verdict.send_replace(Some(unknown));
                found
            }
        }
    }
}

/// What the lookups of a job under a platform filter decided.
struct Decided {
    state: State,
    source_digest: Option<String>,
    /// The target's own digest (a filtered index's is not upstream's).
    target_digest: Option<String>,
    error: Option<ImageError>,
    broken: bool,
    platform: Option<PlatformFilter>,
}

/// Both sides of `job`, as `sides` says; with `skips_source` (`--missing-only`), a target that
/// exists ends the lookups there.
async fn look_up(
    client: &RegistryClient,
    sources: &SourceLookups,
    job: &Job,
    sides: Lookups,
    platforms: Option<&Platforms>,
    skips_source: bool,
    target_lookup: TargetLookup,
) -> LookedUp {
    if let Some(platforms) = platforms.filter(|_| platform::applies_to(job)) {
        if skips_source {
            if let Ok(Some(digest)) = target_digest(client, &job.target, job.source.digest()).await
            {
                return LookedUp::Present(digest);
            }
        }
        return look_up_filtered(client, sources, job, sides, platforms).await;
    }
    let ((source, broken), target) = match sides {
        Lookups::Both if !skips_source => {
            tokio::join!(
                sources.digest(client, &job.source),
                target_lookup.digest(client, job)
            )
        }
        _ => {
            let target = target_lookup.digest(client, job).await;
            match &target {
                Ok(Some(digest)) if skips_source => return LookedUp::Present(digest.clone()),
                Ok(None)
                    if sides == Lookups::SourceWhereTargetExists
                        && job.source.digest().is_none() =>
                {
                    return LookedUp::NewTarget
                }
                _ => {}
            }
            (sources.digest(client, &job.source).await, target)
        }
    };
    LookedUp::Both {
        source,
        target,
        broken,
    }
}

/// [`look_up`] under a platform filter: the target is read whole (one `GET`, in place of the
/// `HEAD`) for what it records of upstream, the source's digest is looked up as without a
/// filter, and [`decide_filtered`] compares them. Where both sides are looked up (`plan`,
/// `verify`), a target that is missing or differs has its source read too, to tell a source
/// with none of the platforms (`other-platform`: nothing to copy) from one to copy.
async fn look_up_filtered(
    client: &RegistryClient,
    sources: &SourceLookups,
    job: &Job,
    sides: Lookups,
    platforms: &Platforms,
) -> LookedUp {
    let pinned = job.source.digest();
    let ((source, broken), target) = match sides {
        Lookups::Both => {
            tokio::join!(
                sources.digest(client, &job.source),
                target_held(client, &job.target, pinned)
            )
        }
        Lookups::SourceWhereTargetExists => {
            let target = target_held(client, &job.target, pinned).await;
            if matches!(target, Ok(None)) && pinned.is_none() {
                return LookedUp::NewTarget;
            }
            (sources.digest(client, &job.source).await, target)
        }
    };
    let (mut state, error, mut found) = decide_filtered(&source, &target, &platforms.label());
    if sides == Lookups::Both && matches!(state, State::New | State::Changed) {
        if let Ok(Some(digest)) = &source {
            if let Some(reason) = other_platform(client, &job.source, digest, platforms).await {
                state = State::OtherPlatform;
                found = Some(PlatformFilter::Skipped { reason });
            }
        }
    }
    LookedUp::Decided(Decided {
        state,
        source_digest: source.ok().flatten(),
        target_digest: target.ok().flatten().map(|held| held.digest),
        error,
        broken,
        platform: found,
    })
}

/// A target read whole: its own digest, and what it records of upstream when it is an index
/// ferry wrote for a platform subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub digest: String,
    pub recorded: Option<Recorded>,
}

/// The state under a platform filter (labelled `platforms`), from the source's digest and the
/// target as held. Pure. A target that records upstream is current when it records the
/// source's digest and these platforms (another set of platforms is a change); any other
/// target (a whole index copied before, a single-platform image) when its own digest is the
/// source's. The filter found on the target is returned for the reports.
pub fn decide_filtered(
    source: &Lookup,
    target: &Result<Option<Held>, ImageError>,
    platforms: &str,
) -> (State, Option<ImageError>, Option<PlatformFilter>) {
    let found = match target {
        Ok(Some(Held {
            recorded: Some(recorded),
            ..
        })) => Some(PlatformFilter::Filtered {
            upstream: recorded.upstream.clone(),
            platforms: recorded.platforms.clone(),
        }),
        _ => None,
    };
    let state = match (source, target) {
        (Ok(None), _) => return (State::SourceMissing, None, found),
        (Err(e), _) | (_, Err(e)) => return (State::Unknown, Some(e.clone()), found),
        (Ok(Some(_)), Ok(None)) => State::New,
        (Ok(Some(source)), Ok(Some(held))) => {
            let current = match &held.recorded {
                Some(recorded) => recorded.upstream == *source && recorded.platforms == platforms,
                None => held.digest == *source,
            };
            if current {
                State::Current
            } else {
                State::Changed
            }
        }
    };
    (state, None, found)
}

/// Why the source (at `digest`) has nothing to copy for `platforms`, read from its manifest
/// (and a single-platform image's config); `None` when it has, or when it cannot tell (the
/// copy then decides).
async fn other_platform(
    client: &RegistryClient,
    source: &ImageRef,
    digest: &str,
    platforms: &Platforms,
) -> Option<String> {
    let name = source.repository();
    let raw = match client.manifest_lookup(Side::Source, &name, digest).await {
        Ok(raw) => raw?,
        Err(e) => {
            debug!("{source}: its platforms were not read: {e}");
            return None;
        }
    };
    if raw.advertised.as_deref() != Some(digest) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&raw.bytes).ok()?;
    if value.get("manifests").is_some() {
        return match platform::filter_index(&raw.bytes, digest, platforms) {
            Ok(Filtered::Nothing(reason)) => Some(reason),
            _ => None,
        };
    }
    let config = value.get("config")?.get("digest")?.as_str()?;
    crate::reference::check_sha256_digest(config).ok()?;
    let what = format!("the config of {name}@{digest}");
    match client.small_blob(&name, config, true, &what).await {
        Ok(bytes) => platform::image_mismatch(&bytes, platforms),
        Err(e) => {
            debug!("{source}: its platform was not read: {e}");
            None
        }
    }
}

/// The target read whole (see [`Held`]), `None` when it does not exist; `pinned` as for
/// [`target_digest`].
async fn target_held(
    client: &RegistryClient,
    target: &Target,
    pinned: Option<&str>,
) -> Result<Option<Held>, ImageError> {
    match target {
        Target::Registry(reference) => {
            let at = reference.tag().or(reference.digest()).unwrap_or("latest");
            let raw = client
                .manifest_lookup(Side::Destination, &reference.repository(), at)
                .await
                .map_err(|e| e.image_error(Side::Destination))?;
            Ok(raw.map(|raw| Held {
                recorded: platform::recorded(&raw.bytes),
                digest: raw.advertised.unwrap_or_default(),
            }))
        }
        Target::Oci { layout, name, .. } => {
            let Some(digest) = oci_digest(layout, name.as_deref(), pinned)? else {
                return Ok(None);
            };
            let recorded = layout_manifest(layout, &digest).and_then(|b| platform::recorded(&b));
            Ok(Some(Held { digest, recorded }))
        }
    }
}

/// The bytes of manifest `digest` in the OCI layout at `layout`, when it holds it whole and
/// it is no larger than a manifest may be.
fn layout_manifest(layout: &Path, digest: &str) -> Option<Vec<u8>> {
    crate::reference::check_sha256_digest(digest).ok()?;
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let size = std::fs::metadata(&path).ok()?.len();
    if size > crate::registry::MAX_MANIFEST_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

/// The source's digest, and whether its registry answered as no working one does (see
/// [`RegistryError::source_is_broken`](crate::registry::RegistryError::source_is_broken)). A pinned source needs no request: its digest is the
/// pin.
async fn source_digest(client: &RegistryClient, source: &ImageRef) -> (Lookup, bool) {
    if let Some(digest) = source.digest() {
        return (Ok(Some(digest.to_owned())), false);
    }
    let tag = source.tag().unwrap_or("latest");
    match client
        .manifest_digest(Side::Source, &source.repository(), tag)
        .await
    {
        Ok(digest) => (Ok(digest), false),
        Err(e) => (Err(e.image_error(Side::Source)), e.source_is_broken()),
    }
}

/// The digest `target` holds, `None` when it does not exist; `pinned` is the source's pin,
/// which names an image in a layout that has no tag for it.
pub(crate) async fn target_digest(
    client: &RegistryClient,
    target: &Target,
    pinned: Option<&str>,
) -> Lookup {
    match target {
        Target::Registry(reference) => {
            let at = reference.tag().or(reference.digest()).unwrap_or("latest");
            client
                .manifest_digest(Side::Destination, &reference.repository(), at)
                .await
                .map_err(|e| e.image_error(Side::Destination))
        }
        Target::Oci { layout, name, .. } => oci_digest(layout, name.as_deref(), pinned),
    }
}

/// The digest a local OCI layout holds under `name`; an unnamed (digest-pinned) image counts
/// as present when the layout holds that digest.
pub fn oci_digest(layout: &Path, name: Option<&str>, pinned: Option<&str>) -> Lookup {
    let index = layout.join("index.json");
    let text = match std::fs::read_to_string(&index) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(internal(format!("cannot read {}: {e}", index.display()))),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| internal(format!("invalid {}: {e}", index.display())))?;
    let manifests = value["manifests"].as_array().cloned().unwrap_or_default();
    let found = manifests.iter().find(|m| match name {
        Some(name) => m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(name),
        None => pinned.is_some() && m["digest"].as_str() == pinned,
    });
    Ok(found.and_then(|m| m["digest"].as_str()).map(str::to_owned))
}

fn internal(message: String) -> ImageError {
    ImageError::new(FailureKind::Internal, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> Lookup {
        Err(ImageError::new(FailureKind::Network, "connection refused"))
    }

    #[test]
    fn states_follow_from_both_lookups() {
        let a = || Ok(Some("sha256:a".to_owned()));
        let b = || Ok(Some("sha256:b".to_owned()));
        let none = || Ok(None);
        let table = [
            (a(), none(), State::New),
            (a(), a(), State::Current),
            (a(), b(), State::Changed),
            (none(), a(), State::SourceMissing),
            (none(), none(), State::SourceMissing),
            (none(), err(), State::SourceMissing),
            (err(), a(), State::Unknown),
            (err(), err(), State::Unknown),
            (a(), err(), State::Unknown),
        ];
        for (source, target, expected) in table {
            let (state, error) = decide(&source, &target);
            assert_eq!(state, expected, "{source:?} {target:?}");
            assert_eq!(error.is_some(), expected == State::Unknown);
        }
    }

    #[test]
    fn missing_only_leaves_the_source_of_fixed_tags_unasked() {
        let job = |source: &str| Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(source).unwrap(),
            target: Target::Registry(ImageRef::parse("h.example/x/app:1").unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        };
        let digest = format!("sha256:{}", "a".repeat(64));
        let default = MissingOnly::new(MissingOnly::DEFAULT_ALWAYS_CHECK).unwrap();
        let table = [
            ("app:1.25.3", true),
            ("app:latest", false),
            ("app:stable", false),
            ("app:nightly", false),
            ("app:edge", false),
            ("app:main", false),
            // The regex is anchored: a tag containing a word is not that word.
            ("app:latest-alpine", true),
            ("app:mainline", true),
            (&format!("app@{digest}"), false),
            (&format!("app:1@{digest}"), false),
        ];
        for (source, skips) in table {
            assert_eq!(default.skips_source(&job(source)), skips, "{source}");
        }
        let own = MissingOnly::new("v1\\..*|dev").unwrap();
        assert!(!own.skips_source(&job("app:v1.2")));
        assert!(!own.skips_source(&job("app:dev")));
        assert!(own.skips_source(&job("app:latest")));
        assert!(MissingOnly::new("(").is_err());
    }

    #[test]
    fn a_filtered_target_is_compared_by_the_upstream_digest_and_platforms_it_records() {
        let source = |d: &str| -> Lookup { Ok(Some(d.to_owned())) };
        let held = |digest: &str, recorded: Option<(&str, &str)>| {
            Ok(Some(Held {
                digest: digest.to_owned(),
                recorded: recorded.map(|(upstream, platforms)| Recorded {
                    upstream: upstream.to_owned(),
                    platforms: platforms.to_owned(),
                }),
            }))
        };
        let arm = "linux/arm64";
        let table = [
            // An index of the subset, recording the source's digest: current.
            (
                source("sha256:up"),
                held("sha256:own", Some(("sha256:up", arm))),
                State::Current,
            ),
            // Upstream moved on.
            (
                source("sha256:new"),
                held("sha256:own", Some(("sha256:up", arm))),
                State::Changed,
            ),
            // Another set of platforms was asked for before.
            (
                source("sha256:up"),
                held("sha256:own", Some(("sha256:up", "linux/amd64"))),
                State::Changed,
            ),
            // A whole copy of upstream (or a single-platform image): by its own digest.
            (source("sha256:up"), held("sha256:up", None), State::Current),
            (
                source("sha256:up"),
                held("sha256:old", None),
                State::Changed,
            ),
            (source("sha256:up"), Ok(None), State::New),
            (Ok(None), held("sha256:own", None), State::SourceMissing),
            (
                source("sha256:up"),
                Err(ImageError::new(FailureKind::Network, "refused")),
                State::Unknown,
            ),
        ];
        for (source, target, expected) in table {
            let (state, error, found) = decide_filtered(&source, &target, arm);
            assert_eq!(state, expected, "{source:?} {target:?}");
            assert_eq!(error.is_some(), expected == State::Unknown);
            let records = matches!(
                &target,
                Ok(Some(Held {
                    recorded: Some(_),
                    ..
                }))
            );
            assert_eq!(found.is_some(), records, "{target:?}");
        }
    }

    #[test]
    fn only_new_changed_and_unknown_need_a_copy() {
        let copied: Vec<State> = [
            State::New,
            State::Changed,
            State::Current,
            State::SourceMissing,
            State::Unknown,
            State::OtherPlatform,
        ]
        .into_iter()
        .filter(|s| s.needs_copy())
        .collect();
        assert_eq!(copied, [State::New, State::Changed, State::Unknown]);
    }

    #[test]
    fn a_lines_copies_of_one_source_go_side_by_side() {
        let entry = |line: usize, source: &str, target: &str| {
            PlanEntry::unlooked(Job {
                origin: Origin {
                    file: "l".into(),
                    line,
                },
                source: ImageRef::parse(source).unwrap(),
                target: Target::Registry(ImageRef::parse(target).unwrap()),
                explicit: false,
                filter: None,
                signatures: None,
            })
        };
        let targets = |entries: Vec<PlanEntry>| -> Vec<String> {
            entries.iter().map(|e| e.job.target.to_string()).collect()
        };
        // A whole repository expanded for two destinations: each destination's tags in turn.
        let expanded = vec![
            entry(1, "quay.io/a/b:2", "a.example/quay.io/a/b:2"),
            entry(1, "quay.io/a/b:1", "a.example/quay.io/a/b:1"),
            entry(1, "quay.io/a/b:2", "b.example/quay.io/a/b:2"),
            entry(1, "quay.io/a/b:1", "b.example/quay.io/a/b:1"),
            entry(2, "quay.io/a/c:1", "a.example/quay.io/a/c:1"),
            entry(2, "quay.io/a/c:1", "b.example/quay.io/a/c:1"),
        ];
        assert_eq!(
            targets(by_source(expanded)),
            [
                "a.example/quay.io/a/b:2",
                "b.example/quay.io/a/b:2",
                "a.example/quay.io/a/b:1",
                "b.example/quay.io/a/b:1",
                "a.example/quay.io/a/c:1",
                "b.example/quay.io/a/c:1",
            ]
        );
        // One destination: the registry's order of the tags stays.
        let one = vec![
            entry(1, "quay.io/a/b:2", "a.example/quay.io/a/b:2"),
            entry(1, "quay.io/a/b:1", "a.example/quay.io/a/b:1"),
            entry(2, "quay.io/a/b:2", "a.example/other:2"),
        ];
        assert_eq!(
            targets(by_source(one)),
            [
                "a.example/quay.io/a/b:2",
                "a.example/quay.io/a/b:1",
                "a.example/other:2"
            ]
        );
    }

    #[test]
    fn oci_layout_digests_are_found_by_name() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        assert_eq!(oci_digest(dir.path(), Some("1.25"), None).unwrap(), None);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                { "digest": "sha256:aa", "annotations": { "org.opencontainers.image.ref.name": "1.25" } },
                { "digest": "sha256:bb" }
            ]
        });
        dir.write_private("index.json", index.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            oci_digest(dir.path(), Some("1.25"), None)
                .unwrap()
                .as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(oci_digest(dir.path(), Some("1.26"), None).unwrap(), None);
        assert_eq!(
            oci_digest(dir.path(), None, Some("sha256:bb"))
                .unwrap()
                .as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(
            oci_digest(dir.path(), None, Some("sha256:cc")).unwrap(),
            None
        );
    }
}
