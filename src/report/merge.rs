//! `ferry report merge`: the JSON reports of several shards as one, with the summary counted
//! again from the merged entries. Sync reports (`images`) and plan or verify reports
//! (`entries`) are merged alike; the kinds are not mixed.

use serde_json::{json, Map, Value};

use crate::model::Status;

/// The merged report and how many images failed in it.
#[derive(Debug)]
pub struct Merged {
    pub report: Value,
    pub failed: usize,
}

/// Merges `reports` (named by `names`, for errors). Entries keep the order of the reports and
/// within each its own.
pub fn merge(reports: &[(String, Value)]) -> Result<Merged, String> {
    let kind = |name: &str, report: &Value| {
        if report.get("images").is_some_and(Value::is_array) {
            Ok("images")
        } else if report.get("entries").is_some_and(Value::is_array) {
            Ok("entries")
        } else {
            Err(format!(
                "{name}: not a ferry report (no \"images\" or \"entries\" array)"
            ))
        }
    };
    let Some((first_name, first)) = reports.first() else {
        return Err("no report to merge".to_owned());
    };
    let key = kind(first_name, first)?;
    let mut items = Vec::new();
    let mut duration_ms = 0u64;
    let mut interrupted = false;
    let mut destinations: Vec<String> = Vec::new();
    for (name, report) in reports {
        if kind(name, report)? != key {
            return Err(format!(
                "{name}: a {} report cannot be merged with {first_name}, a {} report",
                if key == "images" { "plan" } else { "sync" },
                if key == "images" { "sync" } else { "plan" }
            ));
        }
        items.extend(report[key].as_array().into_iter().flatten().cloned());
        let summary = &report["summary"];
        // Shards run side by side: the merged run took as long as the longest.
        duration_ms = duration_ms.max(summary["duration_ms"].as_u64().unwrap_or(0));
        interrupted |= summary["interrupted"].as_bool().unwrap_or(false);
        if let Some(destination) = report["destination"].as_str() {
            if !destinations.iter().any(|d| d == destination) {
                destinations.push(destination.to_owned());
            }
        }
    }
    let count = |field: &str, value: &str| {
        items
            .iter()
            .filter(|item| item[field].as_str() == Some(value))
            .count()
    };
    let mut report = Map::new();
    report.insert("ferry_version".into(), json!(env!("CARGO_PKG_VERSION")));
    let failed;
    if key == "images" {
        failed = count("status", status(Status::Failed));
        report.insert("destination".into(), json!(destinations.join(", ")));
        report.insert(
            "summary".into(),
            json!({
                "total": items.len(),
                "synced": count("status", status(Status::Synced)),
                "skipped": count("status", status(Status::Skipped)),
                "failed": failed,
                "duration_ms": duration_ms,
                "interrupted": interrupted,
            }),
        );
    } else {
        failed = 0;
        let mut summary = Map::new();
        summary.insert("total".into(), json!(items.len()));
        for state in ["new", "changed", "current", "source-missing", "unknown"] {
            summary.insert(state.replace('-', "_"), json!(count("state", state)));
        }
        report.insert("summary".into(), Value::Object(summary));
    }
    report.insert(key.into(), Value::Array(items));
    Ok(Merged {
        report: Value::Object(report),
        failed,
    })
}

fn status(status: Status) -> &'static str {
    match status {
        Status::Synced => "synced",
        Status::Skipped => "skipped",
        Status::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync_report(statuses: &[&str], duration_ms: u64) -> Value {
        let images: Vec<Value> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| json!({ "source": format!("s{i}"), "target": format!("t{i}"), "status": s }))
            .collect();
        json!({
            "destination": "h.example/m",
            "images": images,
            "summary": { "total": images.len(), "duration_ms": duration_ms, "interrupted": false }
        })
    }

    #[test]
    fn shards_merge_into_one_report_counted_again() {
        let reports = vec![
            (
                "a.json".to_owned(),
                sync_report(&["synced", "skipped"], 900),
            ),
            ("b.json".to_owned(), sync_report(&["failed"], 1500)),
            ("c.json".to_owned(), sync_report(&[], 10)),
        ];
        let merged = merge(&reports).unwrap();
        assert_eq!(merged.failed, 1);
        let summary = &merged.report["summary"];
        assert_eq!(summary["total"], 3);
        assert_eq!(
            (&summary["synced"], &summary["skipped"], &summary["failed"]),
            (&json!(1), &json!(1), &json!(1))
        );
        assert_eq!(summary["duration_ms"], 1500);
        assert_eq!(merged.report["destination"], "h.example/m");
        assert_eq!(merged.report["images"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn plan_reports_merge_by_state_and_kinds_do_not_mix() {
        let plan = |states: &[&str]| {
            let entries: Vec<Value> = states.iter().map(|s| json!({ "state": s })).collect();
            json!({ "entries": entries, "summary": {} })
        };
        let merged = merge(&[
            ("a".to_owned(), plan(&["new", "current"])),
            ("b".to_owned(), plan(&["source-missing"])),
        ])
        .unwrap();
        assert_eq!(merged.report["summary"]["new"], 1);
        assert_eq!(merged.report["summary"]["source_missing"], 1);
        assert_eq!(merged.failed, 0);
        let mixed = merge(&[
            ("a".to_owned(), plan(&["new"])),
            ("b".to_owned(), sync_report(&["synced"], 1)),
        ]);
        assert!(mixed
            .unwrap_err()
            .starts_with("b: a sync report cannot be merged"));
        let bad = merge(&[("x.json".to_owned(), json!({ "hello": 1 }))]);
        assert!(bad.unwrap_err().starts_with("x.json: not a ferry report"));
    }
}
