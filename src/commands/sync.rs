//! `ferry sync`: settings → run → outcome. Reads and maps the inputs (nothing runs on a bad
//! one), makes the engine and the private directory it needs, hands both to the run core with
//! the signal watch and the console as the consumer of its events, then writes the report and
//! the failed list and picks the exit code.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use super::{load, say, say_err, Loaded};
use crate::engine::native::Native;
use crate::engine::skopeo::Skopeo;
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::exec::Stop;
use crate::model::{Destination, Job};
use crate::registry::RegistryClient;
use crate::report::console::Console;
use crate::report::progress::View;
use crate::report::Outputs;
use crate::run::{self, events::Events};
use crate::scratch::ScratchDir;
use crate::settings::{EngineKind, SyncSettings};
use crate::signals;

pub async fn sync(settings: SyncSettings) -> Result<Outcome, Error> {
    let Loaded { jobs, registry } = load(&settings.plan).await?;
    let mut settings = settings;
    settings.plan.registry = registry;
    if settings.dry_run {
        print_dry_run(&settings, &jobs);
        return Ok(Outcome::Done);
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
    let client = Arc::new(RegistryClient::new(settings.plan.registry.clone()));
    let engine = make_engine(&settings, &client, &scratch, &jobs)?;
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let signals = signals::Watch::start(stop_tx, say_err);
    if let Some(note) = &settings.engine_note {
        say_err(note);
    }
    let (events, received) = Events::channel();
    info!("copying with {}", engine.name());
    let console = Console {
        line: &|line| say(line),
        view: View::new(settings.progress),
        outputs: outputs(&settings),
    };
    let (outcome, written) = tokio::join!(
        run::sync(&settings, client, engine, jobs, stop_rx, events),
        console.consume(received)
    );
    let run = outcome.map_err(Error::Input)?;
    let mut outcome = match (signals.code(), run.summary.failed) {
        (Some(code), _) => Outcome::Stopped { code },
        (None, 0) => Outcome::Done,
        (None, _) => Outcome::ImagesFailed,
    };
    if let Err(e) = written {
        say_err(format!("ferry: error: {e}"));
        outcome = outcome.max(Outcome::ImagesFailed);
    }
    // The scratch directory (and the credentials in it) lives until here, on every path,
    // including a stop by signal.
    drop(scratch);
    Ok(outcome)
}

/// The engine the settings name: skopeo with its private auth files in `scratch`, or the
/// native engine on the run's own registry client.
fn make_engine(
    settings: &SyncSettings,
    client: &Arc<RegistryClient>,
    scratch: &ScratchDir,
    jobs: &[Job],
) -> Result<Arc<dyn Engine>, Error> {
    Ok(match settings.engine {
        EngineKind::Native => Arc::new(Native::new(Arc::clone(client), settings.image_timeout)),
        EngineKind::Skopeo => {
            let engine = Skopeo::new(
                settings.skopeo.clone(),
                settings.plan.registry.access.clone(),
                settings.plan.destination.clone(),
                settings.image_timeout,
                scratch,
                jobs,
            )
            .map_err(|e| {
                Error::Internal(format!("cannot prepare the auth file for skopeo: {e}"))
            })?;
            Arc::new(engine)
        }
    })
}

/// The report and failed list to write: what a rerun of the failed list needs beyond its
/// lines is the OCI layout root (a registry target is on each line), and the tag filters when a
/// whole repository failed (its listing).
fn outputs(settings: &SyncSettings) -> Outputs {
    let rerun_flags = match &settings.plan.destination {
        Destination::OciDir(dir) => vec!["--dest-dir".to_owned(), dir.display().to_string()],
        Destination::Registry(_) => Vec::new(),
    };
    Outputs {
        report: settings.plan.report.clone(),
        failed_list: settings.failed_list.clone(),
        destination: destination_label(&settings.plan.destination),
        rerun_flags,
        repository_flags: settings.plan.filter.spec().as_flags(),
    }
}

fn destination_label(destination: &Destination) -> String {
    match destination {
        Destination::Registry(prefix) => prefix.to_string(),
        Destination::OciDir(dir) => format!("oci:{}", dir.display()),
    }
}

fn print_dry_run(settings: &SyncSettings, jobs: &[Job]) {
    // The real auth files only exist during a real run; a dry run names them instead.
    let engine: Box<dyn Engine> = match settings.engine {
        EngineKind::Native => Box::new(Native::new(
            Arc::new(RegistryClient::new(settings.plan.registry.clone())),
            settings.image_timeout,
        )),
        EngineKind::Skopeo => Box::new(Skopeo::for_dry_run(
            settings.skopeo.clone(),
            settings.plan.registry.access.clone(),
            settings.plan.destination.clone(),
            jobs,
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
        "# dry run: {} entries, nothing copied; targets already current are skipped in a real run",
        jobs.len()
    ));
}
