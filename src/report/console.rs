//! The run's events as people read them: one result line per image on stdout as it finishes
//! and the summary at the end, each failed attempt in the log (`-v`), and the progress view on
//! stderr (see [`super::progress`]). Lines go out through [`super::log`], which keeps them clear
//! of the live view.

use tokio::sync::mpsc;
use tracing::info;

use super::progress::View;
use super::{destination_lines, result_line, summary_line, Outputs};
use crate::model::FailureKind;
use crate::run::events::Event;

/// Where the lines go: `line` for stdout's result lines (false when stdout is gone; written
/// through [`super::log`]), the view for progress, and the files written when the run finishes.
pub struct Console<'a> {
    pub line: &'a (dyn Fn(String) -> bool + Send + Sync),
    pub view: View,
    pub outputs: Outputs,
    /// Told every event first (metrics, in `serve`).
    pub observe: &'a (dyn Fn(&Event) + Send + Sync),
}

impl Console<'_> {
    /// Consumes `events` until the run finishes (or its sender is gone); the error says which
    /// output file could not be written.
    pub async fn consume(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) -> Result<(), String> {
        let mut written = Ok(());
        loop {
            let beat = self.view.next_beat();
            let heartbeat = async {
                match beat {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                event = events.recv() => event,
                () = heartbeat => {
                    self.view.beat(std::time::Instant::now());
                    continue;
                }
            };
            let Some(event) = event else { break };
            self.event(&event);
            if let Event::RunFinished { results, summary } = &event {
                written = self.outputs.write(results, *summary);
                break;
            }
        }
        self.view.finish();
        written
    }

    fn event(&mut self, event: &Event) {
        (self.observe)(event);
        self.view.event(event);
        match event {
            Event::Finished { result, .. } => {
                (self.line)(result_line(result));
            }
            Event::AttemptFailed {
                target,
                attempt,
                kind,
                message,
                retry_in: Some(delay),
                index,
            } => info!(
                source = self.view.names(*index).map(|(source, _)| source),
                target = %target,
                "{target}: attempt {attempt} failed ({}); retrying in {:.1}s{}",
                super::kind_and_message(*kind, message),
                delay.as_secs_f64(),
                if *kind == FailureKind::RateLimited {
                    " or later, at the registry's pace"
                } else {
                    ""
                }
            ),
            Event::RunFinished { results, summary } => {
                for line in destination_lines(results, &self.outputs.info.destinations) {
                    (self.line)(line);
                }
                (self.line)(summary_line(summary));
            }
            _ => {}
        }
    }
}
