//! `ferry sync`: validate everything, then copy every entry with skopeo, several at a time,
//! printing a line per image as it finishes and writing the report and failed list at the end.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::{print_input_errors, read_entries};
use crate::engine::skopeo::{self, Action, AuthFiles, SkopeoOptions};
use crate::engine::FailureKind;
use crate::exit;
use crate::mapping::{map_all, Destination, Job, Target};
use crate::process::{self, Stop};
use crate::report::{self, Summary};
use crate::scheduler::{self, Event, ImageResult, Status};
use crate::scratch::ScratchDir;
use crate::secret::Credentials;
use crate::settings::SyncSettings;

pub async fn sync(settings: SyncSettings) -> u8 {
    let Some(entries) = read_entries(&settings.inputs) else {
        return exit::USAGE;
    };
    let jobs = match map_all(&entries, &settings.destination) {
        Ok(jobs) => jobs,
        Err(errors) => {
            print_input_errors(&errors);
            return exit::USAGE;
        }
    };
    if settings.dry_run {
        print_dry_run(&settings, &jobs);
        return exit::SUCCESS;
    }
    let scratch = match ScratchDir::create() {
        Ok(scratch) => scratch,
        Err(e) => {
            eprintln!("ferry: error: cannot create a private temporary directory: {e}");
            return exit::USAGE;
        }
    };
    let auth = match write_auth_files(&scratch, &settings, &jobs) {
        Ok(auth) => auth,
        Err(e) => {
            eprintln!("ferry: error: cannot write the temporary auth file: {e}");
            return exit::USAGE;
        }
    };
    // The scratch directory (and the credentials in it) lives until this function returns,
    // on every path, including a stop by signal.
    run(settings, jobs, scratch, auth).await
}

struct Context {
    options: SkopeoOptions,
    auth: AuthFiles,
    destination: Destination,
    scratch: PathBuf,
}

async fn run(settings: SyncSettings, jobs: Vec<Job>, scratch: ScratchDir, auth: AuthFiles) -> u8 {
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let signal_code = Arc::new(AtomicU8::new(0));
    let signals = tokio::spawn(watch_signals(stop_tx, Arc::clone(&signal_code)));
    let context = Arc::new(Context {
        options: settings.skopeo.clone(),
        auth,
        destination: settings.destination.clone(),
        scratch: scratch.path().to_owned(),
    });

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(print_events(events_rx));

    let (jobs, mut results) = expand_repositories(&context, jobs, &stop_rx, &events_tx).await;
    let limit = settings.jobs;
    let execute = {
        let context = Arc::clone(&context);
        move |index: usize, job: Job, stop: watch::Receiver<Stop>| {
            let context = Arc::clone(&context);
            async move { copy_one(&context, index, job, stop).await }
        }
    };
    results.extend(scheduler::run_all(jobs, limit, stop_rx, events_tx, execute).await);
    let _ = printer.await;
    signals.abort();

    let code = signal_code.load(Ordering::SeqCst);
    let summary = Summary::of(&results, started.elapsed(), code != 0);
    println!("{}", report::summary_line(&summary));
    let mut exit_code = match (code, summary.failed) {
        (0, 0) => exit::SUCCESS,
        (0, _) => exit::IMAGES_FAILED,
        (signal_exit, _) => signal_exit,
    };
    if let Err(e) = write_outputs(&settings, &results, summary) {
        eprintln!("ferry: error: {e}");
        if exit_code == exit::SUCCESS {
            exit_code = exit::IMAGES_FAILED;
        }
    }
    drop(scratch);
    exit_code
}

fn write_outputs(
    settings: &SyncSettings,
    results: &[ImageResult],
    summary: Summary,
) -> Result<(), String> {
    if let Some(path) = &settings.report {
        let destination = destination_label(&settings.destination);
        report::write_file(path, &report::json_report(&destination, results, summary))
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
    }
    if let Some(path) = &settings.failed_list {
        report::write_file(path, &report::failed_list(results))
            .map_err(|e| format!("cannot write the failed list {}: {e}", path.display()))?;
    }
    Ok(())
}

fn destination_label(destination: &Destination) -> String {
    match destination {
        Destination::Registry(prefix) => prefix.to_string(),
        Destination::OciDir(dir) => format!("oci:{}", dir.display()),
    }
}

/// First SIGINT/SIGTERM: stop gracefully and remember the exit code; a second one: stop now.
async fn watch_signals(stop: watch::Sender<Stop>, code: Arc<AtomicU8>) {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let first = tokio::select! {
        _ = interrupt.recv() => exit::INTERRUPTED,
        _ = terminate.recv() => exit::TERMINATED,
    };
    code.store(first, Ordering::SeqCst);
    eprintln!("ferry: stopping: no new images start; running copies get {}s to end (signal again to stop at once)", process::GRACE_PERIOD.as_secs());
    let _ = stop.send(Stop::Graceful);
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("ferry: stopping now");
    let _ = stop.send(Stop::Now);
}

async fn print_events(mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Started { target, .. } => debug!("started {target}"),
            Event::Finished { result, .. } => println!("{}", report::result_line(&result)),
        }
    }
}

/// A whole-repository source that skopeo cannot sync as one command (an OCI directory or an
/// explicit target) is expanded to its tags first.
fn needs_expansion(job: &Job, destination: &Destination) -> bool {
    job.source.is_whole_repository()
        && !matches!(
            skopeo::action_for(job, destination, None),
            Action::SyncScoped { .. }
        )
}

async fn expand_repositories(
    context: &Context,
    jobs: Vec<Job>,
    stop: &watch::Receiver<Stop>,
    events: &mpsc::UnboundedSender<Event>,
) -> (Vec<Job>, Vec<ImageResult>) {
    let mut expanded = Vec::with_capacity(jobs.len());
    let mut failures = Vec::new();
    for job in jobs {
        if !needs_expansion(&job, &context.destination) {
            expanded.push(job);
            continue;
        }
        match list_tags(context, &job, stop.clone()).await {
            Ok(tags) => {
                info!("{}: {} tags", job.source, tags.len());
                expanded.extend(tags.iter().filter_map(|tag| job.for_tag(tag).ok()));
            }
            Err(result) => {
                let _ = events.send(Event::Finished {
                    index: usize::MAX,
                    result: result.clone(),
                });
                failures.push(result);
            }
        }
    }
    (expanded, failures)
}

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(rename = "Tags")]
    tags: Vec<String>,
}

async fn list_tags(
    context: &Context,
    job: &Job,
    stop: watch::Receiver<Stop>,
) -> Result<Vec<String>, ImageResult> {
    let started = Instant::now();
    let invocation = skopeo::build(
        &context.options,
        &context.auth,
        &Action::ListTags {
            repository: &job.source,
        },
    );
    info!("running {invocation}");
    let fail =
        |kind, message: String| ImageResult::failed(job, kind, message, 1, started.elapsed());
    let finished = process::run(&invocation, stop)
        .await
        .map_err(|e| fail(FailureKind::Internal, e.to_string()))?;
    if finished.stopped {
        return Err(fail(
            FailureKind::Interrupted,
            "stopped while listing tags".to_owned(),
        ));
    }
    if !finished.status.success() {
        let message = failure_message(&finished);
        return Err(fail(skopeo::classify(&message), message));
    }
    serde_json::from_str::<TagList>(&finished.stdout)
        .map(|list| list.tags)
        .map_err(|e| {
            fail(
                FailureKind::Internal,
                format!("unexpected output from `{invocation}`: {e}"),
            )
        })
}

async fn copy_one(
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
    if let Target::Oci { layout, .. } = &job.target {
        if let Err(e) = std::fs::create_dir_all(layout) {
            return fail(
                FailureKind::Internal,
                format!("cannot create {}: {e}", layout.display()),
                0,
            );
        }
    }
    let invocation = skopeo::build(&context.options, &context.auth, &action);
    info!("running {invocation}");
    let finished = match process::run(&invocation, stop).await {
        Ok(finished) => finished,
        Err(e) => return fail(FailureKind::Internal, e.to_string(), 1),
    };
    if finished.stopped {
        return fail(
            FailureKind::Interrupted,
            format!(
                "stopped by a signal ({})",
                process::describe_status(&finished.status)
            ),
            1,
        );
    }
    if !finished.status.success() {
        let message = failure_message(&finished);
        info!(
            "`{invocation}` failed with {}; stderr ends with:\n{}",
            process::describe_status(&finished.status),
            tail(&finished.stderr, 10)
        );
        return fail(skopeo::classify(&message), message, 1);
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
        progress: skopeo::parse_progress(&finished.stdout, &finished.stderr),
        attempts: 1,
        duration: started.elapsed(),
        error: None,
    }
}

/// skopeo's fatal message, or failing that the end of its stderr and how it exited.
fn failure_message(finished: &process::Finished) -> String {
    skopeo::fatal_message(&finished.stderr).unwrap_or_else(|| {
        let status = process::describe_status(&finished.status);
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

/// Writes a private auth file per side ferry holds credentials for, covering every registry
/// host on that side, so the secret reaches skopeo without touching its command line.
fn write_auth_files(
    scratch: &ScratchDir,
    settings: &SyncSettings,
    jobs: &[Job],
) -> std::io::Result<AuthFiles> {
    let mut auth = AuthFiles::default();
    if let Some(creds) = &settings.src_creds {
        let hosts: BTreeSet<&str> = jobs.iter().map(|j| j.source.domain()).collect();
        auth.src = Some(scratch.write_private("src-auth.json", &auth_json(creds, &hosts))?);
    }
    if let Some(creds) = &settings.dest_creds {
        let hosts: BTreeSet<&str> = jobs
            .iter()
            .filter_map(|j| match &j.target {
                Target::Registry(target) => Some(target.domain()),
                Target::Oci { .. } => None,
            })
            .collect();
        auth.dest = Some(scratch.write_private("dest-auth.json", &auth_json(creds, &hosts))?);
    }
    Ok(auth)
}

fn auth_json(creds: &Credentials, hosts: &BTreeSet<&str>) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        creds.username,
        creds.password.expose()
    ));
    let auths: serde_json::Map<String, serde_json::Value> = hosts
        .iter()
        .map(|host| ((*host).to_owned(), serde_json::json!({ "auth": token })))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({ "auths": auths }))
        .expect("auth JSON always serializes")
}

fn print_dry_run(settings: &SyncSettings, jobs: &[Job]) {
    // The real auth files only exist during a real run; a dry run names them instead.
    let auth = AuthFiles {
        src: settings
            .src_creds
            .as_ref()
            .map(|_| PathBuf::from("<private auth file for --src-creds>")),
        dest: settings
            .dest_creds
            .as_ref()
            .map(|_| PathBuf::from("<private auth file for --dest-creds>")),
    };
    let digest_file = PathBuf::from("<digest file>");
    for job in jobs {
        println!("# {} -> {}", job.origin, job.target);
        if needs_expansion(job, &settings.destination) {
            let list = skopeo::build(
                &settings.skopeo,
                &auth,
                &Action::ListTags {
                    repository: &job.source,
                },
            );
            println!("{list}");
            if let Ok(example) = job.for_tag("TAG") {
                println!("# then, for each TAG listed:");
                let action =
                    skopeo::action_for(&example, &settings.destination, Some(&digest_file));
                println!("{}", skopeo::build(&settings.skopeo, &auth, &action));
            }
            continue;
        }
        let action = skopeo::action_for(job, &settings.destination, Some(&digest_file));
        println!("{}", skopeo::build(&settings.skopeo, &auth, &action));
    }
    println!("# dry run: {} jobs, nothing copied", jobs.len());
}
