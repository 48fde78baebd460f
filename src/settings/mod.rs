//! From the command line (and environment) to one validated `Settings` value. Everything
//! that can be wrong with the configuration is found here, before any work starts, and
//! reported as a `SettingsError` (exit code 2). Once built, the value is not changed: what a
//! run's inputs say of single registries (a skopeo YAML section, the accounts file) goes into
//! the registry options built for that run ([`PlanSettings::registry_for`]), and the core is
//! handed narrow options built from it ([`PlanOptions`], [`RunOptions`]) and the workers
//! ([`SyncSettings::workers`]: the registry client and the engine, once per run).
//!
//! Which engine copies and where its binary is lives in [`engine`]; how progress is shown, in
//! [`output`].

pub mod engine;
pub mod output;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::engine::EngineSettings;
use self::output::ProgressSettings;
use crate::access::conf::{ConfError, RegistriesConf};
use crate::access::credentials::{CredentialSources, CredentialsError};
use crate::access::{Access, HostTls, SideAccess};
use crate::cli::{
    AccessArgs, Cli, Command, DestArgs, FilterArgs, FormatArg, ListArgs, LookupArgs, PlanArgs,
    RetryArgs, SignatureArgs, SyncArgs,
};
use crate::cli::{LogFormat, ReportCommand, ServeArgs};
use crate::engine::Engine;
use crate::filter::{FilterError, FilterSpec, TagFilter};
use crate::input::{HostSettings, InputFormat, InputSource};
use crate::model::platform::Platforms;
use crate::model::{Destination, Job, Rerun, RetryPolicy, Selection};
use crate::plan::namespace::NamespaceOptions;
use crate::plan::{MissingOnly, PlanOptions};
use crate::reference::{ReferenceError, RepoPrefix};
use crate::registry::quota::PullBudget;
use crate::registry::{ClientOptions, Limits, RegistryClient};
use crate::run::RunOptions;
use crate::scratch::ScratchDir;
use crate::secret::{Credentials, Secret};
use crate::serve::Schedule;
use crate::shard::Shard;

/// The list read when none is named, as the old shell scripts did.
pub const DEFAULT_LIST: &str = "source-images.list";

#[derive(Debug)]
pub struct Settings {
    pub verbosity: u8,
    pub log_format: LogFormat,
    pub command: CommandSettings,
}

/// The inputs to read and the format to read them in (by extension when `None`).
#[derive(Debug, Clone)]
pub struct InputSettings {
    pub sources: Vec<InputSource>,
    pub format: Option<InputFormat>,
    /// Only this shard's entries (`--shard`).
    pub shard: Option<Shard>,
}

#[derive(Debug)]
pub enum CommandSettings {
    ShowRawImages {
        inputs: InputSettings,
        /// Only to tell which entries a `--shard` holds.
        destination: Destination,
        more_destinations: Vec<Destination>,
    },
    ShowImages {
        inputs: InputSettings,
        destination: Destination,
        /// The registries after the first of several `--dest` (see
        /// [`PlanSettings::more_destinations`]).
        more_destinations: Vec<Destination>,
    },
    Plan(Box<PlanSettings>),
    Verify(Box<PlanSettings>),
    Sync(Box<SyncSettings>),
    Serve(Box<ServeSettings>),
    /// `completions SHELL`
    Completions(crate::cli::ShellArg),
    /// `manpage [--dir DIR]`
    Manpage(Option<PathBuf>),
    /// `report merge OUT IN… [--failed-list FILE]`
    ReportMerge {
        out: PathBuf,
        inputs: Vec<PathBuf>,
        failed_list: Option<PathBuf>,
    },
    /// `report catalog REPORT… [--format F] [-o FILE]`; `output` is `-` for stdout.
    ReportCatalog {
        inputs: Vec<PathBuf>,
        format: crate::cli::CatalogFormat,
        output: PathBuf,
    },
}

/// What `plan`, `verify` and `sync` share: the inputs, where they go, and how registries are
/// reached and repositories expanded.
#[derive(Debug)]
pub struct PlanSettings {
    pub inputs: InputSettings,
    /// ImagePorter accounts.json with credentials per registry host.
    pub accounts: Option<PathBuf>,
    /// The destination, or the first of several (`--dest A --dest B`): what one destination
    /// decides (the engine, layouts, the shards) it decides.
    pub destination: Destination,
    /// The registries after the first of several `--dest`, each receiving every entry as the
    /// first does; empty for one destination. Several destinations are registries only.
    pub more_destinations: Vec<Destination>,
    /// How registries are reached, before a run's inputs add theirs (see
    /// [`PlanSettings::registry_for`]).
    pub registry: ClientOptions,
    /// The tag filters, the retry policy (for tag listings, and for copies), and for a sync
    /// `--force` and `--image-timeout`.
    pub options: PlanOptions,
    /// The `HOST=VALUE` limits the user gave, to point out hosts no image touches.
    pub host_flags: Vec<HostFlag>,
    pub report: Option<PathBuf>,
    pub verbosity: u8,
    /// What a rerun of the failed entries needs: this run's options for reaching registries
    /// (and, for a sync, its engine's), its layout root and tag filters.
    pub rerun: Rerun,
    /// What travels with each image (`--signatures`): copied by `sync`, checked by `verify`.
    pub signatures: Option<Selection>,
}

#[derive(Debug)]
pub struct SyncSettings {
    pub plan: PlanSettings,
    pub engine: EngineSettings,
    /// Why the native engine copies though none was named (skopeo is not installed), to be
    /// said once.
    pub engine_note: Option<String>,
    /// What `--signatures` cannot do with this engine (referrers by digest), to be said once.
    pub signatures_note: Option<String>,
    pub image_timeout: Duration,
    pub jobs: usize,
    /// Copies at once per registry host.
    pub registry_jobs: HashMap<String, usize>,
    pub dry_run: bool,
    pub failed_list: Option<PathBuf>,
    pub progress: ProgressSettings,
    /// The tar to pack the run's layouts into at its end (`--bundle`).
    pub bundle: Option<PathBuf>,
}

impl PlanSettings {
    /// Every destination, the first first.
    pub fn destinations(&self) -> Vec<Destination> {
        std::iter::once(self.destination.clone())
            .chain(self.more_destinations.iter().cloned())
            .collect()
    }

    /// The registry options of one run: these settings' own, with what the run's inputs say of
    /// single registries added: a registry section of an input (`hosts`) describes a source
    /// registry, its credentials and TLS settings winning over the side's; an account
    /// (`accounts`) is for its registry whichever side it is on, the input's own credentials
    /// winning over it.
    pub fn registry_for(&self, hosts: &[HostSettings], accounts: &[HostSettings]) -> ClientOptions {
        let mut registry = self.registry.clone();
        let access = &mut registry.access;
        for host in hosts {
            if let Some(creds) = &host.credentials {
                access
                    .source
                    .credentials
                    .per_host
                    .insert(host.host.clone(), creds.clone());
            }
            if host.tls_verify.is_some() || host.cert_dir.is_some() {
                let tls = HostTls {
                    tls_verify: host.tls_verify,
                    cert_dir: host.cert_dir.clone(),
                };
                access.source.per_host.insert(host.host.clone(), tls);
            }
        }
        for account in accounts {
            if let Some(creds) = &account.credentials {
                for side in [&mut access.source, &mut access.destination] {
                    side.credentials
                        .per_host
                        .entry(account.host.clone())
                        .or_insert_with(|| creds.clone());
                }
            }
        }
        registry
    }
}

/// What one sync copies with: ferry's registry client (the plan's lookups, and the native
/// engine's copies) and the engine.
pub struct Workers {
    pub client: Arc<RegistryClient>,
    pub engine: Arc<dyn Engine>,
}

impl SyncSettings {
    /// What the run core needs of these settings.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            plan: self.plan.options.clone(),
            destination: self.plan.destination.clone(),
            jobs: self.jobs,
            registry_jobs: self.registry_jobs.clone(),
            conf: self.plan.registry.access.conf.clone(),
            signatures: self.plan.signatures.clone(),
        }
    }

    /// The workers of one run over `jobs`, with `registry` (see [`PlanSettings::registry_for`]):
    /// the engine is built once, its private files (auth files, a `DOCKER_CONFIG`) written into
    /// `scratch`; for a dry run (`scratch` is `None`) they are named, not written.
    pub fn workers(
        &self,
        registry: ClientOptions,
        jobs: &[Job],
        scratch: Option<&ScratchDir>,
    ) -> Result<Workers, CredentialsError> {
        let client = Arc::new(RegistryClient::new(registry));
        self.workers_with(client, jobs, scratch)
    }

    /// The workers of one run over `jobs` around `client`, already made (to list the run's
    /// namespaces before the engine is built for every repository they hold).
    pub fn workers_with(
        &self,
        client: Arc<RegistryClient>,
        jobs: &[Job],
        scratch: Option<&ScratchDir>,
    ) -> Result<Workers, CredentialsError> {
        let access = client.access().clone();
        let engine = self.engine.build(engine::Build {
            client: &client,
            access,
            destination: &self.plan.destination,
            more_destinations: &self.plan.more_destinations,
            image_timeout: self.image_timeout,
            jobs,
            scratch,
            platforms: self.plan.options.platforms.as_ref(),
            bundle: self
                .plan
                .inputs
                .sources
                .iter()
                .find_map(|source| match source {
                    InputSource::Bundle(path) => Some(path.as_path()),
                    _ => None,
                }),
        })?;
        Ok(Workers { client, engine })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid destination \"{value}\": {source}")]
    Destination {
        value: String,
        #[source]
        source: ReferenceError,
    },
    #[error("--jobs must be at least 1")]
    NoJobs,
    #[error("--max-tags must be at least 1")]
    NoTags,
    #[error("invalid --always-check regex {pattern:?}")]
    AlwaysCheck {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("verify compares every target with its source; --missing-only is for plan and sync")]
    VerifyMissingOnly,
    #[error("--max-repos and --max-catalog must be at least 1")]
    NoRepos,
    #[error("invalid --exclude-repos regex {pattern:?}")]
    ExcludeRepos {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("--hub-api {value:?} must be an http(s) URL such as https://hub.docker.com")]
    HubApi { value: String },
    #[error("--pull-budget {value:?} {reason}")]
    PullBudget { value: String, reason: String },
    #[error("--registry-jobs \"{value}\" must be HOST=N with N at least 1")]
    RegistryJobs { value: String },
    #[error(
        "--registry-rps \"{value}\" must be HOST=R with R requests per second, at least 0.001"
    )]
    RegistryRps { value: String },
    #[error("{flag} must be USER:PASS with both parts non-empty")]
    Credentials { flag: &'static str },
    #[error("FERRY_DEST_USERNAME and FERRY_DEST_PASSWORD must be set together")]
    HalfCredentials,
    #[error("skopeo was not found ({reason}); install it (Debian/Ubuntu: apt-get install skopeo, Fedora: dnf install skopeo, macOS: brew install skopeo), point --skopeo/FERRY_SKOPEO at it, or copy with --engine native")]
    SkopeoMissing { reason: String },
    #[error("crane was not found ({reason}); install it (go install github.com/google/go-containerregistry/cmd/crane@latest) or point --crane/FERRY_CRANE at it")]
    CraneMissing { reason: String },
    #[error("--insecure-policy is a skopeo option; {engine} checks no signature policy (drop it, or use --engine skopeo)")]
    InsecurePolicyWithout { engine: &'static str },
    #[error("{what} {} does not exist", path.display())]
    MissingPath { what: &'static str, path: PathBuf },
    #[error("{flag} \"{value}\": {reason}")]
    RegistryHost {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Serve(String),
    #[error("--shard {value}: {reason}")]
    Shard { value: String, reason: String },
    #[error("--platform {reason}")]
    Platform { reason: String },
    #[error("--platform needs the native engine (--engine native), and {engine} was asked for: {engine} copies a single platform's image where an index has several (skopeo's --override-os/--override-arch without --all, crane's --platform), not an index of the platforms asked for that records upstream's digest, which ferry plans and verifies against; drop --engine {engine} (ferry then copies natively) or pass --engine native")]
    PlatformNeedsNative { engine: &'static str },
    #[error("--dest and --dest-dir cannot be used together: --dest mirrors into a registry, --dest-dir into local OCI layouts")]
    DestAndDestDir,
    #[error("{0}")]
    Bundle(String),
    #[error("--dest {value} is given twice: each destination receives every image once")]
    DestTwice { value: String },
    #[error("{flag} {}: {reason}", path.display())]
    OutputPath {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("--report and --failed-list cannot both be \"-\" (standard output)")]
    BothOnStdout,
    #[error("OUT and --failed-list cannot both be \"-\" (standard output)")]
    MergeBothOnStdout,
    #[error("--signatures{0}")]
    Signatures(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    RegistriesConf(#[from] ConfError),
}

impl Settings {
    pub fn from_cli(cli: Cli) -> Result<Settings, SettingsError> {
        let verbosity = cli.verbose;
        let log_format = cli.log_format;
        let command = match cli.command {
            Command::ShowRawImages(args) => {
                let (destination, more_destinations) = destinations(&args.dest)?;
                CommandSettings::ShowRawImages {
                    inputs: inputs(&args.list)?,
                    destination,
                    more_destinations,
                }
            }
            Command::ShowImages(args) => {
                let (destination, more_destinations) = destinations(&args.dest)?;
                CommandSettings::ShowImages {
                    inputs: inputs(&args.list)?,
                    destination,
                    more_destinations,
                }
            }
            Command::Plan(args) => {
                if args.signatures.signatures.is_some() {
                    return Err(SettingsError::Signatures(
                        ": `ferry plan` does not look up artifacts; `ferry verify --signatures` \
                         checks them at the target and `ferry sync --signatures` copies them"
                            .to_owned(),
                    ));
                }
                CommandSettings::Plan(Box::new(plan_settings(&args, verbosity)?))
            }
            Command::Verify(args) => {
                if args.lookups.missing_only {
                    return Err(SettingsError::VerifyMissingOnly);
                }
                CommandSettings::Verify(Box::new(plan_settings(&args, verbosity)?))
            }
            Command::Sync(args) => {
                CommandSettings::Sync(Box::new(sync_settings(*args, verbosity, log_format)?))
            }
            Command::Serve(args) => {
                CommandSettings::Serve(Box::new(serve_settings(*args, verbosity, log_format)?))
            }
            Command::Completions { shell } => CommandSettings::Completions(shell),
            Command::Manpage { dir } => CommandSettings::Manpage(dir),
            Command::Report(ReportCommand::Merge {
                out,
                inputs,
                failed_list,
            }) => {
                output_path("report merge OUT", &Some(out.clone()))?;
                output_path("--failed-list", &failed_list)?;
                let stdout = |path: &std::path::Path| path == std::path::Path::new("-");
                if stdout(&out) && failed_list.as_deref().is_some_and(stdout) {
                    return Err(SettingsError::MergeBothOnStdout);
                }
                CommandSettings::ReportMerge {
                    out,
                    inputs,
                    failed_list,
                }
            }
            Command::Report(ReportCommand::Catalog {
                inputs,
                format,
                output,
            }) => {
                let output = output.unwrap_or_else(|| PathBuf::from("-"));
                output_path("report catalog -o", &Some(output.clone()))?;
                let html = output
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| {
                        e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm")
                    });
                let format = format.unwrap_or(match html {
                    true => crate::cli::CatalogFormat::Html,
                    false => crate::cli::CatalogFormat::Markdown,
                });
                CommandSettings::ReportCatalog {
                    inputs,
                    format,
                    output,
                }
            }
        };
        Ok(Settings {
            verbosity,
            log_format,
            command,
        })
    }
}

fn inputs(list: &ListArgs) -> Result<InputSettings, SettingsError> {
    let sources = if let Some(dir) = &list.from_dir {
        vec![InputSource::Bundle(dir.clone())]
    } else if list.lists.is_empty() {
        vec![InputSource::File(PathBuf::from(DEFAULT_LIST))]
    } else {
        list.lists
            .iter()
            .map(|a| InputSource::from_arg(a))
            .collect()
    };
    let format = list.format.map(|format| match format {
        FormatArg::List => InputFormat::List,
        FormatArg::SkopeoYaml => InputFormat::SkopeoYaml,
        FormatArg::ImagesJson => InputFormat::ImagesJson,
    });
    let shard = list
        .shard
        .as_deref()
        .map(|value| {
            Shard::parse(value, list.shard_index_env.as_deref(), |var| {
                std::env::var(var).ok()
            })
            .map_err(|reason| SettingsError::Shard {
                value: value.to_owned(),
                reason,
            })
        })
        .transpose()?;
    Ok(InputSettings {
        sources,
        format,
        shard,
    })
}

/// The default root of local OCI layouts.
const DEFAULT_DEST_DIR: &str = "mirror";

/// `--dest`, else OCI layouts under `--dest-dir`. A flag on the command line wins over the
/// environment (`--dest-dir` over `$FERRY_DEST`); both flags on the command line conflict.
/// `--dest` given more than once names several registries: the first, and the others (each
/// once).
fn destinations(dest: &DestArgs) -> Result<(Destination, Vec<Destination>), SettingsError> {
    let given: Vec<&str> = dest
        .dest
        .iter()
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
        .collect();
    let Some((first, more)) = given.split_first() else {
        return Ok((layouts(dest), Vec::new()));
    };
    if dest.dest_dir.is_some() {
        return match dest.dest_from_env {
            true => Ok((layouts(dest), Vec::new())),
            false => Err(SettingsError::DestAndDestDir),
        };
    }
    let parse = |value: &str| {
        RepoPrefix::parse(value)
            .map(Destination::Registry)
            .map_err(|source| SettingsError::Destination {
                value: value.to_owned(),
                source,
            })
    };
    let first = parse(first)?;
    let mut seen = vec![first.clone()];
    for value in more {
        let parsed = parse(value)?;
        if seen.contains(&parsed) {
            return Err(SettingsError::DestTwice {
                value: (*value).to_owned(),
            });
        }
        seen.push(parsed);
    }
    seen.remove(0);
    Ok((first, seen))
}

/// The OCI layouts under `--dest-dir` (by default `mirror`).
fn layouts(dest: &DestArgs) -> Destination {
    Destination::OciDir(
        dest.dest_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEST_DIR)),
    )
}

/// Checks before anything runs that an output file can be written: its directory exists and
/// is writable, and it is not a directory itself. `-` is standard output.
fn output_path(flag: &'static str, path: &Option<PathBuf>) -> Result<(), SettingsError> {
    let Some(path) = path.as_deref().filter(|p| *p != std::path::Path::new("-")) else {
        return Ok(());
    };
    let bad = |reason: &str| SettingsError::OutputPath {
        flag,
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.is_dir() {
        return Err(bad("is a directory"));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return Err(bad(&format!(
            "its directory {} does not exist",
            parent.display()
        )));
    }
    let c_path = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes())
        .map_err(|_| bad("has a NUL byte"))?;
    // SAFETY: access only reads the NUL-terminated path it is given.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } != 0 {
        return Err(bad(&format!(
            "its directory {} is not writable",
            parent.display()
        )));
    }
    Ok(())
}

fn plan_settings(args: &PlanArgs, verbosity: u8) -> Result<PlanSettings, SettingsError> {
    let mut plan = common(
        &args.list,
        &args.dest,
        &args.access,
        &args.filters,
        &args.retry,
        limits(&args.lookups, Limits::DEFAULT_STALL_TIMEOUT)?,
        args.report.clone(),
        verbosity,
    )?;
    plan.options.missing_only = missing_only(&args.lookups)?;
    namespaces(&mut plan, &args.filters, &args.lookups)?;
    plan.signatures = signatures(&args.signatures, &plan.destination)?;
    plan.options.signatures = plan.signatures.is_some();
    Ok(plan)
}

/// How namespace lines are listed: `--exclude-repos` (a filter: a rerun and the list
/// fingerprint take it), `--max-repos`, `--max-catalog` and `--hub-api`.
fn namespaces(
    plan: &mut PlanSettings,
    filters: &FilterArgs,
    lookups: &LookupArgs,
) -> Result<(), SettingsError> {
    if lookups.max_repos == 0 || lookups.max_catalog == 0 {
        return Err(SettingsError::NoRepos);
    }
    let exclude = filters
        .exclude_repos
        .as_deref()
        .map(|pattern| {
            NamespaceOptions::exclude(pattern).map_err(|source| SettingsError::ExcludeRepos {
                pattern: pattern.to_owned(),
                source,
            })
        })
        .transpose()?;
    if let Some(pattern) = &filters.exclude_repos {
        plan.rerun
            .filter_flags
            .extend(["--exclude-repos".to_owned(), pattern.clone()]);
    }
    plan.options.namespaces = NamespaceOptions {
        exclude,
        max_repos: lookups.max_repos,
        max_catalog: lookups.max_catalog,
    };
    if let Some(url) = &lookups.hub_api {
        let parsed = reqwest::Url::parse(url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.query().is_none()
        });
        if parsed.is_none() {
            return Err(SettingsError::HubApi { value: url.clone() });
        }
        plan.registry.hub_api = Some(url.trim_end_matches('/').to_owned());
        plan.rerun
            .flags
            .extend(["--hub-api".to_owned(), url.clone()]);
    }
    Ok(())
}

/// `--missing-only` and its `--always-check` regex.
fn missing_only(lookups: &LookupArgs) -> Result<Option<MissingOnly>, SettingsError> {
    if !lookups.missing_only {
        return Ok(None);
    }
    let pattern = lookups
        .always_check
        .as_deref()
        .unwrap_or(MissingOnly::DEFAULT_ALWAYS_CHECK);
    MissingOnly::new(pattern)
        .map(Some)
        .map_err(|source| SettingsError::AlwaysCheck {
            pattern: pattern.to_owned(),
            source,
        })
}

/// `--signatures[=LIST]`: what travels with each image, into a registry only.
fn signatures(
    args: &SignatureArgs,
    destination: &Destination,
) -> Result<Option<Selection>, SettingsError> {
    let Some(list) = &args.signatures else {
        return Ok(None);
    };
    let selection = Selection::parse(list)
        .map_err(|reason| SettingsError::Signatures(format!("={list}: {reason}")))?;
    if let Destination::OciDir(_) = destination {
        return Err(SettingsError::Signatures(format!(
            ": signatures, attestations, SBOMs and referrers are copied into a registry, not \
             into OCI layouts ({}); give --dest PREFIX",
            destination.label()
        )));
    }
    Ok(Some(selection))
}

/// The bounds on what a registry may cost, from the lookup flags and the stall timeout.
fn limits(lookups: &LookupArgs, stall_timeout: Duration) -> Result<Limits, SettingsError> {
    if lookups.max_tags == 0 {
        return Err(SettingsError::NoTags);
    }
    Ok(Limits {
        lookup_timeout: lookups.lookup_timeout,
        stall_timeout,
        max_tags: lookups.max_tags,
    })
}

#[expect(clippy::too_many_arguments)]
fn common(
    list: &ListArgs,
    dest: &DestArgs,
    access: &AccessArgs,
    filters: &FilterArgs,
    retry: &RetryArgs,
    limits: Limits,
    report: Option<PathBuf>,
    verbosity: u8,
) -> Result<PlanSettings, SettingsError> {
    check_paths(access)?;
    output_path("--report", &report)?;
    let (src_creds, dest_creds) = credentials(access)?;
    let conf = RegistriesConf::load(access.registries_conf.as_deref())?;
    let mut host_flags = Vec::new();
    let per_registry_rps = registry_rps(&access.registry_rps, &conf, &mut host_flags)?;
    let side = |tls_verify, cert_dir: &Option<PathBuf>, side_creds, authfile: &Option<PathBuf>| {
        SideAccess {
            tls_verify,
            cert_dir: cert_dir.clone(),
            credentials: CredentialSources {
                side: side_creds,
                authfile: authfile.clone().or_else(|| access.authfile.clone()),
                ..CredentialSources::default()
            },
            per_host: Default::default(),
        }
    };
    let registry = ClientOptions {
        access: Access {
            conf,
            source: side(
                access.src_tls_verify,
                &access.src_cert_dir,
                src_creds,
                &access.src_authfile,
            ),
            destination: side(
                access.dest_tls_verify,
                &access.dest_cert_dir,
                dest_creds,
                &access.dest_authfile,
            ),
        },
        per_registry_rps,
        limits,
        pull_budget: None,
        hub_api: None,
    };
    let filter = TagFilter::new(&FilterSpec {
        include: filters.tags.clone(),
        exclude: filters.exclude_tags.clone(),
        semver: filters.semver.clone(),
        latest: filters.latest,
        no_prerelease: filters.no_prerelease,
    })?;
    let (destination, more_destinations) = destinations(dest)?;
    let platforms =
        Platforms::parse(&filters.platform).map_err(|reason| SettingsError::Platform { reason })?;
    let mut flags = access_flags(access);
    flags.extend(platforms.iter().flat_map(Platforms::as_flags));
    let rerun = Rerun {
        flags,
        dest_dir: match &destination {
            Destination::OciDir(dir) => Some(dir.display().to_string()),
            Destination::Registry(_) => None,
        },
        filter_flags: filter.spec().as_flags(),
        credentials: credential_flags(access),
    };
    let inputs = inputs(list)?;
    let options = PlanOptions {
        filter,
        retry: RetryPolicy {
            retries: retry.retry_times,
            delay: retry.retry_delay,
            max_delay: retry.max_retry_delay.max(retry.retry_delay),
        },
        inputs: inputs.sources.iter().map(ToString::to_string).collect(),
        force: false,
        image_timeout: None,
        missing_only: None,
        namespaces: NamespaceOptions::default(),
        platforms,
        signatures: false,
    };
    Ok(PlanSettings {
        inputs,
        accounts: access.accounts.clone(),
        destination,
        more_destinations,
        registry,
        options,
        host_flags,
        report,
        verbosity,
        rerun,
        signatures: None,
    })
}

/// The options of this run that say how registries are reached, as a rerun must be given them:
/// TLS, certificate directories, auth files, the accounts file and registries.conf (from the
/// flag or `$CONTAINERS_REGISTRIES_CONF`). Paths, never secrets.
fn access_flags(access: &AccessArgs) -> Vec<String> {
    let mut flags = Vec::new();
    for (flag, value) in [
        ("--src-tls-verify", access.src_tls_verify),
        ("--dest-tls-verify", access.dest_tls_verify),
    ] {
        if let Some(verify) = value {
            flags.push(format!("{flag}={verify}"));
        }
    }
    for (flag, path) in [
        ("--src-cert-dir", &access.src_cert_dir),
        ("--dest-cert-dir", &access.dest_cert_dir),
        ("--authfile", &access.authfile),
        ("--src-authfile", &access.src_authfile),
        ("--dest-authfile", &access.dest_authfile),
        ("--accounts", &access.accounts),
        ("--registries-conf", &access.registries_conf),
    ] {
        if let Some(path) = path {
            flags.extend([flag.to_owned(), path.display().to_string()]);
        }
    }
    flags
}

/// The credential options this run had (from flags or the environment), by name: a rerun
/// needs them, and a file must never hold them.
fn credential_flags(access: &AccessArgs) -> Vec<String> {
    let mut named = Vec::new();
    if access.src_creds.is_some() {
        named.push("--src-creds".to_owned());
    }
    if access.dest_creds.is_some() || access.dest_username.is_some() {
        named.push("--dest-creds".to_owned());
    }
    named
}

/// What `serve` runs, and when.
#[derive(Debug)]
pub struct ServeSettings {
    pub sync: SyncSettings,
    pub schedule: Schedule,
    /// The time zone the next run's time is printed in.
    pub zone: String,
    pub splay: Option<Duration>,
    pub listen: Option<std::net::SocketAddr>,
}

fn serve_settings(
    args: ServeArgs,
    verbosity: u8,
    log_format: LogFormat,
) -> Result<ServeSettings, SettingsError> {
    if args.sync.dry_run {
        return Err(SettingsError::Serve(
            "--dry-run prints what one sync would run: use `ferry sync --dry-run`".to_owned(),
        ));
    }
    if args.sync.bundle.is_some() {
        return Err(SettingsError::Serve(
            "--bundle packs one run's layouts: use `ferry sync --bundle`".to_owned(),
        ));
    }
    let tz = std::env::var("TZ").ok();
    let schedule = match (args.every, &args.cron) {
        (Some(every), None) => Schedule::Every(every),
        (None, Some(expression)) => {
            Schedule::cron(expression, tz.as_deref()).map_err(SettingsError::Serve)?
        }
        _ => {
            return Err(SettingsError::Serve(
                "give one of --every DURATION or --cron EXPR".to_owned(),
            ))
        }
    };
    let listen = args
        .listen
        .as_deref()
        .map(|addr| {
            addr.parse().map_err(|_| {
                SettingsError::Serve(format!(
                    "--listen {addr:?} is not an address: write HOST:PORT, e.g. 0.0.0.0:9090"
                ))
            })
        })
        .transpose()?;
    // With --every, an unreadable $TZ only changes how times are printed: chrono then uses the
    // system's zone.
    let zone =
        crate::serve::local_zone(tz.as_deref()).unwrap_or_else(|_| crate::serve::system_zone());
    Ok(ServeSettings {
        sync: sync_settings(args.sync, verbosity, log_format)?,
        schedule,
        zone,
        splay: args.splay,
        listen,
    })
}

fn sync_settings(
    args: SyncArgs,
    verbosity: u8,
    log_format: LogFormat,
) -> Result<SyncSettings, SettingsError> {
    if args.jobs == 0 {
        return Err(SettingsError::NoJobs);
    }
    output_path("--failed-list", &args.failed_list)?;
    let stdout = |path: &Option<PathBuf>| path.as_deref() == Some(std::path::Path::new("-"));
    if stdout(&args.report) && stdout(&args.failed_list) {
        return Err(SettingsError::BothOnStdout);
    }
    let mut plan = common(
        &args.list,
        &args.dest,
        &args.access,
        &args.filters,
        &args.retry,
        limits(&args.lookups, args.engine.stall_timeout)?,
        args.report.clone(),
        verbosity,
    )?;
    let registry_jobs = registry_jobs(
        &args.registry_jobs,
        &plan.registry.access.conf,
        &mut plan.host_flags,
    )?;
    let (engine, engine_note) = engine::choose(&args, &plan.destination)?;
    plan.rerun.flags.extend(engine::rerun_flags(&engine, &args));
    bundle_flags(&args, &plan.destination)?;
    plan.signatures = signatures(&args.signatures, &plan.destination)?;
    plan.options.signatures = plan.signatures.is_some();
    if let Some(selection) = &plan.signatures {
        plan.rerun.flags.push(selection.as_flag());
    }
    let signatures_note = plan
        .signatures
        .as_ref()
        .filter(|s| !matches!(s.referrers, crate::model::Referrers::None))
        .and_then(|_| referrers_note(&engine));
    plan.options.force = args.force;
    plan.options.image_timeout = Some(args.skopeo.image_timeout);
    plan.options.missing_only = missing_only(&args.lookups)?;
    namespaces(&mut plan, &args.filters, &args.lookups)?;
    plan.registry.pull_budget = args
        .pull_budget
        .as_deref()
        .map(|value| {
            PullBudget::parse(value).map_err(|reason| SettingsError::PullBudget {
                value: value.to_owned(),
                reason,
            })
        })
        .transpose()?;
    Ok(SyncSettings {
        engine,
        engine_note,
        signatures_note,
        image_timeout: args.skopeo.image_timeout,
        plan,
        jobs: args.jobs,
        registry_jobs,
        dry_run: args.dry_run,
        failed_list: args.failed_list,
        bundle: args.bundle,
        progress: ProgressSettings::new(
            args.progress,
            args.progress_interval,
            verbosity,
            log_format,
        ),
    })
}

/// `--from-dir` and `--bundle` with the other flags: a bundle holds images, not their
/// signatures; `--bundle` packs local OCI layouts, into a file that can be written.
fn bundle_flags(args: &SyncArgs, destination: &Destination) -> Result<(), SettingsError> {
    if args.list.from_dir.is_some() && args.signatures.signatures.is_some() {
        return Err(SettingsError::Bundle(
            "--signatures cannot be used with --from-dir: a bundle holds the images' OCI \
             layouts, not their signatures or referrers"
                .to_owned(),
        ));
    }
    let Some(bundle) = &args.bundle else {
        return Ok(());
    };
    if let Destination::Registry(_) = destination {
        return Err(SettingsError::Bundle(
            "--bundle packs the local OCI layouts a sync writes: give --dest-dir DIR, not \
             --dest"
                .to_owned(),
        ));
    }
    if bundle.as_os_str() == "-" {
        return Err(SettingsError::Bundle(
            "--bundle needs a file: the tar is written beside it and renamed into place".to_owned(),
        ));
    }
    output_path("--bundle", &args.bundle)
}

/// What `--signatures` leaves undone with `engine`, said once at the start: OCI referrers exist
/// by digest alone, and only the native engine copies a manifest by digest.
pub fn referrers_note(engine: &EngineSettings) -> Option<String> {
    let name = engine.name();
    (!matches!(engine, EngineSettings::Native)).then(|| {
        format!(
            "ferry: note: with --engine {name}, --signatures copies cosign's signature, \
             attestation and SBOM tags as copies of their own; OCI referrers exist by digest \
             alone, which {name} cannot copy: they are reported as needs-native (copy them \
             with --engine native)"
        )
    })
}

/// The slowest pace `--registry-rps` takes (one request in about 17 minutes).
const MIN_REGISTRY_RPS: f64 = 0.001;

/// One `HOST=VALUE` of `--registry-rps` or `--registry-jobs`, as written and where it applies,
/// so that a host no image of the run touches can be pointed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFlag {
    pub flag: &'static str,
    pub written: String,
    /// The host requests go to (see [`RegistriesConf::host_for`]).
    pub host: String,
}

/// Request rates per registry, keyed by the host requests go to.
fn registry_rps(
    values: &[String],
    conf: &RegistriesConf,
    flags: &mut Vec<HostFlag>,
) -> Result<HashMap<String, f64>, SettingsError> {
    let bad = |value: &String| SettingsError::RegistryRps {
        value: value.clone(),
    };
    let valid = |rate: &f64| rate.is_finite() && *rate >= MIN_REGISTRY_RPS;
    host_values(
        values,
        HashMap::new(),
        conf,
        "--registry-rps",
        flags,
        valid,
        bad,
    )
}

/// Docker Hub throttles anonymous and free accounts hard; two copies at once is what its
/// limits allow without tripping them, unless told otherwise.
const DOCKER_HUB_JOBS: usize = 2;

/// Copies at once per registry, keyed by the host requests go to, like the rates. Docker
/// Hub's default limit holds where its names' requests really go to Docker Hub: a mirror
/// registries.conf sends `docker.io` to is a registry of its own, at `-j`.
fn registry_jobs(
    values: &[String],
    conf: &RegistriesConf,
    flags: &mut Vec<HostFlag>,
) -> Result<HashMap<String, usize>, SettingsError> {
    let hub = conf.host_for(crate::docker_hub::DOMAIN);
    let defaults = (hub == crate::docker_hub::api_host(crate::docker_hub::DOMAIN))
        .then_some((hub, DOCKER_HUB_JOBS))
        .into_iter()
        .collect();
    let bad = |value: &String| SettingsError::RegistryJobs {
        value: value.clone(),
    };
    host_values(
        values,
        defaults,
        conf,
        "--registry-jobs",
        flags,
        |n: &usize| *n > 0,
        bad,
    )
}

/// Parses repeated `HOST=VALUE` flags over `defaults`. HOST is a registry as image names
/// write it (Docker Hub's aliases are one), and the value applies where registries.conf sends
/// it.
fn host_values<T: std::str::FromStr>(
    values: &[String],
    mut map: HashMap<String, T>,
    conf: &RegistriesConf,
    flag: &'static str,
    flags: &mut Vec<HostFlag>,
    valid: impl Fn(&T) -> bool,
    bad: impl Fn(&String) -> SettingsError,
) -> Result<HashMap<String, T>, SettingsError> {
    for value in values {
        let (host, parsed) = value.split_once('=').ok_or_else(|| bad(value))?;
        let parsed: T = parsed.trim().parse().map_err(|_| bad(value))?;
        let written = host.trim();
        if written.is_empty() || written.contains('/') || !valid(&parsed) {
            return Err(bad(value));
        }
        let name =
            crate::input::registry_host(written).map_err(|reason| SettingsError::RegistryHost {
                flag,
                value: value.clone(),
                reason,
            })?;
        let host = conf.host_for(&name);
        flags.push(HostFlag {
            flag,
            written: written.to_owned(),
            host: host.clone(),
        });
        map.insert(host, parsed);
    }
    Ok(map)
}

fn credentials(
    access: &AccessArgs,
) -> Result<(Option<Credentials>, Option<Credentials>), SettingsError> {
    let src = creds(access.src_creds.as_deref(), "--src-creds")?;
    let dest = match creds(access.dest_creds.as_deref(), "--dest-creds")? {
        Some(creds) => Some(creds),
        None => split_creds(access)?,
    };
    Ok((src, dest))
}

fn creds(value: Option<&str>, flag: &'static str) -> Result<Option<Credentials>, SettingsError> {
    value
        .map(|v| Credentials::parse_user_pass(v).ok_or(SettingsError::Credentials { flag }))
        .transpose()
}

fn split_creds(access: &AccessArgs) -> Result<Option<Credentials>, SettingsError> {
    match (&access.dest_username, &access.dest_password) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
            Ok(Some(Credentials {
                username: username.clone(),
                password: Secret::new(password.clone()),
            }))
        }
        _ => Err(SettingsError::HalfCredentials),
    }
}

fn check_paths(access: &AccessArgs) -> Result<(), SettingsError> {
    for (what, path) in [
        ("--authfile", &access.authfile),
        ("--src-authfile", &access.src_authfile),
        ("--dest-authfile", &access.dest_authfile),
        ("--src-cert-dir", &access.src_cert_dir),
        ("--dest-cert-dir", &access.dest_cert_dir),
        ("registries.conf", &access.registries_conf),
        ("--accounts", &access.accounts),
    ] {
        if let Some(path) = path {
            if !path.exists() {
                return Err(SettingsError::MissingPath {
                    what,
                    path: path.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rates_are_per_api_host_and_not_absurdly_slow() {
        let conf = RegistriesConf::default();
        let rates = |values: &[&str]| {
            let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
            registry_rps(&values, &conf, &mut Vec::new())
        };
        let got = rates(&["docker.io=2", "quay.io=0.5"]).unwrap();
        assert_eq!(got.get("registry-1.docker.io"), Some(&2.0));
        assert_eq!(got.get("quay.io"), Some(&0.5));
        // Docker Hub's other names reach the same API host.
        for alias in ["index.docker.io", "registry-1.docker.io"] {
            let got = rates(&[&format!("{alias}=3")]).unwrap();
            assert_eq!(got.get("registry-1.docker.io"), Some(&3.0), "{alias}");
        }
        for bad in [
            "quay.io=0",
            "quay.io=1e-20",
            "quay.io=NaN",
            "quay.io=inf",
            "quay.io",
        ] {
            let error = rates(&[bad]).unwrap_err().to_string();
            assert!(error.contains("at least 0.001"), "{bad}: {error}");
        }
        for bad in ["https://quay.io=1", "quay=1", "quay.io/org=1"] {
            assert!(rates(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_keyed_by_a_registrys_name_apply_where_registries_conf_sends_it() {
        let conf = RegistriesConf::parse(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"mirror.internal:5000\"\n",
        )
        .unwrap();
        let mut flags = Vec::new();
        let rates = registry_rps(
            &[
                "docker.io=2".into(),
                "index.docker.io=3".into(),
                "registry-1.docker.io=4".into(),
                "quay.io=1".into(),
            ],
            &conf,
            &mut flags,
        )
        .unwrap();
        assert_eq!(rates.get("mirror.internal:5000"), Some(&3.0));
        // Images written `registry-1.docker.io/…` are not under the `docker.io` prefix, so
        // their requests, and this limit, go to Docker Hub's API host itself.
        assert_eq!(rates.get("registry-1.docker.io"), Some(&4.0));
        let jobs = registry_jobs(&["quay.io=1".into()], &conf, &mut flags).unwrap();
        assert_eq!(
            jobs.get("mirror.internal:5000"),
            None,
            "Docker Hub's default stays with Docker Hub: the mirror runs at -j"
        );
        assert_eq!(jobs.get("quay.io"), Some(&1));
        let direct = registry_jobs(&[], &RegistriesConf::default(), &mut Vec::new()).unwrap();
        assert_eq!(direct.get("registry-1.docker.io"), Some(&2));
        assert_eq!(direct.len(), 1);
        let hosts: Vec<(&str, &str)> = flags
            .iter()
            .map(|f| (f.written.as_str(), f.host.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("docker.io", "mirror.internal:5000"),
                ("index.docker.io", "mirror.internal:5000"),
                ("registry-1.docker.io", "registry-1.docker.io"),
                ("quay.io", "quay.io"),
                ("quay.io", "quay.io")
            ]
        );
    }

    #[test]
    fn a_flag_on_the_command_line_wins_over_the_environment() {
        let dest = |dest: Option<&str>, dir: Option<&str>, from_env: bool| {
            destinations(&DestArgs {
                dest: dest.into_iter().map(str::to_owned).collect(),
                dest_dir: dir.map(PathBuf::from),
                dest_from_env: from_env,
            })
            .map(|(first, _)| first)
        };
        assert_eq!(
            dest(Some("reg.example/x"), Some("d"), true).unwrap(),
            Destination::OciDir("d".into())
        );
        assert!(matches!(
            dest(Some("reg.example/x"), Some("d"), false),
            Err(SettingsError::DestAndDestDir)
        ));
        assert!(matches!(
            dest(Some("reg.example/x"), None, true).unwrap(),
            Destination::Registry(_)
        ));
        assert_eq!(
            dest(None, None, false).unwrap(),
            Destination::OciDir("mirror".into())
        );
    }

    #[test]
    fn several_destinations_are_registries_each_named_once() {
        let dest = |values: &[&str], dir: Option<&str>| {
            destinations(&DestArgs {
                dest: values.iter().map(|v| (*v).to_owned()).collect(),
                dest_dir: dir.map(PathBuf::from),
                dest_from_env: false,
            })
        };
        let registry = |prefix: &str| Destination::Registry(RepoPrefix::parse(prefix).unwrap());
        let (first, more) =
            dest(&["a.example/m", "b.example:5000", " c.example/x/y "], None).unwrap();
        assert_eq!(first, registry("a.example/m"));
        assert_eq!(
            more,
            [registry("b.example:5000"), registry("c.example/x/y")]
        );
        assert_eq!(
            dest(&["a.example/m", "b.example", "a.example/m"], None)
                .unwrap_err()
                .to_string(),
            "--dest a.example/m is given twice: each destination receives every image once"
        );
        assert!(matches!(
            dest(&["a.example/m", "b.example"], Some("d")),
            Err(SettingsError::DestAndDestDir)
        ));
        assert_eq!(
            dest(&["a.example/m", "third"], None).unwrap_err().to_string(),
            "invalid destination \"third\": destination prefix must start with a registry host (e.g. harbor.example/mirror)"
        );
    }

    #[test]
    fn output_files_are_checked_before_anything_runs() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let ok = |path: PathBuf| output_path("--report", &Some(path));
        assert!(ok(dir.path().join("r.json")).is_ok());
        assert!(ok("-".into()).is_ok());
        assert!(ok("r.json".into()).is_ok());
        let missing = ok("/nonexistent/r.json".into()).unwrap_err().to_string();
        assert_eq!(
            missing,
            "--report /nonexistent/r.json: its directory /nonexistent does not exist"
        );
        let is_dir = ok(dir.path().to_owned()).unwrap_err().to_string();
        assert!(is_dir.ends_with("is a directory"), "{is_dir}");
    }
}
