//! `ferry sync`: settings → run → outcome. Reads and maps the inputs (nothing runs on a bad
//! one), has settings build the workers (the registry client, and the engine with the private
//! directory it needs), hands them to the run core with the signal watch and the console as the
//! consumer of its events, then writes the report and the failed list and picks the exit code.
//! `serve` runs the same steps on its schedule ([`prepare`], [`Prepared`]).

use std::io::IsTerminal as _;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use super::{expand_namespaces, load, say, say_err, Loaded};
use crate::access::credentials::CredentialsError;
use crate::engine::crane::NO_OCI_LAYOUTS;
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::exec::Stop;
use crate::input::InputError;
use crate::input::NamespaceEntry;
use crate::model::{ImageResult, Job, Summary, Target};
use crate::registry::quota::HostQuota;
use crate::registry::RegistryClient;
use crate::report::console::Console;
use crate::report::progress::View;
use crate::report::{Outputs, RunInfo};
use crate::run::events::{Event, Events};
use crate::run::{self, RunOutcome};
use crate::scratch::ScratchDir;
use crate::settings::engine::EngineSettings;
use crate::settings::{SyncSettings, Workers};
use crate::signals;

pub async fn sync(settings: SyncSettings) -> Result<Outcome, Error> {
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    // Registered before any work starts.
    let signals = signals::Watch::start(stop_tx, say_err);
    let Some(mut prepared) = prepare(&settings).await? else {
        return Ok(Ran::dry_run().outcome(signals.code()));
    };
    let layouts = layouts_of(&prepared.jobs);
    let options = settings.run_options();
    let (events, received) = Events::channel();
    let console = prepared.console(&settings, &|_| {});
    let (outcome, written) = tokio::join!(
        run::sync(
            &options,
            Arc::clone(&prepared.workers.client),
            Arc::clone(&prepared.workers.engine),
            // The run's own: a long list is not held twice.
            std::mem::take(&mut prepared.jobs),
            std::mem::take(&mut prepared.unlisted),
            stop_rx,
            events
        ),
        console.consume(received)
    );
    let mut ran = prepared.finish(outcome, written)?;
    if let (Some(out), None) = (&settings.bundle, signals.code()) {
        if let Err(e) = pack(&settings, &layouts, out) {
            say_err(format!("ferry: error: {e}"));
            ran.written = Err(e);
        }
    }
    Ok(ran.outcome(signals.code()))
}

/// The layouts a run's jobs write, each once, in order.
fn layouts_of(jobs: &[Job]) -> Vec<std::path::PathBuf> {
    let mut layouts: Vec<std::path::PathBuf> = Vec::new();
    for job in jobs {
        if let Target::Oci { layout, .. } = &job.target {
            if !layouts.contains(layout) {
                layouts.push(layout.clone());
            }
        }
    }
    layouts
}

/// `--bundle`: the run's layouts that hold an image, packed into `out`, said on stderr.
fn pack(
    settings: &SyncSettings,
    layouts: &[std::path::PathBuf],
    out: &std::path::Path,
) -> Result<(), String> {
    let crate::model::Destination::OciDir(root) = &settings.plan.destination else {
        return Err("--bundle packs local OCI layouts".to_owned());
    };
    let held: Vec<std::path::PathBuf> = layouts
        .iter()
        .filter(|layout| layout.join("index.json").is_file())
        .cloned()
        .collect();
    let written = crate::input::bundle::write(root, &held, out)?;
    say_err(format!(
        "ferry: bundle {}: {} ({}), {}, {} bytes",
        out.display(),
        crate::words::count(written.layouts, "layout", "layouts"),
        crate::words::count(written.images, "image", "images"),
        crate::words::count(written.blobs, "blob", "blobs"),
        written.bytes
    ));
    Ok(())
}

/// What one sync did.
pub(super) struct Ran {
    /// `None` for a dry run.
    pub summary: Option<Summary>,
    /// Whether the report and failed list were written.
    pub written: Result<(), String>,
    /// ferry's own registry requests, by host and answer class.
    pub answers: Vec<(String, &'static str, u64)>,
    /// The pull quota of each metered registry, as last said, and what the run spent of it.
    pub quotas: Vec<(String, HostQuota)>,
}

impl Ran {
    /// A dry run: nothing ran.
    pub fn dry_run() -> Ran {
        Ran {
            summary: None,
            written: Ok(()),
            answers: Vec::new(),
            quotas: Vec::new(),
        }
    }

    /// The outcome, given the exit code of the signal that stopped the run, if one did.
    pub fn outcome(&self, signal: Option<u8>) -> Outcome {
        let failed = self.summary.map_or(0, |s| s.failed);
        let outcome = match (signal, failed) {
            (Some(code), _) => Outcome::Stopped { code },
            (None, 0) => Outcome::Done,
            (None, _) => Outcome::ImagesFailed,
        };
        match &self.written {
            Ok(()) => outcome,
            Err(_) => outcome.max(Outcome::ImagesFailed),
        }
    }
}

/// One sync, ready to run: its jobs, its workers and the private directory they need.
pub(super) struct Prepared {
    pub jobs: Vec<Job>,
    /// Namespace lines that could not be listed, failed before the run.
    pub unlisted: Vec<ImageResult>,
    pub workers: Workers,
    /// The run's list fingerprint, for its report.
    fingerprint: String,
    /// The engine's private files (and the credentials in them) live until the run ends.
    scratch: ScratchDir,
}

/// Gets one sync ready: reads and maps the inputs (an error, and nothing runs, on any problem
/// in them), makes the private directory and the workers (the engine once). A dry run prints
/// what it would run instead, and is `None`.
pub(super) async fn prepare(settings: &SyncSettings) -> Result<Option<Prepared>, Error> {
    let Loaded {
        mut jobs,
        namespaces,
        registry,
        fingerprint,
    } = load(&settings.plan).await?;
    let layouts = jobs
        .iter()
        .any(|job| matches!(job.target, Target::Oci { .. }));
    if layouts && matches!(settings.engine, EngineSettings::Crane(_)) {
        return Err(Error::Usage(NO_OCI_LAYOUTS.to_owned()));
    }
    let auth_error = |e: CredentialsError| match e.is_configuration() {
        true => Error::Credentials(e),
        false => Error::Internal(format!(
            "cannot prepare the private auth file for {}: {e}",
            settings.engine.name()
        )),
    };
    if settings.dry_run {
        // The real auth files only exist during a real run; a dry run names them instead.
        // Namespaces are not listed: a dry run sends no request.
        let examples = namespace_examples(settings, &namespaces);
        let all: Vec<Job> = jobs
            .iter()
            .chain(examples.iter().map(|(_, job)| job))
            .cloned()
            .collect();
        let workers = settings.workers(registry, &all, None).map_err(auth_error)?;
        print_dry_run(settings, workers.engine.as_ref(), &jobs, &examples);
        return Ok(None);
    }
    for stale in crate::scratch::remove_stale() {
        info!(
            "removed {}, left by a ferry process that is gone",
            stale.display()
        );
    }
    let scratch = ScratchDir::create().map_err(|e| {
        Error::Internal(format!("cannot create a private temporary directory: {e}"))
    })?;
    let client = Arc::new(RegistryClient::new(registry));
    let namespaced = expand_namespaces(&settings.plan, &client, &namespaces).await;
    jobs.extend(namespaced.jobs);
    let workers = settings
        .workers_with(client, &jobs, Some(&scratch))
        .map_err(auth_error)?;
    if let Some(note) = &settings.engine_note {
        say_err(note);
    }
    if let Some(note) = &settings.signatures_note {
        say_err(note);
    }
    info!("copying with {}", workers.engine.name());
    Ok(Some(Prepared {
        jobs,
        unlisted: namespaced.failed,
        workers,
        fingerprint,
        scratch,
    }))
}

impl Prepared {
    /// The console that reads the run's events (and tells `observe` of each), with the
    /// progress view settings ask for on this stderr and the outputs to write at the end.
    pub fn console<'a>(
        &self,
        settings: &SyncSettings,
        observe: &'a (dyn Fn(&Event) + Send + Sync),
    ) -> Console<'a> {
        Console {
            line: &|line| say(line),
            view: View::new(settings.progress.mode(std::io::stderr().is_terminal())),
            outputs: outputs(settings, self.fingerprint.clone()),
            observe,
        }
    }

    /// What the run's report says of it (see [`RunInfo`]).
    pub fn info(&self, settings: &SyncSettings) -> RunInfo {
        outputs(settings, self.fingerprint.clone()).info
    }

    /// What the run did, once it and its console are done; the private directory goes here,
    /// on every path, a stop by signal included.
    pub fn finish(
        self,
        outcome: Result<RunOutcome, Vec<InputError>>,
        written: Result<(), String>,
    ) -> Result<Ran, Error> {
        let run = outcome.map_err(Error::Input)?;
        if let Err(e) = &written {
            say_err(format!("ferry: error: {e}"));
        }
        drop(self.scratch);
        let quotas = self.workers.client.quotas();
        tell_quotas(&quotas);
        Ok(Ran {
            summary: Some(run.summary),
            written,
            answers: self.workers.client.answers(),
            quotas,
        })
    }
}

/// What each metered registry has left (`-v`), and, where `--pull-budget` deferred images,
/// when they can be copied.
fn tell_quotas(quotas: &[(String, HostQuota)]) {
    let now = std::time::SystemTime::now();
    for (host, quota) in quotas {
        if let (Some(left), Some(limit)) = (quota.remaining, quota.limit) {
            info!(
                "{host}: {left} of {limit} pulls left; this run's copies spent {}",
                quota.spent
            );
        }
        if quota.deferred == 0 {
            continue;
        }
        let when = match quota.frees_by(now) {
            Some(at) => format!(
                "the quota window frees them by {} at the latest: rerun the failed list then",
                crate::registry::quota::utc(at)
            ),
            None => "rerun the failed list once its quota allows".to_owned(),
        };
        say_err(format!(
            "ferry: {} deferred: the pull budget for {host} would have been crossed ({} pulls \
             spent); {when}",
            crate::words::count(quota.deferred, "image", "images"),
            quota.spent
        ));
    }
}

/// The report and failed list to write, what the report says of the run (`fingerprint`: its
/// list's), and what a rerun of the failed list needs beyond its lines.
fn outputs(settings: &SyncSettings, fingerprint: String) -> Outputs {
    Outputs {
        report: settings.plan.report.clone(),
        failed_list: settings.failed_list.clone(),
        info: RunInfo {
            command: "sync",
            shard: settings.plan.inputs.shard,
            fingerprint,
            destination: super::label(&settings.plan.destinations()),
            destinations: super::several(&settings.plan.destinations()),
            rerun: settings.plan.rerun.clone(),
        },
    }
}

/// For a dry run, each namespace line with the job of an example repository (`repo`) under it.
fn namespace_examples(
    settings: &SyncSettings,
    namespaces: &[NamespaceEntry],
) -> Vec<(NamespaceEntry, Job)> {
    let destinations = settings.plan.destinations();
    namespaces
        .iter()
        .flat_map(|namespace| {
            let entry = namespace.entry_for("repo").ok();
            destinations.iter().filter_map(move |destination| {
                let entry = entry.clone()?;
                let target = crate::mapping::target_for(&entry, destination).ok()?;
                let job = Job {
                    origin: entry.origin,
                    source: entry.source,
                    target,
                    explicit: entry.explicit_target.is_some(),
                    filter: entry.filter.map(Box::new),
                    signatures: entry.signatures,
                };
                Some((namespace.clone(), job))
            })
        })
        .collect()
}

fn print_dry_run(
    settings: &SyncSettings,
    engine: &dyn Engine,
    jobs: &[Job],
    namespaces: &[(NamespaceEntry, Job)],
) {
    if let Some(note) = &settings.engine_note {
        say_err(note);
    }
    if let Some(note) = &settings.signatures_note {
        say_err(note);
    }
    for (namespace, example) in namespaces {
        say(format!(
            "# {} -> {}",
            namespace.origin,
            namespace.as_list_line()
        ));
        say(format!(
            "# for each repository REPO that {} lists, and each TAG of it that passes the tag \
             filters (the namespace is listed in a real run):",
            namespace.namespace
        ));
        if let Ok(job) = example.for_tag("TAG") {
            say(engine.describe(&job).replace("/repo:", "/REPO:"));
        }
    }
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
        say(engine.describe(&job));
    }
    let options = settings.run_options();
    if jobs.iter().any(|job| options.signatures_for(job).is_some()) {
        say(
            "# after each image: its signatures, attestations, SBOMs and referrers (looked up in \
             a real run; each copied as above, a referrer by digest)",
        );
    }
    say(format!(
        "# dry run: {}, nothing copied; targets already current are skipped in a real run",
        crate::words::count(jobs.len() + namespaces.len(), "entry", "entries")
    ));
}
