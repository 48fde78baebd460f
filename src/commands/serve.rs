//! `ferry serve`: the sync of `ferry sync`, again and again on a schedule, with `/metrics`,
//! `/healthz` and `/readyz`. Inputs are read again before each run, so an edited list takes
//! effect on the next run; a broken one fails that run (its FILE:LINE errors in the log, the
//! `invalid-input` result in the metrics, `/readyz` 503) and the server stays up. Runs never
//! overlap; before each wait the server says when the next run starts ("next run at …", also
//! `ferry_next_run_timestamp_seconds`). SIGHUP starts a run now; SIGTERM and SIGINT stop the
//! current run as `sync` does (children terminated, report written) and end the server with
//! 143 or 130.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use super::sync::{prepare, Ran};
use super::{load, say_err};
use crate::error::{self, Error, Outcome};
use crate::exec::Stop;
use crate::report::{catalog, json_report, RunInfo};
use crate::run::{self, events::Events};
use crate::serve::metrics::{Metrics, RunResult};
use crate::serve::{http, local_time, splay};
use crate::settings::engine::EngineSettings;
use crate::settings::{ServeSettings, SyncSettings};

pub async fn serve(settings: ServeSettings) -> Result<Outcome, Error> {
    let signal_error = |e: std::io::Error| Error::Internal(format!("cannot watch signals: {e}"));
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    // Only the native engine counts the bytes it copies.
    let counts_bytes = matches!(settings.sync.engine, EngineSettings::Native);
    let metrics = Arc::new(Metrics::new(counts_bytes));
    let pages = Arc::new(http::Pages::default());
    // Ready once the inputs read; checked before the first run, which may be hours away. A
    // first run that starts now reports their problems itself: they are said once.
    let now = SystemTime::now();
    match load(&settings.sync.plan).await {
        Ok(_) => metrics.inputs_checked(true),
        Err(e) => {
            if settings.schedule.first(now) > now {
                say_err(e.report().trim_end());
            }
            metrics.inputs_checked(false);
        }
    }
    let _endpoint = match settings.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
            say_err(format!(
                "ferry: serving /metrics, /healthz, /readyz and /catalog on http://{bound}"
            ));
            Some(AbortOnDrop(tokio::spawn(http::serve(
                listener,
                Arc::clone(&metrics),
                Arc::clone(&pages),
            ))))
        }
        None => None,
    };
    say_err(format!("ferry: syncing {}", settings.schedule));
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let mut due = settings.schedule.first(SystemTime::now());
    loop {
        // The run starts at its due time (or now, when that has passed) plus the splay.
        let now = SystemTime::now();
        let starts = due.max(now) + splay(settings.splay);
        metrics.next_run(starts);
        say_err(format!(
            "ferry: next run at {} ({})",
            local_time(starts),
            settings.zone
        ));
        let wait = starts.duration_since(now).unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = hangup.recv() => {
                say_err("ferry: SIGHUP: starting a run now");
                due = SystemTime::now();
            }
            _ = terminate.recv() => return Ok(Outcome::Stopped { code: error::TERMINATED }),
            _ = interrupt.recv() => return Ok(Outcome::Stopped { code: error::INTERRUPTED }),
        }
        let started = SystemTime::now();
        metrics.run_started(started);
        let observe = |event: &crate::run::events::Event| metrics.event(event);
        let run = one_run(&settings.sync, stop_rx.clone(), &observe, &pages);
        let mut run = std::pin::pin!(run);
        // A stop signal during the run stops it as `sync` stops (a second one: now); a SIGHUP
        // asks for another run as soon as this one ends.
        let mut stopped = None;
        let mut again = false;
        let ran = loop {
            tokio::select! {
                ran = &mut run => break ran,
                _ = terminate.recv() => stop(&stop_tx, &mut stopped, error::TERMINATED),
                _ = interrupt.recv() => stop(&stop_tx, &mut stopped, error::INTERRUPTED),
                _ = hangup.recv() => again = true,
            }
        };
        let ended = SystemTime::now();
        record(&metrics, ran, stopped, ended);
        if let Some(code) = stopped {
            return Ok(Outcome::Stopped { code });
        }
        let (next, skipped) = settings.schedule.next(due, ended);
        for _ in 0..skipped {
            metrics.run_not_run(RunResult::Skipped, ended);
        }
        if skipped > 0 {
            say_err(format!(
                "ferry: the run took until the next one was due: {skipped} skipped"
            ));
        }
        due = if again { ended } else { next };
    }
}

/// One scheduled run: the inputs read again and the workers built for it, then the run core
/// with the console (and the metrics, through `observe`) reading its events. When it
/// finishes, its catalog (made from its report, as `report catalog` makes it) goes to `pages`.
async fn one_run(
    settings: &SyncSettings,
    stop: watch::Receiver<Stop>,
    observe: &(dyn Fn(&run::events::Event) + Send + Sync),
    pages: &http::Pages,
) -> Result<Ran, Error> {
    let Some(mut prepared) = prepare(settings).await? else {
        return Ok(Ran::dry_run());
    };
    let options = settings.run_options();
    let (events, received) = Events::channel();
    let info = prepared.info(settings);
    let observe = |event: &run::events::Event| {
        observe(event);
        if let run::events::Event::RunFinished { results, summary } = event {
            publish_catalog(&info, results, *summary, pages);
        }
    };
    let console = prepared.console(settings, &observe);
    let (outcome, written) = tokio::join!(
        run::sync(
            &options,
            Arc::clone(&prepared.workers.client),
            Arc::clone(&prepared.workers.engine),
            std::mem::take(&mut prepared.jobs),
            std::mem::take(&mut prepared.unlisted),
            stop,
            events
        ),
        console.consume(received)
    );
    prepared.finish(outcome, written)
}

/// The catalog of a run that finished, for `/catalog` and `/catalog.md`.
fn publish_catalog(
    info: &RunInfo,
    results: &crate::model::Results,
    summary: crate::model::Summary,
    pages: &http::Pages,
) {
    let catalog = json_report(info, results, summary)
        .and_then(|report| serde_json::from_str(&report).map_err(std::io::Error::from))
        .map_err(|e| e.to_string())
        .and_then(|report| catalog::from_reports(&[("the last run's report".to_owned(), report)]));
    match catalog {
        Ok(catalog) => pages.set_catalog(catalog.html(), catalog.markdown()),
        Err(e) => say_err(format!("ferry: warning: no catalog of this run: {e}")),
    }
}

/// The first stop signal stops the run gracefully and sets the exit code; another, now.
fn stop(stop_tx: &watch::Sender<Stop>, stopped: &mut Option<u8>, code: u8) {
    match stopped {
        None => {
            let _ = stop_tx.send(Stop::Graceful);
            *stopped = Some(code);
            say_err("ferry: stopping: no new images start; running copies are stopped (signal again to stop at once)");
        }
        Some(_) => {
            let _ = stop_tx.send(Stop::Now);
        }
    }
}

/// A run's end in the metrics (and its errors in the log).
fn record(metrics: &Metrics, ran: Result<Ran, Error>, stopped: Option<u8>, at: SystemTime) {
    match ran {
        Ok(ran) => {
            metrics.registry_answers(ran.answers.clone());
            for (host, quota) in &ran.quotas {
                if let Some(left) = quota.remaining {
                    metrics.quota_remaining(host, left);
                }
            }
            let result = match ran.outcome(stopped) {
                Outcome::Done => RunResult::Success,
                Outcome::ImagesFailed => RunResult::ImagesFailed,
                Outcome::Stopped { .. } => RunResult::Interrupted,
            };
            metrics.run_result(result, at);
        }
        Err(error) => {
            say_err(error.report().trim_end());
            match error {
                Error::Internal(_) => metrics.run_result(RunResult::ImagesFailed, at),
                _ => metrics.run_not_run(RunResult::InvalidInput, at),
            }
        }
    }
}

/// Stops the endpoint's task with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
