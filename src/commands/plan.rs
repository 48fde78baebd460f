//! `ferry plan` and `ferry verify`: the digest-first view of a list. Both expand whole
//! repositories and HEAD each side once per tag; `plan` shows what a sync would do, `verify`
//! fails unless every target holds its source's digest. Neither copies anything.

use std::sync::Arc;
use std::time::Instant;

use super::{expand_namespaces, load, say, say_err, Namespaced};
use crate::error::{Error, Outcome};
use crate::model::platform::PlatformFilter;
use crate::model::{Digest, ImageError};
use crate::model::{Selection, State, Target};
use crate::plan::artifacts::{Held, Lookups};
use crate::plan::namespace::Discovery;
use crate::plan::{self, Dropped, PlanEntry};
use crate::registry::RegistryClient;
use crate::report::{
    artifact_label, escape, kind_and_message, plan_json, verify_json, write_file, ArtifactChecks,
    PlanSummary, RunInfo, Verdict, VerifySummary,
};
use crate::settings::PlanSettings;

/// A finished plan: every entry, the tags the filters dropped, the summary, and what the
/// report says of the run.
struct Planned {
    entries: Vec<PlanEntry>,
    dropped: Vec<Dropped>,
    summary: PlanSummary,
    info: RunInfo,
    /// What the sync would pull from each metered registry, and what is left there.
    quota_lines: Vec<String>,
    /// What each namespace line listed, and the lines that could not be listed.
    namespaces: Namespaced,
    client: Arc<RegistryClient>,
    started: Instant,
}

/// Reads the inputs and plans them, as `plan` and `verify` (`command`) both need.
async fn planned(settings: &PlanSettings, command: &'static str) -> Result<Planned, Error> {
    let started = Instant::now();
    let loaded = load(settings).await?;
    let info = RunInfo {
        command,
        shard: settings.inputs.shard,
        fingerprint: loaded.fingerprint.clone(),
        destination: super::label(&settings.destinations()),
        destinations: super::several(&settings.destinations()),
        rerun: settings.rerun.clone(),
    };
    let client = Arc::new(RegistryClient::new(loaded.registry));
    let namespaces = expand_namespaces(settings, &client, &loaded.namespaces).await;
    let mut jobs = loaded.jobs;
    jobs.extend(namespaces.jobs.iter().cloned());
    // Nothing stops a plan midway: a signal ends the process (its sender is gone at once).
    let (_, unstopped) = tokio::sync::watch::channel(crate::exec::Stop::Run);
    let (entries, dropped) = plan::plan_all(
        &client,
        &settings.options,
        jobs,
        plan::Lookups::Both,
        &unstopped,
    )
    .await
    .map_err(Error::Input)?;
    let mut summary = PlanSummary::of(&entries, dropped.len(), client.requests_sent(), started);
    summary.throttled = client.throttled_responses();
    // A namespace line that could not be listed is an entry whose state is not known.
    summary.total += namespaces.failed.len();
    summary.unknown += namespaces.failed.len();
    let quota_lines = quota_lines(&client, &entries);
    Ok(Planned {
        entries,
        dropped,
        summary,
        info,
        quota_lines,
        namespaces,
        client,
        started,
    })
}

/// One line per metered registry (one that sent Docker Hub's `ratelimit-*` headers): the
/// pulls (manifest GETs) the sync would spend there, and what its quota has left, e.g.
/// `pulls  registry-1.docker.io: 5 needed for 5 images; 96 of 100 left in its 6h window`.
fn quota_lines(client: &RegistryClient, entries: &[PlanEntry]) -> Vec<String> {
    client
        .quotas()
        .into_iter()
        .map(|(host, quota)| {
            let pulls: Vec<_> = entries
                .iter()
                .filter(|e| e.needs_copy())
                .filter_map(|e| client.pulls_for(&e.job.source))
                .filter(|p| p.host == host)
                .collect();
            let needed: u64 = pulls.iter().map(|p| p.pulls).sum();
            let mut line = format!(
                "pulls  {host}: {}{needed} needed for {}",
                if pulls.iter().any(|p| p.estimated) {
                    "about "
                } else {
                    ""
                },
                crate::words::count(pulls.len(), "image", "images")
            );
            match (quota.remaining, quota.limit) {
                (Some(left), Some(limit)) => line.push_str(&format!("; {left} of {limit} left")),
                (Some(left), None) => line.push_str(&format!("; {left} left")),
                _ => {}
            }
            if let Some(window) = quota.window {
                let window = crate::words::format_duration(window);
                line.push_str(&format!(" in its {window} window"));
            }
            if pulls.iter().any(|p| p.estimated) {
                line.push_str(&format!(
                    " (a multi-platform image counts 1 + its platforms, taken as {} until a \
                     copy reads one)",
                    crate::registry::quota::ASSUMED_PLATFORMS
                ));
            }
            if quota.remaining.is_some_and(|left| left < needed) {
                let at = quota.frees_by(std::time::SystemTime::now());
                line.push_str(&format!(
                    "; not enough: a sync with --pull-budget defers the rest{}",
                    at.map(|at| format!(
                        " (the window frees them by {} at the latest)",
                        crate::registry::quota::utc(at)
                    ))
                    .unwrap_or_default()
                ));
            }
            line
        })
        .collect()
}

/// Writes `--report` (`report`, made only when asked) when asked; a failure to write makes a
/// success an `ImagesFailed`.
fn finish(settings: &PlanSettings, report: impl FnOnce() -> String, outcome: Outcome) -> Outcome {
    let Some(path) = &settings.report else {
        return outcome;
    };
    match write_file(path, &report()) {
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
    let planned = planned(settings, "plan").await?;
    print_table(&planned.entries);
    // Why lookups failed (the table has room for the kind only), each reason once.
    for line in failure_lines(&planned.entries) {
        say(line);
    }
    for failed in &planned.namespaces.failed {
        say(format!(
            "unknown  {} ({}): {}",
            failed.source,
            failed.origin,
            error_text(failed.error.as_deref())
        ));
    }
    if settings.options.missing_only.is_some() {
        let unasked = planned
            .entries
            .iter()
            .filter(|e| e.state == State::Current && e.source_digest.is_none())
            .count();
        say(format!(
            "--missing-only: {} present at the destination taken as current, their sources not asked",
            crate::words::count(unasked, "entry", "entries")
        ));
    }
    for line in &planned.quota_lines {
        say(escape::one_line(line));
    }
    if settings.verbosity > 0 {
        for line in namespace_lines(&planned.namespaces.discovery) {
            say(escape::one_line(&line));
        }
        for drop in &planned.dropped {
            say(format!(
                "dropped  {}  ({}, {})",
                drop.source, drop.reason, drop.origin
            ));
        }
    }
    say(planned.summary.line());
    let report = || plan_json(&planned.info, &planned.entries, &planned.summary);
    Ok(finish(settings, report, Outcome::Done))
}

pub async fn verify(settings: &PlanSettings) -> Result<Outcome, Error> {
    let mut planned = planned(settings, "verify").await?;
    let checks = check_artifacts(settings, &planned.client, &planned.entries).await;
    let asked = checks.iter().any(Option::is_some);
    if asked {
        planned.summary.requests = planned.client.requests_sent();
        planned.summary.throttled = planned.client.throttled_responses();
        planned.summary.seconds = planned.started.elapsed().as_secs_f64();
    }
    let entries = &planned.entries;
    let platforms_asked = settings
        .options
        .platforms
        .as_ref()
        .map(|p| format!(" (--platform {})", p.label()))
        .unwrap_or_default();
    let mut verdicts = Vec::with_capacity(entries.len());
    for (entry, checks) in entries.iter().zip(&checks) {
        let target = &entry.job.target;
        let verdict = Verdict::with_artifacts(entry.state, checks);
        verdicts.push(verdict);
        let word = verdict.as_str();
        // A target holding an index of a platform subset, and the upstream digest it records.
        let holds = match entry.platform.as_deref() {
            Some(PlatformFilter::Filtered {
                upstream,
                platforms,
            }) => escape::one_line(&format!(" ({platforms} of upstream {upstream})")).into_owned(),
            _ => String::new(),
        };
        let line = match verdict {
            Verdict::Verified => match checks {
                Some(Ok(checked)) => format!(
                    "{word:<9} {target}  {}{holds}  with {}",
                    digest(&entry.target_digest),
                    crate::words::count(checked.len(), "artifact", "artifacts")
                ),
                _ => format!(
                    "{word:<9} {target}  {}{holds}",
                    digest(&entry.target_digest)
                ),
            },
            Verdict::MissingArtifacts => {
                let problems: Vec<String> = match checks {
                    Some(Ok(checked)) => checked
                        .iter()
                        .filter(|c| c.held != Held::Present)
                        .map(|c| {
                            let label = artifact_label(&c.found);
                            match &c.target_digest {
                                Some(held) => format!("{label} mismatch (target {held})"),
                                None => format!("{label} {}", c.held.as_str()),
                            }
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let line = format!("{word} {target}  {}", problems.join(", "));
                escape::one_line(&line).into_owned()
            }
            Verdict::Missing => format!(
                "{word:<9} {target}  (source {})",
                digest(&entry.source_digest)
            ),
            Verdict::Mismatch if !holds.is_empty() => format!(
                "{word:<9} {target}  target {}{holds} != source {}{platforms_asked}",
                digest(&entry.target_digest),
                digest(&entry.source_digest)
            ),
            Verdict::Mismatch => format!(
                "{word:<9} {target}  target {} != source {}",
                digest(&entry.target_digest),
                digest(&entry.source_digest)
            ),
            Verdict::Skipped => format!(
                "{word:<9} {target}  (platform) {}",
                escape::one_line(skip_reason(entry))
            ),
            Verdict::NoSource => {
                format!("{word:<9} {target}  ({} does not exist)", entry.job.source)
            }
            Verdict::Error => {
                let error = match checks {
                    Some(Err(error)) => Some(error),
                    _ => entry.error.as_deref(),
                };
                format!("{word:<9} {target}  {}", error_text(error))
            }
        };
        say(line);
    }
    let mut summary = VerifySummary::of(&verdicts, asked, &planned.summary);
    // A namespace line that could not be listed: its targets could not be told.
    for failed in &planned.namespaces.failed {
        let word = Verdict::Error.as_str();
        say(format!(
            "{word:<9} {}  {}",
            failed.target,
            error_text(failed.error.as_deref())
        ));
        summary.total += 1;
        summary.problems += 1;
        summary.error += 1;
    }
    say(summary.line());
    let outcome = match summary.problems {
        0 => Outcome::Done,
        _ => Outcome::ImagesFailed,
    };
    let report = || verify_json(&planned.info, entries, &checks, &summary);
    Ok(finish(settings, report, outcome))
}

/// For `plan -v`: which repositories each namespace line stands for, how they were listed,
/// and which `--exclude-repos` dropped.
fn namespace_lines(discovery: &Discovery) -> Vec<String> {
    let mut lines = Vec::new();
    for expanded in &discovery.expanded {
        let entry = &expanded.entry;
        lines.push(format!(
            "namespace  {} ({}): {} by {}",
            entry.namespace,
            entry.origin,
            crate::words::count(expanded.repositories.len(), "repository", "repositories"),
            expanded.method
        ));
        for relative in &expanded.repositories {
            lines.push(format!(
                "listed  {}/{relative}  ({}, {})",
                entry.namespace.name(),
                entry.namespace,
                entry.origin
            ));
        }
        for relative in &expanded.excluded {
            lines.push(format!(
                "excluded  {}/{relative}  (--exclude-repos, {})",
                entry.namespace.name(),
                entry.origin
            ));
        }
    }
    lines
}

/// Artifacts checked at once (`verify --signatures`).
const CHECKS_AT_ONCE: usize = 16;

/// `verify --signatures`: for each verified entry that has them, what its target holds of
/// its source's artifacts (one per entry, `None` where not looked at).
async fn check_artifacts(
    settings: &PlanSettings,
    client: &RegistryClient,
    entries: &[PlanEntry],
) -> Vec<ArtifactChecks> {
    use futures_util::StreamExt as _;
    let lookups = Lookups::default();
    let selection = |entry: &PlanEntry| match entry.job.signatures {
        Some(false) => None,
        Some(true) => Some(settings.signatures.clone().unwrap_or_else(Selection::all)),
        None => settings.signatures.clone(),
    };
    let lookups = &lookups;
    let checks = entries.iter().map(|entry| {
        let selection = selection(entry);
        async move {
            let (Some(selection), State::Current, Some(digest), Target::Registry(target)) = (
                selection,
                entry.state,
                entry.target_digest.as_ref().map(Digest::to_string),
                &entry.job.target,
            ) else {
                return None;
            };
            let source = entry.job.source.repository();
            Some(
                lookups
                    .check(client, &source, &target.repository(), &digest, &selection)
                    .await,
            )
        }
    });
    futures_util::stream::iter(checks)
        .buffered(CHECKS_AT_ONCE)
        .collect()
        .await
}

fn digest(value: &Option<Digest>) -> String {
    value.as_ref().map_or_else(
        || "-".to_owned(),
        |d| escape::one_line(&d.to_string()).into_owned(),
    )
}

fn short(value: &Option<Digest>) -> String {
    match value {
        Some(d) => d.to_string().chars().take(19).collect(),
        None => "-".to_owned(),
    }
}

/// A failure as `kind: message` on one line, its control characters (a registry's words may
/// hold some) escaped.
fn error_text(error: Option<&ImageError>) -> String {
    error.map_or_else(String::new, |e| {
        escape::one_line(&kind_and_message(e.kind, &e.message)).into_owned()
    })
}

/// Why a source has none of the platforms asked for, as the plan found.
fn skip_reason(entry: &PlanEntry) -> &str {
    match entry.platform.as_deref() {
        Some(PlatformFilter::Skipped { reason }) => reason,
        _ => "the source has none of the platforms --platform asks for",
    }
}

/// Why the lookups of failed entries failed, and why sources have none of the platforms asked
/// for, one line per distinct reason (a registry that cannot be reached, or a TLS hint, is said
/// once, not once per entry): `unknown  SOURCE: REASON`, or `unknown  SOURCE, SOURCE and 3
/// more (5 entries): REASON`.
fn failure_lines(entries: &[PlanEntry]) -> Vec<String> {
    let mut reasons: Vec<(&str, String, Vec<String>)> = Vec::new();
    let explained = |e: &&PlanEntry| e.error.is_some() || e.state == State::OtherPlatform;
    for entry in entries.iter().filter(explained) {
        let state = entry.state.as_str();
        let text = match &entry.error {
            Some(_) => error_text(entry.error.as_deref()),
            None => escape::one_line(skip_reason(entry)).into_owned(),
        };
        let source = entry.job.source.to_string();
        match reasons
            .iter_mut()
            .find(|(s, t, _)| *s == state && *t == text)
        {
            Some((_, _, sources)) => sources.push(source),
            None => reasons.push((state, text, vec![source])),
        }
    }
    const NAMED: usize = 3;
    reasons
        .into_iter()
        .map(|(state, text, sources)| {
            let who = match sources.len() {
                1 => sources[0].clone(),
                n if n <= NAMED => format!("{} ({n} entries)", sources.join(", ")),
                n => format!(
                    "{} and {} more ({n} entries)",
                    sources[..NAMED].join(", "),
                    n - NAMED
                ),
            };
            format!("{state}  {who}: {text}")
        })
        .collect()
}

/// Which column a failed lookup shows in: the source's when the source's digest is not known
/// (see [`plan::decide`]), else the target's.
fn failed_on_source(entry: &PlanEntry) -> bool {
    entry.error.is_some() && entry.source_digest.is_none()
}

fn print_table(entries: &[PlanEntry]) {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            let failed = |on_source: bool, digest: &Option<Digest>| match &e.error {
                Some(error) if failed_on_source(e) == on_source => {
                    format!("{} ({})", short(digest), error.kind)
                }
                // An index of a platform subset: compared by the upstream digest it records.
                _ if !on_source
                    && matches!(e.platform.as_deref(), Some(PlatformFilter::Filtered { .. })) =>
                {
                    format!("{} (filtered)", short(digest))
                }
                _ => short(digest),
            };
            [
                e.state.as_str().to_owned(),
                e.job.source.to_string(),
                e.job.target.to_string(),
                failed(true, &e.source_digest),
                failed(false, &e.target_digest),
            ]
            .map(|cell| escape::one_line(&cell).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureKind, Job, Origin, Target};
    use crate::reference::ImageRef;

    fn failed(name: &str, message: &str) -> PlanEntry {
        let job = Job {
            origin: Origin {
                file: "list".into(),
                line: 1,
            },
            source: ImageRef::parse(name).unwrap(),
            target: Target::Registry(ImageRef::parse(&format!("h.example/{name}")).unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        };
        PlanEntry {
            state: State::Unknown,
            error: Some(Box::new(ImageError::new(
                FailureKind::Tls,
                message.to_owned(),
            ))),
            ..PlanEntry::unlooked(job)
        }
    }

    #[test]
    fn each_reason_is_said_once_on_one_line() {
        let hint = "h.example speaks plain HTTP, not HTTPS";
        let entries: Vec<PlanEntry> = ["a:1", "b:1", "c:1", "d:1", "e:1"]
            .iter()
            .map(|name| failed(name, hint))
            .chain([failed("f:1", "\x1b[2Jdenied\nunknown  forged")])
            .collect();
        assert_eq!(
            failure_lines(&entries),
            [
                "unknown  docker.io/library/a:1, docker.io/library/b:1, docker.io/library/c:1 \
                 and 2 more (5 entries): tls: h.example speaks plain HTTP, not HTTPS",
                "unknown  docker.io/library/f:1: tls: \\x1b[2Jdenied\\nunknown  forged",
            ]
        );
        assert!(failed_on_source(&entries[0]));
    }
}
