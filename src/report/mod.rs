//! What ferry tells people and programs about a run: one line per image as it finishes and a
//! summary (both built from scheduler events), the JSON report, and the failed list in input
//! format so a rerun can take exactly what failed.

pub mod catalog;
pub mod console;
pub mod escape;
pub mod log;
pub mod merge;
pub mod progress;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::platform::PlatformFilter;
use crate::model::State;
use crate::plan::artifacts::{Checked, Found, Held};
use crate::plan::PlanEntry;
use crate::reference::ImageRef;

use crate::input::InputFormat;
use crate::model::{
    ArtifactCounts, ArtifactResult, ArtifactState, Digest, FailureKind, ImageError, ImageResult,
    Rerun, Results, Status, Summary,
};
use crate::shard::Shard;
use crate::words::count;

/// The line printed when an image finishes, e.g.
/// `synced  h/m/docker.io/library/nginx:1.25  1.2s  2 blobs copied, 0 reused`. A failure's
/// message (often a registry's words) is put on one line, its control characters escaped.
pub fn result_line(result: &ImageResult) -> String {
    let word = match (result.platform.as_deref(), result.status) {
        (Some(PlatformFilter::Skipped { .. }), Status::Skipped) => "skipped (platform)",
        (_, status) => status_word(status),
    };
    let mut line = format!("{word:<7} {}  {}", result.target, seconds(result.duration));
    if let (Some(PlatformFilter::Skipped { reason }), None) =
        (result.platform.as_deref(), &result.error)
    {
        let _ = write!(line, "  {}", escape::one_line(&short(reason)));
        return line;
    }
    match (&result.error, result.status) {
        (Some(error), _) => {
            let _ = write!(
                line,
                "  {}",
                escape::one_line(&short(&kind_and_message(error.kind, &error.message)))
            );
        }
        (None, Status::Synced) => {
            let p = result.counts;
            let _ = write!(
                line,
                "  {} copied, {} reused",
                count(p.blobs_copied, "blob", "blobs"),
                p.blobs_reused
            );
            if p.images_present > 0 {
                let _ = write!(
                    line,
                    ", {} already present",
                    count(p.images_present, "image", "images")
                );
            }
            if let Some(filtered) = filtered(result) {
                let _ = write!(line, "; {filtered}");
            }
        }
        (None, _) => {
            if let Some(digest) = &result.digest {
                let _ = write!(line, "  current at {digest}");
            }
            if let Some(filtered) = filtered(result) {
                let _ = write!(line, " ({filtered})");
            }
        }
    }
    if let (None, Some(artifacts)) = (&result.error, &result.artifacts) {
        let _ = write!(
            line,
            "; {}",
            artifacts_phrase(&ArtifactCounts::of(artifacts))
        );
    }
    line
}

/// `linux/arm64 of upstream sha256:…`: what an index of a platform subset holds.
fn filtered(result: &ImageResult) -> Option<String> {
    match result.platform.as_deref() {
        Some(PlatformFilter::Filtered {
            upstream,
            platforms,
        }) => Some(escape::one_line(&format!("{platforms} of upstream {upstream}")).into_owned()),
        _ => None,
    }
}

/// An image's artifacts as its result line tells them: `3 artifacts: 2 copied, 1 current`
/// (the states it has), or `no artifacts`.
pub fn artifacts_phrase(counts: &ArtifactCounts) -> String {
    if counts.total() == 0 {
        return "no artifacts".to_owned();
    }
    let states: Vec<String> = ArtifactState::ALL
        .into_iter()
        .filter(|state| counts.get(*state) > 0)
        .map(|state| format!("{} {}", counts.get(state), state.as_str()))
        .collect();
    format!(
        "{}: {}",
        count(counts.total(), "artifact", "artifacts"),
        states.join(", ")
    )
}

/// `kind: message`, as result and error lines show a failure; a message that already starts
/// with its kind (a registry's `unauthorized: …`) is not given it twice.
pub fn kind_and_message(kind: FailureKind, message: &str) -> String {
    kind_and_message_str(kind.as_str(), message)
}

/// [`kind_and_message`] of a kind as a report names it.
fn kind_and_message_str(kind: &str, message: &str) -> String {
    match message.get(..kind.len()) {
        Some(start)
            if start.eq_ignore_ascii_case(kind) && message[kind.len()..].starts_with(':') =>
        {
            format!("{kind}{}", &message[kind.len()..])
        }
        _ => format!("{kind}: {message}"),
    }
}

/// The closing summary, e.g. `5 images: 4 synced, 0 skipped, 1 failed in 3.2s`.
pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!(
        "{}: {} synced, {} skipped, {} failed in {}",
        count(summary.total, "image", "images"),
        summary.synced,
        summary.skipped,
        summary.failed,
        seconds(Duration::from_millis(summary.duration_ms as u64))
    );
    if let Some(artifacts) = &summary.artifacts {
        let _ = write!(
            line,
            "; {}: {} copied, {} current, {} failed, {} needs-native",
            count(artifacts.total(), "artifact", "artifacts"),
            artifacts.copied,
            artifacts.current,
            artifacts.failed,
            artifacts.needs_native
        );
    }
    if summary.interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Synced => "synced",
        Status::Skipped => "skipped",
        Status::Failed => "failed",
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// A message on one line. The cause is usually at the end and the context that names the image
/// or the step at the start, so a message too long for a line loses its middle, at word
/// boundaries, never its ends.
fn short(message: &str) -> String {
    const MAX: usize = 400;
    const HEAD: usize = 150;
    let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = flat.chars().collect();
    if chars.len() <= MAX {
        return flat;
    }
    let tail = MAX - HEAD;
    // Cut at spaces, so no word is split; a message without spaces there is cut where it is.
    let head_end = chars[..HEAD]
        .iter()
        .rposition(|c| *c == ' ')
        .filter(|&at| at > HEAD / 2)
        .unwrap_or(HEAD);
    let tail_start = chars.len() - tail;
    let tail_start = chars[tail_start..]
        .iter()
        .position(|c| *c == ' ')
        .filter(|&at| at < tail / 2)
        .map_or(tail_start, |at| tail_start + at + 1);
    let head: String = chars[..head_end].iter().collect();
    let tail: String = chars[tail_start..].iter().collect();
    format!("{} … {}", head.trim_end(), tail.trim_start())
}

/// What makes a report self-describing: the command that wrote it, its shard, the run's list
/// fingerprint (see [`crate::shard::fingerprint_with`]), the destination, and what a rerun of its
/// failed entries needs. `report merge` reads it back to tell which reports belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `sync` (also for `serve`'s runs), `plan` or `verify`.
    pub command: &'static str,
    pub shard: Option<Shard>,
    pub fingerprint: String,
    /// As [`crate::model::Destination::label`] names it; several destinations' labels
    /// joined by `, `.
    pub destination: String,
    /// Every destination's label when the run has several (each entry of the report then
    /// names its own, see [`destination_of`]); empty for one.
    pub destinations: Vec<String>,
    pub rerun: Rerun,
}

/// Which of several destinations (`destinations`, their labels) `target` goes to: the one
/// whose label and a `/` begin it (the longest, should one prefix hold another). `None` for
/// a run into one destination.
pub fn destination_of<'a>(target: &str, destinations: &'a [String]) -> Option<&'a str> {
    destinations
        .iter()
        .filter(|label| {
            target
                .strip_prefix(label.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|label| label.len())
        .map(String::as_str)
}

/// With several destinations, a line per destination that counts its entries, e.g.
/// `to h.example/m: 2 synced, 0 skipped, 1 failed`; none for one destination.
pub fn destination_lines(results: &Results, destinations: &[String]) -> Vec<String> {
    if destinations.is_empty() {
        return Vec::new();
    }
    // Synced, skipped and failed, by destination.
    let mut counts = vec![[0usize; 3]; destinations.len()];
    for result in results.iter().flatten() {
        let Some(label) = destination_of(&result.target, destinations) else {
            continue;
        };
        let at = destinations.iter().position(|d| d == label);
        if let Some(count) = at.and_then(|at| counts.get_mut(at)) {
            let slot = match result.status {
                Status::Synced => 0,
                Status::Skipped => 1,
                Status::Failed => 2,
            };
            count[slot] += 1;
        }
    }
    (destinations.iter().zip(counts))
        .map(|(label, [synced, skipped, failed])| {
            format!("to {label}: {synced} synced, {skipped} skipped, {failed} failed")
        })
        .collect()
}

/// Every report: the [`RunInfo`], then its entries (`images` for a sync, `entries` for a plan
/// or a verification) and its summary.
#[derive(Serialize)]
struct JsonReport<'a, E: Serialize, S: Serialize> {
    ferry_version: &'static str,
    command: &'static str,
    /// `{ "index": K, "count": N }`, or `null` for a run of the whole list.
    shard: Option<Shard>,
    fingerprint: &'a str,
    destination: &'a str,
    /// When the report was written (the run's end), RFC 3339 in UTC.
    finished_at: String,
    rerun: &'a Rerun,
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<E>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<E>,
    summary: S,
}

/// Now, as reports write times: RFC 3339 in UTC, to the second (`2026-12-03T12:51:36Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A report as pretty JSON, with a final newline.
fn json_text<E: Serialize, S: Serialize>(info: &RunInfo, entries: E, summary: S) -> String {
    read_json_text(info, entries, summary).expect("a report of entries held always serializes")
}

/// [`json_text`] of entries read as they are written, which may fail.
fn read_json_text<E: Serialize, S: Serialize>(
    info: &RunInfo,
    entries: E,
    summary: S,
) -> io::Result<String> {
    let mut text = Vec::new();
    write_json(&mut text, info, entries, summary)?;
    String::from_utf8(text).map_err(io::Error::other)
}

/// Writes a report to `out` as pretty JSON, with a final newline, as it is serialized (a
/// sync's images one by one, see [`Images`]); text a registry sent is escaped as
/// [`escape::json`] escapes it.
fn write_json<E: Serialize, S: Serialize>(
    out: &mut dyn Write,
    info: &RunInfo,
    entries: E,
    summary: S,
) -> io::Result<()> {
    let (images, entries) = match info.command {
        "sync" => (Some(entries), None),
        _ => (None, Some(entries)),
    };
    let report = JsonReport {
        ferry_version: env!("CARGO_PKG_VERSION"),
        command: info.command,
        shard: info.shard,
        fingerprint: &info.fingerprint,
        destination: &info.destination,
        finished_at: now_rfc3339(),
        rerun: &info.rerun,
        images,
        entries,
        summary,
    };
    let mut writer = escape::JsonWriter::new(io::BufWriter::new(out));
    serde_json::to_writer_pretty(&mut writer, &report)?;
    writer.write_all(b"\n")?;
    writer.finish()?.flush()
}

/// A sync's results as the report's `images`, each made as it is written.
struct Images<'a> {
    info: &'a RunInfo,
    results: &'a Results,
}

impl Serialize for Images<'_> {
    /// Read back one by one: the report is written without holding its images.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut images = serializer.serialize_seq(Some(self.results.len()))?;
        for result in self.results.iter() {
            let result = result.map_err(|e| S::Error::custom(format!("a result is lost: {e}")))?;
            images.serialize_element(&JsonImage::of(&result, self.info))?;
        }
        images.end()
    }
}

impl<'a> JsonImage<'a> {
    fn of(r: &'a ImageResult, info: &'a RunInfo) -> JsonImage<'a> {
        JsonImage {
            source: &r.source,
            target: &r.target,
            destination: destination_of(&r.target, &info.destinations),
            origin: r.origin.to_string(),
            list_line: r.list_line(),
            status: r.status,
            digest: r.digest.as_deref(),
            blobs_copied: r.counts.blobs_copied,
            blobs_reused: r.counts.blobs_reused,
            manifests_written: r.counts.manifests_written,
            attempts: r.attempts,
            duration_ms: r.duration.as_millis(),
            error: r.error.as_deref(),
            platform: r.platform.as_deref(),
            artifacts: r.artifacts.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct JsonImage<'a> {
    source: &'a str,
    target: &'a str,
    /// Of several destinations, the one the target is under.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    origin: String,
    /// The entry as a list line, for a failed list (`report merge --failed-list`).
    list_line: std::borrow::Cow<'a, str>,
    status: Status,
    digest: Option<&'a str>,
    blobs_copied: u32,
    blobs_reused: u32,
    manifests_written: u32,
    attempts: u32,
    duration_ms: u128,
    error: Option<&'a ImageError>,
    /// What `--platform` did to it (left out without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a PlatformFilter>,
    /// What travelled with the image (`--signatures`), each under the digest it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<&'a [ArtifactResult]>,
}

/// The JSON report of a sync as a string.
pub fn json_report(info: &RunInfo, results: &Results, summary: Summary) -> io::Result<String> {
    read_json_text(info, Images { info, results }, summary)
}

/// One entry of a failed list: its list line, where it came from and why it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedLine {
    pub list_line: String,
    pub origin: String,
    pub reason: String,
}

impl FailedLine {
    /// Whether the line stands for many tags (a whole repository, or a namespace's
    /// repositories): its rerun needs the tag filters.
    fn whole_repository(&self) -> bool {
        let source = self.list_line.split_whitespace().next().unwrap_or_default();
        ImageRef::parse(source).is_ok_and(|s| s.is_whole_repository())
            || crate::input::namespace::is_pattern(source)
    }
}

/// The command that feeds a failed list back: `ferry sync THIS_FILE`, the run's options that
/// reach the registries and pick the engine, `--dest-dir` when a line leaves its target to it,
/// the tag filters when a line is a whole repository, and `--format list` when the file's own
/// name would be read as another format.
pub fn rerun_command(lines: &[FailedLine], rerun: &Rerun, file: Option<&Path>) -> String {
    let mut flags: Vec<String> = Vec::new();
    if let Some(dir) = &rerun.dest_dir {
        if lines
            .iter()
            .any(|l| crate::model::names_no_target(&l.list_line))
        {
            flags.extend(["--dest-dir".to_owned(), dir.clone()]);
        }
    }
    flags.extend(rerun.flags.iter().cloned());
    if lines.iter().any(FailedLine::whole_repository) {
        flags.extend(rerun.filter_flags.iter().cloned());
    }
    let named_as_other_format = file
        .and_then(|f| f.to_str())
        .is_some_and(|f| f != "-" && InputFormat::for_path(f) != InputFormat::List);
    if named_as_other_format {
        flags.extend(["--format".to_owned(), "list".to_owned()]);
    }
    let mut command = String::from("ferry sync THIS_FILE");
    for flag in &flags {
        command.push(' ');
        command.push_str(&crate::exec::shell_word(flag));
    }
    command
}

/// A failed list: `lines` in list format, one per line with its origin and reason, under a
/// header (`what` failed) with the command that feeds them back (see [`rerun_command`]) and,
/// when the run had credentials, a line saying they are not written.
pub fn failed_list_text(
    what: &str,
    lines: &[FailedLine],
    rerun: &Rerun,
    file: Option<&Path>,
) -> String {
    // Each line on one line, whatever a report read back holds: a line break in a comment
    // would add an entry.
    let mut text = format!(
        "# {}\n",
        escape::one_line(&format!(
            "{what}; feed back with: {}",
            rerun_command(lines, rerun, file)
        ))
    );
    if !rerun.credentials.is_empty() {
        let _ = writeln!(
            text,
            "# secrets are never written here: give the rerun {} (or its environment \
             variables) as this run had them",
            escape::one_line(&rerun.credentials.join(" and "))
        );
    }
    for line in lines {
        let _ = writeln!(
            text,
            "{}  # {} ({})",
            escape::one_line(&line.list_line),
            escape::one_line(&line.origin),
            escape::one_line(&line.reason)
        );
    }
    text
}

/// The failed images of a sync as a failed list (see [`failed_list_text`]); when some of them
/// had `--signatures` (or their input's `signatures:` key, which a list line cannot say), the
/// rerun's command takes it too.
pub fn failed_list(results: &Results, rerun: &Rerun, file: Option<&Path>) -> io::Result<String> {
    let mut lines = Vec::new();
    let mut artifacts = false;
    for result in results.iter() {
        let result = result?;
        if result.status != Status::Failed {
            continue;
        }
        artifacts |= result.artifacts.is_some();
        lines.push(FailedLine {
            list_line: result.list_line().into_owned(),
            origin: result.origin.to_string(),
            reason: (result.error.as_ref())
                .map_or("failed", |e| e.kind.as_str())
                .to_owned(),
        });
    }
    let mut rerun = rerun.clone();
    if artifacts && !rerun.flags.iter().any(|f| f.starts_with("--signatures")) {
        rerun.flags.push("--signatures".to_owned());
    }
    Ok(failed_list_text(
        "images that failed in the last ferry run",
        &lines,
        &rerun,
        file,
    ))
}

/// One event as the fields of a JSON log line for `--log-format json` (see [`log::event`]),
/// with its level: `event` names it, and the fields it carries follow (`image`, `registry`,
/// `attempt`, `kind`, `wait_ms`, …). Events of an entry carry its `index`, and `planned` its
/// `source` and `target` (the view adds them to the entry's other events). A failed attempt
/// is a warning, a failed image an error.
pub fn json_event(event: &crate::run::events::Event) -> (tracing::Level, serde_json::Value) {
    use crate::run::events::{Event, Wait};
    use serde_json::json;
    use tracing::Level;
    let ms = |d: &Duration| d.as_millis() as u64;
    let info = |value| (Level::INFO, value);
    match event {
        Event::RunStarted { entries } => {
            info(json!({ "event": "run_started", "entries": entries }))
        }
        Event::Planned {
            index,
            state,
            source,
            target,
        } => info(json!({
            "event": "planned", "index": index, "state": state, "source": source,
            "target": target,
        })),
        Event::LookupThrottled { registry, wait } => info(json!({
            "event": "lookup_throttled", "registry": registry, "wait_ms": ms(wait),
        })),
        Event::AttemptStarted {
            index,
            target,
            attempt,
            of,
        } => info(json!({
            "event": "attempt_started", "index": index, "image": target,
            "attempt": attempt, "of": of,
        })),
        Event::Progress { index, progress } => info(json!({
            "event": "progress", "index": index, "blobs_done": progress.blobs_done,
            "blobs_total": progress.blobs_total, "bytes_done": progress.bytes_done,
            "bytes_total": progress.bytes_total,
        })),
        Event::AttemptFailed {
            index,
            target,
            attempt,
            kind,
            message,
            retry_in,
        } => (
            Level::WARN,
            json!({
                "event": "attempt_failed", "index": index, "image": target,
                "attempt": attempt, "kind": kind, "message": message,
                "retry_in_ms": retry_in.as_ref().map(ms),
            }),
        ),
        Event::Waiting {
            index,
            target,
            reason,
        } => info(match reason {
            Wait::Turn { registry } => json!({
                "event": "waiting", "index": index, "image": target, "for": "turn",
                "registry": registry,
            }),
            Wait::Retry { next, of, delay } => json!({
                "event": "waiting", "index": index, "image": target, "for": "retry",
                "attempt": next, "of": of, "wait_ms": ms(delay),
            }),
        }),
        Event::Finished { index, result } => (
            match result.status {
                Status::Failed => Level::ERROR,
                _ => Level::INFO,
            },
            with_artifacts(
                result.artifacts.as_deref(),
                json!({
                    "event": "finished", "index": index, "image": result.target,
                    "source": result.source, "target": result.target, "status": result.status,
                    "digest": result.digest, "attempts": result.attempts,
                    "duration_ms": result.duration.as_millis() as u64,
                    "kind": result.error.as_ref().map(|e| e.kind),
                    "message": result.error.as_ref().map(|e| &e.message),
                }),
            ),
        ),
        Event::RunFinished { summary, .. } => {
            info(json!({ "event": "run_finished", "summary": summary }))
        }
    }
}

/// `event` with the counts of an image's `artifacts`, when it had `--signatures`.
fn with_artifacts(
    artifacts: Option<&[ArtifactResult]>,
    mut event: serde_json::Value,
) -> serde_json::Value {
    if let Some(artifacts) = artifacts {
        event["artifacts"] = serde_json::json!(ArtifactCounts::of(artifacts));
    }
    event
}

/// The files a sync writes when it ends: the JSON report and the failed list.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub report: Option<PathBuf>,
    pub failed_list: Option<PathBuf>,
    /// What the report says of the run, and what the failed list's rerun command needs.
    pub info: RunInfo,
}

impl Outputs {
    /// Writes both files; the error names the one that could not be written.
    pub fn write(&self, results: &Results, summary: Summary) -> Result<(), String> {
        if let Some(path) = &self.report {
            let info = &self.info;
            write_with(path, |out| {
                write_json(out, info, Images { info, results }, summary)
            })
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.failed_list {
            failed_list(results, &self.info.rerun, Some(path))
                .and_then(|text| write_file(path, &text))
                .map_err(|e| format!("cannot write the failed list {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Writes `contents` to `path` atomically (temporary file + rename), so a reader never sees a
/// half-written report; `-` is standard output.
pub fn write_file(path: &Path, contents: &str) -> io::Result<()> {
    write_with(path, |out| out.write_all(contents.as_bytes()))
}

/// Writes what `write` writes to `path` as [`write_file`] does, without holding it whole.
fn write_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    if path == Path::new("-") {
        let mut stdout = io::stdout().lock();
        write(&mut stdout)?;
        return stdout.flush();
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(".{name}.ferry-tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    if let Err(error) = write(&mut file).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, path)
}

/// Counts over a plan or a verification.
#[derive(Debug, Serialize)]
pub struct PlanSummary {
    pub total: usize,
    pub new: usize,
    pub changed: usize,
    pub current: usize,
    pub source_missing: usize,
    pub unknown: usize,
    /// Sources with none of the platforms `--platform` asks for (left out when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub other_platform: usize,
    pub dropped_tags: usize,
    pub requests: u64,
    /// 429 answers waited out.
    pub throttled: u64,
    pub seconds: f64,
}

impl PlanSummary {
    pub fn of(
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
            other_platform: count(State::OtherPlatform),
            dropped_tags,
            requests,
            throttled: 0,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    pub fn line(&self) -> String {
        let throttled = match self.throttled {
            0 => String::new(),
            n => format!(", {n} answered 429"),
        };
        let other_platform = match self.other_platform {
            0 => String::new(),
            n => format!(", {n} other-platform"),
        };
        format!(
            "{}: {} new, {} changed, {} current, {} source-missing, {} unknown{other_platform} ({}{throttled} in {:.1}s)",
            count(self.total, "entry", "entries"),
            self.new,
            self.changed,
            self.current,
            self.source_missing,
            self.unknown,
            count(self.requests, "request", "requests"),
            self.seconds
        )
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    source: String,
    target: String,
    /// Of several destinations, the one the target is under.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    origin: String,
    list_line: String,
    state: State,
    source_digest: Option<&'a Digest>,
    target_digest: Option<&'a Digest>,
    error: Option<&'a ImageError>,
    /// With `--platform`: the subset the target's index holds, or why the source has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a PlatformFilter>,
}

/// The JSON report of `plan`.
pub fn plan_json(info: &RunInfo, entries: &[PlanEntry], summary: &PlanSummary) -> String {
    let entries: Vec<JsonEntry<'_>> = entries
        .iter()
        .map(|e| JsonEntry {
            source: e.job.source.to_string(),
            target: e.job.target.to_string(),
            destination: destination_of(&e.job.target.to_string(), &info.destinations),
            origin: e.job.origin.to_string(),
            list_line: e.job.as_list_line(),
            state: e.state,
            source_digest: e.source_digest.as_ref(),
            target_digest: e.target_digest.as_ref(),
            error: e.error.as_deref(),
            platform: e.platform.as_deref(),
        })
        .collect();
    json_text(info, entries, summary)
}

/// What `verify` found at one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The target holds the source's digest.
    Verified,
    /// The target does not exist.
    Missing,
    /// The target holds another digest.
    Mismatch,
    /// The source does not exist.
    NoSource,
    /// A lookup failed, so nothing could be compared.
    Error,
    /// The source has none of the platforms `--platform` asks for: nothing to hold. No
    /// problem.
    Skipped,
    /// The target holds the source's digest, but not every artifact of the source
    /// (`verify --signatures`).
    MissingArtifacts,
}

/// What `verify --signatures` found of one entry's artifacts: `None` when they were not looked
/// at (not asked for, or the image itself is not verified), an error when they could not be
/// looked up.
pub type ArtifactChecks = Option<Result<Vec<Checked>, ImageError>>;

impl Verdict {
    pub fn of(state: State) -> Verdict {
        match state {
            State::Current => Verdict::Verified,
            State::New => Verdict::Missing,
            State::Changed => Verdict::Mismatch,
            State::SourceMissing => Verdict::NoSource,
            State::Unknown => Verdict::Error,
            State::OtherPlatform => Verdict::Skipped,
        }
    }

    /// The verdict on an entry in `state` whose artifacts `checks` found.
    pub fn with_artifacts(state: State, checks: &ArtifactChecks) -> Verdict {
        match (Verdict::of(state), checks) {
            (Verdict::Verified, Some(Err(_))) => Verdict::Error,
            (Verdict::Verified, Some(Ok(checked)))
                if checked.iter().any(|c| c.held != Held::Present) =>
            {
                Verdict::MissingArtifacts
            }
            (verdict, _) => verdict,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Missing => "missing",
            Verdict::Mismatch => "mismatch",
            Verdict::NoSource => "no-source",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
            Verdict::MissingArtifacts => "missing-artifacts",
        }
    }
}

/// Counts over a verification: every target is `verified`, `skipped` (its source has none of
/// the platforms asked for) or one of the problems.
#[derive(Debug, Serialize)]
pub struct VerifySummary {
    pub total: usize,
    pub verified: usize,
    /// Left out when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    pub problems: usize,
    pub missing: usize,
    pub mismatch: usize,
    pub no_source: usize,
    pub error: usize,
    /// Verified images lacking an artifact of their source (`verify --signatures`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_artifacts: Option<usize>,
    pub requests: u64,
    /// 429 answers waited out.
    pub throttled: u64,
    pub seconds: f64,
}

impl VerifySummary {
    /// The counts of `verdicts` (one per entry); `artifacts` when they were checked.
    pub fn of(verdicts: &[Verdict], artifacts: bool, plan: &PlanSummary) -> VerifySummary {
        let count = |verdict| verdicts.iter().filter(|v| **v == verdict).count();
        let verified = count(Verdict::Verified);
        let skipped = count(Verdict::Skipped);
        VerifySummary {
            total: verdicts.len(),
            verified,
            skipped,
            problems: verdicts.len() - verified - skipped,
            missing: count(Verdict::Missing),
            mismatch: count(Verdict::Mismatch),
            no_source: count(Verdict::NoSource),
            error: count(Verdict::Error),
            missing_artifacts: artifacts.then(|| count(Verdict::MissingArtifacts)),
            requests: plan.requests,
            throttled: plan.throttled,
            seconds: plan.seconds,
        }
    }

    /// `2 targets: 1 verified, 1 with problems (4 requests in 0.2s)`, with `, 1 skipped
    /// (platform)` after the verified ones when there are such.
    pub fn line(&self) -> String {
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(", {n} skipped (platform)"),
        };
        format!(
            "{}: {} verified{skipped}, {} with problems ({} in {:.1}s)",
            count(self.total, "target", "targets"),
            self.verified,
            self.problems,
            count(self.requests, "request", "requests"),
            self.seconds
        )
    }
}

#[derive(Serialize)]
struct JsonVerified<'a> {
    source: String,
    target: String,
    /// Of several destinations, the one the target is under.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    origin: String,
    list_line: String,
    status: Verdict,
    source_digest: Option<&'a Digest>,
    target_digest: Option<&'a Digest>,
    error: Option<&'a ImageError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a PlatformFilter>,
    /// Each artifact of the source and what the target holds of it (`--signatures`).
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<Vec<serde_json::Value>>,
}

/// The JSON report of `verify`: each target's verdict (with what `checks`, one per entry or
/// none, found of its artifacts), and the counts of verified targets and of problems.
pub fn verify_json(
    info: &RunInfo,
    entries: &[PlanEntry],
    checks: &[ArtifactChecks],
    summary: &VerifySummary,
) -> String {
    let entries: Vec<JsonVerified<'_>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let checks = checks.get(i).unwrap_or(&None);
            JsonVerified {
                source: e.job.source.to_string(),
                target: e.job.target.to_string(),
                destination: destination_of(&e.job.target.to_string(), &info.destinations),
                origin: e.job.origin.to_string(),
                list_line: e.job.as_list_line(),
                status: Verdict::with_artifacts(e.state, checks),
                source_digest: e.source_digest.as_ref(),
                target_digest: e.target_digest.as_ref(),
                error: match checks {
                    Some(Err(error)) => Some(error),
                    _ => e.error.as_deref(),
                },
                platform: e.platform.as_deref(),
                artifacts: match checks {
                    Some(Ok(checked)) => Some(checked.iter().map(checked_json).collect()),
                    _ => None,
                },
            }
        })
        .collect();
    json_text(info, entries, summary)
}

/// One artifact as a verification's report tells it.
fn checked_json(checked: &Checked) -> serde_json::Value {
    let found = &checked.found;
    let mut value = serde_json::json!({
        "kind": found.kind,
        "subject": found.subject,
        "tag": found.tag,
        "digest": found.digest,
        "state": checked.held.as_str(),
    });
    if let Some(artifact_type) = &found.artifact_type {
        value["artifact_type"] = serde_json::json!(artifact_type);
    }
    if let Some(held) = &checked.target_digest {
        value["target_digest"] = serde_json::json!(held);
    }
    value
}

/// An artifact as verify's lines name it: `signature sha256-….sig`, `referrer sha256:…
/// (application/spdx+json)`.
pub fn artifact_label(found: &Found) -> String {
    let name = found.tag.as_deref().unwrap_or(&found.digest);
    match &found.artifact_type {
        Some(artifact_type) if found.tag.is_none() => {
            format!("{} {name} ({artifact_type})", found.kind.as_str())
        }
        _ => format!("{} {name}", found.kind.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counts;
    use crate::model::Origin;

    /// A sync's report of `results`, as the run's end writes it.
    fn report_of(info: &RunInfo, results: &[ImageResult], summary: Summary) -> String {
        json_report(info, &Results::of(results.to_vec()), summary).unwrap()
    }

    fn result(status: Status, error: Option<(FailureKind, &str)>) -> ImageResult {
        ImageResult {
            origin: Origin {
                file: "list.txt".into(),
                line: 4,
            },
            source: "docker.io/library/nginx:1.25".into(),
            target: "h.example/m/docker.io/library/nginx:1.25".into(),
            line: crate::model::ListLine::Written("docker.io/library/nginx:1.25".into()),
            status,
            digest: None,
            counts: Counts {
                blobs_copied: 4,
                blobs_reused: 1,
                images_present: 0,
                manifests_written: 3,
                bytes_copied: None,
            },
            attempts: 1,
            duration: Duration::from_millis(1234),
            error: error.map(|(kind, message)| Box::new(ImageError::new(kind, message))),
            platform: None,
            artifacts: None,
        }
    }

    #[test]
    fn lines_say_what_happened() {
        assert_eq!(
            result_line(&result(Status::Synced, None)),
            "synced  h.example/m/docker.io/library/nginx:1.25  1.2s  4 blobs copied, 1 reused"
        );
        assert_eq!(
            result_line(&result(
                Status::Failed,
                Some((FailureKind::NotFound, "manifest unknown"))
            )),
            "failed  h.example/m/docker.io/library/nginx:1.25  1.2s  not-found: manifest unknown"
        );
    }

    #[test]
    fn lines_say_what_a_platform_filter_did() {
        let up = format!("sha256:{}", "a".repeat(64));
        let filtered = ImageResult {
            platform: Some(Box::new(PlatformFilter::Filtered {
                upstream: up.clone(),
                platforms: "linux/arm64".into(),
            })),
            ..result(Status::Synced, None)
        };
        assert_eq!(
            result_line(&filtered),
            format!(
                "synced  h.example/m/docker.io/library/nginx:1.25  1.2s  4 blobs copied, 1 \
                 reused; linux/arm64 of upstream {up}"
            )
        );
        let current = ImageResult {
            digest: Some(up.clone()),
            ..filtered.clone()
        };
        let current = ImageResult {
            status: Status::Skipped,
            ..current
        };
        assert_eq!(
            result_line(&current),
            format!(
                "skipped h.example/m/docker.io/library/nginx:1.25  1.2s  current at {up} \
                 (linux/arm64 of upstream {up})"
            )
        );
        let other = ImageResult {
            status: Status::Skipped,
            platform: Some(Box::new(PlatformFilter::Skipped {
                reason: "the source is an image for linux/amd64 only\x1b[2J".into(),
            })),
            ..result(Status::Skipped, None)
        };
        assert_eq!(
            result_line(&other),
            "skipped (platform) h.example/m/docker.io/library/nginx:1.25  1.2s  the source is \
             an image for linux/amd64 only\\x1b[2J"
        );
        let json = report_of(
            &RunInfo {
                command: "sync",
                shard: None,
                fingerprint: "f".into(),
                destination: "h.example/m".into(),
                destinations: Vec::new(),
                rerun: Rerun::default(),
            },
            &[other, result(Status::Synced, None)],
            Summary::default(),
        );
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            json["images"][0]["platform"],
            serde_json::json!({
                "outcome": "skipped",
                "reason": "the source is an image for linux/amd64 only\x1b[2J"
            })
        );
        assert!(json["images"][1].get("platform").is_none());
    }

    #[test]
    fn artifacts_are_told_on_their_images_line_and_in_the_summary() {
        use crate::model::{ArtifactKind, ArtifactResult};
        let artifact = |state| ArtifactResult {
            kind: ArtifactKind::Referrer,
            subject: "sha256:a".into(),
            tag: None,
            digest: "sha256:b".into(),
            artifact_type: Some("application/spdx+json".into()),
            state,
            error: None,
        };
        let mut synced = result(Status::Synced, None);
        synced.artifacts = Some(vec![
            artifact(ArtifactState::Copied),
            artifact(ArtifactState::NeedsNative),
            artifact(ArtifactState::Copied),
        ]);
        assert_eq!(
            result_line(&synced),
            "synced  h.example/m/docker.io/library/nginx:1.25  1.2s  4 blobs copied, 1 reused; \
             3 artifacts: 2 copied, 1 needs-native"
        );
        let mut skipped = result(Status::Skipped, None);
        skipped.digest = Some("sha256:c".into());
        skipped.artifacts = Some(Vec::new());
        assert_eq!(
            result_line(&skipped),
            "skipped h.example/m/docker.io/library/nginx:1.25  1.2s  current at sha256:c; no \
             artifacts"
        );
        let results = [synced, skipped];
        let summary = Summary::of(&results, Duration::from_millis(100), false);
        assert_eq!(
            summary_line(&summary),
            "2 images: 1 synced, 1 skipped, 0 failed in 0.1s; 3 artifacts: 2 copied, 0 \
             current, 0 failed, 1 needs-native"
        );
        let info = RunInfo {
            command: "sync",
            shard: None,
            fingerprint: "sha256:ab".to_owned(),
            destination: "h.example/m".to_owned(),
            destinations: Vec::new(),
            rerun: Rerun::default(),
        };
        let report: serde_json::Value =
            serde_json::from_str(&report_of(&info, &results, summary)).unwrap();
        let listed = &report["images"][0]["artifacts"];
        assert_eq!(listed[1]["kind"], "referrer");
        assert_eq!(listed[1]["state"], "needs-native");
        assert_eq!(listed[1]["tag"], serde_json::Value::Null);
        assert_eq!(listed[1]["artifact_type"], "application/spdx+json");
        assert_eq!(report["summary"]["artifacts"]["needs_native"], 1);
        // Without --signatures, neither says a word of artifacts.
        let plain = [result(Status::Synced, None)];
        let report: serde_json::Value = serde_json::from_str(&report_of(
            &info,
            &plain,
            Summary::of(&plain, Duration::ZERO, false),
        ))
        .unwrap();
        assert!(report["images"][0].get("artifacts").is_none());
        assert!(report["summary"].get("artifacts").is_none());
    }

    #[test]
    fn counts_of_one_are_singular_and_a_kind_is_said_once() {
        let mut one = result(Status::Synced, None);
        one.counts.blobs_copied = 1;
        one.counts.images_present = 1;
        assert_eq!(
            result_line(&one),
            "synced  h.example/m/docker.io/library/nginx:1.25  1.2s  1 blob copied, 1 reused, \
             1 image already present"
        );
        let summary = Summary::of(&[one], Duration::from_millis(100), false);
        assert_eq!(
            summary_line(&summary),
            "1 image: 1 synced, 0 skipped, 0 failed in 0.1s"
        );
        // A message that starts with its kind (the registry's words, or ferry's) keeps it once.
        let refused = result(
            Status::Failed,
            Some((
                FailureKind::Unauthorized,
                "unauthorized: h.example refused the destination credentials",
            )),
        );
        assert_eq!(
            result_line(&refused),
            "failed  h.example/m/docker.io/library/nginx:1.25  1.2s  unauthorized: h.example \
             refused the destination credentials"
        );
        assert_eq!(
            kind_and_message(
                FailureKind::Unauthorized,
                "UNAUTHORIZED: authentication required"
            ),
            "unauthorized: authentication required"
        );
        assert_eq!(
            kind_and_message(FailureKind::NotFound, "not-found-ish: x"),
            "not-found: not-found-ish: x"
        );
        let plan = PlanSummary {
            total: 1,
            new: 1,
            changed: 0,
            current: 0,
            source_missing: 0,
            unknown: 0,
            other_platform: 0,
            dropped_tags: 0,
            requests: 1,
            throttled: 0,
            seconds: 0.31,
        };
        assert_eq!(
            plan.line(),
            "1 entry: 1 new, 0 changed, 0 current, 0 source-missing, 0 unknown (1 request in 0.3s)"
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert!(json.get("other_platform").is_none(), "{json}");
        let plan = PlanSummary {
            total: 2,
            other_platform: 1,
            ..plan
        };
        assert_eq!(
            plan.line(),
            "2 entries: 1 new, 0 changed, 0 current, 0 source-missing, 0 unknown, 1 \
             other-platform (1 request in 0.3s)"
        );
    }

    #[test]
    fn long_messages_keep_both_ends_and_whole_words() {
        let short_enough = "network: initializing source docker://nginx:1.25: pinging container \
            registry 127.0.0.1:5000: dial tcp 127.0.0.1:5000: connect: connection refused";
        assert_eq!(short(short_enough), short_enough);
        let message = format!(
            "initializing source docker://nginx:1.25: {} root cause sha256:{}",
            "context words ".repeat(40),
            "a".repeat(64)
        );
        let cut = short(&message);
        assert!(
            cut.starts_with("initializing source docker://nginx:1.25: context words"),
            "{cut}"
        );
        assert!(
            cut.ends_with(&format!("root cause sha256:{}", "a".repeat(64))),
            "{cut}"
        );
        assert!(cut.contains(" … "), "{cut}");
        assert!(cut.chars().count() <= 403, "{}", cut.chars().count());
        for word in cut.split(' ').filter(|w| *w != "…") {
            assert!(
                message.split(' ').any(|m| m == word),
                "{word:?} was cut: {cut}"
            );
        }
    }

    #[test]
    fn summary_counts_each_status() {
        let results = [
            result(Status::Synced, None),
            result(Status::Failed, Some((FailureKind::NotFound, "x"))),
            result(Status::Synced, None),
        ];
        let summary = Summary::of(&results, Duration::from_millis(3200), false);
        assert_eq!(
            summary_line(&summary),
            "3 images: 2 synced, 0 skipped, 1 failed in 3.2s"
        );
    }

    #[test]
    fn json_report_has_every_field() {
        let results = [result(
            Status::Failed,
            Some((FailureKind::Unauthorized, "authentication required")),
        )];
        let summary = Summary::of(&results, Duration::from_millis(10), false);
        let info = RunInfo {
            command: "sync",
            shard: Some(Shard { index: 1, count: 3 }),
            fingerprint: "sha256:ab".to_owned(),
            destination: "h.example/m".to_owned(),
            destinations: Vec::new(),
            rerun: Rerun {
                flags: vec!["--engine".to_owned(), "native".to_owned()],
                ..Rerun::default()
            },
        };
        let value: serde_json::Value =
            serde_json::from_str(&report_of(&info, &results, summary)).unwrap();
        // The report says what wrote it, of which shard, of which input.
        assert_eq!(value["command"], "sync");
        assert_eq!(
            value["shard"],
            serde_json::json!({ "index": 1, "count": 3 })
        );
        assert_eq!(value["fingerprint"], "sha256:ab");
        assert_eq!(value["destination"], "h.example/m");
        assert_eq!(value["ferry_version"], env!("CARGO_PKG_VERSION"));
        let finished = value["finished_at"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(finished).is_ok() && finished.ends_with('Z'),
            "{finished}"
        );
        assert_eq!(
            value["rerun"],
            serde_json::json!({
                "flags": ["--engine", "native"], "dest_dir": null, "filter_flags": [],
                "credentials": []
            })
        );
        assert!(value.get("entries").is_none());
        let image = &value["images"][0];
        assert!(image.get("destination").is_none(), "one destination");
        for field in [
            "source",
            "target",
            "list_line",
            "status",
            "digest",
            "blobs_copied",
            "blobs_reused",
            "attempts",
            "duration_ms",
            "error",
        ] {
            assert!(image.get(field).is_some(), "missing {field}");
        }
        assert_eq!(image["status"], "failed");
        assert_eq!(image["error"]["kind"], "unauthorized");
        assert_eq!(image["origin"], "list.txt:4");
        assert_eq!(value["summary"]["failed"], 1);
    }

    #[test]
    fn with_several_destinations_each_entry_and_a_line_per_destination_name_it() {
        let destinations = [
            "h.example/m".to_owned(),
            "h.example/m/x".to_owned(),
            "k.example:5000".to_owned(),
        ];
        let at = |target: &str| destination_of(target, &destinations);
        assert_eq!(
            at("h.example/m/docker.io/library/nginx:1"),
            Some("h.example/m")
        );
        assert_eq!(
            at("h.example/m/x/docker.io/library/nginx:1"),
            Some("h.example/m/x")
        );
        assert_eq!(
            at("k.example:5000/docker.io/library/nginx:1"),
            Some("k.example:5000")
        );
        assert_eq!(at("h.example/mm/docker.io/library/nginx:1"), None);
        assert_eq!(destination_of("h.example/m/a:1", &[]), None);
        let to = |target: &str, status| ImageResult {
            target: target.to_owned(),
            status,
            ..result(status, None)
        };
        let results = [
            to("h.example/m/docker.io/library/nginx:1", Status::Synced),
            to("k.example:5000/docker.io/library/nginx:1", Status::Failed),
            to("h.example/m/docker.io/library/redis:7", Status::Skipped),
            to("k.example:5000/docker.io/library/redis:7", Status::Synced),
        ];
        let two = [destinations[0].clone(), destinations[2].clone()];
        assert_eq!(
            destination_lines(&Results::of(results.clone()), &two),
            [
                "to h.example/m: 1 synced, 1 skipped, 0 failed",
                "to k.example:5000: 1 synced, 0 skipped, 1 failed"
            ]
        );
        assert!(destination_lines(&Results::of(results.clone()), &[]).is_empty());
        let info = RunInfo {
            command: "sync",
            shard: None,
            fingerprint: "sha256:ab".to_owned(),
            destination: two.join(", "),
            destinations: two.to_vec(),
            rerun: Rerun::default(),
        };
        let summary = Summary::of(&results, Duration::from_millis(10), false);
        let value: serde_json::Value =
            serde_json::from_str(&report_of(&info, &results, summary)).unwrap();
        assert_eq!(value["destination"], "h.example/m, k.example:5000");
        let named: Vec<&str> = value["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            named,
            [
                "h.example/m",
                "k.example:5000",
                "h.example/m",
                "k.example:5000"
            ]
        );
    }

    #[test]
    fn a_verify_report_says_what_verify_found() {
        use crate::model::{Destination, Job, Origin, Target};
        let entry = |tag: &str, state: State| {
            let source = ImageRef::parse(&format!("docker.io/library/nginx:{tag}")).unwrap();
            let target =
                ImageRef::parse(&format!("h.example/m/docker.io/library/nginx:{tag}")).unwrap();
            PlanEntry {
                state,
                ..PlanEntry::unlooked(Job {
                    origin: Origin {
                        file: "list".into(),
                        line: 1,
                    },
                    source,
                    target: Target::Registry(target),
                    explicit: false,
                    filter: None,
                    signatures: None,
                })
            }
        };
        let entries = [
            entry("1", State::Current),
            entry("2", State::New),
            entry("3", State::Changed),
            entry("4", State::SourceMissing),
            entry("5", State::Unknown),
        ];
        let plan = PlanSummary::of(&entries, 0, 10, Instant::now());
        let verdicts: Vec<Verdict> = entries.iter().map(|e| Verdict::of(e.state)).collect();
        let summary = VerifySummary::of(&verdicts, false, &plan);
        let info = RunInfo {
            command: "verify",
            shard: None,
            fingerprint: "sha256:ab".to_owned(),
            destination: Destination::OciDir("mirror".into()).label(),
            destinations: Vec::new(),
            rerun: Rerun::default(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&verify_json(&info, &entries, &[], &summary)).unwrap();
        assert_eq!(value["command"], "verify");
        assert_eq!(value["shard"], serde_json::Value::Null);
        assert_eq!(value["destination"], "oci:mirror");
        let statuses: Vec<&str> = value["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["verified", "missing", "mismatch", "no-source", "error"]
        );
        assert_eq!(
            value["entries"][1]["list_line"],
            "docker.io/library/nginx:2 h.example/m/docker.io/library/nginx:2"
        );
        let counts = &value["summary"];
        for (field, n) in [
            ("total", 5),
            ("verified", 1),
            ("problems", 4),
            ("missing", 1),
            ("mismatch", 1),
            ("no_source", 1),
            ("error", 1),
            ("requests", 10),
        ] {
            assert_eq!(counts[field], n, "{field}: {counts}");
        }
    }

    #[test]
    fn failed_list_is_valid_input() {
        let results = [
            result(Status::Synced, None),
            result(Status::Failed, Some((FailureKind::NotFound, "x"))),
        ];
        let rerun = Rerun {
            dest_dir: Some("my mirror".to_owned()),
            ..Rerun::default()
        };
        let text = failed_list(&Results::of(results.clone()), &rerun, None).unwrap();
        assert!(
            text.starts_with(
                "# images that failed in the last ferry run; feed back with: \
                 ferry sync THIS_FILE --dest-dir 'my mirror'\n"
            ),
            "{text}"
        );
        let (entries, errors) = crate::input::parse_list("failed.list", &text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].source.to_string(),
            "docker.io/library/nginx:1.25"
        );
    }

    #[test]
    fn the_rerun_command_has_what_the_lines_cannot_carry_and_no_secret() {
        let line = |list_line: &str| FailedLine {
            list_line: list_line.to_owned(),
            origin: "list.txt:1".to_owned(),
            reason: "network".to_owned(),
        };
        let to_registry =
            line("docker.io/library/nginx:1.25 h.example/m/docker.io/library/nginx:1.25");
        let to_layout = line("docker.io/library/nginx:1.25");
        let repository = line("docker.io/library/redis h.example/m/docker.io/library/redis");
        let rerun = Rerun {
            flags: [
                "--src-tls-verify=false",
                "--dest-cert-dir",
                "/etc/certs/h.example",
                "--registries-conf",
                "my registries.conf",
                "--engine",
                "crane",
            ]
            .map(str::to_owned)
            .to_vec(),
            // The default root, with registry targets of the lines' own.
            dest_dir: Some("mirror".to_owned()),
            filter_flags: ["--tags", "7\\..*"].map(str::to_owned).to_vec(),
            credentials: vec!["--dest-creds".to_owned()],
        };
        let table: [(Vec<FailedLine>, Option<&str>, &str); 5] = [
            (
                vec![to_registry.clone()],
                None,
                "ferry sync THIS_FILE --src-tls-verify=false --dest-cert-dir /etc/certs/h.example \
                 --registries-conf 'my registries.conf' --engine crane",
            ),
            (
                vec![to_registry.clone(), to_layout],
                None,
                "ferry sync THIS_FILE --dest-dir mirror --src-tls-verify=false --dest-cert-dir \
                 /etc/certs/h.example --registries-conf 'my registries.conf' --engine crane",
            ),
            (
                vec![repository],
                None,
                "ferry sync THIS_FILE --src-tls-verify=false --dest-cert-dir /etc/certs/h.example \
                 --registries-conf 'my registries.conf' --engine crane --tags '7\\..*'",
            ),
            (
                vec![to_registry.clone()],
                Some("failed.yaml"),
                "ferry sync THIS_FILE --src-tls-verify=false --dest-cert-dir /etc/certs/h.example \
                 --registries-conf 'my registries.conf' --engine crane --format list",
            ),
            (
                vec![to_registry.clone()],
                Some("failed.list"),
                "ferry sync THIS_FILE --src-tls-verify=false --dest-cert-dir /etc/certs/h.example \
                 --registries-conf 'my registries.conf' --engine crane",
            ),
        ];
        for (lines, file, expected) in table {
            assert_eq!(
                rerun_command(&lines, &rerun, file.map(Path::new)),
                expected,
                "{lines:?}"
            );
        }
        let text = failed_list_text("x failed", &[to_registry], &rerun, None);
        assert_eq!(
            text.lines().nth(1),
            Some(
                "# secrets are never written here: give the rerun --dest-creds (or its \
                 environment variables) as this run had them"
            )
        );
    }
}
