//! crane (go-containerregistry's command line) as the copy engine: one `crane copy SRC DST` per
//! job, which copies a whole index with its digests and manifests byte for byte.
//!
//! crane reads no registries.conf, no `--authfile` and no cert dirs, so ferry hands it
//! everything resolved: the source as the pull endpoint registries.conf redirects it to, the
//! credentials ferry itself would send, in a private `DOCKER_CONFIG` directory of the run's
//! scratch dir (never in argv), the CA directories through `SSL_CERT_DIR`, and `--insecure`
//! only for a job whose sides are both insecure: crane has one switch for every registry of a
//! run, and a side nobody marked insecure must stay verified (see [`Trust`]). The argv and
//! environment builder is pure; crane runs through the [`tool`] driver, to which this module
//! gives its output parser and its own failure words (its `Error:` line, the words it adds to
//! the shared table, the side a message is about, the hints for a one-sided `--insecure` and a
//! 429).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use super::tool::{self, Failure, Tool, Words};
use super::{Attempt, BoxFuture, Copied, Engine};
use crate::access::conf::Endpoint;
use crate::access::credentials::CredentialsError;
use crate::access::{Access, Reach};
use crate::docker_hub;
use crate::exec::{self, Invocation, Stream};
use crate::model::{Counts, FailureKind, ImageError, Job, Side, Target};
use crate::scratch::ScratchDir;
use crate::secret::Credentials;
use crate::tls::TlsProblem;

/// Why `--engine crane` takes no entry whose target is a local OCI layout (checked before
/// anything runs): crane's `pull --format oci` names an image by its full reference
/// (`--annotate-ref`) and appends another entry on every pull, which neither `skopeo inspect
/// oci:DIR:TAG` nor ferry's own layout reader can read back.
pub const NO_OCI_LAYOUTS: &str = "--engine crane cannot mirror into local OCI layouts: crane's \
    `pull --format oci` names images by their full reference and adds a duplicate entry on \
    every pull, which neither ferry nor skopeo can read back; give a registry with --dest \
    PREFIX, or use --engine native";

/// Everything about how crane is run that does not depend on the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CraneOptions {
    pub binary: PathBuf,
    /// `SSL_CERT_DIR` as ferry was started with it: crane still reads those directories after
    /// the ones ferry adds for a job.
    pub ssl_cert_dir: Option<OsString>,
}

/// Where Go looks for CA certificates on Linux when `SSL_CERT_DIR` is not set; setting it
/// replaces these (the system bundle *file* is read either way), so ferry keeps them.
const GO_CERT_DIRS: [&str; 2] = ["/etc/ssl/certs", "/etc/pki/tls/certs"];

/// The name of the private `DOCKER_CONFIG` directory inside the run's scratch dir.
const CONFIG_DIR: &str = "crane-docker-config";

/// crane behind the [`Engine`] trait: the settings of one run and the private `DOCKER_CONFIG`
/// directory that carries ferry's credentials to it.
pub struct Crane {
    options: CraneOptions,
    access: Access,
    config_dir: PathBuf,
    image_timeout: Duration,
}

impl Crane {
    /// Writes the private `config.json` with the credentials ferry uses for every repository
    /// of `jobs`, on its side, into a 0700 directory of `scratch` (removed with it).
    pub fn new(
        options: CraneOptions,
        access: Access,
        image_timeout: Duration,
        scratch: &ScratchDir,
        jobs: &[Job],
    ) -> Result<Crane, CredentialsError> {
        let logins = logins(&access, jobs)?;
        let config_dir = scratch.path().join(CONFIG_DIR);
        let io = |source| CredentialsError::Write {
            path: config_dir.join("config.json"),
            source,
        };
        DirBuilder::new()
            .mode(0o700)
            .create(&config_dir)
            .map_err(io)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(config_dir.join("config.json"))
            .map_err(io)?;
        file.write_all(&docker_config(&logins))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(Crane {
            options,
            access,
            config_dir,
            image_timeout,
        })
    }

    /// For `--dry-run`: the config directory is named, not written.
    pub fn for_dry_run(options: CraneOptions, access: Access) -> Crane {
        Crane {
            options,
            access,
            config_dir: PathBuf::from("<private DOCKER_CONFIG directory>"),
            image_timeout: Duration::ZERO,
        }
    }

    fn invocation(&self, job: &Job) -> Result<Invocation, String> {
        build(&self.options, &self.access, &self.config_dir, job, &|dir| {
            dir.is_dir()
        })
    }
}

impl Tool for Crane {
    fn name(&self) -> &'static str {
        "crane"
    }

    fn access(&self) -> &Access {
        &self.access
    }

    fn invocation(&self, attempt: &Attempt<'_>) -> Result<Invocation, String> {
        self.invocation(attempt.job)
    }

    fn starts_blob(&self, stream: Stream, line: &str) -> bool {
        stream == Stream::Stderr && blob_event(line).is_some()
    }

    fn copied(&self, attempt: &Attempt<'_>, finished: &exec::Finished) -> Copied {
        let job = attempt.job;
        let output = parse_output(&finished.stderr, &written(job));
        Copied {
            digest: output
                .digest
                .or_else(|| job.source.digest().map(str::to_owned)),
            counts: output.counts,
            platform: None,
            pulled: None,
        }
    }

    fn failure_cause(&self, stderr: &str) -> Option<String> {
        error_message(stderr)
    }

    fn words(&self) -> &'static Words {
        WORDS
    }

    fn failure_side(&self, job: &Job, message: &str) -> (Side, String) {
        failure_side(&self.access, job, message)
    }

    fn endpoint_name<'a>(&self, named: &'a str) -> &'a str {
        ferry_host(named)
    }

    fn reword(&self, job: &Job, failure: &Failure<'_>) -> Option<String> {
        let message = failure.message;
        match (failure.kind, failure.tls) {
            (FailureKind::Tls, Some(problem)) => match trust(&self.access, job) {
                Some(Trust::OnlyInsecure(insecure)) if insecure == failure.side => Some(
                    verified_anyway(failure.side, failure.host, problem, message),
                ),
                _ => None,
            },
            (FailureKind::RateLimited, _) => Some(format!("{message}{RATE_LIMIT_HINT}")),
            _ => None,
        }
    }
}

impl Engine for Crane {
    fn name(&self) -> &'static str {
        "crane"
    }

    fn copy<'a>(&'a self, attempt: Attempt<'a>) -> BoxFuture<'a, Result<Copied, ImageError>> {
        Box::pin(tool::attempt(self, attempt, self.image_timeout))
    }

    fn describe(&self, job: &Job) -> String {
        match self.invocation(job) {
            Ok(invocation) => invocation.to_string(),
            Err(why) => format!("# not copied: {why}"),
        }
    }
}

/// `host[:port]` as crane is to be given it.
fn crane_host(host: &str) -> &str {
    if host == docker_hub::API_HOST {
        docker_hub::INDEX_HOST
    } else {
        host
    }
}

/// `host[:port]` as ferry names the endpoint, from crane's name for it.
fn ferry_host(host: &str) -> &str {
    match host {
        docker_hub::INDEX_HOST | docker_hub::DOMAIN => docker_hub::API_HOST,
        _ => host,
    }
}

/// How crane is to reach the two sides of one copy. crane has a single `--insecure`, which
/// allows plain HTTP to, and skips TLS verification of, every registry of its run; so it is
/// passed only when ferry would reach both sides insecurely (`--*-tls-verify=false`, or
/// registries.conf's `insecure`). A side nobody marked insecure is always verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Neither side is insecure: no `--insecure`.
    Verified,
    /// Both sides are insecure: `--insecure`.
    Insecure,
    /// Only this side is insecure. crane runs without `--insecure` and so verifies both sides;
    /// the insecure one is still reached over plain HTTP where crane falls back to it by itself
    /// (`localhost:PORT`, `127.0.0.1`, `::1`, `*.local`, private IPv4 addresses), or over TLS
    /// where its certificate verifies. Otherwise the copy fails as `tls`, saying which engines
    /// treat each side by its own settings ([`verified_anyway`]).
    OnlyInsecure(Side),
}

impl Trust {
    fn of(source: &Reach, destination: &Reach) -> Trust {
        match (source.insecure, destination.insecure) {
            (false, false) => Trust::Verified,
            (true, true) => Trust::Insecure,
            (true, false) => Trust::OnlyInsecure(Side::Source),
            (false, true) => Trust::OnlyInsecure(Side::Destination),
        }
    }
}

/// How crane reaches the sides of `job`; `None` for a target crane cannot write (a layout).
pub fn trust(access: &Access, job: &Job) -> Option<Trust> {
    let Target::Registry(target) = &job.target else {
        return None;
    };
    Some(Trust::of(
        &access.reach(Side::Source, &job.source.repository()),
        &access.reach(Side::Destination, &target.repository()),
    ))
}

/// The message for a TLS failure crane met on `side`, the one side of its copy that is insecure
/// for ferry: crane verified it because it cannot skip verification for one side alone.
fn verified_anyway(side: Side, host: &str, problem: TlsProblem, detail: &str) -> String {
    let (this, other) = match side {
        Side::Source => ("source", "destination"),
        Side::Destination => ("destination", "source"),
    };
    let what = match problem {
        TlsProblem::PlainHttp => format!("{host} speaks plain HTTP, not HTTPS"),
        TlsProblem::UnknownAuthority => {
            format!("{host} has a certificate from an authority this machine does not trust")
        }
        TlsProblem::Other => format!("TLS with {host} failed: {detail}"),
    };
    format!(
        "{what}. The {this} is insecure for ferry, but crane has one --insecure for both sides \
         and the {other} is verified, so crane verified {host} too: copy with --engine skopeo \
         or --engine native, which treat each side by its own settings"
    )
}

/// The endpoint of `name` on `side`, or why there is none (a name registries.conf blocks).
fn endpoint(access: &Access, side: Side, name: &str) -> Result<Endpoint, String> {
    access.endpoint(side, name).map_err(|e| e.to_string())
}

/// Builds the command line and environment of the crane run that copies `job`. Pure but for
/// `is_dir`, which tells which of the default per-host CA directories exist.
///
/// - SRC is the pull endpoint registries.conf sends the source to (crane reads no
///   registries.conf), pinned by digest where the source has one (`name:tag@digest` is pulled
///   by digest and pushed to the tag); DST is the target, at its tag, else at its digest.
/// - `--insecure` (plain HTTP and unverified TLS, for both sides: crane has one setting) only
///   when both sides are insecure for ferry (see [`Trust`]).
/// - `DOCKER_CONFIG` is always ferry's private directory, so crane uses exactly the
///   credentials ferry resolved, and nothing else from the user's files.
/// - `SSL_CERT_DIR` lists each side's CA directory (its `--*-cert-dir`, else
///   `/etc/containers/certs.d/HOST` or `/etc/docker/certs.d/HOST` where they exist) before
///   the directories crane would read anyway.
pub fn build(
    options: &CraneOptions,
    access: &Access,
    config_dir: &Path,
    job: &Job,
    is_dir: &dyn Fn(&Path) -> bool,
) -> Result<Invocation, String> {
    let Target::Registry(target) = &job.target else {
        return Err(format!("{}: {NO_OCI_LAYOUTS}", job.target));
    };
    let (source_name, target_name) = (job.source.repository(), target.repository());
    let from = endpoint(access, Side::Source, &source_name)?;
    let to = endpoint(access, Side::Destination, &target_name)?;
    let at = |endpoint: &Endpoint, suffix: String| {
        format!(
            "{}/{}{suffix}",
            crane_host(&endpoint.host),
            endpoint.repository
        )
    };
    let source = match (job.source.digest(), job.source.tag()) {
        (Some(digest), _) => at(&from, format!("@{digest}")),
        (None, Some(tag)) => at(&from, format!(":{tag}")),
        (None, None) => {
            return Err(format!(
                "{} is a whole repository: ferry copies it tag by tag",
                job.source
            ))
        }
    };
    let destination = match (target.tag(), target.digest()) {
        (Some(tag), _) => at(&to, format!(":{tag}")),
        (None, Some(digest)) => at(&to, format!("@{digest}")),
        (None, None) => at(&to, String::new()),
    };
    let reach = [
        (access.reach(Side::Source, &source_name), from.host.as_str()),
        (
            access.reach(Side::Destination, &target_name),
            to.host.as_str(),
        ),
    ];
    let mut args = vec!["copy".to_owned()];
    if Trust::of(&reach[0].0, &reach[1].0) == Trust::Insecure {
        args.push("--insecure".to_owned());
    }
    args.extend([source, destination]);
    let mut env = vec![(
        "DOCKER_CONFIG".to_owned(),
        config_dir.as_os_str().to_owned(),
    )];
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (reach, host) in &reach {
        for dir in reach.cert_dirs(host, is_dir) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if !dirs.is_empty() {
        let mut value = OsString::new();
        for dir in &dirs {
            value.push(dir.as_os_str());
            value.push(":");
        }
        match &options.ssl_cert_dir {
            Some(inherited) => value.push(inherited),
            None => value.push(GO_CERT_DIRS.join(":")),
        }
        env.push(("SSL_CERT_DIR".to_owned(), value));
    }
    Ok(Invocation {
        program: options.binary.clone(),
        args,
        env,
    })
}

/// One repository a run touches on one side, as crane names its host, with the credentials
/// ferry uses for it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub side: Side,
    /// `host[:port]` as crane names it.
    pub host: String,
    /// The repository path on that host.
    pub repository: String,
    pub credentials: Option<Credentials>,
}

/// Every repository `jobs` read (at the pull endpoint) and write, in job order, destinations
/// first, each once, with the credentials ferry's registry client would use for it.
pub fn logins(access: &Access, jobs: &[Job]) -> Result<Vec<Login>, CredentialsError> {
    let mut names: Vec<(Side, String)> = Vec::new();
    for job in jobs {
        if let Target::Registry(target) = &job.target {
            names.push((Side::Destination, target.repository()));
        }
    }
    names.extend(jobs.iter().map(|j| (Side::Source, j.source.repository())));
    let mut seen = BTreeSet::new();
    let mut logins = Vec::new();
    for (side, name) in names {
        if !seen.insert((side == Side::Source, name.clone())) {
            continue;
        }
        // A blocked name is refused when its copy is built; it needs no credentials.
        let Ok(endpoint) = access.endpoint(side, &name) else {
            continue;
        };
        let credentials = access.credentials(side, &name, &endpoint)?;
        logins.push(Login {
            side,
            host: crane_host(&endpoint.host).to_owned(),
            repository: endpoint.repository,
            credentials,
        });
    }
    Ok(logins)
}

/// The Docker `config.json` crane reads (through `DOCKER_CONFIG`) for `logins`. crane looks up
/// a repository's own key (`host/path`) first, then its host's. So each host gets a key with
/// the first credentials found for it, a destination's before a source's (a push needs them;
/// they usually read too); each repository whose credentials differ from its host's (a host
/// on both sides with a login each, or auth-file entries for one repository or namespace)
/// gets its own, and a repository on both sides gets the destination's. Docker Hub's host key
/// is `https://index.docker.io/v1/`.
pub fn docker_config(logins: &[Login]) -> Vec<u8> {
    let mut ordered: Vec<&Login> = logins.iter().filter(|l| l.credentials.is_some()).collect();
    // Stable: job order within a side.
    ordered.sort_by_key(|l| l.side == Side::Source);
    let mut hosts: BTreeMap<&str, &Credentials> = BTreeMap::new();
    // The first login for a repository decides it, entry or not.
    let mut repositories: BTreeMap<String, Option<&Credentials>> = BTreeMap::new();
    for login in ordered {
        let Some(credentials) = &login.credentials else {
            continue;
        };
        let host = *hosts.entry(login.host.as_str()).or_insert(credentials);
        repositories
            .entry(format!("{}/{}", login.host, login.repository))
            .or_insert((host != credentials).then_some(credentials));
    }
    let entry = |credentials: &Credentials| {
        let pair = format!("{}:{}", credentials.username, credentials.password.expose());
        serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(pair) })
    };
    let mut auths = serde_json::Map::new();
    for (host, credentials) in hosts {
        let key = if host == docker_hub::INDEX_HOST {
            docker_hub::AUTH_KEY
        } else {
            host
        };
        auths.insert(key.to_owned(), entry(credentials));
    }
    for (repository, credentials) in repositories {
        if let Some(credentials) = credentials {
            auths.insert(repository, entry(credentials));
        }
    }
    serde_json::to_vec_pretty(&serde_json::json!({ "auths": auths }))
        .expect("config JSON always serializes")
}

/// What crane writes at the top level: the target's tag, else its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Tag(String),
    Digest(String),
}

fn written(job: &Job) -> Written {
    match &job.target {
        Target::Registry(target) => match (target.tag(), target.digest()) {
            (Some(tag), _) => Written::Tag(tag.to_owned()),
            (None, Some(digest)) => Written::Digest(digest.to_owned()),
            (None, None) => Written::Tag("latest".to_owned()),
        },
        Target::Oci { name, digest, .. } => match (name, digest) {
            (Some(name), _) => Written::Tag(name.clone()),
            (None, Some(digest)) => Written::Digest(digest.clone()),
            (None, None) => Written::Tag("latest".to_owned()),
        },
    }
}

/// What a successful crane run reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The top-level digest written, or found already there.
    pub digest: Option<String>,
    pub counts: Counts,
}

/// A line of crane's log without Go's `2006/01/02 15:04:05 ` prefix.
fn message_of(line: &str) -> &str {
    let line = line.trim();
    let mut parts = line.splitn(3, ' ');
    let (date, time, rest) = (parts.next(), parts.next(), parts.next());
    let looks = |s: &str, sep: char, n: usize| {
        s.split(sep).count() == n && s.chars().all(|c| c.is_ascii_digit() || c == sep)
    };
    match (date, time, rest) {
        (Some(date), Some(time), Some(rest)) if looks(date, '/', 3) && looks(time, ':', 3) => rest,
        _ => line,
    }
}

/// A blob line: `existing blob:` (reused), `pushed blob:` or `mounted blob:` (copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blob {
    Reused,
    Copied,
}

fn blob_event(line: &str) -> Option<Blob> {
    let message = message_of(line);
    if message.starts_with("existing blob: ") {
        Some(Blob::Reused)
    } else if message.starts_with("pushed blob: ") || message.starts_with("mounted blob: ") {
        Some(Blob::Copied)
    } else {
        None
    }
}

/// Reads crane's log (stderr): blobs copied and reused (configs count as blobs: crane does
/// not tell them from layers), manifests written (`REF: digest: D size: N`), child manifests
/// found present, and the top-level digest: that of the line whose REF is the target's tag
/// (or digest), or of `existing manifest: TAG@DIGEST` when the whole image was there already.
pub fn parse_output(stderr: &str, written: &Written) -> Output {
    let mut output = Output::default();
    for line in stderr.lines() {
        match blob_event(line) {
            Some(Blob::Reused) => output.counts.blobs_reused += 1,
            Some(Blob::Copied) => output.counts.blobs_copied += 1,
            None => {}
        }
        let message = message_of(line);
        if let Some(existing) = message.strip_prefix("existing manifest: ") {
            let existing = existing.trim();
            match (existing.split_once('@'), written) {
                (Some((tag, digest)), Written::Tag(want)) if tag == want => {
                    output.digest = Some(digest.to_owned());
                }
                (None, Written::Digest(want)) if existing == want => {
                    output.digest = Some(existing.to_owned());
                }
                (None, _) => output.counts.images_present += 1,
                _ => {}
            }
        } else if let Some((reference, rest)) = message.split_once(": digest: ") {
            output.counts.manifests_written += 1;
            let digest = rest.split_whitespace().next().unwrap_or_default();
            let top = match written {
                Written::Tag(tag) => {
                    !reference.contains('@') && reference.ends_with(&format!(":{tag}"))
                }
                Written::Digest(want) => reference.ends_with(&format!("@{want}")),
            };
            if top && !digest.is_empty() {
                output.digest = Some(digest.to_owned());
            }
        }
    }
    output
}

/// Said with crane's 429s: crane retries no 429 to a read, and a crane run asks for the
/// manifest right after its `/v2/` ping, so behind a registry that allows no burst every run
/// meets one (measured in the bench: 8 of 8 images failed behind 2 requests/s).
const RATE_LIMIT_HINT: &str = " (crane does not wait out a 429 itself; behind a strict rate \
                               limit, --engine native or --engine skopeo does)";

/// The message of crane's last `Error: ` line (cobra's), with any lines after it.
pub fn error_message(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().rposition(|l| l.starts_with("Error: "))?;
    let mut message = lines[at]["Error: ".len()..].trim().to_owned();
    for line in lines[at + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
    {
        message.push(' ');
        message.push_str(line);
    }
    Some(message)
}

/// The side and registry host (as ferry names it) a failure message from crane is about: the
/// source when crane was `fetching` it, else the host the message names, the destination's
/// first (crane's other failures are the push's).
fn failure_side(access: &Access, job: &Job, message: &str) -> (Side, String) {
    let source = access
        .endpoint(Side::Source, &job.source.repository())
        .map(|e| e.host)
        .unwrap_or_else(|_| job.source.domain().to_owned());
    let target = match &job.target {
        Target::Registry(target) => access
            .endpoint(Side::Destination, &target.repository())
            .map(|e| e.host)
            .ok(),
        Target::Oci { .. } => None,
    };
    let names = |host: &str| message.contains(crane_host(host));
    match target {
        _ if message.starts_with("fetching \"") => (Side::Source, source),
        Some(target) if names(&target) => (Side::Destination, target),
        _ if names(&source) => (Side::Source, source),
        Some(target) => (Side::Destination, target),
        None => (Side::Source, source),
    }
}

/// crane's failure words beyond those it shares with skopeo (see [`tool::GO_WORDS`]).
const WORDS: &Words = &[
    (FailureKind::RateLimited, &["429 too many requests"]),
    (FailureKind::Unauthorized, &["403 forbidden"]),
    (
        FailureKind::NotFound,
        &["manifest_unknown", "name_unknown", "404 not found"],
    ),
    (
        FailureKind::Network,
        &[
            "408 request timeout",
            "500 internal server error",
            "unavailable:",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::conf::RegistriesConf;
    use crate::access::credentials::CredentialSources;

    fn classify(message: &str) -> FailureKind {
        tool::classify(message, WORDS)
    }
    use crate::access::SideAccess;
    use crate::model::Origin;
    use crate::reference::ImageRef;

    fn options() -> CraneOptions {
        CraneOptions {
            binary: PathBuf::from("/opt/bin/crane"),
            ssl_cert_dir: None,
        }
    }

    fn job(source: &str, target: &str) -> Job {
        Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(source).unwrap(),
            target: Target::Registry(ImageRef::parse(target).unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        }
    }

    fn no_dirs(_: &Path) -> bool {
        false
    }

    fn env_of(invocation: &Invocation) -> Vec<(String, String)> {
        invocation
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
            .collect()
    }

    fn creds(pair: &str) -> Option<Credentials> {
        Credentials::parse_user_pass(pair)
    }

    #[test]
    fn every_access_setting_lands_in_argv_or_environment() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let conf = RegistriesConf::parse(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"mirror.internal:5000/hub\"\n\
             [[registry]]\nprefix = \"plain.example\"\ninsecure = true\n",
        )
        .unwrap();
        let verified = |cert_dir: Option<&str>| SideAccess {
            tls_verify: Some(true),
            cert_dir: cert_dir.map(PathBuf::from),
            ..SideAccess::default()
        };
        let with_dirs = |source: Option<&str>, destination: Option<&str>| Access {
            conf: conf.clone(),
            source: verified(source),
            destination: verified(destination),
        };
        let config = Path::new("/tmp/ferry-1/crane-docker-config");
        let go_dirs = "/etc/ssl/certs:/etc/pki/tls/certs";
        // (access, job, argv after `copy`, SSL_CERT_DIR)
        let table: Vec<(Access, Job, Vec<String>, Option<String>)> = vec![
            // The redirect is applied by ferry: crane is given the mirror, never docker.io.
            (
                with_dirs(None, None),
                job("nginx:1.25", "h.example/m/docker.io/library/nginx:1.25"),
                vec![
                    "mirror.internal:5000/hub/library/nginx:1.25".into(),
                    "h.example/m/docker.io/library/nginx:1.25".into(),
                ],
                None,
            ),
            // Tag and digest: pulled by digest, pushed to the tag. Each side's CA directory.
            (
                with_dirs(Some("/c/src"), Some("/c/dest")),
                job(
                    &format!("quay.io/a/b:1@{digest}"),
                    &format!("h.example/m/quay.io/a/b:1@{digest}"),
                ),
                vec![
                    format!("quay.io/a/b@{digest}"),
                    "h.example/m/quay.io/a/b:1".into(),
                ],
                Some(format!("/c/src:/c/dest:{go_dirs}")),
            ),
            // A digest-only target is pushed by digest; Docker Hub as a destination is
            // index.docker.io to crane.
            (
                with_dirs(None, Some("/c/dest")),
                job(
                    &format!("quay.io/a/b@{digest}"),
                    &format!("docker.io/team/b@{digest}"),
                ),
                vec![
                    format!("quay.io/a/b@{digest}"),
                    format!("index.docker.io/team/b@{digest}"),
                ],
                Some(format!("/c/dest:{go_dirs}")),
            ),
            // registries.conf's insecure for the source, and the destination not verified
            // either: the job is insecure (crane has one switch for both).
            (
                Access {
                    conf: conf.clone(),
                    destination: SideAccess {
                        tls_verify: Some(false),
                        ..SideAccess::default()
                    },
                    ..Access::default()
                },
                job("plain.example/a/b:2", "h.example/m/plain.example/a/b:2"),
                vec![
                    "--insecure".into(),
                    "plain.example/a/b:2".into(),
                    "h.example/m/plain.example/a/b:2".into(),
                ],
                None,
            ),
        ];
        for (access, job, args, cert_dirs) in table {
            let invocation = build(&options(), &access, config, &job, &no_dirs).unwrap();
            assert_eq!(invocation.program, PathBuf::from("/opt/bin/crane"));
            assert_eq!(invocation.args[0], "copy", "{job:?}");
            assert_eq!(invocation.args[1..], args, "{job:?}");
            let mut env = vec![(
                "DOCKER_CONFIG".to_owned(),
                "/tmp/ferry-1/crane-docker-config".to_owned(),
            )];
            env.extend(cert_dirs.map(|dirs| ("SSL_CERT_DIR".to_owned(), dirs)));
            assert_eq!(env_of(&invocation), env, "{job:?}");
        }
    }

    #[test]
    fn insecure_only_when_both_sides_are_insecure() {
        let conf =
            RegistriesConf::parse("[[registry]]\nprefix = \"plain.example\"\ninsecure = true\n")
                .unwrap();
        let side = |tls_verify: Option<bool>| SideAccess {
            tls_verify,
            ..SideAccess::default()
        };
        // (source --src-tls-verify, destination --dest-tls-verify, source, trust)
        let table = [
            (None, None, "quay.io/a/b:1", Trust::Verified),
            (Some(true), Some(true), "quay.io/a/b:1", Trust::Verified),
            (
                None,
                Some(false),
                "quay.io/a/b:1",
                Trust::OnlyInsecure(Side::Destination),
            ),
            (
                Some(false),
                None,
                "quay.io/a/b:1",
                Trust::OnlyInsecure(Side::Source),
            ),
            (Some(false), Some(false), "quay.io/a/b:1", Trust::Insecure),
            // registries.conf's insecure counts as the flag does, and the flag wins over it.
            (
                None,
                None,
                "plain.example/a/b:1",
                Trust::OnlyInsecure(Side::Source),
            ),
            (None, Some(false), "plain.example/a/b:1", Trust::Insecure),
            (
                Some(true),
                Some(false),
                "plain.example/a/b:1",
                Trust::OnlyInsecure(Side::Destination),
            ),
        ];
        for (src, dest, source, want) in table {
            let access = Access {
                conf: conf.clone(),
                source: side(src),
                destination: side(dest),
            };
            let target = format!("127.0.0.1:5000/m/{source}");
            let job = job(source, &target);
            assert_eq!(
                trust(&access, &job),
                Some(want),
                "{src:?} {dest:?} {source}"
            );
            let invocation = build(&options(), &access, Path::new("/d"), &job, &no_dirs).unwrap();
            let mut args = vec!["copy"];
            if want == Trust::Insecure {
                args.push("--insecure");
            }
            args.extend([source, target.as_str()]);
            assert_eq!(invocation.args, args, "{src:?} {dest:?} {source}");
        }
    }

    #[test]
    fn a_tls_failure_on_the_insecure_side_names_the_engines_that_can_skip_it() {
        let untrusted = verified_anyway(
            Side::Source,
            "127.0.0.1:5001",
            TlsProblem::UnknownAuthority,
            "x509: certificate signed by unknown authority",
        );
        assert_eq!(
            untrusted,
            "127.0.0.1:5001 has a certificate from an authority this machine does not trust. \
             The source is insecure for ferry, but crane has one --insecure for both sides and \
             the destination is verified, so crane verified 127.0.0.1:5001 too: copy with \
             --engine skopeo or --engine native, which treat each side by its own settings"
        );
        let plain = verified_anyway(
            Side::Destination,
            "h.example:5000",
            TlsProblem::PlainHttp,
            "",
        );
        assert!(
            plain.starts_with(
                "h.example:5000 speaks plain HTTP, not HTTPS. The destination is \
                 insecure for ferry"
            ) && plain.contains("the source is verified"),
            "{plain}"
        );
    }

    #[test]
    fn default_host_ca_directories_and_the_inherited_ssl_cert_dir_are_kept() {
        let job = job("quay.io/a/b:1", "h.example/m/quay.io/a/b:1");
        let exists = |dir: &Path| dir == Path::new("/etc/docker/certs.d/h.example");
        let mut opts = options();
        opts.ssl_cert_dir = Some("/home/me/cas".into());
        let invocation = build(&opts, &Access::default(), Path::new("/d"), &job, &exists).unwrap();
        assert_eq!(
            env_of(&invocation)[1],
            (
                "SSL_CERT_DIR".to_owned(),
                "/etc/docker/certs.d/h.example:/home/me/cas".to_owned()
            )
        );
    }

    #[test]
    fn what_crane_cannot_copy_is_refused_before_it_runs() {
        let blocked = Access {
            conf: RegistriesConf::parse("[[registry]]\nprefix = \"quay.io\"\nblocked = true\n")
                .unwrap(),
            ..Access::default()
        };
        let copy = job("quay.io/a/b:1", "h.example/m/quay.io/a/b:1");
        let error = build(&options(), &blocked, Path::new("/d"), &copy, &no_dirs).unwrap_err();
        assert_eq!(error, "quay.io/a/b is blocked by registries.conf");
        let mut layout = copy.clone();
        layout.target = Target::Oci {
            layout: "mirror/quay.io/a/b".into(),
            name: Some("1".into()),
            digest: None,
        };
        let error = build(
            &options(),
            &Access::default(),
            Path::new("/d"),
            &layout,
            &no_dirs,
        )
        .unwrap_err();
        assert_eq!(error, format!("oci:mirror/quay.io/a/b:1: {NO_OCI_LAYOUTS}"));
        let whole = job("quay.io/a/b", "h.example/m/quay.io/a/b");
        assert!(build(
            &options(),
            &Access::default(),
            Path::new("/d"),
            &whole,
            &no_dirs
        )
        .is_err());
    }

    #[test]
    fn credentials_are_those_ferry_uses_for_each_repository() {
        let conf = RegistriesConf::parse(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"mirror.internal:5000\"\n",
        )
        .unwrap();
        let mut source = SideAccess {
            credentials: CredentialSources {
                side: creds("side:sidepw"),
                authfile: Some("/nonexistent/auth.json".into()),
                ..CredentialSources::default()
            },
            ..SideAccess::default()
        };
        source
            .credentials
            .per_host
            .insert("mirror.internal:5000".into(), creds("mirror:mpw").unwrap());
        let destination = SideAccess {
            credentials: CredentialSources {
                side: creds("push:ppw"),
                authfile: Some("/nonexistent/auth.json".into()),
                ..CredentialSources::default()
            },
            ..SideAccess::default()
        };
        let access = Access {
            conf,
            source,
            destination,
        };
        let jobs = [
            job("nginx:1.25", "h.example/m/docker.io/library/nginx:1.25"),
            job("nginx:1.26", "h.example/m/docker.io/library/nginx:1.26"),
            job("quay.io/a/b:1", "h.example/m/quay.io/a/b:1"),
        ];
        let logins = logins(&access, &jobs).unwrap();
        let seen: Vec<(Side, &str, &str, Option<&str>)> = logins
            .iter()
            .map(|l| {
                (
                    l.side,
                    l.host.as_str(),
                    l.repository.as_str(),
                    l.credentials.as_ref().map(|c| c.username.as_str()),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    Side::Destination,
                    "h.example",
                    "m/docker.io/library/nginx",
                    Some("push")
                ),
                (
                    Side::Destination,
                    "h.example",
                    "m/quay.io/a/b",
                    Some("push")
                ),
                // Redirected: only what is held for the mirror, never --src-creds.
                (
                    Side::Source,
                    "mirror.internal:5000",
                    "library/nginx",
                    Some("mirror")
                ),
                (Side::Source, "quay.io", "a/b", Some("side")),
            ]
        );
    }

    #[test]
    fn the_config_has_a_key_per_host_and_per_repository_that_differs() {
        let login = |side, host: &str, repository: &str, pair: Option<&str>| Login {
            side,
            host: host.to_owned(),
            repository: repository.to_owned(),
            credentials: pair.and_then(creds),
        };
        let logins = [
            login(Side::Source, "h.example", "src/app", Some("reader:rpw")),
            login(Side::Destination, "h.example", "m/app", Some("pusher:ppw")),
            login(
                Side::Source,
                "index.docker.io",
                "library/nginx",
                Some("hub:hpw"),
            ),
            login(Side::Source, "quay.io", "a/b", None),
            // Both sides: the destination's wins.
            login(Side::Source, "h.example", "m/app", Some("reader:rpw")),
        ];
        let config: serde_json::Value = serde_json::from_slice(&docker_config(&logins)).unwrap();
        let auth = |pair: &str| base64::engine::general_purpose::STANDARD.encode(pair);
        assert_eq!(
            config,
            serde_json::json!({ "auths": {
                "h.example": { "auth": auth("pusher:ppw") },
                "h.example/src/app": { "auth": auth("reader:rpw") },
                "https://index.docker.io/v1/": { "auth": auth("hub:hpw") },
            }})
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&docker_config(&[])).unwrap(),
            serde_json::json!({ "auths": {} })
        );
    }

    #[test]
    fn output_gives_the_top_level_digest_and_what_moved() {
        let top = format!("sha256:{}", "d".repeat(64));
        let child = format!("sha256:{}", "e".repeat(64));
        let copied = format!(
            "2026/12/02 00:58:48 Copying from 127.0.0.1:15001/demo/app:1 to 127.0.0.1:15002/demo/app:1\n\
             2026/12/02 00:58:48 existing blob: sha256:11\n\
             2026/12/02 00:58:48 pushed blob: sha256:22\n\
             2026/12/02 00:58:48 mounted blob: sha256:33\n\
             2026/12/02 00:58:48 127.0.0.1:15002/demo/app@{child}: digest: {child} size: 423\n\
             2026/12/02 00:58:48 127.0.0.1:15002/demo/app:1: digest: {top} size: 413\n"
        );
        assert_eq!(
            parse_output(&copied, &Written::Tag("1".into())),
            Output {
                digest: Some(top.clone()),
                counts: Counts {
                    blobs_copied: 2,
                    blobs_reused: 1,
                    images_present: 0,
                    manifests_written: 2,
                    bytes_copied: None,
                },
            }
        );
        // A tag that ends like another: only the exact tag is the top level.
        assert_eq!(
            parse_output(&copied, &Written::Tag("11".into())).digest,
            None
        );
        // By digest: the line whose REF is the target digest.
        let pinned = format!(
            "2026/12/02 00:58:48 h/x@{child}: digest: {child} size: 423\n\
             2026/12/02 00:58:48 h/x@{top}: digest: {top} size: 413\n"
        );
        let by_digest = parse_output(&pinned, &Written::Digest(top.clone()));
        assert_eq!(by_digest.digest.as_deref(), Some(top.as_str()));
        assert_eq!(by_digest.counts.manifests_written, 2);
        // Already there: the digest, nothing written.
        let existing = format!("2026/12/02 00:58:48 existing manifest: 1@{top}\n");
        assert_eq!(
            parse_output(&existing, &Written::Tag("1".into())),
            Output {
                digest: Some(top.clone()),
                counts: Counts::default()
            }
        );
        let existing = format!("existing manifest: {top}\n");
        assert_eq!(
            parse_output(&existing, &Written::Digest(top.clone())).digest,
            Some(top.clone())
        );
        // A new tag for an image whose platforms are there: children present, index written.
        let retagged = format!(
            "2026/12/02 13:01:52 existing manifest: {child}\n\
             2026/12/02 13:01:52 h/x:2: digest: {top} size: 413\n"
        );
        let counts = parse_output(&retagged, &Written::Tag("2".into())).counts;
        assert_eq!((counts.images_present, counts.manifests_written), (1, 1));
    }

    #[test]
    fn the_error_line_is_the_message() {
        let stderr = "2026/12/02 00:58:48 Copying from a to b\n\
            2026/12/02 00:58:48 retrying without mount: x\n\
            Error: fetching \"h/app:nope\": GET http://h/v2/app/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; map[Tag:nope]\n";
        assert_eq!(
            error_message(stderr).as_deref(),
            Some("fetching \"h/app:nope\": GET http://h/v2/app/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; map[Tag:nope]")
        );
        assert_eq!(error_message("2026/12/02 00:58:48 pushed blob: x\n"), None);
    }

    #[test]
    fn failures_are_classified_from_cranes_words() {
        let table = [
            ("fetching \"127.0.0.1:15001/demo/app:nope\": GET http://127.0.0.1:15001/v2/demo/app/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; map[Tag:nope]", FailureKind::NotFound),
            ("fetching \"q/x/y:1\": GET https://q/v2/x/y/manifests/1: NAME_UNKNOWN: repository name not known to registry", FailureKind::NotFound),
            ("HEAD http://127.0.0.1:15003/v2/demo/app/manifests/1: unexpected status code 401 Unauthorized (HEAD responses have no body, use GET for details)", FailureKind::Unauthorized),
            ("fetching \"h/x/app:1\": GET https://h/v2/x/app/manifests/1: UNAUTHORIZED: authentication required; [map[Action:pull Class: Name:x/app Type:repository]]", FailureKind::Unauthorized),
            ("POST https://h/v2/m/app/blobs/uploads/: DENIED: requested access to the resource is denied", FailureKind::Unauthorized),
            ("fetching \"h/demo/app:1\": GET http://h/v2/demo/app/manifests/1: TOOMANYREQUESTS: You have reached your pull rate limit.", FailureKind::RateLimited),
            ("GET https://h/v2/x/manifests/1: unexpected status code 429 Too Many Requests", FailureKind::RateLimited),
            ("fetching \"127.0.0.1:15999/demo/app:1\": Get \"https://127.0.0.1:15999/v2/\": dial tcp 127.0.0.1:15999: connect: connection refused; Get \"http://127.0.0.1:15999/v2/\": dial tcp 127.0.0.1:15999: connect: connection refused", FailureKind::Network),
            ("fetching \"nonexistent.invalid/x/app:1\": Get \"https://nonexistent.invalid/v2/\": dial tcp: lookup nonexistent.invalid on 10.255.255.53:53: no such host", FailureKind::Network),
            ("PUT http://h/v2/m/app/manifests/1: unexpected status code 503 Service Unavailable: upstream down", FailureKind::Network),
            ("PATCH http://h/v2/m/app/blobs/uploads/x: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", FailureKind::Network),
            ("Get \"https://127.0.0.1:15003/v2/\": x509: certificate signed by unknown authority; GET http://127.0.0.1:15003/v2/: unexpected status code 400 Bad Request: Client sent an HTTP request to an HTTPS server.", FailureKind::Tls),
            ("Get \"https://h:5000/v2/\": http: server gave HTTP response to HTTPS client", FailureKind::Tls),
            ("parsing reference \"127.0.0.1:15001/x:1\": could not parse reference: 127.0.0.1:15001/x:1", FailureKind::Other),
            // Ports that look like status codes are just ports.
            ("fetching \"127.0.0.1:34291/x:1\": GET http://127.0.0.1:34291/v2/x/manifests/1: MANIFEST_UNKNOWN: manifest unknown", FailureKind::NotFound),
            ("Get \"http://127.0.0.1:40404/v2/\": dial tcp 127.0.0.1:40404: connect: connection refused", FailureKind::Network),
        ];
        for (message, kind) in table {
            assert_eq!(classify(message), kind, "{message}");
        }
        assert!(crate::model::unresolvable_host(table[8].0));
    }

    #[test]
    fn tls_failures_name_the_side_crane_met_them_on() {
        let access = Access::default();
        let job = job("quay.io/a/b:1", "127.0.0.1:5000/m/quay.io/a/b:1");
        let source = "fetching \"quay.io/a/b:1\": Get \"https://quay.io/v2/\": x509: certificate signed by unknown authority";
        let destination =
            "Get \"https://127.0.0.1:5000/v2/\": x509: certificate signed by unknown authority";
        assert_eq!(
            failure_side(&access, &job, source),
            (Side::Source, "quay.io".to_owned())
        );
        assert_eq!(
            failure_side(&access, &job, destination),
            (Side::Destination, "127.0.0.1:5000".to_owned())
        );
    }

    #[test]
    fn a_refused_connection_is_put_on_the_host_of_its_url() {
        let hosts = ["registry-1.docker.io", "127.0.0.1:5000"];
        let table = [
            ("fetching \"index.docker.io/library/nginx:1\": Get \"https://index.docker.io/v2/\": dial tcp 10.1.2.3:443: connect: connection refused", Some("registry-1.docker.io")),
            ("Get \"https://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused; Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused", Some("127.0.0.1:5000")),
            ("Get \"https://index.docker.io/v2/\": dial tcp: lookup index.docker.io on 10.0.0.53:53: read: connection refused", None),
            ("Get \"https://index.docker.io/v2/\": i/o timeout", None),
        ];
        let hosts = hosts.map(str::to_owned);
        let crane = Crane::for_dry_run(options(), Access::default());
        for (message, expected) in table {
            assert_eq!(
                tool::refusing_host(&crane, message, &hosts).as_deref(),
                expected,
                "{message}"
            );
        }
    }
}
