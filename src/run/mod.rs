//! The run core: plan every job, copy what needs a copy through an [`Engine`] with retries,
//! and end with one result per entry. It knows no terminal, no signals and no exit codes:
//! what happens goes out as [`Event`]s, a stop comes in on a watch channel, and the outcome is
//! data, so `sync` and `serve`'s schedule loop only wire it up. It takes the [`RunOptions`]
//! settings built, and reads each failure's fields (its kind, side, refusing host and whether a
//! retry may help), never an engine's words.

pub mod artifacts;
pub mod events;
pub mod retry;
pub mod scheduler;

use std::collections::{BTreeMap, HashMap};
use std::future::Future as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use self::events::{Event, Events, Wait};
use self::retry::Outages;
use self::scheduler::{Limits, OnFinished, Slot};
use crate::access::conf::RegistriesConf;
use crate::docker_hub;
use crate::engine::{Attempt, Engine};
use crate::exec::{wait_for, Stop};
use crate::input::InputError;
use crate::layout::{LayoutLock, Tidy};
use crate::model::platform::PlatformFilter;
use crate::model::{
    Destination, Digest, FailureKind, ImageError, ImageResult, Job, Results, RetryPolicy,
    Selection, Side, State, Status, Summary, Target,
};
use crate::plan::{self, PlanEntry, PlanOptions};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;

/// What a run needs from the configuration (built by `settings`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How the run plans; its retry policy is the copies' too.
    pub plan: PlanOptions,
    pub destination: Destination,
    /// Copies at once (`-j`).
    pub jobs: usize,
    /// Copies at once per registry host (`--registry-jobs`), keyed by the host requests go to.
    pub registry_jobs: HashMap<String, usize>,
    /// Where registries.conf sends each registry, to apply those limits where requests go.
    pub conf: RegistriesConf,
    /// What travels with each image (`--signatures`), unless its entry says otherwise.
    pub signatures: Option<Selection>,
}

impl RunOptions {
    /// What travels with `job`'s image: its entry's say (a `signatures:` key), else the run's.
    pub fn signatures_for(&self, job: &Job) -> Option<Selection> {
        match job.signatures {
            Some(false) => None,
            Some(true) => Some(self.signatures.clone().unwrap_or_else(Selection::all)),
            None => self.signatures.clone(),
        }
    }
}

/// What a finished run produced (each entry's result went out in the events).
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
}

/// Everything one copy job needs, shared by all of them.
struct Context {
    engine: Arc<dyn Engine>,
    retry: RetryPolicy,
    destination: Destination,
    /// The planner's client: its per-registry pace also spaces the retries of copies that a
    /// registry refused with 429.
    client: Arc<RegistryClient>,
    /// Registries that refused connections through a whole retry schedule in this run.
    outages: Outages,
    events: Events,
    /// What travels with the images (`--signatures`), and the work of carrying it.
    artifacts: artifacts::Artifacts,
}

/// Plans `jobs`, then copies every one that needs it through `engine`, `options.jobs` at a
/// time; `unlisted` (namespace lines that could not be listed) are reported failed after them. A stop while planning ends the planning (every entry is then reported interrupted);
/// a stop while copying starts no new copy and stops the running ones. Input errors found
/// only once whole repositories are expanded (two sources for one target) end the run before
/// any copy.
pub async fn sync(
    options: &RunOptions,
    client: Arc<RegistryClient>,
    engine: Arc<dyn Engine>,
    jobs: Vec<Job>,
    unlisted: Vec<ImageResult>,
    stop: watch::Receiver<Stop>,
    events: Events,
) -> Result<RunOutcome, Vec<InputError>> {
    let started = Instant::now();
    events.send(Event::RunStarted {
        entries: jobs.len(),
    });
    {
        let events = events.clone();
        client.observe_throttling(Box::new(move |registry: &str, wait: Duration| {
            events.send(Event::LookupThrottled {
                registry: registry.to_owned(),
                wait,
            });
        }));
    }
    // Under a pull budget every source is looked up (a HEAD, which no registry meters): it says
    // how many pulls its copy costs, and what the registry's quota is.
    let lookups = if engine.reads_sources_by_tag() && !client.has_pull_budget() {
        plan::Lookups::SourceWhereTargetExists
    } else {
        plan::Lookups::Both
    };
    // A stop while planning ends it: the entries not planned by then are handed on unplanned,
    // to be reported interrupted.
    let (entries, _dropped) = plan::plan_all(&client, &options.plan, jobs, lookups, &stop).await?;
    let mut stopping = stop.clone();
    let stopped = tokio::select! {
        () = async {
            settle_logins(&client, &entries).await;
            if client.has_pull_budget() {
                read_quotas(&client, &entries).await;
            }
        } => *stop.borrow() != Stop::Run,
        () = wait_for(&mut stopping, Stop::Graceful) => true,
    };
    if !stopped {
        info!(
            "planned {} with {} ({} answered 429)",
            crate::words::count(entries.len(), "image", "images"),
            crate::words::count(
                client.requests_sent(),
                "registry request",
                "registry requests"
            ),
            client.throttled_responses()
        );
    }
    let targets: Vec<&Target> = entries.iter().map(|e| &e.job.target).collect();
    engine.before_run(&targets);
    drop(targets);

    let planned = entries.len();
    let refused = |job: &Job| refused_credentials(&client, job);
    // An image found current still has its artifacts to carry.
    let follows = |job: &Job| options.signatures_for(job).is_some();
    // Each entry is told planned as it is split, and, when its result is known already, done:
    // neither the entries nor their results are all held at once (the plan's room is given
    // back as its entries are taken, results go to `Results`).
    let mut split = Split::default();
    let mut results = Results::new();
    let mut sent = 0;
    let mut tell = |event: Event| {
        events.send(event);
        sent += 1;
        let_events_out(sent)
    };
    for (index, entry) in crate::queue::Queue::from(entries).enumerate() {
        tell(Event::Planned {
            index,
            state: entry.state,
            source: entry.job.source.to_string(),
            target: entry.job.target.to_string(),
        })
        .await;
        if let Some(result) = split.take(index, entry, refused, follows) {
            results.put(index, &result);
            tell(Event::Finished { index, result }).await;
        }
    }
    // The plan's room (its lookups, entries and their names) is free now: given back to the
    // system before the copies start, not kept by the allocator for the rest of the run.
    crate::memory::give_back_free();
    let unlisted_count = unlisted.len();
    for (offset, result) in unlisted.into_iter().enumerate() {
        let index = planned + offset;
        tell(Event::Planned {
            index,
            state: State::Unknown,
            source: result.source.clone(),
            target: result.target.clone(),
        })
        .await;
        results.put(index, &result);
        tell(Event::Finished { index, result }).await;
    }
    // Images found current are run for their artifacts only: no copy of theirs is to come.
    let copies: Vec<&Job> = (split.jobs.iter().zip(&split.current))
        .filter(|(_, current)| !**current)
        .map(|(job, _)| job)
        .collect();
    engine.copies_planned(&copies);
    drop(copies);
    let limits = Limits {
        global: options.jobs,
        per_registry: options.registry_jobs.clone(),
        hosts: request_hosts(&split.jobs, &options.conf),
    };
    let context = Arc::new(Context {
        engine,
        retry: options.plan.retry,
        destination: options.destination.clone(),
        client: Arc::clone(&client),
        outages: Outages::default(),
        events: events.clone(),
        artifacts: artifacts::Artifacts::new(planned + unlisted_count),
    });
    let positions = Arc::new(split.positions);
    let digests = split.digests;
    let spent = split.spent;
    let current = split.current;
    let execute = {
        let context = Arc::clone(&context);
        let positions = Arc::clone(&positions);
        let options = Arc::new(options.clone());
        move |index: usize, job: Job, stop: watch::Receiver<Stop>, slot: Slot| {
            let context = Arc::clone(&context);
            let position = positions[index];
            let planned_digest = digests[index].as_ref().map(Digest::to_string);
            // What is logged while this image is worked on names it (`--log-format json`
            // gives each line its source and target). A WARN span, so that it is on whenever
            // warnings are.
            let span = tracing::warn_span!(
                "image",
                source = %job.source,
                target = %job.target
            );
            let looked_up_in = spent[index];
            let current = current[index];
            let selection = options.signatures_for(&job);
            // Called when the job starts (the scheduler boxes what it returns).
            let work = async move {
                // Runs once the job holds its layout: no other job of this run writes there
                // until it ends, and, once it holds the layout's lock, no other ferry either.
                let tidy = match (&job.target, &context.destination) {
                    (Target::Oci { layout, .. }, Destination::OciDir(root)) => {
                        Some((Tidy::before(layout, root), layout.clone()))
                    }
                    _ => None,
                };
                let lock = match &tidy {
                    Some((_, layout)) => match lock_layout(layout, stop.clone()).await {
                        Ok(lock) => Some(lock),
                        Err(error) => {
                            if !current {
                                context.engine.copy_done(&job);
                            }
                            return ImageResult::failed(&job, error, 0, Duration::ZERO);
                        }
                    },
                    None => None,
                };
                let started = Instant::now();
                let mut result = if current {
                    ImageResult::skipped(&job, planned_digest.clone())
                } else {
                    copy_one(
                        &context,
                        position,
                        job.clone(),
                        Planned {
                            digest: planned_digest.as_deref(),
                            looked_up_in,
                        },
                        stop.clone(),
                        &slot,
                    )
                    .await
                };
                if !current {
                    context.engine.copy_done(&job);
                }
                if let Some((tidy, _)) = tidy {
                    if let Err(e) = tidy.after() {
                        warn!("cannot tidy the OCI layout of {}: {e}", result.target);
                    }
                }
                drop(lock);
                if result.status == Status::Synced && result.digest.is_none() {
                    result.digest = planned_digest;
                }
                match selection {
                    Some(selection) if result.status != Status::Failed => {
                        result = follow_artifacts(&context, &job, result, &selection, stop).await;
                        if current {
                            result.duration = started.elapsed();
                        }
                    }
                    // Its artifacts are still to go: a rerun of the failed list takes them.
                    Some(_) => result.artifacts = Some(Vec::new()),
                    None => {}
                }
                result
            };
            tracing::Instrument::instrument(work, span)
        }
    };
    let finished: OnFinished = {
        let events = events.clone();
        let positions = Arc::clone(&positions);
        Arc::new(move |index, result: &ImageResult| {
            events.send(Event::Finished {
                index: positions[index],
                result: result.clone(),
            });
        })
    };
    scheduler::run_each(
        split.jobs,
        &limits,
        stop.clone(),
        finished,
        execute,
        |index, result| results.put(positions[index], &result),
    )
    .await;
    assert_eq!(
        results.len(),
        planned + unlisted_count,
        "every entry has a result"
    );
    reread_quotas(&client, &results).await;
    let interrupted = *stop.borrow() != Stop::Run;
    let summary = results.summary(started.elapsed(), interrupted);
    events.send(Event::RunFinished {
        results: Arc::new(results),
        summary,
    });
    Ok(RunOutcome { summary })
}

/// Every [`EVENTS_AT_ONCE`]th event a loop sends, lets the rest of the run (the events'
/// consumers among it) go on: a long plan's events are read as they are sent, not all held in
/// the channel until the loop ends. A consumer takes at most tokio's budget of 128 channel
/// reads and timer polls each time it runs: more events than it can take per turn would pile
/// up by the difference every turn (100,000 events sent 256 at a time left ~50,000 queued).
async fn let_events_out(sent: usize) {
    if sent % EVENTS_AT_ONCE == EVENTS_AT_ONCE - 1 {
        tokio::task::yield_now().await;
    }
}

/// See [`let_events_out`].
const EVENTS_AT_ONCE: usize = 32;

/// How often a job waiting for a layout another ferry process writes looks again.
const LAYOUT_POLL: Duration = Duration::from_millis(100);

/// The lock of `layout` (made when missing), waited for while another ferry process holds it;
/// an error when the layout cannot be made or locked, or when the run is stopped meanwhile.
async fn lock_layout(
    layout: &std::path::Path,
    mut stop: watch::Receiver<Stop>,
) -> Result<LayoutLock, ImageError> {
    let mut told = false;
    loop {
        match LayoutLock::try_acquire(layout, true) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) => {}
            Err(e) => {
                return Err(ImageError::new(
                    FailureKind::Internal,
                    format!("cannot lock the OCI layout {}: {e}", layout.display()),
                ))
            }
        }
        if !told {
            info!(
                "another ferry is writing {}; waiting for it",
                layout.display()
            );
            told = true;
        }
        tokio::select! {
            () = tokio::time::sleep(LAYOUT_POLL) => {}
            () = wait_for(&mut stop, Stop::Graceful) => {
                return Err(ImageError::new(FailureKind::Interrupted, format!(
                        "stopped while another ferry was writing {}",
                        layout.display()
                    )))
            }
        }
    }
}

/// Where requests for each registry the jobs name go: a source through registries.conf, a
/// destination to its API host (pushes are never redirected).
pub fn request_hosts(jobs: &[Job], conf: &RegistriesConf) -> HashMap<String, String> {
    let mut hosts = HashMap::new();
    for job in jobs {
        if let Target::Registry(target) = &job.target {
            let domain = target.domain();
            hosts.insert(domain.to_owned(), docker_hub::api_host(domain).to_owned());
        }
    }
    for job in jobs {
        let domain = job.source.domain();
        hosts.insert(domain.to_owned(), conf.host_for(domain));
    }
    hosts
}

/// Settles, with one lookup per registry host and side, every login ferry holds and no lookup
/// has tried yet (all of them under `--force`, which skips the digest lookups; a source pinned
/// by digest otherwise): an engine would send a wrong password with every copy, where ferry's
/// client sends it once and then fails the copies `unauthorized` (see `refused_credentials`).
async fn settle_logins(client: &Arc<RegistryClient>, entries: &[PlanEntry]) {
    let mut probes: BTreeMap<(u8, String), (Side, ImageRef)> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.state.needs_copy()) {
        let sides = [
            Some((Side::Source, &entry.job.source)),
            match &entry.job.target {
                Target::Registry(target) => Some((Side::Destination, target)),
                Target::Oci { .. } => None,
            },
        ];
        for (side, reference) in sides.into_iter().flatten() {
            let name = reference.repository();
            let Some(host) = client.endpoint_host(side, &name) else {
                continue;
            };
            let key = (u8::from(side == Side::Destination), host);
            if !probes.contains_key(&key) && client.login_unsettled(side, &name) {
                probes.insert(key, (side, reference.clone()));
            }
        }
    }
    let mut lookups = tokio::task::JoinSet::new();
    for (side, reference) in probes.into_values() {
        let client = Arc::clone(client);
        lookups.spawn(async move {
            let at = reference.tag().or(reference.digest()).unwrap_or("latest");
            let answer = client
                .manifest_digest(side, &reference.repository(), at)
                .await;
            debug!("settling the login for {reference}: {answer:?}");
        });
    }
    while lookups.join_next().await.is_some() {}
}

/// Reads the quota of every source registry that copies will pull from and no manifest lookup
/// has asked yet (sources pinned by digest, `--force`): one `HEAD` each, which no registry
/// meters, so that `--pull-budget` knows what is left before the first copy.
async fn read_quotas(client: &Arc<RegistryClient>, entries: &[PlanEntry]) {
    let mut probes: BTreeMap<String, ImageRef> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.needs_copy()) {
        let name = entry.job.source.repository();
        let Some(host) = client.endpoint_host(Side::Source, &name) else {
            continue;
        };
        if !client.saw_manifest(&host) {
            probes
                .entry(host)
                .or_insert_with(|| entry.job.source.clone());
        }
    }
    let mut lookups = tokio::task::JoinSet::new();
    for source in probes.into_values() {
        let client = Arc::clone(client);
        lookups.spawn(async move {
            let at = source.digest().or(source.tag()).unwrap_or("latest");
            let answer = client
                .manifest_digest(Side::Source, &source.repository(), at)
                .await;
            debug!("reading the pull quota of {source}'s registry: {answer:?}");
        });
    }
    while lookups.join_next().await.is_some() {}
}

/// Asks each metered registry that copies pulled from what it has left now: one `HEAD`, which
/// it does not count (skopeo's and crane's pulls go past ferry's client, which would otherwise
/// report what was left before them).
async fn reread_quotas(client: &Arc<RegistryClient>, results: &Results) {
    let metered: Vec<String> = client.quotas().into_iter().map(|(host, _)| host).collect();
    if metered.is_empty() {
        return;
    }
    let mut probes: BTreeMap<String, ImageRef> = BTreeMap::new();
    let results = results.iter().flatten();
    for result in results.filter(|r| r.status == Status::Synced) {
        let Ok(source) = ImageRef::parse(&result.source) else {
            continue;
        };
        let Some(host) = client.endpoint_host(Side::Source, &source.repository()) else {
            continue;
        };
        if metered.contains(&host) {
            probes.entry(host).or_insert(source);
        }
    }
    for source in probes.into_values() {
        let at = source.digest().or(source.tag()).unwrap_or("latest");
        let answer = client
            .manifest_digest(Side::Source, &source.repository(), at)
            .await;
        debug!("reading the pull quota left after the copies from {source}'s registry: {answer:?}");
    }
}

/// A plan split into the jobs that need a copy (with their planned source digests and their
/// positions in the plan), entry by entry (see [`Split::take`]).
#[derive(Default)]
struct Split {
    jobs: Vec<Job>,
    digests: Vec<Option<Digest>>,
    /// How long each job's lookups took.
    spent: Vec<Duration>,
    positions: Vec<usize>,
    /// Whether each job is an image found current, run only for its artifacts.
    current: Vec<bool>,
}

impl Split {
    /// Takes the plan's entry at `position`: a job to run, or its result now. Current targets
    /// are skipped (but run for their artifacts where `follows` says they have some to
    /// carry), missing sources failed, and so are jobs whose credentials `refused` says a
    /// registry already turned down (a copy would only send them again).
    fn take(
        &mut self,
        position: usize,
        entry: PlanEntry,
        refused: impl Fn(&Job) -> Option<String>,
        follows: impl Fn(&Job) -> bool,
    ) -> Option<ImageResult> {
        let refusal = entry.needs_copy().then(|| refused(&entry.job)).flatten();
        let current = entry.state == State::Current && follows(&entry.job);
        if (entry.needs_copy() && refusal.is_none()) || current {
            self.jobs.push(entry.job);
            // An image found current under --missing-only was not asked of the source: its
            // artifacts are those of the digest the destination holds.
            self.digests.push(match current {
                true => entry.source_digest.or(entry.target_digest),
                false => entry.source_digest,
            });
            self.spent.push(entry.looked_up_in);
            self.positions.push(position);
            self.current.push(current);
            return None;
        }
        let fail = |error| ImageResult::failed(&entry.job, error, 0, Duration::ZERO);
        Some(if let Some(message) = refusal {
            fail(ImageError::new(FailureKind::Unauthorized, message))
        } else if entry.state == State::Current {
            // Under --missing-only the source was not asked: the target's digest is the one.
            ImageResult {
                platform: entry.platform,
                ..ImageResult::skipped(
                    &entry.job,
                    entry
                        .source_digest
                        .or(entry.target_digest)
                        .map(String::from),
                )
            }
        } else if entry.state == State::OtherPlatform {
            let reason = match entry.platform.map(|p| *p) {
                Some(PlatformFilter::Skipped { reason }) => reason,
                _ => "the source has none of the platforms --platform asks for".to_owned(),
            };
            ImageResult::skipped_for_platform(&entry.job, reason, 0, Duration::ZERO)
        } else if let Some(error) = entry.error {
            // A repository whose tags could not be listed: failed as the listing did.
            fail(*error)
        } else {
            // The registry's own words for a 404 on the manifest or the tag list.
            let message = if entry.job.source.is_whole_repository() {
                format!(
                    "name unknown: repository {} does not exist in the source",
                    entry.job.source
                )
            } else {
                format!(
                    "manifest unknown: {} does not exist in the source",
                    entry.job.source
                )
            };
            fail(ImageError::new(FailureKind::NotFound, message))
        })
    }
}

/// Carries the artifacts of `job`'s image (see [`artifacts`]) once the image is at its target
/// (`result`, synced or current), and puts them in its result.
async fn follow_artifacts(
    context: &Context,
    job: &Job,
    result: ImageResult,
    selection: &Selection,
    stop: watch::Receiver<Stop>,
) -> ImageResult {
    let digest = match &result.digest {
        Some(digest) => Ok(digest.clone()),
        None => {
            match plan::target_digest(&context.client, &job.target, job.source.digest()).await {
                Ok(Some(digest)) => Ok(digest),
                Ok(None) => Err(ImageError::new(
                    FailureKind::Other,
                    format!("{} is not at the target after its copy", job.target),
                )),
                Err(error) => Err(error),
            }
        }
    };
    let outcome = match digest {
        Ok(digest) => {
            let follow = artifacts::Follow {
                client: &context.client,
                engine: context.engine.as_ref(),
                retry: context.retry,
                job,
                digest: &digest,
                selection,
                stop,
            };
            context.artifacts.follow(&follow).await
        }
        Err(error) => Err(error),
    };
    artifacts::with_artifacts(result, outcome)
}

/// Checks that a copy wrote the manifest the plan saw at the source (`planned`), or one the
/// source's tag has moved to since; returns the digest that landed, when known. skopeo and
/// crane read the source's manifest by tag and write whatever bytes come, without checking
/// them against the digest the source advertises: a source serving other bytes would leave an
/// image upstream never named at the target, reported as synced. The write cannot be undone,
/// so the failure says what the target now holds. (The native engine checks before it writes:
/// it reports the planned digest or fails.) What landed is the engine's word, else the
/// target's digest, looked up; a lookup that cannot tell is logged, and the copy stands.
async fn check_landed(
    context: &Context,
    job: &Job,
    planned: &str,
    reported: Option<&str>,
) -> Result<Option<String>, ImageError> {
    let landed = match reported {
        Some(reported) => reported.to_owned(),
        None => {
            match plan::target_digest(&context.client, &job.target, job.source.digest()).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    warn!(
                        "{}: not found right after its copy; its digest was not checked",
                        job.target
                    );
                    return Ok(None);
                }
                Err(e) => {
                    warn!(
                        "{}: its digest was not checked after the copy: {}",
                        job.target, e.message
                    );
                    return Ok(None);
                }
            }
        }
    };
    if landed == planned {
        return Ok(Some(landed));
    }
    // A tag may have moved since the plan: then the source advertises what landed.
    let mut advertised = planned.to_owned();
    if job.source.digest().is_none() {
        let tag = job.source.tag().unwrap_or("latest");
        match context
            .client
            .manifest_digest(Side::Source, &job.source.repository(), tag)
            .await
        {
            Ok(Some(now)) if now == landed => {
                info!(
                    "{}: the source's tag moved since the plan; copied {landed}",
                    job.target
                );
                return Ok(Some(landed));
            }
            Ok(Some(now)) => advertised = now,
            Ok(None) => {}
            Err(e) => warn!("{}: cannot ask the source again: {e}", job.source),
        }
    }
    let engine = context.engine.name();
    Err(ImageError::new(
        FailureKind::Other,
        format!(
            "digest mismatch: the target now holds {landed}, but upstream advertises \
             {advertised} for {source}: the source served a manifest whose bytes do not match \
             its digest, and {engine} wrote them unchecked. ferry cannot undo that write; \
             check the source (--engine native refuses such a manifest before writing anything)",
            source = job.source,
        ),
    ))
}

/// What the plan found out about one job.
struct Planned<'a> {
    /// The source's digest, when it was looked up.
    digest: Option<&'a str>,
    /// How long the lookups took: the first attempt has that much less of `--image-timeout`.
    looked_up_in: Duration,
}

/// Copies one job, retrying transient failures with backoff; the result counts every attempt.
async fn copy_one(
    context: &Context,
    index: usize,
    job: Job,
    planned: Planned<'_>,
    mut stop: watch::Receiver<Stop>,
    slot: &Slot,
) -> ImageResult {
    let planned_digest = planned.digest;
    let started = Instant::now();
    let target = job.target.to_string();
    let result = |outcome: Result<(Option<String>, crate::model::Counts), ImageError>,
                  attempts: u32| match outcome {
        Ok((digest, counts)) => {
            ImageResult::synced(&job, digest, counts, attempts, started.elapsed())
        }
        Err(error) => ImageResult::failed(&job, error, attempts, started.elapsed()),
    };
    let failed =
        |kind, message: String, attempts| result(Err(ImageError::new(kind, message)), attempts);
    if job.source.is_whole_repository() {
        // Never reached from a plan (see `PlanEntry::needs_copy`); an engine given a whole
        // repository would list its tags itself, past the filters and the redirects.
        let message = format!(
            "{} is a whole repository: ferry copies it tag by tag",
            job.source
        );
        return failed(FailureKind::Internal, message, 0);
    }
    let source_repository = job.source.repository();
    let hosts = registry_hosts(&context.client, &job);
    let outage =
        |host: String, attempts| failed(FailureKind::Network, Outages::message(&host), attempts);
    let attempts_allowed = context.retry.retries + 1;
    // The host (of this copy's) that refused the connection in every attempt so far, and
    // this copy's say that it is suspect while it retries.
    let mut refusing: Option<String> = None;
    let mut suspect: Option<retry::Suspect<'_>> = None;
    // Another copy is retrying against one of this one's hosts after a refusal: its verdict
    // first (the registry is down, or it got through), not holding the slot meanwhile.
    if let Some(host) = context.outages.suspect_among(&hosts) {
        context.events.send(Event::Waiting {
            index,
            target: target.clone(),
            reason: Wait::Turn { registry: host },
        });
        tokio::select! {
            verdict = slot.idle_while(context.outages.verdict(&hosts)) => {
                if let Some(host) = verdict {
                    return outage(host, 0);
                }
            }
            () = wait_for(&mut stop, Stop::Graceful) => {
                let message = "stopped while waiting to learn whether a registry is down";
                return failed(FailureKind::Interrupted, message.to_owned(), 0);
            }
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(host) = context.outages.down_among(&hosts) {
            return outage(host, attempt - 1);
        }
        // Copies from a source that throttles take turns (see `throttled_turn`); the wait
        // lends this job's slot to jobs for other registries.
        let turn = context
            .client
            .throttled_turn(Side::Source, &source_repository);
        let mut turn = std::pin::pin!(turn);
        let ready = std::future::poll_fn(|cx| std::task::Poll::Ready(turn.as_mut().poll(cx))).await;
        let turn = match ready {
            std::task::Poll::Ready(turn) => turn,
            std::task::Poll::Pending => {
                if let Some(host) = context
                    .client
                    .endpoint_host(Side::Source, &source_repository)
                {
                    context.events.send(Event::Waiting {
                        index,
                        target: target.clone(),
                        reason: Wait::Turn { registry: host },
                    });
                }
                tokio::select! {
                    turn = slot.idle_while(turn) => turn,
                    () = wait_for(&mut stop, Stop::Graceful) => {
                        let message = "stopped while waiting for its turn at a throttled registry";
                        return failed(FailureKind::Interrupted, message.to_owned(), attempt - 1);
                    }
                }
            }
        };
        if let Some(host) = context.outages.down_among(&hosts) {
            return outage(host, attempt - 1);
        }
        // Each attempt pulls the source's manifests again: it must fit the pull budget.
        // A copy served by what another destination's copy read pulls nothing.
        let reserved = match context.engine.reads_kept(&job, planned_digest) {
            true => Ok(None),
            false => context.client.reserve_pulls(&job.source),
        };
        let pulls = match reserved {
            Ok(pulls) => pulls,
            Err(deferral) => {
                return failed(FailureKind::Deferred, deferral.to_string(), attempt - 1);
            }
        };
        let attempt_started = Instant::now();
        context.events.send(Event::AttemptStarted {
            index,
            target: target.clone(),
            attempt,
            of: attempts_allowed,
        });
        let progress = |progress| {
            context.events.send(Event::Progress { index, progress });
        };
        let outcome = context
            .engine
            .copy(Attempt {
                index,
                job: &job,
                digest: planned_digest,
                number: attempt,
                spent: if attempt == 1 {
                    planned.looked_up_in
                } else {
                    Duration::ZERO
                },
                stop: stop.clone(),
                progress: &progress,
            })
            .await;
        // The next copy's turn; this one's retry waits below without holding it.
        drop(turn);
        if let Some(pulls) = pulls {
            let pulled = outcome.as_ref().ok().and_then(|c| {
                c.pulled
                    .or(Some(c.counts.manifests_written).filter(|n| *n > 0))
            });
            context.client.settle_pulls(pulls, pulled);
        }
        let error = match outcome {
            Ok(mut copied) => {
                context.outages.clear(&hosts);
                match copied.platform.take() {
                    Some(PlatformFilter::Skipped { reason }) => {
                        let elapsed = started.elapsed();
                        return ImageResult::skipped_for_platform(&job, reason, attempt, elapsed);
                    }
                    // An index of a platform subset: its digest is not upstream's, which the
                    // native engine checked before it wrote anything.
                    Some(filtered) => {
                        return ImageResult {
                            platform: Some(Box::new(filtered)),
                            ..result(Ok((copied.digest, copied.counts)), attempt)
                        };
                    }
                    None => {}
                }
                if let Some(planned) = planned_digest {
                    match check_landed(context, &job, planned, copied.digest.as_deref()).await {
                        Ok(landed) => copied.digest = landed.or(copied.digest),
                        Err(error) => return result(Err(error), attempt),
                    }
                }
                return result(Ok((copied.digest, copied.counts)), attempt);
            }
            Err(error) => error,
        };
        let refused = error.host.clone().filter(|host| hosts.contains(host));
        refusing = refused.filter(|host| attempt == 1 || refusing.as_ref() == Some(host));
        let retryable = error.retryable;
        let last = !retryable || attempt > context.retry.retries;
        let delay = (!last).then(|| {
            context
                .retry
                .backoff(attempt, error.kind, crate::model::jitter())
        });
        context.events.send(Event::AttemptFailed {
            index,
            target: target.clone(),
            attempt,
            kind: error.kind,
            message: error.message.clone(),
            retry_in: delay,
        });
        let Some(delay) = delay else {
            if let Some(host) = refusing.filter(|_| retryable) {
                context.outages.record(&host);
            }
            return result(Err(error), attempt);
        };
        match &refusing {
            Some(host) if suspect.as_ref().is_none_or(|s| &s.host != host) => {
                suspect = Some(context.outages.suspect(host));
            }
            Some(_) => {}
            None => suspect = None,
        }
        context.events.send(Event::Waiting {
            index,
            target: target.clone(),
            reason: Wait::Retry {
                next: attempt + 1,
                of: attempts_allowed,
                delay,
            },
        });
        let wait = async {
            if error.kind == FailureKind::RateLimited {
                // Come back no sooner than the registry's own pace allows, and let the
                // planner's requests to it (and other copies) slow down too.
                let (side, name) = throttled_at(&job, error.side);
                if let Ok(waited) = context
                    .client
                    .wait_out_throttled_copy(side, &name, attempt_started, delay)
                    .await
                {
                    debug!(
                        "{target}: waited {:.1}s for {name}'s pace",
                        waited.as_secs_f64()
                    );
                    return;
                }
            }
            tokio::time::sleep(delay).await;
        };
        tokio::select! {
            () = slot.idle_while(wait) => {}
            host = context.outages.wait_down(&hosts) => return outage(host, attempt),
            () = wait_for(&mut stop, Stop::Graceful) => {
                let message = format!("stopped while waiting to retry after: {}", error.message);
                return failed(FailureKind::Interrupted, message, attempt);
            }
        }
    }
}

/// The registry hosts a copy of `job` connects to (after registries.conf), source first.
fn registry_hosts(client: &RegistryClient, job: &Job) -> Vec<String> {
    let source = client.endpoint_host(Side::Source, &job.source.repository());
    let target = match &job.target {
        Target::Registry(target) => client.endpoint_host(Side::Destination, &target.repository()),
        Target::Oci { .. } => None,
    };
    source.into_iter().chain(target).collect()
}

/// Why a copy of `job` would be refused: the planner's lookups found the source's or the
/// destination's credentials wrong.
fn refused_credentials(client: &RegistryClient, job: &Job) -> Option<String> {
    let refused = |side, label: &str, reference: &ImageRef| {
        client
            .credentials_refused(side, &reference.repository())
            .then(|| {
                format!(
                    "{} refused the {label} credentials while planning; not sending them again",
                    reference.domain()
                )
            })
    };
    refused(Side::Source, "source", &job.source).or_else(|| match &job.target {
        Target::Registry(target) => refused(Side::Destination, "destination", target),
        Target::Oci { .. } => None,
    })
}

/// The registry a 429 came from, as a side and a repository name: the destination when the
/// engine put the failure there, the source otherwise (where pull limits live).
fn throttled_at(job: &Job, side: Option<Side>) -> (Side, String) {
    match (&job.target, side) {
        (Target::Registry(target), Some(Side::Destination)) => {
            (Side::Destination, target.repository())
        }
        _ => (Side::Source, job.source.repository()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;
    use crate::reference::ImageRef;

    fn job_for(source: &str, target: &str) -> Job {
        Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(source).unwrap(),
            target: Target::Registry(ImageRef::parse(target).unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        }
    }

    /// `entries` split as the run splits them: the jobs to run, and each known result by its
    /// position.
    fn split_plan(
        entries: Vec<PlanEntry>,
        refused: impl Fn(&Job) -> Option<String> + Copy,
        follows: impl Fn(&Job) -> bool + Copy,
    ) -> (Split, Vec<Option<ImageResult>>) {
        let mut split = Split::default();
        let done = (entries.into_iter().enumerate())
            .map(|(position, entry)| split.take(position, entry, refused, follows))
            .collect();
        (split, done)
    }

    #[test]
    fn a_repository_that_could_not_be_listed_fails_and_is_never_copied() {
        let error = crate::model::ImageError::new(
            FailureKind::Network,
            "could not list the tags of quay.io/coreos/etcd (4 attempts)",
        );
        let unlisted = PlanEntry {
            state: State::Unknown,
            error: Some(Box::new(error.clone())),
            ..PlanEntry::unlooked(job_for(
                "quay.io/coreos/etcd",
                "h.example/m/quay.io/coreos/etcd",
            ))
        };
        let tag = PlanEntry {
            error: None,
            ..PlanEntry::unlooked(job_for(
                "quay.io/coreos/etcd:v3",
                "h.example/m/quay.io/coreos/etcd:v3",
            ))
        };
        let (
            Split {
                jobs, positions, ..
            },
            done,
        ) = split_plan(vec![unlisted, tag], |_| None, |_| false);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].source.to_string(), "quay.io/coreos/etcd:v3");
        assert_eq!(positions, [1]);
        assert!(done[1].is_none(), "the copy's result is to come");
        let result = done[0].as_ref().unwrap();
        assert_eq!(result.status, Status::Failed);
        assert_eq!(result.error.as_deref(), Some(&error));
        assert_eq!(result.attempts, 0);
    }

    #[test]
    fn a_lookup_that_fails_the_image_is_never_copied() {
        let error = crate::model::ImageError::new(
            FailureKind::Timeout,
            "its lookups ran past --image-timeout 3s; no copy was tried",
        );
        let job = || {
            job_for(
                "quay.io/coreos/etcd:v3",
                "h.example/m/quay.io/coreos/etcd:v3",
            )
        };
        let unknown = PlanEntry {
            state: State::Unknown,
            error: Some(Box::new(error.clone())),
            ..PlanEntry::unlooked(job())
        };
        let broken = PlanEntry {
            fails: true,
            ..unknown.clone()
        };
        let (split, done) = split_plan(vec![unknown, broken], |_| None, |_| false);
        // A lookup that failed otherwise leaves it to the copy.
        assert_eq!(split.positions, [0]);
        assert!(done[0].is_none());
        let result = done[1].as_ref().unwrap();
        assert_eq!(result.status, Status::Failed);
        assert_eq!(result.error.as_deref(), Some(&error));
    }

    #[test]
    fn a_429_is_put_on_the_side_the_engine_names() {
        let job = |target: Target| Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse("nginx:1.25").unwrap(),
            target,
            explicit: false,
            filter: None,
            signatures: None,
        };
        let to_harbor = job(Target::Registry(
            ImageRef::parse("harbor.example/m/docker.io/library/nginx:1.25").unwrap(),
        ));
        let source = (Side::Source, "docker.io/library/nginx".to_owned());
        let destination = (
            Side::Destination,
            "harbor.example/m/docker.io/library/nginx".to_owned(),
        );
        let table = [
            (Some(Side::Source), &source),
            (Some(Side::Destination), &destination),
            (None, &source),
        ];
        for (side, expected) in table {
            assert_eq!(&throttled_at(&to_harbor, side), expected, "{side:?}");
        }
        let to_layout = job(Target::Oci {
            layout: "mirror/docker.io/library/nginx".into(),
            name: Some("1.25".into()),
            digest: None,
        });
        assert_eq!(throttled_at(&to_layout, Some(Side::Destination)), source);
    }
    /// A consumer shaped as the console's (a channel read raced against a timer) keeps up
    /// with a long loop of events: they are not left to pile up in the channel.
    #[tokio::test]
    async fn events_sent_in_a_long_loop_are_read_as_they_go() {
        let (events, mut receiver) = Events::channel();
        let consumer = tokio::spawn(async move {
            let (mut most, mut read) = (0, 0);
            let beat = tokio::time::Instant::now() + Duration::from_secs(3600);
            loop {
                let event = tokio::select! {
                    event = receiver.recv() => event,
                    () = tokio::time::sleep_until(beat) => continue,
                };
                if event.is_none() {
                    return (most, read);
                }
                read += 1;
                most = most.max(receiver.len() + 1);
            }
        });
        for sent in 0..20_000 {
            events.send(Event::RunStarted { entries: sent });
            let_events_out(sent).await;
        }
        drop(events);
        let (most, read) = consumer.await.unwrap();
        assert_eq!(read, 20_000);
        assert!(
            most <= 2 * EVENTS_AT_ONCE,
            "{most} events were queued at once"
        );
    }
}
