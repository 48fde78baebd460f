//! `ferry report merge OUT IN…`: the shards' reports as one.

use std::path::{Path, PathBuf};

use super::say;
use crate::error::{Error, Outcome};
use crate::report::{merge::merge as merge_reports, write_file};

pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<Outcome, Error> {
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
    let merged = merge_reports(&reports).map_err(Error::Usage)?;
    let mut text =
        serde_json::to_string_pretty(&merged.report).expect("a JSON value always serializes");
    text.push('\n');
    write_file(out, &text)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", out.display())))?;
    if out != Path::new("-") {
        let total = merged.report["summary"]["total"].as_u64().unwrap_or(0);
        say(format!(
            "merged {}: {}, {} failed",
            crate::words::count(inputs.len(), "report", "reports"),
            crate::words::count(total, "entry", "entries"),
            merged.failed
        ));
    }
    Ok(match merged.failed {
        0 => Outcome::Done,
        _ => Outcome::ImagesFailed,
    })
}
