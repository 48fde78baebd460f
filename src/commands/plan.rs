//! `ferry plan` and `ferry verify`: the digest-first view of a list. Both expand whole
//! repositories and HEAD each side once per tag; `plan` shows what a sync would do, `verify`
//! fails unless every target holds its source's digest. Neither copies anything.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{load, print_input_errors, say, say_err};
use crate::exit;
use crate::model::ImageError;
use crate::plan::{self, Dropped, PlanEntry, State};
use crate::registry::RegistryClient;
use crate::report::write_file;
use crate::settings::PlanSettings;

/// A finished plan: every entry, the tags the filters dropped, and the summary.
struct Planned {
    entries: Vec<PlanEntry>,
    dropped: Vec<Dropped>,
    summary: PlanSummary,
}

/// Reads the inputs and plans them, as `plan` and `verify` both need.
async fn planned(settings: &PlanSettings) -> Option<Planned> {
    let started = Instant::now();
    let loaded = load(settings).await?;
    let client = Arc::new(RegistryClient::new(loaded.registry));
    let (entries, dropped) = plan::plan_all(&client, settings, loaded.jobs, false)
        .await
        .map_err(|errors| print_input_errors(&errors))
        .ok()?;
    let mut summary = PlanSummary::of(&entries, dropped.len(), client.requests_sent(), started);
    summary.throttled = client.throttled_responses();
    Some(Planned {
        entries,
        dropped,
        summary,
    })
}

/// Writes `--report` when asked; a failure to write turns a success into exit 1.
fn finish(settings: &PlanSettings, planned: &Planned, code: u8) -> u8 {
    let Some(path) = &settings.report else {
        return code;
    };
    match write_file(path, &plan_json(&planned.entries, &planned.summary)) {
        Ok(()) => code,
        Err(e) => {
            say_err(format!(
                "ferry: error: cannot write the report {}: {e}",
                path.display()
            ));
            code.max(exit::IMAGES_FAILED)
        }
    }
}

pub async fn plan(settings: &PlanSettings) -> u8 {
    let Some(planned) = planned(settings).await else {
        return exit::USAGE;
    };
    print_table(&planned.entries);
    // Why each lookup failed: the table has room for the kind only.
    for entry in planned.entries.iter().filter(|e| e.error.is_some()) {
        say(format!(
            "{}  {}: {}",
            entry.state.as_str(),
            entry.job.source,
            error_text(entry.error.as_ref())
        ));
    }
    if settings.verbosity > 0 {
        for drop in &planned.dropped {
            say(format!(
                "dropped  {}  ({}, {})",
                drop.source, drop.reason, drop.origin
            ));
        }
    }
    say(planned.summary.line());
    finish(settings, &planned, exit::SUCCESS)
}

pub async fn verify(settings: &PlanSettings) -> u8 {
    let Some(planned) = planned(settings).await else {
        return exit::USAGE;
    };
    let entries = &planned.entries;
    let mut problems = 0;
    for entry in entries {
        let target = &entry.job.target;
        let line = match entry.state {
            State::Current => format!("ok        {target}  {}", digest(&entry.target_digest)),
            State::New => format!(
                "missing   {target}  (source {})",
                digest(&entry.source_digest)
            ),
            State::Changed => format!(
                "mismatch  {target}  target {} != source {}",
                digest(&entry.target_digest),
                digest(&entry.source_digest)
            ),
            State::SourceMissing => {
                format!("no-source {target}  ({} does not exist)", entry.job.source)
            }
            State::Unknown => format!("error     {target}  {}", error_text(entry.error.as_ref())),
        };
        problems += usize::from(entry.state != State::Current);
        say(line);
    }
    say(format!(
        "{} targets: {} verified, {problems} with problems ({} requests in {:.1}s)",
        entries.len(),
        entries.len() - problems,
        planned.summary.requests,
        planned.summary.seconds
    ));
    let code = if problems == 0 {
        exit::SUCCESS
    } else {
        exit::IMAGES_FAILED
    };
    finish(settings, &planned, code)
}

fn digest(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_owned())
}

fn short(value: &Option<String>) -> String {
    match value {
        Some(d) => d.chars().take(19).collect(),
        None => "-".to_owned(),
    }
}

fn error_text(error: Option<&ImageError>) -> String {
    error.map_or_else(String::new, |e| format!("{}: {}", e.kind, e.message))
}

fn print_table(entries: &[PlanEntry]) {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.state.as_str().to_owned(),
                e.job.source.to_string(),
                e.job.target.to_string(),
                short(&e.source_digest),
                match &e.error {
                    Some(error) => format!("{} ({})", short(&e.target_digest), error.kind),
                    None => short(&e.target_digest),
                },
            ]
        })
        .collect();
    let header = [
        "STATE",
        "SOURCE",
        "TARGET",
        "SOURCE DIGEST",
        "TARGET DIGEST",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say(cells.join("  ").trim_end());
    }
}

#[derive(Debug, Serialize)]
struct PlanSummary {
    total: usize,
    new: usize,
    changed: usize,
    current: usize,
    source_missing: usize,
    unknown: usize,
    dropped_tags: usize,
    requests: u64,
    /// 429 answers waited out.
    throttled: u64,
    seconds: f64,
}

impl PlanSummary {
    fn of(
        entries: &[PlanEntry],
        dropped_tags: usize,
        requests: u64,
        started: Instant,
    ) -> PlanSummary {
        let count = |state| entries.iter().filter(|e| e.state == state).count();
        PlanSummary {
            total: entries.len(),
            new: count(State::New),
            changed: count(State::Changed),
            current: count(State::Current),
            source_missing: count(State::SourceMissing),
            unknown: count(State::Unknown),
            dropped_tags,
            requests,
            throttled: 0,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    fn line(&self) -> String {
        let throttled = match self.throttled {
            0 => String::new(),
            n => format!(", {n} answered 429"),
        };
        format!(
            "{} entries: {} new, {} changed, {} current, {} source-missing, {} unknown ({} requests{throttled} in {:.1}s)",
            self.total, self.new, self.changed, self.current, self.source_missing, self.unknown, self.requests, self.seconds
        )
    }
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    source: String,
    target: String,
    origin: String,
    state: State,
    source_digest: Option<&'a str>,
    target_digest: Option<&'a str>,
    error: Option<&'a ImageError>,
}

fn plan_json(entries: &[PlanEntry], summary: &PlanSummary) -> String {
    let entries: Vec<JsonEntry<'_>> = entries
        .iter()
        .map(|e| JsonEntry {
            source: e.job.source.to_string(),
            target: e.job.target.to_string(),
            origin: e.job.origin.to_string(),
            state: e.state,
            source_digest: e.source_digest.as_deref(),
            target_digest: e.target_digest.as_deref(),
            error: e.error.as_ref(),
        })
        .collect();
    let value = serde_json::json!({
        "ferry_version": env!("CARGO_PKG_VERSION"),
        "entries": entries,
        "summary": summary,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("the plan always serializes");
    text.push('\n');
    text
}
