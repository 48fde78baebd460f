//! One driver for the engines that run a command-line tool per copy (skopeo, crane): the
//! attempt's skeleton is written here once, and a [`Tool`] supplies what differs: the command
//! line, which of its output lines start a blob, how it words its failures (its own failure
//! line, the words it adds to the shared table of Go's failure words), and what its output says
//! of a copy that succeeded.
//!
//! An attempt: prepare the target, build the invocation, run it watched (each blob line told as
//! progress, stopped at `--image-timeout` or on a stop), and then either read what was copied
//! or turn the tool's words into an [`ImageError`] once, here: its kind (from the table), the
//! side and registry it is about, the host that refused the connection (among the job's
//! endpoints), whether a retry may help, and the remedy for a TLS failure.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tracing::info;

use super::{Attempt, Copied};
use crate::access::Access;
use crate::exec::{self, Finished, Invocation, Stream};
use crate::model::{FailureKind, ImageError, Job, Progress, Side, Target};
use crate::tls::TlsProblem;

/// Words that say what kind of failure a message describes, by kind, in the order kinds are
/// tried: a TLS failure is told inside a network message, and a 404 while authenticating is
/// still a missing image. Status codes are matched only with their words: messages carry
/// registry addresses, and a port such as 34291 must not read as a 429.
pub type Words = [(FailureKind, &'static [&'static str])];

/// What skopeo and crane (both Go, on the same registry libraries' words) say alike.
pub const GO_WORDS: &Words = &[
    (FailureKind::RateLimited, &["toomanyrequests"]),
    (
        FailureKind::Unauthorized,
        &["unauthorized", "authentication required", "denied:"],
    ),
    (FailureKind::NotFound, &["manifest unknown", "name unknown"]),
    (
        FailureKind::Network,
        &[
            "connection refused",
            "no such host",
            "i/o timeout",
            "connection reset",
            "broken pipe",
            "network is unreachable",
            "no route to host",
            "unexpected eof",
            ": eof",
            "dial tcp",
            "502 bad gateway",
            "503 service unavailable",
            "504 gateway timeout",
        ],
    ),
];

/// The kind of failure `message` describes: [`GO_WORDS`] and a tool's own `words`, kind by
/// kind, a TLS problem (see [`crate::tls::problem`]) after a missing image and before the
/// network; `Other` when nothing matches.
pub fn classify(message: &str, words: &Words) -> FailureKind {
    let m = message.to_ascii_lowercase();
    let said = |kind: FailureKind| {
        GO_WORDS
            .iter()
            .chain(words)
            .filter(|(of, _)| *of == kind)
            .any(|(_, needles)| needles.iter().any(|n| m.contains(n)))
    };
    let order = [
        FailureKind::RateLimited,
        FailureKind::Unauthorized,
        FailureKind::NotFound,
    ];
    if let Some(kind) = order.into_iter().find(|kind| said(*kind)) {
        kind
    } else if crate::tls::problem(message).is_some() {
        FailureKind::Tls
    } else if said(FailureKind::Network) {
        FailureKind::Network
    } else {
        FailureKind::Other
    }
}

/// What one command-line engine supplies to the driver.
pub trait Tool: Send + Sync {
    /// The tool as messages name it (`skopeo ended with …`).
    fn name(&self) -> &'static str;

    /// How each registry is reached: the job's endpoints, the hosts a refusal is put on.
    fn access(&self) -> &Access;

    /// Readies the target before the tool runs.
    fn prepare(&self, _job: &Job) -> Result<(), ImageError> {
        Ok(())
    }

    /// The command that copies `attempt`'s job; an error says why it cannot be copied (it fails
    /// the attempt as `other`).
    fn invocation(&self, attempt: &Attempt<'_>) -> Result<Invocation, String>;

    /// Whether a line the tool printed starts a blob.
    fn starts_blob(&self, stream: Stream, line: &str) -> bool;

    /// Tidies up after the tool ended, however it ended.
    fn after(&self, _job: &Job) {}

    /// What a run that succeeded copied.
    fn copied(&self, attempt: &Attempt<'_>, finished: &Finished) -> Copied;

    /// The tool's own account of its failure, from its stderr; `None` when it gave none.
    fn failure_cause(&self, stderr: &str) -> Option<String>;

    /// The tool's failure words beyond [`GO_WORDS`].
    fn words(&self) -> &'static Words;

    /// The side and registry host (as ferry names it) a failure message is about.
    fn failure_side(&self, job: &Job, message: &str) -> (Side, String);

    /// `host[:port]` as ferry names an endpoint, from the tool's name for it.
    fn endpoint_name<'a>(&self, named: &'a str) -> &'a str {
        named
    }

    /// The tool's own words for a failure (a hint at what helps), `None` to leave it to the
    /// driver: a TLS failure told with its remedy, anything else as the tool said it.
    fn reword(&self, _job: &Job, _failure: &Failure<'_>) -> Option<String> {
        None
    }
}

/// A failure as the driver read it, for [`Tool::reword`].
pub struct Failure<'a> {
    pub kind: FailureKind,
    pub side: Side,
    /// The registry host it is about.
    pub host: &'a str,
    /// The TLS problem it describes, if any.
    pub tls: Option<TlsProblem>,
    pub message: &'a str,
}

/// Runs one attempt of `tool` to its end: copied, or failed with an [`ImageError`] decided
/// here.
pub async fn attempt(
    tool: &dyn Tool,
    attempt: Attempt<'_>,
    image_timeout: Duration,
) -> Result<Copied, ImageError> {
    let job = attempt.job;
    tool.prepare(job)?;
    let invocation = tool
        .invocation(&attempt)
        .map_err(|message| ImageError::new(FailureKind::Other, message))?;
    info!("attempt {}: running {invocation}", attempt.number);
    let blobs = AtomicU32::new(0);
    let on_line = |stream: Stream, line: &str| {
        if tool.starts_blob(stream, line) {
            let done = blobs.fetch_add(1, Ordering::Relaxed) + 1;
            (attempt.progress)(Progress {
                blobs_done: done,
                ..Progress::default()
            });
        }
    };
    let time_left = attempt.time_left(image_timeout);
    let finished =
        exec::run_watched(&invocation, attempt.stop.clone(), Some(time_left), &on_line).await;
    tool.after(job);
    let finished = finished.map_err(|e| ImageError::new(FailureKind::Internal, e.to_string()))?;
    if let Some(ended) = ended_early(&finished, image_timeout) {
        return Err(ended);
    }
    if !finished.status.success() {
        info!(
            "`{invocation}` failed with {}; stderr ends with:\n{}",
            exec::describe_status(&finished.status),
            tail(&finished.stderr, 10)
        );
        return Err(failed(tool, job, failure_message(tool, &finished)));
    }
    Ok(tool.copied(&attempt, &finished))
}

/// The tool's account of its failure, or failing that the end of its stderr and how it exited.
fn failure_message(tool: &dyn Tool, finished: &Finished) -> String {
    tool.failure_cause(&finished.stderr).unwrap_or_else(|| {
        let status = exec::describe_status(&finished.status);
        let name = tool.name();
        match tail(&finished.stderr, 3) {
            tail if tail.is_empty() => format!("{name} ended with {status}"),
            tail => format!("{name} ended with {status}: {tail}"),
        }
    })
}

/// The error for a failure of `job` that `tool` told in `message`.
pub fn failed(tool: &dyn Tool, job: &Job, message: String) -> ImageError {
    let kind = classify(&message, tool.words());
    let (side, host) = tool.failure_side(job, &message);
    let tls = crate::tls::problem(&message);
    let failure = Failure {
        kind,
        side,
        host: &host,
        tls,
        message: &message,
    };
    let reworded = tool
        .reword(job, &failure)
        .unwrap_or_else(|| match (kind, tls) {
            (FailureKind::Tls, Some(problem)) => {
                crate::tls::explain(side, &host, problem, &message)
            }
            _ => message.clone(),
        });
    let refused = refusing_host(tool, &message, &endpoint_hosts(tool.access(), job));
    ImageError {
        host: refused,
        ..ImageError::reported(kind, reworded).on(side)
    }
}

/// The registry hosts a copy of `job` connects to (after registries.conf), source first.
fn endpoint_hosts(access: &Access, job: &Job) -> Vec<String> {
    let source = access
        .endpoint(Side::Source, &job.source.repository())
        .ok()
        .map(|e| e.host);
    let target = match &job.target {
        Target::Registry(target) => access
            .endpoint(Side::Destination, &target.repository())
            .ok()
            .map(|e| e.host),
        Target::Oci { .. } => None,
    };
    source.into_iter().chain(target).collect()
}

/// Which of `hosts` refused the connection a Go program reports in `message`: the one it
/// dialled in "dial tcp HOST:PORT: connect: connection refused", the registry in "pinging
/// container registry HOST", else the host of a URL it names (`Get "https://HOST/v2/": dial
/// tcp 10.1.2.3:443: …`: a name resolved to an address is named only in the URL). `None` for
/// any other failure, and for a name server that refused a lookup ("dial tcp: lookup …"),
/// which says nothing of the registry.
pub fn refusing_host(tool: &dyn Tool, message: &str, hosts: &[String]) -> Option<String> {
    if !message.contains("connection refused") || message.contains(": lookup ") {
        return None;
    }
    // A default port written or not, and the tool's name for an endpoint, are one registry.
    let bare = |name: &str| {
        let name = name.trim_matches('"');
        let name = name
            .strip_suffix(":443")
            .or_else(|| name.strip_suffix(":80"))
            .unwrap_or(name);
        tool.endpoint_name(name).to_owned()
    };
    let among = |named: &str| {
        let named = bare(named);
        hosts.iter().find(|host| bare(host) == named).cloned()
    };
    let after = |marker: &'static str| {
        message
            .match_indices(marker)
            .filter_map(move |(at, _)| message[at + marker.len()..].split(": ").next())
    };
    let urls = message
        .match_indices("://")
        .filter_map(|(at, _)| message[at + 3..].split(['/', '"', ' ']).next());
    let dialled = after("dial tcp ").chain(after("pinging container registry "));
    dialled
        .filter_map(&among)
        .next()
        .or_else(|| urls.filter_map(among).next())
}

/// How a tool's run was cut short: at `--image-timeout`, or by a signal ferry got. `None`
/// when it ran to its end.
pub fn ended_early(finished: &Finished, image_timeout: Duration) -> Option<ImageError> {
    if finished.timed_out {
        return Some(ImageError::new(
            FailureKind::Timeout,
            format!("stopped after --image-timeout {image_timeout:?}"),
        ));
    }
    finished.stopped.then(|| {
        ImageError::new(
            FailureKind::Interrupted,
            format!(
                "stopped by a signal ({})",
                exec::describe_status(&finished.status)
            ),
        )
    })
}

/// The last `lines` non-empty lines of `text`, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
