//! `ferry sync`: validate everything, plan (one HEAD per tag on each side), then copy only what
//! is new or changed with skopeo, several at a time, printing a line per image as it finishes
//! and writing the report and failed list at the end. A run with nothing to do starts no skopeo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::plan::plan_jobs;
use super::{load, print_input_errors, say, say_err, Loaded};
use crate::engine::skopeo::{self, AuthFiles, SkopeoOptions};
use crate::exec::{self, Stop};
use crate::exit;
use crate::layout::{self, Tidy};
use crate::model::FailureKind;
use crate::model::Side;
use crate::model::{Destination, Job, Target};
use crate::model::{ImageResult, Status};
use crate::plan::{PlanEntry, State};
use crate::reference::ImageRef;
use crate::registry::auth::AuthError;
use crate::registry::RegistryClient;
use crate::report::{self, Summary};
use crate::retry::{self, Outages, RetryPolicy};
use crate::scheduler::{self, Event, Slot};
use crate::scratch::ScratchDir;
use crate::settings::SyncSettings;

pub async fn sync(settings: SyncSettings) -> u8 {
    let Some(Loaded { jobs, registry }) = load(&settings.plan).await else {
        return exit::USAGE;
    };
    let mut settings = settings;
    settings.plan.registry = registry;
    if settings.dry_run {
        print_dry_run(&settings, &jobs);
        return exit::SUCCESS;
    }
    for stale in crate::scratch::remove_stale() {
        info!(
            "removed {}, left by a ferry process that is gone",
            stale.display()
        );
    }
    let scratch = match ScratchDir::create() {
        Ok(scratch) => scratch,
        Err(e) => {
            say_err(format!(
                "ferry: error: cannot create a private temporary directory: {e}"
            ));
            return exit::USAGE;
        }
    };
    let auth = match write_auth_files(&scratch, &settings, &jobs) {
        Ok(auth) => auth,
        Err(e) => {
            say_err(format!(
                "ferry: error: cannot prepare the auth file for skopeo: {e}"
            ));
            return exit::USAGE;
        }
    };
    // The scratch directory (and the credentials in it) lives until this function returns,
    // on every path, including a stop by signal.
    run(settings, jobs, scratch, auth).await
}

struct Context {
    options: SkopeoOptions,
    retry: RetryPolicy,
    image_timeout: Duration,
    auth: AuthFiles,
    destination: Destination,
    scratch: PathBuf,
    /// The planner's client: its per-registry pace also spaces the retries of copies that a
    /// registry refused with 429.
    client: Arc<RegistryClient>,
    /// Registries that refused connections through a whole retry schedule in this run.
    outages: Outages,
}

async fn run(settings: SyncSettings, jobs: Vec<Job>, scratch: ScratchDir, auth: AuthFiles) -> u8 {
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let signal_code = Arc::new(AtomicU8::new(0));
    // Registered here, before any work starts, not when the watching task first runs.
    let handlers = Signals::install();
    let signals = tokio::spawn(watch_signals(handlers, stop_tx, Arc::clone(&signal_code)));
    let client = Arc::new(RegistryClient::new(settings.plan.registry.clone()));
    let context = Arc::new(Context {
        options: settings.skopeo.clone(),
        retry: settings.plan.retry,
        image_timeout: settings.image_timeout,
        auth,
        destination: settings.plan.destination.clone(),
        scratch: scratch.path().to_owned(),
        client: Arc::clone(&client),
        outages: Outages::default(),
    });

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(print_events(events_rx));

    // A signal while planning (lookups can wait out long 429s) ends the planning; the
    // scheduler then starts none of the jobs and reports each one interrupted.
    let mut stopping = stop_rx.clone();
    let planning = async {
        let (entries, _dropped) =
            plan_jobs(&client, &settings.plan, jobs.clone(), settings.force).await?;
        settle_logins(&client, &entries).await;
        Ok::<_, Vec<crate::input::InputError>>(entries)
    };
    let entries = tokio::select! {
        planned = planning => {
            let entries = match planned {
                Ok(entries) => entries,
                Err(errors) => {
                    print_input_errors(&errors);
                    signals.abort();
                    return exit::USAGE;
                }
            };
            info!(
                "planned {} images with {} registry requests ({} answered 429)",
                entries.len(),
                client.requests_sent(),
                client.throttled_responses()
            );
            entries
        }
        () = exec::wait_for(&mut stopping, Stop::Graceful) => {
            jobs.into_iter().map(PlanEntry::unlooked).collect()
        }
    };
    remove_temp_blobs(&entries);
    let refused = |job: &Job| refused_credentials(&client, job);
    let (jobs, source_digests, positions, done) = split_plan(entries, refused, &events_tx);
    let limits = scheduler::Limits {
        global: settings.jobs,
        per_registry: settings.registry_jobs.clone(),
        hosts: super::request_hosts(&jobs, &settings.plan.registry.access.conf),
    };
    let execute = {
        let context = Arc::clone(&context);
        move |index: usize, job: Job, stop: watch::Receiver<Stop>, slot: Slot| {
            let context = Arc::clone(&context);
            let planned_digest = source_digests[index].clone();
            async move {
                // Runs once the job holds its layout: no other job writes there until it ends.
                let tidy = match (&job.target, &context.destination) {
                    (Target::Oci { layout, .. }, Destination::OciDir(root)) => {
                        Some(Tidy::before(layout, root))
                    }
                    _ => None,
                };
                let mut result = copy_one(&context, index, job, stop, &slot).await;
                if let Some(tidy) = tidy {
                    if let Err(e) = tidy.after() {
                        warn!("cannot tidy the OCI layout of {}: {e}", result.target);
                    }
                }
                if result.status == Status::Synced && result.digest.is_none() {
                    result.digest = planned_digest;
                }
                result
            }
        }
    };
    let copied = scheduler::run_all(jobs, &limits, stop_rx, events_tx, execute).await;
    let mut ordered: Vec<(usize, ImageResult)> = done
        .into_iter()
        .chain(positions.into_iter().zip(copied))
        .collect();
    ordered.sort_by_key(|(position, _)| *position);
    let results: Vec<ImageResult> = ordered.into_iter().map(|(_, result)| result).collect();
    let _ = printer.await;
    signals.abort();

    let code = signal_code.load(Ordering::SeqCst);
    let summary = Summary::of(&results, started.elapsed(), code != 0);
    say(report::summary_line(&summary));
    let mut exit_code = match (code, summary.failed) {
        (0, 0) => exit::SUCCESS,
        (0, _) => exit::IMAGES_FAILED,
        (signal_exit, _) => signal_exit,
    };
    if let Err(e) = write_outputs(&settings, &results, summary) {
        say_err(format!("ferry: error: {e}"));
        if exit_code == exit::SUCCESS {
            exit_code = exit::IMAGES_FAILED;
        }
    }
    drop(scratch);
    exit_code
}

/// Settles, with one lookup per registry host and side, every login ferry holds and no lookup
/// has tried yet (all of them under `--force`, which skips the digest lookups; a source pinned
/// by digest otherwise): skopeo would send a wrong password with every copy, where ferry's
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

/// Removes the temporary blob files an interrupted earlier run left in the run's OCI layouts,
/// before any copy starts.
fn remove_temp_blobs(entries: &[PlanEntry]) {
    let layouts: BTreeSet<&std::path::Path> = entries
        .iter()
        .filter_map(|entry| match &entry.job.target {
            Target::Oci { layout, .. } => Some(layout.as_path()),
            Target::Registry(_) => None,
        })
        .collect();
    for layout in layouts {
        match layout::remove_temp_blobs(layout) {
            Ok(0) => {}
            Ok(n) => info!(
                "removed {n} temporary blob files an earlier run left in {}",
                layout.display()
            ),
            Err(e) => warn!("cannot remove temporary blobs in {}: {e}", layout.display()),
        }
    }
}

/// The jobs that need a copy, their planned source digests and their positions in the plan,
/// and the results already known (with their positions).
type Split = (
    Vec<Job>,
    Vec<Option<String>>,
    Vec<usize>,
    Vec<(usize, ImageResult)>,
);

/// Splits a plan into the jobs that need a copy and the results already known: current
/// targets are skipped, missing sources failed, and so are jobs whose credentials `refused`
/// says a registry already turned down (a copy would only send them again).
fn split_plan(
    entries: Vec<PlanEntry>,
    refused: impl Fn(&Job) -> Option<String>,
    events: &mpsc::UnboundedSender<Event>,
) -> Split {
    let mut jobs = Vec::new();
    let mut digests = Vec::new();
    let mut positions = Vec::new();
    let mut done = Vec::new();
    for (position, entry) in entries.into_iter().enumerate() {
        let refusal = entry.needs_copy().then(|| refused(&entry.job)).flatten();
        if entry.needs_copy() && refusal.is_none() {
            jobs.push(entry.job);
            digests.push(entry.source_digest);
            positions.push(position);
            continue;
        }
        let fail =
            |kind, message| ImageResult::failed(&entry.job, kind, message, 0, Duration::ZERO);
        let result = if let Some(message) = refusal {
            fail(FailureKind::Unauthorized, message)
        } else if entry.state == State::Current {
            ImageResult::skipped(&entry.job, entry.source_digest)
        } else if let Some(error) = entry.error {
            // A repository whose tags could not be listed: failed as the listing did.
            fail(error.kind, error.message)
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
            fail(FailureKind::NotFound, message)
        };
        let _ = events.send(Event::Finished {
            result: result.clone(),
        });
        done.push((position, result));
    }
    (jobs, digests, positions, done)
}

fn write_outputs(
    settings: &SyncSettings,
    results: &[ImageResult],
    summary: Summary,
) -> Result<(), String> {
    if let Some(path) = &settings.plan.report {
        let destination = destination_label(&settings.plan.destination);
        report::write_file(path, &report::json_report(&destination, results, summary))
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
    }
    if let Some(path) = &settings.failed_list {
        let flags = rerun_flags(settings, results);
        report::write_file(path, &report::failed_list(results, &flags))
            .map_err(|e| format!("cannot write the failed list {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What a rerun of the failed list needs beyond its lines: the OCI layout root (a registry
/// target is on each line), and the tag filters when a whole repository failed (its listing).
fn rerun_flags(settings: &SyncSettings, results: &[ImageResult]) -> Vec<String> {
    let mut flags = Vec::new();
    if let Destination::OciDir(dir) = &settings.plan.destination {
        flags.extend(["--dest-dir".to_owned(), dir.display().to_string()]);
    }
    let whole_repository_failed = results.iter().any(|r| {
        r.status == Status::Failed
            && crate::reference::ImageRef::parse(&r.source).is_ok_and(|s| s.is_whole_repository())
    });
    if whole_repository_failed {
        flags.extend(settings.plan.filter.spec().as_flags());
    }
    flags
}

fn destination_label(destination: &Destination) -> String {
    match destination {
        Destination::Registry(prefix) => prefix.to_string(),
        Destination::OciDir(dir) => format!("oci:{}", dir.display()),
    }
}

/// The signals that stop a sync. SIGHUP too, so a closed terminal or SSH session does not
/// skip the cleanup; but not when it was ignored when ferry started (`nohup`).
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Option<Signal>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: match ignored(libc::SIGHUP) {
                true => None,
                false => Some(signal(SignalKind::hangup())?),
            },
        })
    }

    /// The next signal, as the exit code it stands for.
    async fn next(&mut self) -> u8 {
        let hangup = async {
            match self.hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => exit::INTERRUPTED,
            _ = self.terminate.recv() => exit::TERMINATED,
            _ = hangup => exit::HUNG_UP,
        }
    }
}

/// Whether `signal` is set to be ignored (as `nohup` does for SIGHUP).
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `current`,
    // a zeroed struct we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// First signal: stop gracefully and remember the exit code; a second one: stop now. The
/// stop goes out before anything is printed: the terminal may be gone (SIGHUP).
async fn watch_signals(
    handlers: std::io::Result<Signals>,
    stop: watch::Sender<Stop>,
    code: Arc<AtomicU8>,
) {
    let Ok(mut signals) = handlers else {
        return;
    };
    let first = signals.next().await;
    code.store(first, Ordering::SeqCst);
    let _ = stop.send(Stop::Graceful);
    say_err(format!(
        "ferry: stopping: no new images start; running copies get {}s to end (signal again to \
         stop at once)",
        exec::GRACE_PERIOD.as_secs()
    ));
    signals.next().await;
    let _ = stop.send(Stop::Now);
    say_err("ferry: stopping now");
}

async fn print_events(mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Started { target } => debug!("started {target}"),
            Event::Finished { result } => {
                say(report::result_line(&result));
            }
        }
    }
}

/// Copies one job, retrying transient failures with backoff; the result counts every attempt.
async fn copy_one(
    context: &Context,
    index: usize,
    job: Job,
    mut stop: watch::Receiver<Stop>,
    slot: &Slot,
) -> ImageResult {
    let started = Instant::now();
    let source_repository = job.source.repository();
    let hosts = registry_hosts(&context.client, &job);
    let host_names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let outage = |host: String, attempts| {
        ImageResult::failed(
            &job,
            FailureKind::Network,
            Outages::message(&host),
            attempts,
            started.elapsed(),
        )
    };
    // The host that refused the connection in every attempt so far.
    let mut refusing = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(host) = context.outages.down_among(&hosts) {
            return outage(host, attempt - 1);
        }
        // Copies from a source that throttles take turns (see `throttled_turn`); the wait
        // lends this job's slot to jobs for other registries.
        let turn = slot.idle_while(
            context
                .client
                .throttled_turn(Side::Source, &source_repository),
        );
        let turn = tokio::select! {
            turn = turn => turn,
            () = exec::wait_for(&mut stop, Stop::Graceful) => {
                return ImageResult::failed(
                    &job,
                    FailureKind::Interrupted,
                    "stopped while waiting for its turn at a throttled registry".to_owned(),
                    attempt - 1,
                    started.elapsed(),
                );
            }
        };
        if let Some(host) = context.outages.down_among(&hosts) {
            return outage(host, attempt - 1);
        }
        let attempt_started = Instant::now();
        let mut result = attempt_copy(context, index, job.clone(), stop.clone()).await;
        // The next copy's turn; this one's retry waits below without holding it.
        drop(turn);
        result.attempts = attempt;
        result.duration = started.elapsed();
        let Some(error) = result.error.clone() else {
            context.outages.clear(&hosts);
            return result;
        };
        let refused = skopeo::refused_by(&error.message, &host_names);
        refusing = refused.filter(|_| attempt == 1 || refusing == refused);
        let retryable = RetryPolicy::is_retryable(&error);
        if !retryable || attempt > context.retry.retries {
            if let Some(host) = refusing.filter(|_| retryable) {
                context.outages.record(host);
            }
            return result;
        }
        let (kind, message) = (error.kind, error.message);
        let delay = context.retry.backoff(attempt, kind, retry::jitter());
        info!(
            "{}: attempt {attempt} failed ({kind}: {message}); retrying in {:.1}s{}",
            job.target,
            delay.as_secs_f64(),
            if kind == FailureKind::RateLimited {
                " or later, at the registry's pace"
            } else {
                ""
            }
        );
        let wait = async {
            if kind == FailureKind::RateLimited {
                // Come back no sooner than the registry's own pace allows, and let the
                // planner's requests to it (and other copies) slow down too.
                let (side, name) = throttled_registry(&job, &message);
                if let Ok(waited) = context
                    .client
                    .wait_out_throttled_copy(side, &name, attempt_started, delay)
                    .await
                {
                    debug!(
                        "{}: waited {:.1}s for {name}'s pace",
                        job.target,
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
            () = exec::wait_for(&mut stop, Stop::Graceful) => {
                if let Some(error) = result.error.as_mut() {
                    error.message = format!("stopped while waiting to retry after: {}", error.message);
                    error.kind = FailureKind::Interrupted;
                }
                return result;
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
    let refused = |side, label: &str, reference: &crate::reference::ImageRef| {
        client
            .credentials_refused(side, &reference.repository())
            .then(|| {
                format!(
                    "unauthorized: {} refused the {label} credentials while planning; not sending them again",
                    reference.domain()
                )
            })
    };
    refused(Side::Source, "source", &job.source).or_else(|| match &job.target {
        Target::Registry(target) => refused(Side::Destination, "destination", target),
        Target::Oci { .. } => None,
    })
}

/// The side and registry host a failure message from skopeo is about: the host it names (where
/// registries.conf redirected the source, the redirected one), on the destination's side when
/// that is the destination.
fn registry_of_failure(job: &Job, message: &str) -> (Side, String) {
    let target = match &job.target {
        Target::Registry(target) => Some(target.domain()),
        Target::Oci { .. } => None,
    };
    match (skopeo::registry_in(message), target) {
        (Some(host), Some(target)) if host == target => (Side::Destination, host.to_owned()),
        (Some(host), _) => (Side::Source, host.to_owned()),
        (None, Some(target)) if message.contains(target) => (Side::Destination, target.to_owned()),
        (None, _) => (Side::Source, job.source.domain().to_owned()),
    }
}

/// The registry a 429 from skopeo came from, as a side and a repository name: the destination
/// when skopeo's message names its host, the source otherwise (where pull limits live).
fn throttled_registry(job: &Job, message: &str) -> (Side, String) {
    match &job.target {
        Target::Registry(target) if message.contains(target.domain()) => {
            (Side::Destination, target.repository())
        }
        _ => (Side::Source, job.source.repository()),
    }
}

async fn attempt_copy(
    context: &Context,
    index: usize,
    job: Job,
    stop: watch::Receiver<Stop>,
) -> ImageResult {
    let started = Instant::now();
    let digest_file = context.scratch.join(format!("{index}.digest"));
    let action = skopeo::action_for(&job, &context.destination, Some(&digest_file));
    let fail = |kind, message: String, attempts| {
        ImageResult::failed(&job, kind, message, attempts, started.elapsed())
    };
    if job.source.is_whole_repository() {
        // Never reached from a plan (see `PlanEntry::needs_copy`); an engine given a whole
        // repository would list its tags itself, past the filters and the redirects.
        return fail(
            FailureKind::Internal,
            format!(
                "{} is a whole repository: ferry copies it tag by tag",
                job.source
            ),
            0,
        );
    }
    if let Target::Oci { layout, .. } = &job.target {
        if let Err(e) = std::fs::create_dir_all(layout) {
            return fail(
                FailureKind::Internal,
                format!("cannot create {}: {e}", layout.display()),
                0,
            );
        }
    }
    let invocation = skopeo::build(
        &context.options,
        context.client.access(),
        &context.auth,
        &action,
    );
    info!("running {invocation}");
    let finished = exec::run(&invocation, stop, Some(context.image_timeout)).await;
    if let Target::Oci { layout, .. } = &job.target {
        // A stopped skopeo leaves its partial blob behind; the next attempt starts its own.
        if let Err(e) = layout::remove_temp_blobs(layout) {
            warn!("cannot remove temporary blobs in {}: {e}", layout.display());
        }
    }
    let finished = match finished {
        Ok(finished) => finished,
        Err(e) => return fail(FailureKind::Internal, e.to_string(), 1),
    };
    if finished.timed_out {
        let message = format!("stopped after --image-timeout {:?}", context.image_timeout);
        return fail(FailureKind::Timeout, message, 1);
    }
    if finished.stopped {
        return fail(
            FailureKind::Interrupted,
            format!(
                "stopped by a signal ({})",
                exec::describe_status(&finished.status)
            ),
            1,
        );
    }
    if !finished.status.success() {
        let message = failure_message(&finished);
        info!(
            "`{invocation}` failed with {}; stderr ends with:\n{}",
            exec::describe_status(&finished.status),
            tail(&finished.stderr, 10)
        );
        let kind = skopeo::classify(&message);
        let message = match (kind, crate::tls::problem(&message)) {
            (FailureKind::Tls, Some(problem)) => {
                let (side, host) = registry_of_failure(&job, &message);
                crate::tls::explain(side, &host, problem, &message)
            }
            _ => message,
        };
        return fail(kind, message, 1);
    }
    let digest = std::fs::read_to_string(&digest_file)
        .ok()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .or_else(|| job.source.digest().map(str::to_owned));
    ImageResult {
        origin: job.origin.clone(),
        source: job.source.to_string(),
        target: job.target.to_string(),
        list_line: job.as_list_line(),
        status: Status::Synced,
        digest,
        counts: skopeo::parse_progress(&finished.stdout, &finished.stderr),
        attempts: 1,
        duration: started.elapsed(),
        error: None,
    }
}

/// skopeo's fatal message, or failing that the end of its stderr and how it exited.
fn failure_message(finished: &exec::Finished) -> String {
    skopeo::failure_cause(&finished.stderr).unwrap_or_else(|| {
        let status = exec::describe_status(&finished.status);
        match tail(&finished.stderr, 3) {
            tail if tail.is_empty() => format!("skopeo ended with {status}"),
            tail => format!("skopeo ended with {status}: {tail}"),
        }
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The registry hosts on each side of `jobs`: sources, and registry targets.
fn side_hosts(jobs: &[Job]) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let sources = jobs.iter().map(|j| j.source.domain()).collect();
    let targets = jobs
        .iter()
        .filter_map(|j| match &j.target {
            Target::Registry(target) => Some(target.domain()),
            Target::Oci { .. } => None,
        })
        .collect();
    (sources, targets)
}

/// Writes a private auth file per side ferry holds credentials for, covering every registry
/// host on that side, so secrets reach skopeo without touching its command line.
fn write_auth_files(
    scratch: &ScratchDir,
    settings: &SyncSettings,
    jobs: &[Job],
) -> Result<AuthFiles, AuthError> {
    let registry = &settings.plan.registry;
    let (source_hosts, target_hosts) = side_hosts(jobs);
    let write = |name: &str, contents: Option<Vec<u8>>| -> Result<Option<PathBuf>, AuthError> {
        contents
            .map(|bytes| {
                scratch
                    .write_private(name, &bytes)
                    .map_err(|source| AuthError::Read {
                        path: scratch.path().join(name),
                        source,
                    })
            })
            .transpose()
    };
    Ok(AuthFiles {
        src: write(
            "src-auth.json",
            registry
                .access
                .source
                .credentials
                .skopeo_auth_file(source_hosts)?,
        )?,
        dest: write(
            "dest-auth.json",
            registry
                .access
                .destination
                .credentials
                .skopeo_auth_file(target_hosts)?,
        )?,
    })
}

fn print_dry_run(settings: &SyncSettings, jobs: &[Job]) {
    // The real auth files only exist during a real run; a dry run names them instead.
    let registry = &settings.plan.registry;
    let (source_hosts, target_hosts) = side_hosts(jobs);
    let placeholder = |held: bool, side: &str| {
        held.then(|| PathBuf::from(format!("<private auth file with the {side} credentials>")))
    };
    let auth = AuthFiles {
        src: placeholder(
            registry.access.source.credentials.holds_any(source_hosts),
            "source",
        ),
        dest: placeholder(
            registry
                .access
                .destination
                .credentials
                .holds_any(target_hosts),
            "destination",
        ),
    };
    let digest_file = PathBuf::from("<digest file>");
    let destination = &settings.plan.destination;
    for job in jobs {
        say(format!("# {} -> {}", job.origin, job.target));
        let (job, note) = match job.for_tag("TAG") {
            Ok(example) if job.source.is_whole_repository() => (
                example,
                Some("# for each TAG of the repository that passes the tag filters:"),
            ),
            _ => (job.clone(), None),
        };
        if let Some(note) = note {
            say(note);
        }
        let action = skopeo::action_for(&job, destination, Some(&digest_file));
        say(skopeo::build(
            &settings.skopeo,
            &settings.plan.registry.access,
            &auth,
            &action,
        ));
    }
    say(format!(
        "# dry run: {} entries, nothing copied; targets already current are skipped in a real run",
        jobs.len()
    ));
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
        }
    }

    #[test]
    fn a_repository_that_could_not_be_listed_fails_and_is_never_copied() {
        let error = crate::model::ImageError {
            kind: FailureKind::Network,
            message: "could not list the tags of quay.io/coreos/etcd (4 attempts)".into(),
        };
        let unlisted = PlanEntry {
            job: job_for("quay.io/coreos/etcd", "h.example/m/quay.io/coreos/etcd"),
            state: State::Unknown,
            source_digest: None,
            target_digest: None,
            error: Some(error.clone()),
        };
        let tag = PlanEntry {
            error: None,
            ..PlanEntry::unlooked(job_for(
                "quay.io/coreos/etcd:v3",
                "h.example/m/quay.io/coreos/etcd:v3",
            ))
        };
        let (events, _rx) = mpsc::unbounded_channel();
        let (jobs, _, positions, done) = split_plan(vec![unlisted, tag], |_| None, &events);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].source.to_string(), "quay.io/coreos/etcd:v3");
        assert_eq!(positions, [1]);
        assert_eq!(done.len(), 1);
        let (position, result) = &done[0];
        assert_eq!(*position, 0);
        assert_eq!(result.status, Status::Failed);
        assert_eq!(result.error.as_ref(), Some(&error));
        assert_eq!(result.attempts, 0);
    }

    #[test]
    fn a_429_is_put_on_the_registry_its_message_names() {
        let job = |target: Target| Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse("nginx:1.25").unwrap(),
            target,
            explicit: false,
            filter: None,
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
            ("reading manifest 1.25 in docker.io/library/nginx: toomanyrequests: You have reached your pull rate limit.", &source),
            ("writing manifest: uploading manifest 1.25 to harbor.example/m/docker.io/library/nginx: toomanyrequests: slow down", &destination),
            ("skopeo ended with exit status 1: 429 Too Many Requests", &source),
        ];
        for (message, expected) in table {
            assert_eq!(
                &throttled_registry(&to_harbor, message),
                expected,
                "{message}"
            );
        }
        let to_layout = job(Target::Oci {
            layout: "mirror/docker.io/library/nginx".into(),
            name: Some("1.25".into()),
            digest: None,
        });
        assert_eq!(throttled_registry(&to_layout, "toomanyrequests"), source);
    }
}
