//! `ferry sync`: settings → run → outcome. Reads and maps the inputs (nothing runs on a bad
//! one), makes the engine and the private directory it needs, hands both to the run core with
//! the signal watch and the console as the consumer of its events, then writes the report and
//! the failed list and picks the exit code.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use super::{load, print_input_errors, say, say_err, Loaded};
use crate::engine::crane::Crane;
use crate::engine::skopeo::Skopeo;
use crate::engine::Engine;
use crate::exec::Stop;
use crate::exit;
use crate::model::{Destination, ImageResult, Job, Status, Summary, Target};
use crate::registry::RegistryClient;
use crate::report;
use crate::report::console::Console;
use crate::report::progress::View;
use crate::run::{self, events::Events};
use crate::scratch::ScratchDir;
use crate::settings::{EngineSettings, SyncSettings};
use crate::signals;

pub async fn sync(settings: SyncSettings) -> u8 {
    let Some(Loaded { jobs, registry }) = load(&settings.plan).await else {
        return exit::USAGE;
    };
    let mut settings = settings;
    settings.plan.registry = registry;
    let layouts = jobs
        .iter()
        .any(|job| matches!(job.target, Target::Oci { .. }));
    if layouts && matches!(settings.engine, EngineSettings::Crane(_)) {
        say_err(format!(
            "ferry: error: {}",
            crate::engine::crane::NO_OCI_LAYOUTS
        ));
        return exit::USAGE;
    }
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
            return exit::IMAGES_FAILED;
        }
    };
    let access = settings.plan.registry.access.clone();
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
    };
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            let name = match settings.engine {
                EngineSettings::Skopeo(_) => "skopeo",
                EngineSettings::Crane(_) => "crane",
            };
            say_err(format!(
                "ferry: error: cannot prepare the auth file for {name}: {e}"
            ));
            return exit::IMAGES_FAILED;
        }
    };
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let signals = signals::Watch::start(stop_tx, say_err);
    let client = Arc::new(RegistryClient::new(settings.plan.registry.clone()));
    let (events, received) = Events::channel();
    let console = Console {
        line: &|line| say(line),
        view: View::new(settings.progress),
    };
    let (outcome, ()) = tokio::join!(
        run::sync(&settings, client, engine, jobs, stop_rx, events),
        console.consume(received)
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(errors) => {
            print_input_errors(&errors);
            return exit::USAGE;
        }
    };
    let mut exit_code = match (signals.code(), outcome.summary.failed) {
        (Some(signal_exit), _) => signal_exit,
        (None, 0) => exit::SUCCESS,
        (None, _) => exit::IMAGES_FAILED,
    };
    if let Err(e) = write_outputs(&settings, &outcome.results, outcome.summary) {
        say_err(format!("ferry: error: {e}"));
        if exit_code == exit::SUCCESS {
            exit_code = exit::IMAGES_FAILED;
        }
    }
    // The scratch directory (and the credentials in it) lives until here, on every path,
    // including a stop by signal.
    drop(scratch);
    exit_code
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

fn print_dry_run(settings: &SyncSettings, jobs: &[Job]) {
    // The real auth files only exist during a real run; a dry run names them instead.
    let access = settings.plan.registry.access.clone();
    let engine: Box<dyn Engine> = match &settings.engine {
        EngineSettings::Skopeo(options) => Box::new(Skopeo::for_dry_run(
            options.clone(),
            access,
            settings.plan.destination.clone(),
            jobs,
        )),
        EngineSettings::Crane(options) => Box::new(Crane::for_dry_run(options.clone(), access)),
    };
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
