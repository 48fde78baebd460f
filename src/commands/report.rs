//! `ferry report merge OUT IN… [--failed-list FILE]`: one run's shards' reports as one.
//! Reports that cannot be one run's shards, each once, are a usage error (exit 2, nothing
//! written); a missing shard or a failed entry is exit 1, with the merged report and the
//! failed list written.

use std::path::{Path, PathBuf};

use super::{say, say_err};
use crate::cli::CatalogFormat;
use crate::error::{Error, Outcome};
use crate::report::catalog::{self, Format};
use crate::report::merge::{merge as merge_reports, Kind};
use crate::report::{failed_list_text, write_file};
use crate::words::count;

/// The JSON reports at `inputs`, each named by its path; one that cannot be read or is no JSON
/// is a usage error naming it.
fn read_reports(inputs: &[PathBuf]) -> Result<Vec<(String, serde_json::Value)>, Error> {
    let mut reports = Vec::with_capacity(inputs.len());
    for path in inputs {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read the report {name}: {e}")))?;
        let value = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{name}:{}: not JSON: {}",
                e.line(),
                crate::input::without_position(&e.to_string(), e.line(), e.column())
            ))
        })?;
        reports.push((name, value));
    }
    Ok(reports)
}

/// `ferry report catalog REPORT… [--format F] [-o FILE]`: the catalog, written whole (0), or
/// a usage error for reports that are no one run's sync or verification (2). A shard without
/// a report is said on stderr and in the catalog, which lists what the others hold.
pub fn write_catalog(
    inputs: &[PathBuf],
    format: CatalogFormat,
    output: &Path,
) -> Result<Outcome, Error> {
    let reports = read_reports(inputs)?;
    let catalog = catalog::from_reports(&reports).map_err(Error::Usage)?;
    let format = match format {
        CatalogFormat::Markdown => Format::Markdown,
        CatalogFormat::Html => Format::Html,
    };
    write_file(output, &catalog.render(format))
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", output.display())))?;
    if !catalog.missing.is_empty() {
        say_err(format!(
            "ferry: warning: no report of {} was given: the catalog lacks {} images",
            catalog.missing.join(", "),
            if catalog.missing.len() == 1 {
                "its"
            } else {
                "their"
            }
        ));
    }
    say_err(format!("ferry: catalog of {}", catalog.counts()));
    Ok(Outcome::Done)
}

pub fn merge(out: &Path, inputs: &[PathBuf], failed_list: Option<&Path>) -> Result<Outcome, Error> {
    let reports = read_reports(inputs)?;
    let merged = merge_reports(&reports).map_err(Error::Usage)?;
    for warning in &merged.warnings {
        say_err(format!("ferry: warning: {warning}"));
    }
    let mut text =
        serde_json::to_string_pretty(&merged.report).expect("a JSON value always serializes");
    text.push('\n');
    write_file(out, &text)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", out.display())))?;
    let missing: Vec<String> = merged
        .missing
        .iter()
        .map(|k| format!("{k}/{}", merged.count))
        .collect();
    if let Some(path) = failed_list {
        let what = match merged.kind {
            Kind::Sync => "images that failed in the merged reports of a ferry sync",
            Kind::Verify => {
                "targets ferry verify found missing, mismatched or unreadable, in \
                             the merged reports"
            }
            Kind::Plan => {
                "entries that failed in the merged reports of a ferry plan (a plan \
                           fails none)"
            }
        };
        let what = match missing.len() {
            0 => what.to_owned(),
            _ => format!(
                "{what} (without {} {}, whose report was not given)",
                if missing.len() == 1 {
                    "shard"
                } else {
                    "shards"
                },
                missing.join(", ")
            ),
        };
        let text = failed_list_text(&what, &merged.failed_lines, &merged.rerun, Some(path));
        write_file(path, &text).map_err(|e| {
            Error::Internal(format!(
                "cannot write the failed list {}: {e}",
                path.display()
            ))
        })?;
    }
    say(format!(
        "merged {} ({}): {}",
        count(inputs.len(), "report", "reports"),
        merged.shards,
        merged.summary
    ));
    if !missing.is_empty() {
        let one = missing.len() == 1;
        say_err(format!(
            "ferry: error: {} {} {} missing: no report of {} was given, so the merged report \
             lacks {} entries",
            if one { "shard" } else { "shards" },
            missing.join(", "),
            if one { "is" } else { "are" },
            if one { "it" } else { "them" },
            if one { "its" } else { "their" },
        ));
    }
    Ok(match (merged.failed, missing.len()) {
        (0, 0) => Outcome::Done,
        _ => Outcome::ImagesFailed,
    })
}
