//! From the command line (and environment) to one validated `Settings` value. Everything
//! that can be wrong with the configuration is found here, before any work starts, and
//! reported as a `SettingsError` (exit code 2).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{
    AccessArgs, Cli, Command, DestArgs, FilterArgs, FormatArg, ListArgs, PlanArgs, RetryArgs,
    SkopeoArgs, SyncArgs,
};
use crate::engine::skopeo::SkopeoOptions;
use crate::filter::{FilterError, FilterSpec, TagFilter};
use crate::input::{InputFormat, InputSource};
use crate::mapping::Destination;
use crate::reference::{ReferenceError, RepoPrefix};
use crate::registry::auth::CredentialSources;
use crate::registry::conf::{ConfError, RegistriesConf};
use crate::registry::{ClientOptions, SideOptions};
use crate::retry::RetryPolicy;
use crate::secret::{Credentials, Secret};

/// The list read when none is named, as the old shell scripts did.
pub const DEFAULT_LIST: &str = "source-images.list";

#[derive(Debug)]
pub struct Settings {
    pub verbosity: u8,
    pub command: CommandSettings,
}

/// The inputs to read and the format to read them in (by extension when `None`).
#[derive(Debug, Clone)]
pub struct InputSettings {
    pub sources: Vec<InputSource>,
    pub format: Option<InputFormat>,
}

#[derive(Debug)]
pub enum CommandSettings {
    ShowRawImages {
        inputs: InputSettings,
    },
    ShowImages {
        inputs: InputSettings,
        destination: Destination,
    },
    Plan(Box<PlanSettings>),
    Verify(Box<PlanSettings>),
    Sync(Box<SyncSettings>),
}

/// What `plan`, `verify` and `sync` share: the inputs, where they go, and how registries are
/// reached and repositories expanded.
#[derive(Debug)]
pub struct PlanSettings {
    pub inputs: InputSettings,
    /// ImagePorter accounts.json with credentials per registry host.
    pub accounts: Option<PathBuf>,
    pub destination: Destination,
    pub registry: ClientOptions,
    pub filter: TagFilter,
    /// For tag listings while planning, and for copies.
    pub retry: RetryPolicy,
    pub report: Option<PathBuf>,
    pub verbosity: u8,
}

#[derive(Debug)]
pub struct SyncSettings {
    pub plan: PlanSettings,
    pub skopeo: SkopeoOptions,
    pub image_timeout: Duration,
    pub jobs: usize,
    /// Copies at once per registry host.
    pub registry_jobs: HashMap<String, usize>,
    pub dry_run: bool,
    pub force: bool,
    pub failed_list: Option<PathBuf>,
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
    #[error("skopeo was not found ({reason}); install it (Debian/Ubuntu: apt-get install skopeo, Fedora: dnf install skopeo, macOS: brew install skopeo) or point --skopeo/FERRY_SKOPEO at it")]
    SkopeoMissing { reason: String },
    #[error("{what} {} does not exist", path.display())]
    MissingPath { what: &'static str, path: PathBuf },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    RegistriesConf(#[from] ConfError),
}

impl Settings {
    pub fn from_cli(cli: Cli) -> Result<Settings, SettingsError> {
        let verbosity = cli.verbose;
        let command = match cli.command {
            Command::ShowRawImages(list) => CommandSettings::ShowRawImages {
                inputs: inputs(&list),
            },
            Command::ShowImages(args) => CommandSettings::ShowImages {
                inputs: inputs(&args.list),
                destination: destination(&args.dest)?,
            },
            Command::Plan(args) => {
                CommandSettings::Plan(Box::new(plan_settings(&args, verbosity)?))
            }
            Command::Verify(args) => {
                CommandSettings::Verify(Box::new(plan_settings(&args, verbosity)?))
            }
            Command::Sync(args) => {
                CommandSettings::Sync(Box::new(sync_settings(*args, verbosity)?))
            }
        };
        Ok(Settings { verbosity, command })
    }
}

fn inputs(list: &ListArgs) -> InputSettings {
    let sources = if list.lists.is_empty() {
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
    InputSettings { sources, format }
}

fn destination(dest: &DestArgs) -> Result<Destination, SettingsError> {
    match dest.dest.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(value) => RepoPrefix::parse(value.trim())
            .map(Destination::Registry)
            .map_err(|source| SettingsError::Destination {
                value: value.to_owned(),
                source,
            }),
        None => Ok(Destination::OciDir(dest.dest_dir.clone())),
    }
}

fn plan_settings(args: &PlanArgs, verbosity: u8) -> Result<PlanSettings, SettingsError> {
    common(
        &args.list,
        &args.dest,
        &args.access,
        &args.filters,
        &args.retry,
        args.report.clone(),
        verbosity,
    )
}

fn common(
    list: &ListArgs,
    dest: &DestArgs,
    access: &AccessArgs,
    filters: &FilterArgs,
    retry: &RetryArgs,
    report: Option<PathBuf>,
    verbosity: u8,
) -> Result<PlanSettings, SettingsError> {
    check_paths(access)?;
    let (src_creds, dest_creds) = credentials(access)?;
    let conf = RegistriesConf::load(access.registries_conf.as_deref())?;
    let side = |tls_verify, cert_dir: &Option<PathBuf>, side_creds, authfile: &Option<PathBuf>| {
        SideOptions {
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
        per_registry_limit: 0,
        per_registry_rps: registry_rps(&access.registry_rps)?,
    };
    let filter = TagFilter::new(&FilterSpec {
        include: filters.tags.clone(),
        exclude: filters.exclude_tags.clone(),
        semver: filters.semver.clone(),
        latest: filters.latest,
        no_prerelease: filters.no_prerelease,
    })?;
    Ok(PlanSettings {
        inputs: inputs(list),
        accounts: access.accounts.clone(),
        destination: destination(dest)?,
        registry,
        filter,
        retry: RetryPolicy {
            retries: retry.retry_times,
            delay: retry.retry_delay,
            max_delay: retry.max_retry_delay.max(retry.retry_delay),
        },
        report,
        verbosity,
    })
}

fn sync_settings(args: SyncArgs, verbosity: u8) -> Result<SyncSettings, SettingsError> {
    if args.jobs == 0 {
        return Err(SettingsError::NoJobs);
    }
    let plan = common(
        &args.list,
        &args.dest,
        &args.access,
        &args.filters,
        &args.retry,
        args.report.clone(),
        verbosity,
    )?;
    Ok(SyncSettings {
        skopeo: skopeo_options(&args.access, &args.skopeo, args.dry_run)?,
        image_timeout: args.skopeo.image_timeout,
        plan,
        jobs: args.jobs,
        registry_jobs: registry_jobs(&args.registry_jobs)?,
        dry_run: args.dry_run,
        force: args.force,
        failed_list: args.failed_list,
    })
}

/// The slowest pace `--registry-rps` takes (one request in about 17 minutes).
const MIN_REGISTRY_RPS: f64 = 0.001;

/// Request rates per registry host, keyed by the host requests go to (Docker Hub's API host
/// for docker.io).
fn registry_rps(values: &[String]) -> Result<HashMap<String, f64>, SettingsError> {
    let bad = |value: &String| SettingsError::RegistryRps {
        value: value.clone(),
    };
    let valid = |rate: &f64| rate.is_finite() && *rate >= MIN_REGISTRY_RPS;
    host_values(values, HashMap::new(), "registry-1.docker.io", valid, bad)
}

/// Docker Hub throttles anonymous and free accounts hard; two copies at once is what its
/// limits allow without tripping them, unless told otherwise.
const DEFAULT_REGISTRY_JOBS: [(&str, usize); 1] = [("docker.io", 2)];

/// Copies at once per registry host, keyed as ferry writes hosts (docker.io).
fn registry_jobs(values: &[String]) -> Result<HashMap<String, usize>, SettingsError> {
    let defaults = DEFAULT_REGISTRY_JOBS
        .iter()
        .map(|(h, n)| ((*h).to_owned(), *n))
        .collect();
    let bad = |value: &String| SettingsError::RegistryJobs {
        value: value.clone(),
    };
    host_values(values, defaults, "docker.io", |n: &usize| *n > 0, bad)
}

/// Parses repeated `HOST=VALUE` flags over `defaults`; Docker Hub's aliases become `hub`.
fn host_values<T: std::str::FromStr>(
    values: &[String],
    mut map: HashMap<String, T>,
    hub: &str,
    valid: impl Fn(&T) -> bool,
    bad: impl Fn(&String) -> SettingsError,
) -> Result<HashMap<String, T>, SettingsError> {
    for value in values {
        let (host, parsed) = value.split_once('=').ok_or_else(|| bad(value))?;
        let parsed: T = parsed.trim().parse().map_err(|_| bad(value))?;
        let host = host.trim();
        if host.is_empty() || !valid(&parsed) {
            return Err(bad(value));
        }
        let host = match host {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => hub,
            other => other,
        };
        map.insert(host.to_owned(), parsed);
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

fn skopeo_options(
    access: &AccessArgs,
    args: &SkopeoArgs,
    dry_run: bool,
) -> Result<SkopeoOptions, SettingsError> {
    let binary = match (&args.skopeo, dry_run) {
        (Some(path), _) => which::which(path).map_err(|e| SettingsError::SkopeoMissing {
            reason: format!("{}: {e}", path.display()),
        })?,
        // A dry run copies nothing, so it works on a machine without skopeo.
        (None, true) => which::which("skopeo").unwrap_or_else(|_| PathBuf::from("skopeo")),
        (None, false) => which::which("skopeo").map_err(|e| SettingsError::SkopeoMissing {
            reason: format!("not on PATH: {e}"),
        })?,
    };
    Ok(SkopeoOptions {
        binary,
        registries_conf: access.registries_conf.clone(),
        authfile: access.authfile.clone(),
        src_authfile: access.src_authfile.clone(),
        dest_authfile: access.dest_authfile.clone(),
        src_tls_verify: access.src_tls_verify,
        dest_tls_verify: access.dest_tls_verify,
        src_cert_dir: access.src_cert_dir.clone(),
        dest_cert_dir: access.dest_cert_dir.clone(),
        // ferry retries whole images itself, with backoff that knows about rate limits.
        retry_times: 0,
        insecure_policy: args.insecure_policy,
        src_per_host: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rates_are_per_api_host_and_not_absurdly_slow() {
        let rates = registry_rps(&["docker.io=2".into(), "quay.io=0.5".into()]).unwrap();
        assert_eq!(rates.get("registry-1.docker.io"), Some(&2.0));
        assert_eq!(rates.get("quay.io"), Some(&0.5));
        for bad in [
            "quay.io=0",
            "quay.io=1e-20",
            "quay.io=NaN",
            "quay.io=inf",
            "quay.io",
        ] {
            let error = registry_rps(&[bad.into()]).unwrap_err().to_string();
            assert!(error.contains("at least 0.001"), "{bad}: {error}");
        }
    }
}
