//! From the command line (and environment) to one validated `Settings` value. Everything
//! that can be wrong with the configuration is found here, before any work starts, and
//! reported as a `SettingsError` (exit code 2).

use std::path::PathBuf;

use crate::cli::{Cli, Command, DestArgs, ListArgs, SkopeoArgs, SyncArgs};
use crate::engine::skopeo::SkopeoOptions;
use crate::input::InputSource;
use crate::mapping::Destination;
use crate::reference::{ReferenceError, RepoPrefix};
use crate::secret::{Credentials, Secret};

/// The list read when none is named, as the old shell scripts did.
pub const DEFAULT_LIST: &str = "source-images.list";

#[derive(Debug)]
pub struct Settings {
    pub verbosity: u8,
    pub command: CommandSettings,
}

#[derive(Debug)]
pub enum CommandSettings {
    ShowRawImages {
        inputs: Vec<InputSource>,
    },
    ShowImages {
        inputs: Vec<InputSource>,
        destination: Destination,
    },
    Sync(Box<SyncSettings>),
}

#[derive(Debug)]
pub struct SyncSettings {
    pub inputs: Vec<InputSource>,
    pub destination: Destination,
    pub skopeo: SkopeoOptions,
    pub src_creds: Option<Credentials>,
    pub dest_creds: Option<Credentials>,
    pub jobs: usize,
    pub dry_run: bool,
    pub report: Option<PathBuf>,
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
    #[error("{flag} must be USER:PASS with both parts non-empty")]
    Credentials { flag: &'static str },
    #[error("FERRY_DEST_USERNAME and FERRY_DEST_PASSWORD must be set together")]
    HalfCredentials,
    #[error("skopeo was not found ({reason}); install it (Debian/Ubuntu: apt-get install skopeo, Fedora: dnf install skopeo, macOS: brew install skopeo) or point --skopeo/FERRY_SKOPEO at it")]
    SkopeoMissing { reason: String },
    #[error("{what} {} does not exist", path.display())]
    MissingPath { what: &'static str, path: PathBuf },
}

impl Settings {
    pub fn from_cli(cli: Cli) -> Result<Settings, SettingsError> {
        let command = match cli.command {
            Command::ShowRawImages(list) => CommandSettings::ShowRawImages {
                inputs: inputs(&list),
            },
            Command::ShowImages(args) => CommandSettings::ShowImages {
                inputs: inputs(&args.list),
                destination: destination(&args.dest)?,
            },
            Command::Sync(args) => CommandSettings::Sync(Box::new(sync_settings(*args)?)),
        };
        Ok(Settings {
            verbosity: cli.verbose,
            command,
        })
    }
}

fn inputs(list: &ListArgs) -> Vec<InputSource> {
    if list.lists.is_empty() {
        vec![InputSource::File(PathBuf::from(DEFAULT_LIST))]
    } else {
        list.lists
            .iter()
            .map(|a| InputSource::from_arg(a))
            .collect()
    }
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

fn sync_settings(args: SyncArgs) -> Result<SyncSettings, SettingsError> {
    if args.jobs == 0 {
        return Err(SettingsError::NoJobs);
    }
    let src_creds = creds(args.skopeo.src_creds.as_deref(), "--src-creds")?;
    let dest_creds = match creds(args.skopeo.dest_creds.as_deref(), "--dest-creds")? {
        Some(creds) => Some(creds),
        None => split_creds(&args.skopeo)?,
    };
    Ok(SyncSettings {
        inputs: inputs(&args.list),
        destination: destination(&args.dest)?,
        skopeo: skopeo_options(&args.skopeo, args.dry_run)?,
        src_creds,
        dest_creds,
        jobs: args.jobs,
        dry_run: args.dry_run,
        report: args.report,
        failed_list: args.failed_list,
    })
}

fn creds(value: Option<&str>, flag: &'static str) -> Result<Option<Credentials>, SettingsError> {
    value
        .map(|v| Credentials::parse_user_pass(v).ok_or(SettingsError::Credentials { flag }))
        .transpose()
}

fn split_creds(args: &SkopeoArgs) -> Result<Option<Credentials>, SettingsError> {
    match (&args.dest_username, &args.dest_password) {
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

fn skopeo_options(args: &SkopeoArgs, dry_run: bool) -> Result<SkopeoOptions, SettingsError> {
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
    for (what, path) in [
        ("--authfile", &args.authfile),
        ("--src-authfile", &args.src_authfile),
        ("--dest-authfile", &args.dest_authfile),
        ("--src-cert-dir", &args.src_cert_dir),
        ("--dest-cert-dir", &args.dest_cert_dir),
        ("registries.conf", &args.registries_conf),
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
    Ok(SkopeoOptions {
        binary,
        registries_conf: args.registries_conf.clone(),
        authfile: args.authfile.clone(),
        src_authfile: args.src_authfile.clone(),
        dest_authfile: args.dest_authfile.clone(),
        src_tls_verify: args.src_tls_verify,
        dest_tls_verify: args.dest_tls_verify,
        src_cert_dir: args.src_cert_dir.clone(),
        dest_cert_dir: args.dest_cert_dir.clone(),
        retry_times: args.retry_times,
        insecure_policy: args.insecure_policy,
    })
}
