//! skopeo as the copy engine, run through the [`tool`] driver: a pure argv builder (unit-tested
//! on the argv it returns, binary path injectable), a parser for what skopeo prints while
//! copying, and skopeo's own failure words (its `level=fatal` message, the words it adds to the
//! shared table, the side a message is about).
//!
//! Credentials never appear here: when ferry holds credentials it writes them to a private
//! auth file and the argv only names that file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use super::tool::{self, Failure, Tool, Words};
use super::{Attempt, BoxFuture, Copied, Engine};
use crate::access::credentials::CredentialsError;
use crate::access::Access;
use crate::exec::{self, Invocation, Stream};
use crate::layout;
use crate::model::ImageError;
use crate::model::{Counts, FailureKind, Side};
use crate::model::{Destination, Job, Target};
use crate::reference::{ImageRef, RepoPrefix};
use crate::scratch::ScratchDir;

/// Everything about how skopeo is run that does not depend on the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkopeoOptions {
    pub binary: PathBuf,
    /// Passed as skopeo's global `--registries-conf`: skopeo 1.9 does not read
    /// `CONTAINERS_REGISTRIES_CONF` itself.
    pub registries_conf: Option<PathBuf>,
    pub retry_times: u32,
    pub insecure_policy: bool,
}

/// Auth files ferry wrote for credentials it was given; they replace the user's auth file
/// for that side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    pub src: Option<PathBuf>,
    pub dest: Option<PathBuf>,
}

/// What one skopeo run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// `skopeo sync --scoped` of one source (tag, digest or whole repository) under a prefix.
    SyncScoped {
        source: &'a ImageRef,
        prefix: &'a RepoPrefix,
    },
    /// `skopeo copy` of one image to an exact target, optionally writing the pushed digest.
    Copy {
        source: &'a ImageRef,
        target: &'a Target,
        digest_file: Option<&'a Path>,
    },
}

/// Picks the skopeo command for a job. Scoped registry jobs (their target the source scoped
/// under `destination`'s prefix) use `sync --scoped` (the old script's command) except when
/// the source pins both a tag and a digest: the docker transport rejects that form, so ferry
/// pulls by digest and pushes to the tag with `copy`.
pub fn action_for<'a>(
    job: &'a Job,
    destination: &'a Destination,
    digest_file: Option<&'a Path>,
) -> Action<'a> {
    let pinned_and_tagged = job.source.tag().is_some() && job.source.digest().is_some();
    match (destination, &job.target, job.explicit) {
        (Destination::Registry(prefix), Target::Registry(target), false)
            if !pinned_and_tagged && prefix.scoped(&job.source).as_ref() == Ok(target) =>
        {
            Action::SyncScoped {
                source: &job.source,
                prefix,
            }
        }
        _ => Action::Copy {
            source: &job.source,
            target: &job.target,
            digest_file,
        },
    }
}

/// skopeo behind the [`Engine`] trait: the settings of one run and the private auth files that
/// carry ferry's credentials to it.
pub struct Skopeo {
    options: SkopeoOptions,
    access: Access,
    auth: AuthFiles,
    destination: Destination,
    /// The destinations after the first of several (see [`Skopeo::also_to`]).
    more_destinations: Vec<Destination>,
    image_timeout: Duration,
    /// Where skopeo writes the digest files of copies (the run's private directory).
    digests: PathBuf,
}

impl Skopeo {
    /// Writes a private auth file per side ferry holds credentials for, covering every
    /// registry host of `jobs` on that side, into `scratch`.
    pub fn new(
        options: SkopeoOptions,
        access: Access,
        destination: Destination,
        image_timeout: Duration,
        scratch: &ScratchDir,
        jobs: &[Job],
    ) -> Result<Skopeo, CredentialsError> {
        let (source_hosts, target_hosts) = side_hosts(jobs);
        let write = |name: &str, contents: Option<Vec<u8>>| {
            contents
                .map(|bytes| {
                    scratch
                        .write_private(name, &bytes)
                        .map_err(|source| CredentialsError::Write {
                            path: scratch.path().join(name),
                            source,
                        })
                })
                .transpose()
        };
        let auth = AuthFiles {
            src: write(
                "src-auth.json",
                access.source.credentials.skopeo_auth_file(source_hosts)?,
            )?,
            dest: write(
                "dest-auth.json",
                access
                    .destination
                    .credentials
                    .skopeo_auth_file(target_hosts)?,
            )?,
        };
        Ok(Skopeo {
            options,
            access,
            auth,
            destination,
            more_destinations: Vec::new(),
            image_timeout,
            digests: scratch.path().to_owned(),
        })
    }

    /// For `--dry-run`: the auth files are named, not written.
    pub fn for_dry_run(
        options: SkopeoOptions,
        access: Access,
        destination: Destination,
        jobs: &[Job],
    ) -> Skopeo {
        let (source_hosts, target_hosts) = side_hosts(jobs);
        let placeholder = |held: bool, side: &str| {
            held.then(|| PathBuf::from(format!("<private auth file with the {side} credentials>")))
        };
        let auth = AuthFiles {
            src: placeholder(access.source.credentials.holds_any(source_hosts), "source"),
            dest: placeholder(
                access.destination.credentials.holds_any(target_hosts),
                "destination",
            ),
        };
        Skopeo {
            options,
            access,
            auth,
            destination,
            more_destinations: Vec::new(),
            image_timeout: Duration::ZERO,
            digests: PathBuf::from("<private directory>"),
        }
    }

    /// The same engine for a run into several destinations: `more` after the first. A job is
    /// synced under the prefix of the destination it goes to.
    pub fn also_to(self, more: Vec<Destination>) -> Skopeo {
        Skopeo {
            more_destinations: more,
            ..self
        }
    }

    /// The destination `job` goes to: of several, the one its target is the scoped source
    /// under, else the first (whose explicit targets are copied, not synced under a prefix).
    fn destination_of(&self, job: &Job) -> &Destination {
        let under = |destination: &&Destination| match (destination, &job.target) {
            (Destination::Registry(prefix), Target::Registry(target)) => {
                prefix.scoped(&job.source).as_ref() == Ok(target)
            }
            _ => false,
        };
        self.more_destinations
            .iter()
            .find(under)
            .unwrap_or(&self.destination)
    }

    /// Where skopeo writes the digest of the copy of `index`.
    fn digest_file(&self, index: usize) -> PathBuf {
        self.digests.join(format!("{index}.digest"))
    }
}

impl Tool for Skopeo {
    fn name(&self) -> &'static str {
        "skopeo"
    }

    fn access(&self) -> &Access {
        &self.access
    }

    fn prepare(&self, job: &Job) -> Result<(), ImageError> {
        if let Target::Oci { layout, .. } = &job.target {
            std::fs::create_dir_all(layout).map_err(|e| {
                ImageError::new(
                    FailureKind::Internal,
                    format!("cannot create {}: {e}", layout.display()),
                )
            })?;
        }
        Ok(())
    }

    fn invocation(&self, attempt: &Attempt<'_>) -> Result<Invocation, String> {
        let digest_file = self.digest_file(attempt.index);
        let destination = self.destination_of(attempt.job);
        let action = action_for(attempt.job, destination, Some(&digest_file));
        Ok(build(&self.options, &self.access, &self.auth, &action))
    }

    fn starts_blob(&self, stream: Stream, line: &str) -> bool {
        stream == Stream::Stdout && is_blob_line(line)
    }

    fn after(&self, job: &Job) {
        if let Target::Oci { layout, .. } = &job.target {
            // A stopped skopeo leaves its partial blob behind; the next attempt starts its own.
            if let Err(e) = layout::remove_temp_blobs(layout) {
                warn!("cannot remove temporary blobs in {}: {e}", layout.display());
            }
        }
    }

    fn copied(&self, attempt: &Attempt<'_>, finished: &exec::Finished) -> Copied {
        let digest = std::fs::read_to_string(self.digest_file(attempt.index))
            .ok()
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .or_else(|| attempt.job.source.digest().map(str::to_owned));
        Copied {
            digest,
            counts: parse_progress(&finished.stdout, &finished.stderr),
            platform: None,
            pulled: None,
        }
    }

    fn failure_cause(&self, stderr: &str) -> Option<String> {
        failure_cause(stderr)
    }

    fn words(&self) -> &'static Words {
        WORDS
    }

    fn failure_side(&self, job: &Job, message: &str) -> (Side, String) {
        failure_side(job, message)
    }

    fn reword(&self, job: &Job, failure: &Failure<'_>) -> Option<String> {
        match (failure.kind, failure.tls) {
            (FailureKind::Tls, Some(_)) => None,
            _ => Some(with_layout_hint(&job.target, failure.message.to_owned())),
        }
    }
}

impl Engine for Skopeo {
    fn name(&self) -> &'static str {
        "skopeo"
    }

    fn copy<'a>(&'a self, attempt: Attempt<'a>) -> BoxFuture<'a, Result<Copied, ImageError>> {
        Box::pin(tool::attempt(self, attempt, self.image_timeout))
    }

    fn describe(&self, job: &Job) -> String {
        let digest_file = self.digests.join("<digest file>");
        let action = action_for(job, self.destination_of(job), Some(&digest_file));
        build(&self.options, &self.access, &self.auth, &action).to_string()
    }
}

/// The registry hosts on each side of `jobs`: sources, and registry targets.
fn side_hosts(jobs: &[Job]) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let sources = jobs.iter().map(|j| j.source.domain()).collect();
    let targets = jobs
        .iter()
        .filter_map(|j| match &j.target {
            Target::Registry(target) => Some(target.domain()),
            Target::Oci { .. } => None,
        })
        .collect();
    (sources, targets)
}

/// Said when skopeo refuses to write a Docker manifest list into a local OCI layout.
pub const LAYOUT_HINT: &str = " (skopeo cannot write a Docker manifest list into an OCI layout \
    without converting it to an OCI index, which changes its digest: copy into layouts with \
    --engine native, which writes it as it is, or leave --engine out)";

/// skopeo's message, with [`LAYOUT_HINT`] when it is skopeo refusing to convert a manifest
/// list for an OCI layout under `--preserve-digests` (a Docker list; an OCI index needs no
/// conversion there).
fn with_layout_hint(target: &Target, message: String) -> String {
    let refused = message.contains("Manifest list must be converted")
        && message.contains("Instructed to preserve digests");
    match target {
        Target::Oci { .. } if refused => format!("{message}{LAYOUT_HINT}"),
        _ => message,
    }
}

/// The side and registry host a failure message from skopeo is about: the host it names (where
/// registries.conf redirected the source, the redirected one), on the destination's side when
/// that is the destination; else the destination when the message names it, the source
/// otherwise.
fn failure_side(job: &Job, message: &str) -> (Side, String) {
    let target = match &job.target {
        Target::Registry(target) => Some(target.domain()),
        Target::Oci { .. } => None,
    };
    match (registry_in(message), target) {
        (Some(host), Some(target)) if host == target => (Side::Destination, host.to_owned()),
        (Some(host), _) => (Side::Source, host.to_owned()),
        (None, Some(target)) if message.contains(target) => (Side::Destination, target.to_owned()),
        (None, _) => (Side::Source, job.source.domain().to_owned()),
    }
}

/// Builds the argv for one action. Pure.
pub fn build(
    options: &SkopeoOptions,
    access: &Access,
    auth: &AuthFiles,
    action: &Action<'_>,
) -> Invocation {
    let mut args = Vec::new();
    if let Some(conf) = &options.registries_conf {
        push_path(&mut args, "--registries-conf", conf);
    }
    if options.insecure_policy {
        args.push("--insecure-policy".to_owned());
    }
    // Only skopeo's debug log says which blobs it reused: in a pipe its progress output
    // prints "Copying blob" for copied and reused blobs alike.
    args.push("--debug".to_owned());
    match action {
        Action::SyncScoped { source, prefix } => {
            args.extend(
                [
                    "sync",
                    "--all",
                    "--scoped",
                    "--preserve-digests",
                    "--src",
                    "docker",
                    "--dest",
                    "docker",
                ]
                .map(str::to_owned),
            );
            push_common(&mut args, options);
            push_side(&mut args, access, auth, Side::Source, &source.repository());
            let target = prefix.scoped(source).map(|t| t.repository());
            let target = target.unwrap_or_else(|_| prefix.to_string());
            push_side(&mut args, access, auth, Side::Destination, &target);
            args.push(source.to_string());
            args.push(prefix.to_string());
        }
        Action::Copy {
            source,
            target,
            digest_file,
        } => {
            args.extend(["copy", "--all", "--preserve-digests"].map(str::to_owned));
            push_common(&mut args, options);
            push_side(&mut args, access, auth, Side::Source, &source.repository());
            if let Target::Registry(target) = target {
                push_side(
                    &mut args,
                    access,
                    auth,
                    Side::Destination,
                    &target.repository(),
                );
            }
            if let Some(file) = digest_file {
                push_path(&mut args, "--digestfile", file);
            }
            args.push(source_transport(source));
            args.push(target_transport(target));
        }
    }
    Invocation {
        program: options.binary.clone(),
        args,
        env: Vec::new(),
    }
}

fn push_common(args: &mut Vec<String>, options: &SkopeoOptions) {
    args.push(format!("--retry-times={}", options.retry_times));
}

/// One side's flags for the registry serving `name`: ferry's private auth file for the side,
/// else the user's; the TLS settings the user gave (registries.conf's `insecure` skopeo reads
/// itself).
fn push_side(args: &mut Vec<String>, access: &Access, auth: &AuthFiles, side: Side, name: &str) {
    let (flag, ours) = match side {
        Side::Source => ("src", &auth.src),
        Side::Destination => ("dest", &auth.dest),
    };
    let reach = access.reach(side, name);
    if let Some(file) = ours.as_deref().or(access.side(side).authfile()) {
        push_path(args, &format!("--{flag}-authfile"), file);
    }
    if let Some(verify) = reach.tls_verify {
        args.push(format!("--{flag}-tls-verify={verify}"));
    }
    if let Some(dir) = &reach.cert_dir {
        push_path(args, &format!("--{flag}-cert-dir"), dir);
    }
}

fn push_path(args: &mut Vec<String>, flag: &str, path: &Path) {
    args.push(flag.to_owned());
    args.push(path.to_string_lossy().into_owned());
}

/// The docker transport cannot read `name:tag@digest`; the digest is what was pinned.
fn source_transport(source: &ImageRef) -> String {
    if source.digest().is_some() {
        format!("docker://{}", source.without_tag())
    } else {
        format!("docker://{source}")
    }
}

fn target_transport(target: &Target) -> String {
    match target {
        Target::Registry(reference) if reference.tag().is_some() => {
            format!("docker://{}", reference.without_digest())
        }
        Target::Registry(reference) => format!("docker://{reference}"),
        // skopeo's `oci:DIR[:NAME]`; an image pinned by digest alone gets no name.
        Target::Oci { layout, name, .. } => match name {
            Some(name) => format!("oci:{}:{name}", layout.display()),
            None => format!("oci:{}", layout.display()),
        },
    }
}

/// Whether a line of skopeo's progress output starts a blob: a layer (`Copying blob`) or an
/// image's config (`Copying config`). Configs count as blobs, as crane and the native engine
/// count them, so that one image is the same number of blobs whichever engine copies it.
fn is_blob_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("Copying blob ") || line.starts_with("Copying config ")
}

/// Counts skopeo's progress lines (the non-terminal format, one event per line) and the debug
/// log's "Skipping blob … (already present)" lines, which are the reused blobs. skopeo checks a
/// config at the destination without saying so, so a config already there counts as copied.
pub fn parse_progress(stdout: &str, stderr: &str) -> Counts {
    let mut progress = Counts {
        blobs_reused: stderr
            .lines()
            .filter(|line| line.contains("level=debug") && line.contains("msg=\"Skipping blob "))
            .count() as u32,
        ..Counts::default()
    };
    let mut blobs_seen = 0u32;
    for line in stdout.lines().map(str::trim) {
        if is_blob_line(line) {
            blobs_seen += 1;
        } else if line.starts_with("Skipping: image already present") {
            progress.images_present += 1;
        } else if line.starts_with("Writing manifest") {
            progress.manifests_written += 1;
        }
    }
    progress.blobs_copied = blobs_seen.saturating_sub(progress.blobs_reused);
    progress
}

/// The message of skopeo's last `level=fatal` log line, unquoted; `None` when there is none.
pub fn fatal_message(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .filter(|line| line.contains("level=fatal"))
        .filter_map(|line| line.split_once("msg=").map(|(_, rest)| rest))
        .map(unquote_logfmt)
        .next_back()
}

/// Why skopeo failed: its `level=fatal` message, except where that hides the cause. When a
/// manifest list upload fails under `--preserve-digests`, skopeo goes on to the list types that
/// would need a conversion and reports only that it may not convert; the upload's own error (a
/// 5xx, a dropped connection, a refused type) is in its debug log, and is the answer here.
pub fn failure_cause(stderr: &str) -> Option<String> {
    let fatal = fatal_message(stderr)?;
    if !fatal.contains("Instructed to preserve digests") {
        return Some(fatal);
    }
    let upload_failed = stderr
        .lines()
        .filter(|line| line.contains("level=debug"))
        .filter_map(|line| {
            line.split_once("msg=")
                .map(|(_, rest)| unquote_logfmt(rest))
        })
        .find_map(|msg| {
            let rest = msg.strip_prefix("Upload of manifest list type ")?;
            rest.split_once(" failed: ").map(|(_, why)| why.to_owned())
        });
    Some(match upload_failed {
        Some(why) => format!("writing the manifest list: {why}"),
        None => fatal,
    })
}

/// The registry host a failure message is about: the one in skopeo's "pinging container
/// registry HOST: …", else `None`.
pub fn registry_in(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("pinging container registry ")?;
    let host = rest.split_once(": ").map_or(rest, |(host, _)| host);
    (!host.is_empty() && !host.contains(' ')).then_some(host)
}

/// logrus writes `msg="…"` with Go's escaping, or a bare word when no quoting is needed.
fn unquote_logfmt(value: &str) -> String {
    let Some(quoted) = value.strip_prefix('"') else {
        return value.split_whitespace().next().unwrap_or("").to_owned();
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            other => out.push(other),
        }
    }
    out
}

/// skopeo's failure words beyond those it shares with crane (see [`tool::GO_WORDS`]).
const WORDS: &Words = &[
    (
        FailureKind::RateLimited,
        &["too many requests", "status 429", "status code 429"],
    ),
    (
        FailureKind::Unauthorized,
        &[
            "requested access to the resource is denied",
            "invalid username/password",
            "status 401",
            "status code 401",
        ],
    ),
    (
        FailureKind::NotFound,
        &[
            "repository name not known",
            "not found",
            "status 404",
            "status code 404",
        ],
    ),
    (
        FailureKind::Network,
        &["timeout awaiting", "tls handshake timeout"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::credentials::CredentialSources;

    fn classify(message: &str) -> FailureKind {
        tool::classify(message, WORDS)
    }
    use crate::access::SideAccess;
    use crate::model::Origin;

    fn options() -> SkopeoOptions {
        SkopeoOptions {
            binary: PathBuf::from("/opt/bin/skopeo"),
            retry_times: 3,
            ..SkopeoOptions::default()
        }
    }

    fn job(source: &str, target: Target, explicit: bool) -> Job {
        Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(source).unwrap(),
            target,
            explicit,
            filter: None,
            signatures: None,
        }
    }

    fn registry_target(reference: &str) -> Target {
        Target::Registry(ImageRef::parse(reference).unwrap())
    }

    #[test]
    fn scoped_sync_is_the_old_scripts_command_plus_digest_preservation() {
        let prefix = RepoPrefix::parse("harbor.local/third").unwrap();
        let destination = Destination::Registry(prefix.clone());
        let job = job(
            "nginx:1.25",
            Target::Registry(
                prefix
                    .scoped(&ImageRef::parse("nginx:1.25").unwrap())
                    .unwrap(),
            ),
            false,
        );
        let invocation = build(
            &options(),
            &Access::default(),
            &AuthFiles::default(),
            &action_for(&job, &destination, None),
        );
        assert_eq!(invocation.program, PathBuf::from("/opt/bin/skopeo"));
        assert_eq!(
            invocation.args,
            [
                "--debug",
                "sync",
                "--all",
                "--scoped",
                "--preserve-digests",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--retry-times=3",
                "docker.io/library/nginx:1.25",
                "harbor.local/third"
            ]
        );
    }

    #[test]
    fn every_pass_through_flag_lands_on_its_side() {
        let mut opts = options();
        opts.registries_conf = Some("/etc/r.conf".into());
        opts.insecure_policy = true;
        opts.retry_times = 5;
        let side = |verify, authfile: &str, cert_dir: &str| SideAccess {
            tls_verify: Some(verify),
            cert_dir: Some(cert_dir.into()),
            credentials: CredentialSources {
                authfile: Some(authfile.into()),
                ..CredentialSources::default()
            },
            per_host: Default::default(),
        };
        let access = Access {
            source: side(true, "/a/src.json", "/c/src"),
            destination: side(false, "/a/dest.json", "/c/dest"),
            ..Access::default()
        };
        let auth = AuthFiles {
            src: None,
            dest: Some("/tmp/ferry-x/dest-auth.json".into()),
        };
        let source = ImageRef::parse("quay.io/a/b:1").unwrap();
        let prefix = RepoPrefix::parse("h.example:5000/m").unwrap();
        let invocation = build(
            &opts,
            &access,
            &auth,
            &Action::SyncScoped {
                source: &source,
                prefix: &prefix,
            },
        );
        assert_eq!(
            invocation.args,
            [
                "--registries-conf",
                "/etc/r.conf",
                "--insecure-policy",
                "--debug",
                "sync",
                "--all",
                "--scoped",
                "--preserve-digests",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--retry-times=5",
                "--src-authfile",
                "/a/src.json",
                "--src-tls-verify=true",
                "--src-cert-dir",
                "/c/src",
                // ferry's own auth file replaces the user's for the side it has credentials for
                "--dest-authfile",
                "/tmp/ferry-x/dest-auth.json",
                "--dest-tls-verify=false",
                "--dest-cert-dir",
                "/c/dest",
                "quay.io/a/b:1",
                "h.example:5000/m"
            ]
        );
    }

    #[test]
    fn explicit_targets_use_copy_with_a_digest_file() {
        let destination = Destination::Registry(RepoPrefix::parse("h.example/m").unwrap());
        let job = job(
            "nginx:1.25",
            registry_target("harbor.example/base/nginx:1.25"),
            true,
        );
        let file = PathBuf::from("/tmp/d/1.digest");
        let invocation = build(
            &options(),
            &Access::default(),
            &AuthFiles::default(),
            &action_for(&job, &destination, Some(&file)),
        );
        assert_eq!(
            invocation.args,
            [
                "--debug",
                "copy",
                "--all",
                "--preserve-digests",
                "--retry-times=3",
                "--digestfile",
                "/tmp/d/1.digest",
                "docker://docker.io/library/nginx:1.25",
                "docker://harbor.example/base/nginx:1.25"
            ]
        );
    }

    #[test]
    fn tag_and_digest_pull_by_digest_and_push_to_the_tag() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let prefix = RepoPrefix::parse("h.example/m").unwrap();
        let destination = Destination::Registry(prefix.clone());
        let source = ImageRef::parse(&format!("nginx:1.25@{digest}")).unwrap();
        let job = job(
            &source.to_string(),
            Target::Registry(prefix.scoped(&source).unwrap()),
            false,
        );
        let invocation = build(
            &options(),
            &Access::default(),
            &AuthFiles::default(),
            &action_for(&job, &destination, None),
        );
        let n = invocation.args.len();
        assert_eq!(invocation.args[..2], ["--debug", "copy"]);
        assert_eq!(
            invocation.args[n - 2],
            format!("docker://docker.io/library/nginx@{digest}")
        );
        assert_eq!(
            invocation.args[n - 1],
            "docker://h.example/m/docker.io/library/nginx:1.25"
        );
    }

    #[test]
    fn oci_targets_skip_destination_registry_flags() {
        let access = Access {
            destination: SideAccess {
                tls_verify: Some(false),
                credentials: CredentialSources {
                    authfile: Some("/a/dest.json".into()),
                    ..CredentialSources::default()
                },
                ..SideAccess::default()
            },
            ..Access::default()
        };
        let target = Target::Oci {
            layout: "mirror/docker.io/library/nginx".into(),
            name: Some("1.25".into()),
            digest: None,
        };
        let destination = Destination::OciDir("mirror".into());
        let job = job("nginx:1.25", target, false);
        let invocation = build(
            &options(),
            &access,
            &AuthFiles::default(),
            &action_for(&job, &destination, None),
        );
        assert_eq!(
            invocation.args,
            [
                "--debug",
                "copy",
                "--all",
                "--preserve-digests",
                "--retry-times=3",
                "docker://docker.io/library/nginx:1.25",
                "oci:mirror/docker.io/library/nginx:1.25"
            ]
        );
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let invocation = Invocation {
            program: "skopeo".into(),
            args: vec!["copy".into(), "/tmp/my dir/a".into(), "it's".into()],
            env: Vec::new(),
        };
        assert_eq!(
            invocation.to_string(),
            r"skopeo copy '/tmp/my dir/a' 'it'\''s'"
        );
    }

    #[test]
    fn progress_counts_blobs_and_manifests() {
        let stdout = "Getting image list signatures\nCopying 2 of 2 images in list\n\
            Copying image sha256:aa (1/2)\nGetting image source signatures\n\
            Copying blob sha256:11\nCopying blob sha256:22\n\
            Copying config sha256:33\nWriting manifest to image destination\nStoring signatures\n\
            Copying image sha256:bb (2/2)\nGetting image source signatures\n\
            Skipping: image already present at destination\n\
            Writing manifest list to image destination\nStoring list signatures\n";
        let stderr = "time=\"t\" level=debug msg=\"Checking if we can reuse blob sha256:22\"\n\
            time=\"t\" level=debug msg=\"Skipping blob sha256:22 (already present):\"\n";
        // Two layers and a config, one layer of them reused.
        assert_eq!(
            parse_progress(stdout, stderr),
            Counts {
                blobs_copied: 2,
                blobs_reused: 1,
                images_present: 1,
                manifests_written: 2,
                bytes_copied: None
            }
        );
    }

    #[test]
    fn fatal_message_is_unquoted() {
        let stderr = "time=\"2026-11-22T18:35:09Z\" level=info msg=\"Copying image ref 1/1\" from=\"docker://nope:1.25\"\n\
            time=\"2026-11-22T18:35:09Z\" level=fatal msg=\"Error copying ref \\\"docker://nope:1.25\\\": reading manifest 1.25 in 127.0.0.1:5055/library/nope: manifest unknown: manifest unknown\"\n";
        assert_eq!(
            fatal_message(stderr).unwrap(),
            "Error copying ref \"docker://nope:1.25\": reading manifest 1.25 in 127.0.0.1:5055/library/nope: manifest unknown: manifest unknown"
        );
        assert_eq!(fatal_message("level=info msg=hello\n"), None);
    }

    #[test]
    fn a_manifest_list_upload_failure_is_reported_by_its_cause() {
        // skopeo 1.9.3 on a 503 to the index upload, under --preserve-digests.
        let stderr = concat!(
            "time=\"2026-11-22T20:57:05Z\" level=debug msg=\"Trying to use manifest list type application/vnd.oci.image.index.v1+json…\"\n",
            "time=\"2026-11-22T20:57:05Z\" level=debug msg=\"Upload of manifest list type application/vnd.oci.image.index.v1+json failed: uploading manifest 1.25 to 127.0.0.1:41979/x/nginx: received unexpected HTTP status: 503 Service Unavailable\"\n",
            "time=\"2026-11-22T20:57:05Z\" level=debug msg=\"Trying to use manifest list type application/vnd.docker.distribution.manifest.list.v2+json…\"\n",
            "time=\"2026-11-22T20:57:05Z\" level=fatal msg=\"Manifest list must be converted to type \\\"application/vnd.docker.distribution.manifest.list.v2+json\\\" to be written to destination, but we cannot modify it: \\\"Instructed to preserve digests\\\"\"\n",
        );
        let cause = failure_cause(stderr).unwrap();
        assert_eq!(
            cause,
            "writing the manifest list: uploading manifest 1.25 to 127.0.0.1:41979/x/nginx: \
             received unexpected HTTP status: 503 Service Unavailable"
        );
        assert_eq!(classify(&cause), FailureKind::Network);
        // Without the debug line, skopeo's own words stay.
        let fatal_only = stderr.lines().last().unwrap();
        let kept = failure_cause(fatal_only).unwrap();
        assert!(
            kept.starts_with("Manifest list must be converted"),
            "{kept}"
        );
        // Any other failure is the fatal message itself.
        let other = "time=\"x\" level=fatal msg=\"reading manifest 1 in r/x: manifest unknown\"\n";
        assert_eq!(
            failure_cause(other).as_deref(),
            Some("reading manifest 1 in r/x: manifest unknown")
        );
    }

    #[test]
    fn a_docker_list_refused_for_a_layout_names_the_native_engine() {
        // skopeo 1.9.3 copying a Docker manifest list into oci:DIR:TAG.
        let refused = "Manifest list must be converted to type \"application/vnd.oci.image.index.v1+json\" \
             to be written to destination, but we cannot modify it: \"Instructed to preserve digests\"";
        let layout = Target::Oci {
            layout: "mirror/docker.io/library/redis".into(),
            name: Some("7".into()),
            digest: None,
        };
        let hinted = with_layout_hint(&layout, refused.to_owned());
        assert_eq!(hinted, format!("{refused}{LAYOUT_HINT}"));
        assert!(hinted.contains("--engine native"), "{hinted}");
        // A registry target needs no conversion: that message has another cause (see above).
        let registry = Target::Registry(ImageRef::parse("h.example/m/redis:7").unwrap());
        assert_eq!(with_layout_hint(&registry, refused.to_owned()), refused);
        let other = "reading manifest 7 in r/x: manifest unknown";
        assert_eq!(with_layout_hint(&layout, other.to_owned()), other);
    }

    #[test]
    fn failures_are_classified_from_skopeos_words() {
        let table = [
            ("reading manifest 1.25 in r/library/nope: manifest unknown: manifest unknown", FailureKind::NotFound),
            ("reading manifest latest in quay.io/x/y: name unknown: repository name not known to registry", FailureKind::NotFound),
            ("initializing source docker://x: reading manifest 1 in h/x: unauthorized: authentication required", FailureKind::Unauthorized),
            ("trying to reuse blob sha256:aa at destination: checking whether a blob exists: authentication required", FailureKind::Unauthorized),
            ("writing blob: initiating layer upload to /v2/x/blobs/uploads/ in h: denied: requested access to the resource is denied", FailureKind::Unauthorized),
            ("reading manifest 1 in docker.io/library/x: toomanyrequests: You have reached your pull rate limit", FailureKind::RateLimited),
            ("pinging container registry 127.0.0.1:5999: Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused", FailureKind::Network),
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host", FailureKind::Network),
            ("pinging container registry 127.0.0.1:5056: Get \"https://127.0.0.1:5056/v2/\": http: server gave HTTP response to HTTPS client", FailureKind::Tls),
            ("pinging container registry h: Get \"https://h/v2/\": x509: certificate signed by unknown authority", FailureKind::Tls),
            ("copying system image from manifest list: writing blob: happened", FailureKind::Other),
            // Ports that look like status codes are just ports.
            ("reading manifest 9.9 in 127.0.0.1:34291/library/nginx: manifest unknown: manifest unknown", FailureKind::NotFound),
            ("reading manifest 1 in 127.0.0.1:54010/x: manifest unknown", FailureKind::NotFound),
            ("pinging container registry 127.0.0.1:40404: dial tcp 127.0.0.1:40404: connect: connection refused", FailureKind::Network),
            ("reading manifest 1 in r: received unexpected HTTP status: 429 Too Many Requests", FailureKind::RateLimited),
        ];
        for (message, kind) in table {
            assert_eq!(classify(message), kind, "{message}");
        }
    }

    #[test]
    fn a_failure_is_told_once_with_its_side_refusing_host_and_retryability() {
        let prefix = RepoPrefix::parse("harbor.example/m").unwrap();
        let skopeo = Skopeo::for_dry_run(
            options(),
            Access::default(),
            Destination::Registry(prefix),
            &[],
        );
        let job = job(
            "nginx:1.25",
            registry_target("harbor.example/m/docker.io/library/nginx:1.25"),
            false,
        );
        let (source, destination) = (Some(Side::Source), Some(Side::Destination));
        let harbor = Some("harbor.example");
        // (message, kind, side, refusing host, retryable)
        let table = [
            ("reading manifest 1.25 in docker.io/library/nginx: toomanyrequests: You have reached your pull rate limit.", FailureKind::RateLimited, source, None, true),
            ("writing manifest: uploading manifest 1.25 to harbor.example/m/docker.io/library/nginx: toomanyrequests: slow down", FailureKind::RateLimited, destination, None, true),
            ("skopeo ended with exit status 1: 429 Too Many Requests", FailureKind::RateLimited, source, None, true),
            ("trying to reuse blob sha256:aa at destination: pinging container registry harbor.example: Get \"https://harbor.example/v2/\": dial tcp 10.0.0.1:443: connect: connection refused", FailureKind::Network, destination, harbor, true),
            ("initializing source docker://nginx:1.25: pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp 10.1.2.3:443: connect: connection refused", FailureKind::Network, source, Some("registry-1.docker.io"), true),
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: no such host", FailureKind::Network, source, None, false),
            ("reading manifest 1.25 in docker.io/library/nginx: manifest unknown: manifest unknown", FailureKind::NotFound, source, None, false),
        ];
        for (message, kind, side, host, retryable) in table {
            let error = tool::failed(&skopeo, &job, message.to_owned());
            assert_eq!(
                (
                    error.kind,
                    error.side,
                    error.host.as_deref(),
                    error.retryable
                ),
                (kind, side, host, retryable),
                "{message}"
            );
            assert_eq!(error.message, message);
        }
    }

    #[test]
    fn a_refused_connection_is_put_on_the_host_skopeo_dialled() {
        let skopeo = Skopeo::for_dry_run(
            options(),
            Access::default(),
            Destination::OciDir("mirror".into()),
            &[],
        );
        let hosts = ["127.0.0.1:5000", "registry-1.docker.io", "127.0.0.1:6000"].map(str::to_owned);
        let table = [
            ("initializing source docker://x:1: pinging container registry 127.0.0.1:5000: Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused", Some("127.0.0.1:5000")),
            ("trying to reuse blob sha256:aa at destination: pinging container registry 127.0.0.1:6000: Get \"http://127.0.0.1:6000/v2/\": dial tcp 127.0.0.1:6000: connect: connection refused", Some("127.0.0.1:6000")),
            // A name resolved to an address: the registry is named where it is pinged.
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp 10.1.2.3:443: connect: connection refused", Some("registry-1.docker.io")),
            ("reading blob sha256:aa: Get \"http://127.0.0.1:5000/v2/x/blobs/sha256:aa\": dial tcp 127.0.0.1:5000: connect: connection refused", Some("127.0.0.1:5000")),
            // A default port written or not is one registry.
            ("pinging container registry registry-1.docker.io:443: dial tcp 10.1.2.3:443: connect: connection refused", Some("registry-1.docker.io")),
            // Another registry, or another fault, or the name server refusing a lookup.
            ("pinging container registry 127.0.0.1:7000: dial tcp 127.0.0.1:7000: connect: connection refused", None),
            ("pinging container registry 127.0.0.1:5000: dial tcp 127.0.0.1:5000: i/o timeout", None),
            ("pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: read udp 10.0.0.2:1->10.0.0.53:53: read: connection refused", None),
        ];
        for (message, expected) in table {
            assert_eq!(
                tool::refusing_host(&skopeo, message, &hosts).as_deref(),
                expected,
                "{message}"
            );
        }
    }
}
