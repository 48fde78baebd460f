//! `ferry sync`: settings → run → outcome. Reads and maps the inputs (nothing runs on a bad
//! one), makes the engine and the private directory it needs, hands both to the run core with
//! the signal watch and the console as the consumer of its events, then writes the report and
//! the failed list and picks the exit code.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use super::{load, say, say_err, Loaded};
use crate::access::Access;
use crate::engine::crane::{Crane, NO_OCI_LAYOUTS};
use crate::engine::native::Native;
use crate::engine::skopeo::Skopeo;
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::exec::Stop;
use crate::model::{Job, Summary, Target};
use crate::registry::RegistryClient;
use crate::report::console::Console;
use crate::report::progress::View;
use crate::report::{Outputs, RunInfo};
use crate::run::events::{Event, Events};
use crate::run::{self};
use crate::scratch::ScratchDir;
use crate::settings::{EngineSettings, SyncSettings};
use crate::signals;

pub async fn sync(settings: SyncSettings) -> Result<Outcome, Error> {
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    // Registered before any work starts.
    let signals = signals::Watch::start(stop_tx, say_err);
    let ran = run_once(&settings, stop_rx, &|_| {}).await?;
    Ok(ran.outcome(signals.code()))
}

/// What one sync did.
pub(super) struct Ran {
    /// `None` for a dry run.
    pub summary: Option<Summary>,
    /// Whether the report and failed list were written.
    pub written: Result<(), String>,
    /// ferry's own registry requests, by host and answer class.
    pub answers: Vec<(String, &'static str, u64)>,
}

impl Ran {
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

/// One sync: reads and maps the inputs (an error, and nothing runs, on any problem in them),
/// makes the engine and its private directory, runs the plan and the copies until done or
/// `stop`, with the console (and `observe`) reading the events, then writes the outputs.
pub(super) async fn run_once(
    settings: &SyncSettings,
    stop: watch::Receiver<Stop>,
    observe: &(dyn Fn(&Event) + Send + Sync),
) -> Result<Ran, Error> {
    let Loaded {
        jobs,
        registry,
        fingerprint,
    } = load(&settings.plan).await?;
    let layouts = jobs
        .iter()
        .any(|job| matches!(job.target, Target::Oci { .. }));
    if layouts && matches!(settings.engine, EngineSettings::Crane(_)) {
        return Err(Error::Usage(NO_OCI_LAYOUTS.to_owned()));
    }
    if settings.dry_run {
        print_dry_run(settings, &registry.access, &jobs);
        return Ok(Ran {
            summary: None,
            written: Ok(()),
            answers: Vec::new(),
        });
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
    let access = registry.access.clone();
    let client = Arc::new(RegistryClient::new(registry));
    let engine: Result<Arc<dyn Engine>, _> = match &settings.engine {
        EngineSettings::Skopeo(options) => Skopeo::new(
            options.clone(),
            access,
            settings.plan.destination.clone(),
            settings.image_timeout,
            &scratch,
            &jobs,
        )
        .map(|engine| Arc::new(engine) as Arc<dyn Engine>),
        EngineSettings::Crane(options) => Crane::new(
            options.clone(),
            access,
            settings.image_timeout,
            &scratch,
            &jobs,
        )
        .map(|engine| Arc::new(engine) as Arc<dyn Engine>),
        EngineSettings::Native => Ok(Arc::new(Native::new(
            Arc::clone(&client),
            settings.image_timeout,
        )) as Arc<dyn Engine>),
    };
    let engine = engine.map_err(|e| match e.is_configuration() {
        true => Error::Credentials(e),
        false => Error::Internal(format!(
            "cannot prepare the private auth file for {}: {e}",
            settings.engine.name()
        )),
    })?;
    if let Some(note) = &settings.engine_note {
        say_err(note);
    }
    let (events, received) = Events::channel();
    info!("copying with {}", engine.name());
    let console = Console {
        line: &|line| say(line),
        view: View::new(settings.progress),
        outputs: outputs(settings, fingerprint),
        observe,
    };
    let (outcome, written) = tokio::join!(
        run::sync(settings, Arc::clone(&client), engine, jobs, stop, events),
        console.consume(received)
    );
    let run = outcome.map_err(Error::Input)?;
    if let Err(e) = &written {
        say_err(format!("ferry: error: {e}"));
    }
    // The scratch directory (and the credentials in it) lives until here, on every path,
    // including a stop by signal.
    drop(scratch);
    Ok(Ran {
        summary: Some(run.summary),
        written,
        answers: client.answers(),
    })
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
            destination: settings.plan.destination.label(),
            rerun: settings.plan.rerun.clone(),
        },
    }
}

fn print_dry_run(settings: &SyncSettings, access: &Access, jobs: &[Job]) {
    // The real auth files only exist during a real run; a dry run names them instead.
    let engine: Box<dyn Engine> = match &settings.engine {
        EngineSettings::Skopeo(options) => Box::new(Skopeo::for_dry_run(
            options.clone(),
            access.clone(),
            settings.plan.destination.clone(),
            jobs,
        )),
        EngineSettings::Crane(options) => {
            Box::new(Crane::for_dry_run(options.clone(), access.clone()))
        }
        EngineSettings::Native => Box::new(Native::new(
            Arc::new(RegistryClient::new(settings.plan.registry.clone())),
            settings.image_timeout,
        )),
    };
    if let Some(note) = &settings.engine_note {
        say_err(note);
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
    say(format!(
        "# dry run: {}, nothing copied; targets already current are skipped in a real run",
        crate::words::count(jobs.len(), "entry", "entries")
    ));
}
