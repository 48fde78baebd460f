//! `ferry report merge`: the JSON reports of one run's shards as one. Every report says which
//! command wrote it (`sync`, `plan`, `verify`), its shard (`K/N`, or none) and its run's list
//! fingerprint; merging refuses reports that cannot be one run's (other commands, other
//! inputs, another N, a shard twice) and says which shards are missing. The summary is counted
//! again from the merged entries, and the failed entries make a failed list.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::FailedLine;
use crate::model::Rerun;
use crate::words::count;

/// The command whose reports are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sync,
    Plan,
    Verify,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sync => "sync",
            Kind::Plan => "plan",
            Kind::Verify => "verify",
        }
    }

    /// Where the report keeps its entries.
    fn key(self) -> &'static str {
        match self {
            Kind::Sync => "images",
            Kind::Plan | Kind::Verify => "entries",
        }
    }
}

/// The merged report and what the caller says and decides from it.
#[derive(Debug)]
pub struct Merged {
    pub report: Value,
    pub kind: Kind,
    /// What the merged entries hold, e.g. `15 images: 14 synced, 0 skipped, 1 failed`.
    pub summary: String,
    /// Which shards were merged, e.g. `shards 0, 2 of 3` or `the whole list`.
    pub shards: String,
    /// Images that failed (sync) or targets with a problem (verify); a plan fails none.
    pub failed: usize,
    /// N, and the shards of it no report was given for.
    pub count: u64,
    pub missing: Vec<u64>,
    /// The failed entries (images that failed, targets with a problem), for a failed list.
    pub failed_lines: Vec<FailedLine>,
    /// What a rerun of them needs (the first report's).
    pub rerun: Rerun,
    /// Things to say that do not stop the merge.
    pub warnings: Vec<String>,
}

/// One report, as read.
struct Report<'a> {
    name: &'a str,
    kind: Kind,
    /// `(K, N)`; `None` for a run of the whole list.
    shard: Option<(u64, u64)>,
    fingerprint: &'a str,
    version: &'a str,
    destination: &'a str,
    /// When it was written (RFC 3339), when it says.
    finished_at: Option<&'a str>,
    rerun: Rerun,
    entries: &'a [Value],
    summary: &'a Value,
}

impl Report<'_> {
    /// `(K, N)`, the whole list being shard 0 of 1.
    fn place(&self) -> (u64, u64) {
        self.shard.unwrap_or((0, 1))
    }

    /// `shard 1/3`, or `the whole list (no --shard)`.
    fn which(&self) -> String {
        match self.shard {
            Some((k, n)) => format!("shard {k}/{n}"),
            None => "of the whole list (no --shard)".to_owned(),
        }
    }
}

fn read<'a>(name: &'a str, report: &'a Value) -> Result<Report<'a>, String> {
    let Some(object) = report.as_object() else {
        return Err(format!("{name}: not a ferry report (not a JSON object)"));
    };
    let Some(command) = object.get("command") else {
        if object.contains_key("images") || object.contains_key("entries") {
            return Err(format!(
                "{name}: a report from an older ferry, which does not record its command, shard \
                 and list fingerprint that merging needs: run that command again with ferry {} \
                 and merge the new report",
                env!("CARGO_PKG_VERSION")
            ));
        }
        return Err(format!(
            "{name}: not a ferry report (no \"command\", \"images\" or \"entries\")"
        ));
    };
    let kind = match command.as_str() {
        Some("sync") => Kind::Sync,
        Some("plan") => Kind::Plan,
        Some("verify") => Kind::Verify,
        _ => {
            return Err(format!(
                "{name}: \"command\" is {command}, not \"sync\", \"plan\" or \"verify\""
            ))
        }
    };
    let field = |key: &str| {
        object
            .get(key)
            .ok_or_else(|| format!("{name}: not a whole ferry report: no \"{key}\""))
    };
    let text = |key: &str| {
        field(key)?
            .as_str()
            .ok_or_else(|| format!("{name}: \"{key}\" is not a string"))
    };
    let shard = match field("shard")? {
        Value::Null => None,
        shard => match (shard["index"].as_u64(), shard["count"].as_u64()) {
            (Some(k), Some(n)) if k < n => Some((k, n)),
            _ => {
                return Err(format!(
                    "{name}: \"shard\" is {shard}, not {{\"index\": K, \"count\": N}} with K < N"
                ))
            }
        },
    };
    let rerun = match object.get("rerun") {
        None => Rerun::default(),
        Some(rerun) => serde_json::from_value(rerun.clone())
            .map_err(|e| format!("{name}: \"rerun\" is not what ferry writes: {e}"))?,
    };
    let entries = field(kind.key())?
        .as_array()
        .ok_or_else(|| format!("{name}: \"{}\" is not an array", kind.key()))?;
    Ok(Report {
        name,
        kind,
        shard,
        fingerprint: text("fingerprint")?,
        version: object
            .get("ferry_version")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        destination: object
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        finished_at: object
            .get("finished_at")
            .and_then(Value::as_str)
            .filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        rerun,
        entries,
        summary: object.get("summary").unwrap_or(&Value::Null),
    })
}

/// A fingerprint as people compare them: `sha256:` and 12 hex digits.
fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(19).collect()
}

/// Checks that `reports` are shards of one run, each once; the error names the files.
fn check(reports: &[Report<'_>]) -> Result<(), String> {
    let first = &reports[0];
    for report in &reports[1..] {
        if report.kind != first.kind {
            return Err(format!(
                "{} is a `ferry {}` report and {} a `ferry {}` report: merge the reports of \
                 one command",
                first.name,
                first.kind.name(),
                report.name,
                report.kind.name()
            ));
        }
        if report.fingerprint != first.fingerprint {
            let versions = if report.version == first.version {
                String::new()
            } else {
                format!(
                    " (they were written by ferry {} and {})",
                    first.version, report.version
                )
            };
            return Err(format!(
                "{} and {} are not shards of one run: their list fingerprints differ ({} and \
                 {}){versions}; the shards of a run share the list, the destination and the tag \
                 filters",
                first.name,
                report.name,
                short(first.fingerprint),
                short(report.fingerprint)
            ));
        }
        if report.place().1 != first.place().1 {
            return Err(format!(
                "{} is {} and {} is {}: the shards of a run share N",
                first.name,
                first.which(),
                report.name,
                report.which()
            ));
        }
    }
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for report in reports {
        if let Some(other) = seen.insert(report.place().0, report.name) {
            return Err(format!(
                "{other} and {} are both {}: give each shard's report once",
                report.name,
                report.which()
            ));
        }
    }
    Ok(())
}

/// The merged report, as written.
#[derive(Serialize)]
struct MergedReport<'a> {
    ferry_version: &'static str,
    command: &'static str,
    /// Always `null`: the merged report stands for the whole list (see `shards`).
    shard: Option<()>,
    shards: Value,
    fingerprint: &'a str,
    destination: &'a str,
    /// The latest of the reports' `finished_at`; left out when none says one.
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    rerun: &'a Rerun,
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<Value>>,
    summary: Value,
}

/// Merges `reports` (each named by its file, for errors), which must be shards of one run,
/// each once; entries keep the order of the reports and within each its own. Shards not given
/// are listed in [`Merged::missing`], for the caller to fail on.
pub fn merge(reports: &[(String, Value)]) -> Result<Merged, String> {
    if reports.is_empty() {
        return Err("no report to merge".to_owned());
    }
    let read: Vec<Report<'_>> = reports
        .iter()
        .map(|(name, report)| read(name, report))
        .collect::<Result<_, _>>()?;
    check(&read)?;
    let first = &read[0];
    let kind = first.kind;
    let n = first.place().1;
    let merged: Vec<u64> = {
        let mut k: Vec<u64> = read.iter().map(|r| r.place().0).collect();
        k.sort_unstable();
        k
    };
    let missing: Vec<u64> = (0..n).filter(|k| !merged.contains(k)).collect();
    let mut warnings = Vec::new();
    for report in &read[1..] {
        if report.rerun != first.rerun {
            warnings.push(format!(
                "{} ran with other options than {} (TLS, certificates, registries.conf or \
                 engine): the failed list's command is {}'s",
                report.name, first.name, first.name
            ));
        }
    }
    // Each entry keeps the time of the report it came from, which the merged report's own
    // `finished_at` (the latest) would lose.
    let items: Vec<Value> = read
        .iter()
        .flat_map(|r| {
            r.entries.iter().cloned().map(|mut entry| {
                if let (Some(at), Some(object)) = (r.finished_at, entry.as_object_mut()) {
                    object
                        .entry("finished_at")
                        .or_insert_with(|| Value::from(at));
                }
                entry
            })
        })
        .collect();
    let finished_at = read
        .iter()
        .filter_map(|r| r.finished_at)
        .max_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(str::to_owned);
    let summaries: Vec<&Value> = read.iter().map(|r| r.summary).collect();
    let (summary, line, failed) = match kind {
        Kind::Sync => sync_summary(&items, &summaries),
        Kind::Plan => plan_summary(&items, &summaries),
        Kind::Verify => verify_summary(&items, &summaries),
    };
    let failed_lines = failed_lines(kind, &read)?;
    let report = MergedReport {
        ferry_version: env!("CARGO_PKG_VERSION"),
        command: kind.name(),
        shard: None,
        shards: json!({ "count": n, "merged": merged, "missing": missing }),
        fingerprint: first.fingerprint,
        destination: first.destination,
        finished_at,
        rerun: &first.rerun,
        images: (kind == Kind::Sync).then(|| items.clone()),
        entries: (kind != Kind::Sync).then_some(items),
        summary,
    };
    let shards = match (first.shard, n) {
        (None, _) => "the whole list".to_owned(),
        (Some(_), n) => {
            let merged: Vec<String> = merged.iter().map(u64::to_string).collect();
            format!(
                "{} {} of {n}",
                if merged.len() == 1 { "shard" } else { "shards" },
                merged.join(", ")
            )
        }
    };
    Ok(Merged {
        report: serde_json::to_value(&report).expect("a merged report always serializes"),
        kind,
        summary: line,
        shards,
        failed,
        count: n,
        missing,
        failed_lines,
        rerun: first.rerun.clone(),
        warnings,
    })
}

/// How many of `items` have `field` equal to `value`.
fn tally(items: &[Value], field: &str, value: &str) -> usize {
    items
        .iter()
        .filter(|item| item[field].as_str() == Some(value))
        .count()
}

fn sum(summaries: &[&Value], field: &str) -> u64 {
    summaries.iter().filter_map(|s| s[field].as_u64()).sum()
}

fn longest(summaries: &[&Value], field: &str) -> f64 {
    summaries
        .iter()
        .filter_map(|s| s[field].as_f64())
        .fold(0.0, f64::max)
}

/// A sync's counts: an image that is neither synced nor skipped failed.
fn sync_summary(items: &[Value], summaries: &[&Value]) -> (Value, String, usize) {
    let synced = tally(items, "status", "synced");
    let skipped = tally(items, "status", "skipped");
    let failed = items.len() - synced - skipped;
    let summary = json!({
        "total": items.len(),
        "synced": synced,
        "skipped": skipped,
        "failed": failed,
        // Shards run side by side: the run took as long as its longest shard.
        "duration_ms": summaries.iter().filter_map(|s| s["duration_ms"].as_u64()).max().unwrap_or(0),
        "interrupted": summaries.iter().any(|s| s["interrupted"].as_bool() == Some(true)),
    });
    let mut line = format!(
        "{}: {synced} synced, {skipped} skipped, {failed} failed",
        count(items.len(), "image", "images")
    );
    let mut summary = summary;
    if let Some(artifacts) = artifact_counts(items) {
        let states = ["copied", "current", "failed", "needs-native"];
        let counts: Vec<usize> = states
            .iter()
            .map(|state| {
                artifacts
                    .iter()
                    .filter(|a| a["state"].as_str() == Some(*state))
                    .count()
            })
            .collect();
        let mut object = serde_json::Map::new();
        for (state, n) in states.iter().zip(&counts) {
            object.insert(state.replace('-', "_"), json!(n));
        }
        summary["artifacts"] = Value::Object(object);
        let _ = std::fmt::Write::write_fmt(
            &mut line,
            format_args!(
                "; {}: {} copied, {} current, {} failed, {} needs-native",
                count(artifacts.len(), "artifact", "artifacts"),
                counts[0],
                counts[1],
                counts[2],
                counts[3]
            ),
        );
    }
    (summary, line, failed)
}

/// Every artifact of the images that had `--signatures` (`None` when none had).
fn artifact_counts(items: &[Value]) -> Option<Vec<&Value>> {
    let mut had = false;
    let mut artifacts = Vec::new();
    for item in items {
        if let Some(list) = item.get("artifacts").and_then(Value::as_array) {
            had = true;
            artifacts.extend(list);
        }
    }
    had.then_some(artifacts)
}

/// A plan's counts, by state (`other-platform` only when an entry has it, as a plan's own
/// summary says it); a plan fails nothing.
fn plan_summary(items: &[Value], summaries: &[&Value]) -> (Value, String, usize) {
    let mut states = vec!["new", "changed", "current", "source-missing", "unknown"];
    if tally(items, "state", "other-platform") > 0 {
        states.push("other-platform");
    }
    let counts: Vec<usize> = states.iter().map(|s| tally(items, "state", s)).collect();
    let mut summary = serde_json::Map::new();
    summary.insert("total".into(), json!(items.len()));
    for (state, n) in states.iter().zip(&counts) {
        summary.insert(state.replace('-', "_"), json!(n));
    }
    for field in ["dropped_tags", "requests", "throttled"] {
        summary.insert(field.into(), json!(sum(summaries, field)));
    }
    summary.insert("seconds".into(), json!(longest(summaries, "seconds")));
    let parts: Vec<String> = states
        .iter()
        .zip(&counts)
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let line = format!(
        "{}: {}",
        count(items.len(), "entry", "entries"),
        parts.join(", ")
    );
    (Value::Object(summary), line, 0)
}

/// A verification's counts: a target that is neither `verified` nor `skipped` (its source has
/// none of the platforms asked for) is a problem.
fn verify_summary(items: &[Value], summaries: &[&Value]) -> (Value, String, usize) {
    let verified = tally(items, "status", "verified");
    let skipped = tally(items, "status", "skipped");
    let problems = items.len() - verified - skipped;
    let missing = tally(items, "status", "missing");
    let mismatch = tally(items, "status", "mismatch");
    let no_source = tally(items, "status", "no-source");
    let error = tally(items, "status", "error");
    let mut summary = json!({
        "total": items.len(),
        "verified": verified,
        "problems": problems,
        "missing": missing,
        "mismatch": mismatch,
        "no_source": no_source,
        "error": error,
        "requests": sum(summaries, "requests"),
        "throttled": sum(summaries, "throttled"),
        "seconds": longest(summaries, "seconds"),
    });
    let skipped = match skipped {
        0 => String::new(),
        n => {
            summary["skipped"] = json!(n);
            format!(", {n} skipped (platform)")
        }
    };
    let line = format!(
        "{}: {verified} verified{skipped}, {problems} with problems ({missing} missing, \
         {mismatch} mismatch, {no_source} no-source, {error} error)",
        count(items.len(), "target", "targets")
    );
    (summary, line, problems)
}

/// The entries a rerun should take: a sync's failed images, a verification's targets with a
/// problem (a plan has none), with their list lines, origins and why.
fn failed_lines(kind: Kind, reports: &[Report<'_>]) -> Result<Vec<FailedLine>, String> {
    let mut lines = Vec::new();
    for report in reports {
        for (at, item) in report.entries.iter().enumerate() {
            let status = item["status"].as_str().unwrap_or("?");
            let reason = match (kind, status) {
                (Kind::Plan, _)
                | (Kind::Sync, "synced" | "skipped")
                | (Kind::Verify, "verified" | "skipped") => continue,
                (Kind::Sync, _) => item["error"]["kind"].as_str().unwrap_or(status).to_owned(),
                (Kind::Verify, "error") => match item["error"]["kind"].as_str() {
                    Some(kind) => format!("error: {kind}"),
                    None => "error".to_owned(),
                },
                (Kind::Verify, _) => status.to_owned(),
            };
            let list_line = item["list_line"].as_str().ok_or_else(|| {
                format!(
                    "{}: {} {at} has no \"list_line\"",
                    report.name,
                    kind.key().trim_end_matches('s')
                )
            })?;
            lines.push(FailedLine {
                list_line: list_line.to_owned(),
                origin: item["origin"].as_str().unwrap_or("?").to_owned(),
                reason,
            });
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINGERPRINT: &str =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn header(command: &str, shard: Option<(u64, u64)>, fingerprint: &str) -> Value {
        json!({
            "ferry_version": "0.1.0",
            "command": command,
            "shard": shard.map(|(k, n)| json!({ "index": k, "count": n })),
            "fingerprint": fingerprint,
            "destination": "h.example/m",
            "rerun": { "flags": ["--dest-tls-verify=false"], "dest_dir": null, "filter_flags": [], "credentials": [] },
        })
    }

    fn sync_report(shard: Option<(u64, u64)>, statuses: &[&str], duration_ms: u64) -> Value {
        let images: Vec<Value> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "source": format!("docker.io/library/s{i}:1"),
                    "target": format!("h.example/m/docker.io/library/s{i}:1"),
                    "list_line": format!("docker.io/library/s{i}:1 h.example/m/docker.io/library/s{i}:1"),
                    "origin": format!("list:{}", i + 1),
                    "status": s,
                    "error": (*s == "failed").then(|| json!({ "kind": "network", "message": "x" })),
                })
            })
            .collect();
        let mut report = header("sync", shard, FINGERPRINT);
        report["images"] = json!(images);
        report["summary"] =
            json!({ "total": images.len(), "duration_ms": duration_ms, "interrupted": false });
        report
    }

    fn verify_report(shard: Option<(u64, u64)>, statuses: &[&str]) -> Value {
        let entries: Vec<Value> = statuses
            .iter()
            .map(|s| json!({ "status": s, "list_line": "docker.io/library/x:1 h.example/m/x:1", "origin": "l:1" }))
            .collect();
        let mut report = header("verify", shard, FINGERPRINT);
        report["entries"] = json!(entries);
        report["summary"] = json!({ "requests": 4, "seconds": 0.5 });
        report
    }

    fn named(reports: Vec<Value>) -> Vec<(String, Value)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(k, r)| (format!("shard-{k}.json"), r))
            .collect()
    }

    #[test]
    fn shards_merge_into_one_report_counted_again() {
        let merged = merge(&named(vec![
            sync_report(Some((0, 3)), &["synced", "skipped"], 900),
            sync_report(Some((1, 3)), &["failed"], 1500),
            sync_report(Some((2, 3)), &[], 10),
        ]))
        .unwrap();
        assert_eq!(merged.failed, 1);
        assert!(merged.missing.is_empty());
        assert_eq!(merged.shards, "shards 0, 1, 2 of 3");
        assert_eq!(merged.summary, "3 images: 1 synced, 1 skipped, 1 failed");
        let report = &merged.report;
        assert_eq!(report["summary"]["total"], 3);
        assert_eq!(report["summary"]["failed"], 1);
        assert_eq!(report["summary"]["duration_ms"], 1500);
        assert_eq!(report["command"], "sync");
        assert_eq!(report["shard"], Value::Null);
        assert_eq!(
            report["shards"],
            json!({ "count": 3, "merged": [0, 1, 2], "missing": [] })
        );
        assert_eq!(report["fingerprint"], FINGERPRINT);
        assert_eq!(report["images"].as_array().unwrap().len(), 3);
        assert_eq!(
            merged.failed_lines,
            [FailedLine {
                list_line: "docker.io/library/s0:1 h.example/m/docker.io/library/s0:1".into(),
                origin: "list:1".into(),
                reason: "network".into(),
            }]
        );
    }

    #[test]
    fn the_merged_report_finished_with_its_last_shard_and_each_entry_keeps_its_time() {
        let mut early = sync_report(Some((0, 3)), &["synced"], 1);
        early["finished_at"] = json!("2026-12-03T10:00:00Z");
        let mut late = sync_report(Some((1, 3)), &["synced"], 1);
        late["finished_at"] = json!("2026-12-03T11:30:00+01:00");
        let mut latest = sync_report(Some((2, 3)), &["synced"], 1);
        latest["finished_at"] = json!("2026-12-03T10:45:00Z");
        // An older report says no time: its entries get none.
        let merged = merge(&named(vec![early, late, latest])).unwrap();
        assert_eq!(merged.report["finished_at"], "2026-12-03T10:45:00Z");
        let times: Vec<&Value> = merged.report["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["finished_at"])
            .collect();
        assert_eq!(
            times,
            [
                "2026-12-03T10:00:00Z",
                "2026-12-03T11:30:00+01:00",
                "2026-12-03T10:45:00Z"
            ]
        );
        let old = merge(&named(vec![sync_report(None, &["synced"], 1)])).unwrap();
        assert!(old.report.get("finished_at").is_none());
        assert!(old.report["images"][0].get("finished_at").is_none());
    }

    #[test]
    fn the_artifacts_of_every_shard_are_counted_again() {
        let mut with = sync_report(Some((0, 2)), &["skipped", "synced"], 1);
        with["images"][0]["artifacts"] = json!([
            { "kind": "signature", "state": "current" },
            { "kind": "referrer", "state": "needs-native" },
        ]);
        with["images"][1]["artifacts"] = json!([{ "kind": "sbom", "state": "copied" }]);
        let without = sync_report(Some((1, 2)), &["synced"], 1);
        let merged = merge(&named(vec![with, without.clone()])).unwrap();
        assert_eq!(
            merged.summary,
            "3 images: 2 synced, 1 skipped, 0 failed; 3 artifacts: 1 copied, 1 current, 0 \
             failed, 1 needs-native"
        );
        assert_eq!(
            merged.report["summary"]["artifacts"],
            json!({ "copied": 1, "current": 1, "failed": 0, "needs_native": 1 })
        );
        let mut other = without;
        other["shard"] = json!({ "index": 0, "count": 2 });
        let merged = merge(&named(vec![other])).unwrap();
        assert!(merged.report["summary"].get("artifacts").is_none());
    }

    #[test]
    fn verify_reports_count_their_problems() {
        let merged = merge(&named(vec![
            verify_report(Some((0, 2)), &["verified", "missing"]),
            verify_report(Some((1, 2)), &["mismatch", "error"]),
        ]))
        .unwrap();
        assert_eq!(merged.failed, 3);
        assert_eq!(
            merged.summary,
            "4 targets: 1 verified, 3 with problems (1 missing, 1 mismatch, 0 no-source, 1 error)"
        );
        assert_eq!(merged.report["summary"]["problems"], 3);
        assert_eq!(merged.report["summary"]["requests"], 8);
        let reasons: Vec<&str> = merged
            .failed_lines
            .iter()
            .map(|l| l.reason.as_str())
            .collect();
        assert_eq!(reasons, ["missing", "mismatch", "error"]);
        // A target whose source has none of the platforms asked for is no problem.
        let merged = merge(&named(vec![verify_report(None, &["verified", "skipped"])])).unwrap();
        assert_eq!(merged.failed, 0);
        assert_eq!(
            merged.summary,
            "2 targets: 1 verified, 1 skipped (platform), 0 with problems (0 missing, 0 \
             mismatch, 0 no-source, 0 error)"
        );
        assert_eq!(merged.report["summary"]["skipped"], 1);
        assert!(merged.failed_lines.is_empty());
    }

    #[test]
    fn a_missing_shard_is_named_and_the_rest_merged() {
        let merged = merge(&named(vec![
            sync_report(Some((2, 4)), &["synced"], 1),
            sync_report(Some((0, 4)), &["synced"], 1),
        ]))
        .unwrap();
        assert_eq!(merged.missing, [1, 3]);
        assert_eq!(merged.count, 4);
        assert_eq!(merged.shards, "shards 0, 2 of 4");
    }

    #[test]
    fn reports_that_are_not_one_runs_shards_each_once_are_refused() {
        let error = |reports: Vec<Value>| merge(&named(reports)).unwrap_err();
        assert_eq!(
            error(vec![
                sync_report(Some((0, 2)), &[], 1),
                sync_report(Some((0, 2)), &[], 1)
            ]),
            "shard-0.json and shard-1.json are both shard 0/2: give each shard's report once"
        );
        assert_eq!(
            error(vec![sync_report(None, &[], 1), sync_report(None, &[], 1)]),
            "shard-0.json and shard-1.json are both of the whole list (no --shard): give each \
             shard's report once"
        );
        assert_eq!(
            error(vec![
                sync_report(Some((0, 2)), &[], 1),
                sync_report(Some((1, 3)), &[], 1)
            ]),
            "shard-0.json is shard 0/2 and shard-1.json is shard 1/3: the shards of a run share N"
        );
        assert_eq!(
            error(vec![
                sync_report(Some((0, 2)), &[], 1),
                sync_report(None, &[], 1)
            ]),
            "shard-0.json is shard 0/2 and shard-1.json is of the whole list (no --shard): the \
             shards of a run share N"
        );
        assert_eq!(
            error(vec![
                sync_report(Some((0, 2)), &[], 1),
                verify_report(Some((1, 2)), &[])
            ]),
            "shard-0.json is a `ferry sync` report and shard-1.json a `ferry verify` report: \
             merge the reports of one command"
        );
        let mut other = sync_report(Some((1, 2)), &[], 1);
        other["fingerprint"] = json!(format!("sha256:{}", "2".repeat(64)));
        other["ferry_version"] = json!("0.2.0");
        assert_eq!(
            error(vec![sync_report(Some((0, 2)), &[], 1), other]),
            "shard-0.json and shard-1.json are not shards of one run: their list fingerprints \
             differ (sha256:111111111111 and sha256:222222222222) (they were written by ferry \
             0.1.0 and 0.2.0); the shards of a run share the list, the destination and the tag \
             filters"
        );
    }

    #[test]
    fn an_old_or_foreign_report_is_refused_with_what_to_do() {
        let old =
            json!({ "ferry_version": "0.1.0", "destination": "h", "images": [], "summary": {} });
        let error = merge(&[("old.json".to_owned(), old)]).unwrap_err();
        assert!(
            error.starts_with(
                "old.json: a report from an older ferry, which does not record its \
                               command, shard and list fingerprint that merging needs: run that \
                               command again with ferry "
            ),
            "{error}"
        );
        let error = merge(&[("x.json".to_owned(), json!({ "hello": 1 }))]).unwrap_err();
        assert_eq!(
            error,
            "x.json: not a ferry report (no \"command\", \"images\" or \"entries\")"
        );
        let mut no_fingerprint = sync_report(None, &[], 1);
        no_fingerprint
            .as_object_mut()
            .unwrap()
            .remove("fingerprint");
        let error = merge(&[("n.json".to_owned(), no_fingerprint)]).unwrap_err();
        assert_eq!(
            error,
            "n.json: not a whole ferry report: no \"fingerprint\""
        );
        let mut bad_shard = sync_report(None, &[], 1);
        bad_shard["shard"] = json!({ "index": 3, "count": 3 });
        let error = merge(&[("b.json".to_owned(), bad_shard)]).unwrap_err();
        assert!(error.starts_with("b.json: \"shard\" is "), "{error}");
    }
}
