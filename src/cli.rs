//! The command line, as clap derive types and the parsing of their values (durations); nothing
//! else. `settings` turns these into a validated `Settings`; no other module sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Mirror third-party container images into a private registry, in parallel and digest-exact",
    long_about = None,
    // Help wraps to the terminal, but lines longer than this are hard to read however wide it is.
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log more (-v: each skopeo or crane command, -vv: debug)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// How log lines and run events are written on stderr: for people (text), or one JSON
    /// object per line (json) for log collectors
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

impl Command {
    /// The destination flags, for the commands that have them.
    pub fn dest_mut(&mut self) -> Option<&mut DestArgs> {
        match self {
            Command::ShowRawImages(args) | Command::ShowImages(args) => Some(&mut args.dest),
            Command::Plan(args) | Command::Verify(args) => Some(&mut args.dest),
            Command::Sync(args) => Some(&mut args.dest),
            Command::Serve(args) => Some(&mut args.sync.dest),
            Command::Report(_) | Command::Completions { .. } | Command::Manpage { .. } => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the normalized source of every entry, one per line, in list order
    ShowRawImages(ShowArgs),
    /// Print the target of every entry, one per line, in list order
    ShowImages(ShowArgs),
    /// Show what a sync would do: each entry's state and both digests, copying nothing
    Plan(Box<PlanArgs>),
    /// Check that every target exists with its source's digest (exit 1 if not)
    Verify(Box<PlanArgs>),
    /// Copy every entry that is not already current, with skopeo or crane, several at a time
    Sync(Box<SyncArgs>),
    /// Run the sync on a schedule, with Prometheus metrics and health endpoints
    Serve(Box<ServeArgs>),
    /// Work on JSON reports
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print a shell completion script (e.g. `ferry completions bash > /etc/bash_completion.d/ferry`)
    Completions {
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the man page, in roff (`ferry manpage > ferry.1; man ./ferry.1`), or write every
    /// subcommand's page too (`ferry manpage --dir /usr/local/share/man/man1`)
    Manpage {
        /// Write ferry.1 and one page per subcommand (ferry-sync.1, …) into DIR
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of one run's shards (sync, plan or verify) into OUT, counting the
    /// summary again: exit 2 for reports that are not one run's shards each once (another
    /// command, list or N; a shard twice; an older ferry's), 1 when a shard is missing or an
    /// image failed (a target has a problem), else 0
    Merge {
        /// The merged report ("-" for standard output)
        #[arg(value_name = "OUT")]
        out: PathBuf,
        /// The shards' reports
        #[arg(value_name = "IN", required = true)]
        inputs: Vec<PathBuf>,
        /// Write the failed images (a verification's targets with problems) to FILE in list
        /// format, under the command that feeds them back to `ferry sync`
        #[arg(long, value_name = "FILE")]
        failed_list: Option<PathBuf>,
    },
    /// Write a catalog of the mirror from a sync run's reports (its shards', merged as merge
    /// merges them, or a merged one; or a verification's): per source registry and repository,
    /// each mirrored tag with its target, digest, platforms, signatures, when it was synced and
    /// the command that pulls it, after a summary and the failed images. Exit 2 for reports
    /// merge refuses, and for a plan's
    Catalog {
        /// The run's reports
        #[arg(value_name = "REPORT", required = true)]
        inputs: Vec<PathBuf>,
        /// markdown (renders on GitHub) or html (one self-contained page with a filter box)
        /// [default: html when -o names a .html or .htm file, else markdown]
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<CatalogFormat>,
        /// Write the catalog to FILE ("-" or none: standard output)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// How `report catalog` writes the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogFormat {
    Markdown,
    Html,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Image lists: files, "-" for standard input, or http(s) URLs
    /// [default: ./source-images.list]
    #[arg(value_name = "LIST")]
    pub lists: Vec<String>,

    /// Take the images from the OCI layouts `sync --dest-dir DIR` wrote (or the bundle tar
    /// `sync --bundle FILE.tar` wrote) instead of a list: every tag of every layout, each to
    /// the scoped name it was copied from, digests kept (an air-gapped site's side of a
    /// bundle). Copies with the native engine
    #[arg(long, value_name = "DIR|FILE.tar", conflicts_with_all = ["lists", "format"])]
    pub from_dir: Option<PathBuf>,

    /// Read every LIST in this format [default: by extension: .yaml/.yml skopeo sync YAML,
    /// .json ImagePorter images.json, anything else a list]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// Work on shard K of N only (0 <= K < N): the entries whose target repository hashes to K
    /// (FNV-1a 64 mod N); N alone takes K from --shard-index-env
    // Hyphen values reach the parser, which says what is wrong with `-1/3`.
    #[arg(long, value_name = "K/N", allow_hyphen_values = true)]
    pub shard: Option<String>,

    /// The environment variable holding K for --shard N [default: JOB_COMPLETION_INDEX, set by
    /// a Kubernetes Indexed Job]
    #[arg(long, value_name = "VAR", requires = "shard")]
    pub shard_index_env: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// One reference per line, optional target column
    List,
    /// skopeo's `sync --src yaml` file
    SkopeoYaml,
    /// ImagePorter's images.json
    ImagesJson,
}

#[derive(Debug, Args)]
pub struct DestArgs {
    /// Destination prefix: a registry host and optional path (e.g. harbor.example/third);
    /// repeat it to mirror every image into each of several registries ($FERRY_DEST is one)
    #[arg(long, env = "FERRY_DEST", value_name = "PREFIX")]
    pub dest: Vec<String>,

    /// Local directory of OCI layouts, used instead of a registry [default: mirror]; given on
    /// the command line it wins over $FERRY_DEST
    #[arg(long, value_name = "DIR")]
    pub dest_dir: Option<PathBuf>,

    /// Whether `dest` came from the environment rather than the command line.
    #[arg(skip)]
    pub dest_from_env: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub dest: DestArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub dest: DestArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub lookups: LookupArgs,
    #[command(flatten)]
    pub signatures: SignatureArgs,

    /// Write the plan (or verification) as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Which tags of a whole-repository line (no tag, no digest) are mirrored, and which platforms
/// of a multi-platform image.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only tags matching REGEX (the whole tag must match)
    #[arg(long = "tags", value_name = "REGEX")]
    pub tags: Option<String>,
    /// Drop tags matching REGEX (the whole tag must match)
    #[arg(long, value_name = "REGEX")]
    pub exclude_tags: Option<String>,
    /// Only tags whose version is in RANGE, e.g. ">=1.25, <1.27" (v1.2.3 and 3.10 are coerced)
    #[arg(long, value_name = "RANGE")]
    pub semver: Option<String>,
    /// Only the tags of the N highest versions left by the other filters (a version's
    /// variants, such as 1.25.3-alpine, stay with it)
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
    /// Drop alpha, beta, rc and similar pre-release tags
    #[arg(long)]
    pub no_prerelease: bool,
    /// For namespace lines (REGISTRY/*, REGISTRY/PATH/**): drop the repositories whose name
    /// under the namespace matches REGEX (the whole name must match)
    #[arg(long, value_name = "REGEX")]
    pub exclude_repos: Option<String>,
    /// Mirror only these platforms of a multi-platform image (os/arch[/variant], comma-separated
    /// or repeated, e.g. linux/amd64,linux/arm64): an index of just them is written, recording
    /// upstream's index digest, which plans compare. Copies with the native engine
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT],…")]
    pub platform: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("schedule").required(true).args(["every", "cron"])))]
pub struct ServeArgs {
    #[command(flatten)]
    pub sync: SyncArgs,

    /// Run now and then every DURATION (e.g. 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,

    /// Run at the times a cron expression names, in $TZ (e.g. "0 3 * * *"; 5 fields, or 6
    /// with seconds first)
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,

    /// Wait a random time up to DURATION before each run, so that servers do not all start
    /// at once
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub splay: Option<std::time::Duration>,

    /// Serve /metrics, /healthz, /readyz and /catalog (the last run's catalog as HTML, as
    /// `report catalog` writes it; /catalog.md as Markdown; 404 before the first run) on ADDR
    /// (e.g. 0.0.0.0:9090; port 0 picks one, printed on stderr)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub dest: DestArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub lookups: LookupArgs,
    #[command(flatten)]
    pub signatures: SignatureArgs,
    #[command(flatten)]
    pub skopeo: SkopeoArgs,
    #[command(flatten)]
    pub engine: EngineArgs,

    /// Copy every entry, even those whose target already has the source's digest
    #[arg(long)]
    pub force: bool,

    /// Spend at most N pulls (manifest GETs) at each metered registry (Docker Hub, or any that
    /// sends its ratelimit headers) in this run: a copy that would cross it is not started but
    /// reported deferred, with the time the quota frees up (exit 1); auto spends what is left
    /// but a tenth of the window's limit
    #[arg(long, value_name = "N|auto")]
    pub pull_budget: Option<String>,

    /// At most N copies at once touching registry HOST (repeatable) [default: docker.io=2]
    #[arg(long = "registry-jobs", value_name = "HOST=N")]
    pub registry_jobs: Vec<String>,

    /// Images copied at the same time
    #[arg(short, long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,

    /// Print the skopeo or crane commands that would run (secrets redacted) and copy nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Write a JSON report of every image to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the failed entries to FILE in list format, ready to be fed back as input
    #[arg(long, value_name = "FILE")]
    pub failed_list: Option<PathBuf>,

    /// With local OCI layouts (--dest-dir): once the run is over, pack the layouts of its
    /// images into one tar, FILE, for an air-gapped site (`ferry sync --from-dir FILE --dest
    /// PREFIX` there): a ferry-bundle.json first, listing every blob with its sha256 and size
    /// and every tag with its source and digest, then the layouts as they are
    #[arg(long, value_name = "FILE.tar")]
    pub bundle: Option<PathBuf>,

    /// How progress is shown on stderr: a live view on a terminal (tty), a heartbeat line
    /// every --progress-interval (plain), nothing (none); auto picks tty when stderr is a
    /// terminal, else plain
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub progress: ProgressArg,

    /// Time between two heartbeat lines of --progress plain
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub progress_interval: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    Auto,
    Tty,
    Plain,
    None,
}

/// How registries are reached: skopeo's flags, used by ferry's own requests and passed to skopeo.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Auth file for both sides (skopeo's --authfile)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Auth file for the sources
    #[arg(long, value_name = "PATH")]
    pub src_authfile: Option<PathBuf>,
    /// Auth file for the destinations (keyed by host: one file for several --dest)
    #[arg(long, value_name = "PATH")]
    pub dest_authfile: Option<PathBuf>,

    /// Require HTTPS and verify certificates for the sources
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub src_tls_verify: Option<bool>,
    /// Require HTTPS and verify certificates for the destination (every one of several;
    /// per host: registries.conf's `insecure`)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dest_tls_verify: Option<bool>,
    /// Directory of certificates (*.crt, *.cert, *.key) for the sources
    #[arg(long, value_name = "PATH")]
    pub src_cert_dir: Option<PathBuf>,
    /// Directory of certificates (*.crt, *.cert, *.key) for the destination (every one of
    /// several; per host: /etc/containers/certs.d/HOST)
    #[arg(long, value_name = "PATH")]
    pub dest_cert_dir: Option<PathBuf>,

    /// Source credentials USER:PASS (prefer the environment variable: argv is visible to other users)
    #[arg(
        long,
        env = "FERRY_SRC_CREDS",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    pub src_creds: Option<String>,
    /// Destination credentials USER:PASS (or FERRY_DEST_USERNAME and FERRY_DEST_PASSWORD), sent
    /// to every destination of several (per host: an auth file or --accounts)
    #[arg(
        long,
        env = "FERRY_DEST_CREDS",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    pub dest_creds: Option<String>,
    #[arg(long, env = "FERRY_DEST_USERNAME", hide = true)]
    pub dest_username: Option<String>,
    #[arg(long, env = "FERRY_DEST_PASSWORD", hide = true, hide_env_values = true)]
    pub dest_password: Option<String>,

    /// Pace ferry's own requests to registry HOST at R per second (repeatable); any registry
    /// that answers 429 is slowed down by itself
    #[arg(long = "registry-rps", value_name = "HOST=R")]
    pub registry_rps: Vec<String>,

    /// ImagePorter accounts.json: credentials per registry, for sources and destination
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,

    /// containers registries.conf to use (redirects and mirrors); skopeo itself ignores the
    /// environment variable, so ferry passes it on
    #[arg(long, env = "CONTAINERS_REGISTRIES_CONF", value_name = "PATH")]
    pub registries_conf: Option<PathBuf>,
}

/// How often a transient failure (network, rate limit, timeout) is tried again: a tag listing
/// while planning, and a copy.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Times ferry retries a tag listing or an image copy that failed for a transient reason
    /// (network, rate limit, timeout); missing images and bad credentials are not retried
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retry_times: u32,

    /// Wait before the first retry; it doubles with each retry (with jitter)
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = parse_duration)]
    pub retry_delay: std::time::Duration,

    /// Longest wait between two attempts
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub max_retry_delay: std::time::Duration,
}

/// How long ferry waits for a registry's answers while planning, and how long a listing may get.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Give up one request of a lookup (a digest, a page of tags, a token) not answered in full
    /// after this long: the entry is planned `unknown` (a sync still copies it), a listing
    /// fails. Lookups of other repositories and registries go on meanwhile
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub lookup_timeout: std::time::Duration,

    /// Fail the listing of a whole repository with more than N tags, or one that goes on past
    /// the pages N tags take (50 to a page), rather than list without end
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_tags: usize,

    /// Take a tag already present at the destination as current without asking the source
    /// (one HEAD at the destination, none at the source), except tags matching
    /// --always-check: a tag moved upstream is not noticed. For tags that never change
    #[arg(long)]
    pub missing_only: bool,

    /// With --missing-only, the tags still compared with their source (the whole tag must
    /// match) [default: latest|main|edge|nightly|stable]
    #[arg(long, value_name = "REGEX", requires = "missing_only")]
    pub always_check: Option<String>,

    /// Fail a namespace line that lists more than N repositories
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_repos: usize,

    /// Fail a namespace line whose registry's catalog (GET /v2/_catalog, every repository of
    /// the registry) goes on past N entries
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_catalog: usize,

    /// Where Docker Hub's namespaces are listed (its Hub API) [default: https://hub.docker.com]
    #[arg(long, value_name = "URL")]
    pub hub_api: Option<String>,
}

/// What travels with each image.
#[derive(Debug, Args)]
pub struct SignatureArgs {
    /// Also copy what belongs to each image, after it and with its digests: cosign's
    /// signatures, attestations and SBOMs (its sha256-<hex>.sig, .att and .sbom tags) and its
    /// OCI referrers (by digest: the native engine only). LIST narrows that to some of sig,
    /// att, sbom, referrers and referrer artifactTypes (e.g. application/spdx+json). With
    /// verify: check that every one of them is at the target
    #[arg(
        long,
        value_name = "LIST",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    pub signatures: Option<String>,
}

/// How skopeo itself is run.
#[derive(Debug, Args)]
pub struct SkopeoArgs {
    /// Stop a copy attempt (its whole skopeo process group) after this long; it fails as
    /// `timeout` and is retried like other transient failures, each retry with the same limit.
    /// The first attempt's limit includes the time the image's lookups took while planning
    #[arg(long, default_value = "30m", value_name = "DURATION", value_parser = parse_duration)]
    pub image_timeout: std::time::Duration,

    /// Run skopeo without a signature policy (skopeo's --insecure-policy)
    #[arg(long)]
    pub insecure_policy: bool,

    /// The skopeo binary [default: skopeo from PATH]
    #[arg(long, env = "FERRY_SKOPEO", value_name = "PATH")]
    pub skopeo: Option<PathBuf>,
}

/// Which program copies the images.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The copy engine [default: skopeo; native for local OCI layouts or when skopeo is not
    /// installed]
    #[arg(long, env = "FERRY_ENGINE", value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineArg>,

    /// The crane binary, for --engine crane [default: crane from PATH]
    #[arg(long, env = "FERRY_CRANE", value_name = "PATH")]
    pub crane: Option<PathBuf>,

    /// With --engine native: fail a copy's request unanswered after this long, and a blob
    /// transfer that moves no byte for this long (it is retried like other timeouts)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub stall_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    /// skopeo copy / skopeo sync, one process per image
    Skopeo,
    /// go-containerregistry's crane, one process per image; needs --dest (it cannot write OCI
    /// layouts ferry can read back)
    Crane,
    /// ferry's own registry client: blobs streamed, mounted and shared within the run
    Native,
}

/// The forms a duration flag takes, for error messages.
const DURATION_FORMS: &str = "e.g. 500ms, 2s, 5m, 1h";

/// Parses `500ms`, `2s`, `1.5s`, `5m` or `1h`. The unit is required: a bare `5` could mean
/// seconds or minutes, and a wrong guess makes a timeout 60 times too short or too long. Zero
/// is refused too: no duration flag means anything useful at zero (a zero `--image-timeout`
/// fails every image at once).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration ({DURATION_FORMS})"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => return Err(format!("a duration needs a unit ({DURATION_FORMS})")),
        _ => {
            return Err(format!(
                "unknown unit \"{unit}\" (ms, s, m or h: {DURATION_FORMS})"
            ))
        }
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if duration.is_zero() => {
            Err(format!("must be longer than zero ({DURATION_FORMS})"))
        }
        Ok(duration) => Ok(duration),
        Err(_) => Err(format!("not a duration ({DURATION_FORMS})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        let table = [
            ("500ms", 500),
            ("2s", 2000),
            (" 2s ", 2000),
            ("1.5s", 1500),
            ("5m", 300_000),
            ("1h", 3_600_000),
        ];
        for (text, millis) in table {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_without_a_unit_or_of_zero_are_refused() {
        let forms = "e.g. 500ms, 2s, 5m, 1h";
        let table = [
            ("2", format!("a duration needs a unit ({forms})")),
            ("1.5", format!("a duration needs a unit ({forms})")),
            ("0", format!("a duration needs a unit ({forms})")),
            ("0s", format!("must be longer than zero ({forms})")),
            ("0ms", format!("must be longer than zero ({forms})")),
            ("0.0h", format!("must be longer than zero ({forms})")),
            (
                "0.0000000001s",
                format!("must be longer than zero ({forms})"),
            ),
            ("2d", format!("unknown unit \"d\" (ms, s, m or h: {forms})")),
            (
                "2 s",
                format!("unknown unit \" s\" (ms, s, m or h: {forms})"),
            ),
            ("", format!("not a duration ({forms})")),
            ("s", format!("not a duration ({forms})")),
            ("-1s", format!("not a duration ({forms})")),
            ("fast", format!("not a duration ({forms})")),
            ("99999999999999999999h", format!("not a duration ({forms})")),
        ];
        for (text, expected) in table {
            assert_eq!(parse_duration(text), Err(expected), "{text:?}");
        }
    }
}
