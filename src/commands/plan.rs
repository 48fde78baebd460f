//! `ferry plan` and `ferry verify`: the digest-first view of a list. Both expand whole
//! repositories and HEAD each side once per tag; `plan` shows what a sync would do, `verify`
//! fails unless every target holds its source's digest. Neither copies anything.

use std::sync::Arc;
use std::time::Instant;

use super::{load, say, say_err};
use crate::error::{Error, Outcome};
use crate::model::ImageError;
use crate::plan::{self, Dropped, PlanEntry, State};
use crate::registry::RegistryClient;
use crate::report::{plan_json, write_file, PlanSummary};
use crate::settings::PlanSettings;

/// A finished plan: every entry, the tags the filters dropped, and the summary.
struct Planned {
    entries: Vec<PlanEntry>,
    dropped: Vec<Dropped>,
    summary: PlanSummary,
}

/// Reads the inputs and plans them, as `plan` and `verify` both need.
async fn planned(settings: &PlanSettings) -> Result<Planned, Error> {
    let started = Instant::now();
    let loaded = load(settings).await?;
    let client = Arc::new(RegistryClient::new(loaded.registry));
    let (entries, dropped) = plan::plan_all(
        &client,
        settings,
        loaded.jobs,
        false,
        plan::Lookups::Both,
        None,
    )
    .await
    .map_err(Error::Input)?;
    let mut summary = PlanSummary::of(&entries, dropped.len(), client.requests_sent(), started);
    summary.throttled = client.throttled_responses();
    Ok(Planned {
        entries,
        dropped,
        summary,
    })
}

/// Writes `--report` when asked; a failure to write makes a success an `ImagesFailed`.
fn finish(settings: &PlanSettings, planned: &Planned, outcome: Outcome) -> Outcome {
    let Some(path) = &settings.report else {
        return outcome;
    };
    match write_file(path, &plan_json(&planned.entries, &planned.summary)) {
        Ok(()) => outcome,
        Err(e) => {
            say_err(format!(
                "ferry: error: cannot write the report {}: {e}",
                path.display()
            ));
            outcome.max(Outcome::ImagesFailed)
        }
    }
}

pub async fn plan(settings: &PlanSettings) -> Result<Outcome, Error> {
    let planned = planned(settings).await?;
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
    Ok(finish(settings, &planned, Outcome::Done))
}

pub async fn verify(settings: &PlanSettings) -> Result<Outcome, Error> {
    let planned = planned(settings).await?;
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
    let outcome = match problems {
        0 => Outcome::Done,
        _ => Outcome::ImagesFailed,
    };
    Ok(finish(settings, &planned, outcome))
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
