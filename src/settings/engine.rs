//! Which engine copies, and the binary it runs: `--engine`, else skopeo for registries and the
//! native engine for local OCI layouts or where skopeo is not installed. The binaries are found
//! here (on `PATH`, or where `--skopeo`/`--crane` point), so that a missing one is a
//! configuration error before anything runs; and the engine of a run is built here, once, from
//! these settings and what the run's inputs say of its registries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::SettingsError;
use crate::access::credentials::CredentialsError;
use crate::access::Access;
use crate::cli::{EngineArg, EngineArgs, SyncArgs};
use crate::engine::crane::{Crane, CraneOptions};
use crate::engine::native::Native;
use crate::engine::skopeo::{Skopeo, SkopeoOptions};
use crate::engine::Engine;
use crate::model::platform::Platforms;
use crate::model::{Destination, Job};
use crate::registry::RegistryClient;
use crate::scratch::ScratchDir;

/// Which engine copies, and how it is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSettings {
    Skopeo(SkopeoOptions),
    Crane(CraneOptions),
    /// ferry's own registry client.
    Native,
}

impl EngineSettings {
    /// The engine as `--engine` names it.
    pub fn name(&self) -> &'static str {
        match self {
            EngineSettings::Skopeo(_) => "skopeo",
            EngineSettings::Crane(_) => "crane",
            EngineSettings::Native => "native",
        }
    }

    /// The engine of one run (see [`super::SyncSettings::workers`]).
    pub fn build(&self, run: Build<'_>) -> Result<Arc<dyn Engine>, CredentialsError> {
        let Build {
            client,
            access,
            destination,
            more_destinations,
            image_timeout,
            jobs,
            scratch,
            platforms,
            bundle,
        } = run;
        Ok(match (self, scratch) {
            (EngineSettings::Skopeo(options), Some(scratch)) => Arc::new(
                Skopeo::new(
                    options.clone(),
                    access,
                    destination.clone(),
                    image_timeout,
                    scratch,
                    jobs,
                )?
                .also_to(more_destinations.to_vec()),
            ),
            (EngineSettings::Skopeo(options), None) => Arc::new(
                Skopeo::for_dry_run(options.clone(), access, destination.clone(), jobs)
                    .also_to(more_destinations.to_vec()),
            ),
            (EngineSettings::Crane(options), Some(scratch)) => Arc::new(Crane::new(
                options.clone(),
                access,
                image_timeout,
                scratch,
                jobs,
            )?),
            (EngineSettings::Crane(options), None) => {
                Arc::new(Crane::for_dry_run(options.clone(), access))
            }
            (EngineSettings::Native, scratch) => {
                let native = Native::new(Arc::clone(client), image_timeout)
                    .with_platforms(platforms.cloned())
                    .reading_bundle(bundle.map(std::path::Path::to_owned));
                // Several destinations share each source read (see `Native::sharing_reads`).
                match scratch.filter(|_| !more_destinations.is_empty()) {
                    Some(scratch) => Arc::new(native.sharing_reads(scratch.path().join("spool"))),
                    None => Arc::new(native),
                }
            }
        })
    }
}

/// What the engine of one run is built from.
pub struct Build<'a> {
    /// The run's registry client, which the native engine copies with.
    pub client: &'a Arc<RegistryClient>,
    /// How each registry is reached, the run's inputs' own settings included.
    pub access: Access,
    pub destination: &'a Destination,
    /// The destinations after the first of several.
    pub more_destinations: &'a [Destination],
    pub image_timeout: Duration,
    /// Every job of the run: the private files hold credentials for their registries.
    pub jobs: &'a [Job],
    /// Where the private files go; `None` for a dry run, which names them instead.
    pub scratch: Option<&'a ScratchDir>,
    /// The platforms to mirror (`--platform`), for the native engine.
    pub platforms: Option<&'a Platforms>,
    /// The bundle the sources are read from (`--from-dir`), for the native engine.
    pub bundle: Option<&'a std::path::Path>,
}

/// What a rerun needs to copy with the same engine: its name, its binary when one was named,
/// and skopeo's `--insecure-policy`.
pub(super) fn rerun_flags(engine: &EngineSettings, args: &SyncArgs) -> Vec<String> {
    let mut flags = vec!["--engine".to_owned(), engine.name().to_owned()];
    let binary = match engine {
        EngineSettings::Skopeo(_) => args.skopeo.skopeo.as_ref().map(|p| ("--skopeo", p)),
        EngineSettings::Crane(_) => args.engine.crane.as_ref().map(|p| ("--crane", p)),
        EngineSettings::Native => None,
    };
    if let Some((flag, path)) = binary {
        flags.extend([flag.to_owned(), path.display().to_string()]);
    }
    if args.skopeo.insecure_policy {
        flags.push("--insecure-policy".to_owned());
    }
    flags
}

/// Said once when no engine is named and the targets are local OCI layouts.
pub const LAYOUTS_NOTE: &str = "ferry: copying into local OCI layouts with ferry's native engine \
    (--engine native), which writes Docker manifest lists as they are: skopeo cannot write them \
    there without changing their digests (pass --engine skopeo to use skopeo anyway)";

/// Said once when no engine is named and `--platform` is given.
pub const PLATFORMS_NOTE: &str = "ferry: copying with ferry's native engine (--engine native), \
    which writes an index of just the platforms --platform asks for: skopeo and crane copy one \
    platform's image instead";

/// The engine and, when the native engine was picked though none was named, why. skopeo stays
/// the default for registries; when no engine is named, the native engine takes over for local
/// OCI layouts (skopeo cannot write a Docker manifest list there and keep its digest, and most
/// registries still serve Docker's formats) and when skopeo is not installed (so a machine
/// with nothing but Rust can run the quick start).
pub(super) fn choose(
    args: &SyncArgs,
    destination: &Destination,
) -> Result<(EngineSettings, Option<String>), SettingsError> {
    // Only the native engine reads a bundle in place.
    if args.list.from_dir.is_some() {
        if let Some(engine @ (EngineArg::Skopeo | EngineArg::Crane)) = args.engine.engine {
            let name = match engine {
                EngineArg::Skopeo => "skopeo",
                _ => "crane",
            };
            return Err(SettingsError::Bundle(format!(
                "--from-dir is copied by ferry's native engine only (--engine native, or no \
                 --engine): {name} cannot read a bundle tar in place, nor keep every Docker \
                 manifest list of a layout by its tag"
            )));
        }
        if args.skopeo.insecure_policy {
            return Err(SettingsError::InsecurePolicyWithout {
                engine: "the native engine (which copies --from-dir)",
            });
        }
        return Ok((EngineSettings::Native, None));
    }
    // Only the native engine writes an index of a platform subset (see `PLATFORMS_NOTE`).
    if !args.filters.platform.is_empty() {
        match args.engine.engine {
            Some(EngineArg::Skopeo) => {
                return Err(SettingsError::PlatformNeedsNative { engine: "skopeo" })
            }
            Some(EngineArg::Crane) => {
                return Err(SettingsError::PlatformNeedsNative { engine: "crane" })
            }
            Some(EngineArg::Native) => {}
            None => {
                if args.skopeo.insecure_policy {
                    return Err(SettingsError::InsecurePolicyWithout {
                        engine: "the native engine (which copies when --platform is given and no engine is named)",
                    });
                }
                return Ok((EngineSettings::Native, Some(PLATFORMS_NOTE.to_owned())));
            }
        }
    }
    if let Some(EngineArg::Crane) = args.engine.engine {
        if args.skopeo.insecure_policy {
            return Err(SettingsError::InsecurePolicyWithout { engine: "crane" });
        }
        let options = crane_options(&args.engine, args.dry_run)?;
        return Ok((EngineSettings::Crane(options), None));
    }
    let found = match &args.skopeo.skopeo {
        Some(path) => which::which(path).map_err(|e| format!("{}: {e}", path.display())),
        None => which::which("skopeo").map_err(|e| format!("not on PATH: {e}")),
    };
    let skopeo = |binary| {
        EngineSettings::Skopeo(SkopeoOptions {
            binary,
            registries_conf: args.access.registries_conf.clone(),
            // ferry retries whole images itself, with backoff that knows about rate limits.
            retry_times: 0,
            insecure_policy: args.skopeo.insecure_policy,
        })
    };
    if let Some(EngineArg::Native) = args.engine.engine {
        if args.skopeo.insecure_policy {
            return Err(SettingsError::InsecurePolicyWithout {
                engine: "the native engine",
            });
        }
        return Ok((EngineSettings::Native, None));
    }
    if args.engine.engine.is_none() && matches!(destination, Destination::OciDir(_)) {
        if args.skopeo.insecure_policy {
            return Err(SettingsError::InsecurePolicyWithout {
                engine: "the native engine (which copies into local OCI layouts when no engine is named)",
            });
        }
        return Ok((EngineSettings::Native, Some(LAYOUTS_NOTE.to_owned())));
    }
    Ok(match (args.engine.engine, found) {
        (_, Ok(binary)) => (skopeo(binary), None),
        // An explicit --skopeo that is not there is a mistake, not a reason to switch.
        (_, Err(reason)) if args.skopeo.skopeo.is_some() => {
            return Err(SettingsError::SkopeoMissing { reason })
        }
        // A dry run copies nothing, so it works on a machine without skopeo.
        (Some(EngineArg::Skopeo), Err(_)) if args.dry_run => {
            (skopeo(PathBuf::from("skopeo")), None)
        }
        (Some(_), Err(reason)) => return Err(SettingsError::SkopeoMissing { reason }),
        (None, Err(_)) => (
            EngineSettings::Native,
            Some(
                "ferry: skopeo is not installed (not on PATH): copying with ferry's native engine \
                 (--engine native; install skopeo or pass --engine skopeo to use skopeo)"
                    .to_owned(),
            ),
        ),
    })
}

fn crane_options(args: &EngineArgs, dry_run: bool) -> Result<CraneOptions, SettingsError> {
    let binary = match (&args.crane, dry_run) {
        (Some(path), _) => which::which(path).map_err(|e| SettingsError::CraneMissing {
            reason: format!("{}: {e}", path.display()),
        })?,
        // A dry run copies nothing, so it works on a machine without crane.
        (None, true) => which::which("crane").unwrap_or_else(|_| PathBuf::from("crane")),
        (None, false) => which::which("crane").map_err(|e| SettingsError::CraneMissing {
            reason: format!("not on PATH: {e}"),
        })?,
    };
    Ok(CraneOptions {
        binary,
        ssl_cert_dir: std::env::var_os("SSL_CERT_DIR").filter(|dirs| !dirs.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{CommandSettings, Settings};
    use super::*;
    use crate::cli::Cli;

    #[test]
    fn native_is_refused_a_skopeo_option() {
        use clap::Parser as _;
        let argv = [
            "ferry",
            "sync",
            "--dest",
            "h.example/m",
            "--engine",
            "native",
            "--insecure-policy",
        ];
        let error = Settings::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--insecure-policy is a skopeo option; the native engine checks no signature policy \
             (drop it, or use --engine skopeo)"
        );
    }

    #[test]
    fn layouts_are_copied_natively_unless_an_engine_is_named() {
        use clap::Parser as _;
        let engine = |args: &[&str]| {
            let mut argv = vec!["ferry", "sync", "--skopeo", "/bin/sh"];
            argv.extend(args);
            let settings = Settings::from_cli(Cli::try_parse_from(argv).unwrap())?;
            match settings.command {
                CommandSettings::Sync(sync) => {
                    Ok::<_, SettingsError>((sync.engine.name(), sync.engine_note))
                }
                _ => unreachable!("a sync command"),
            }
        };
        let note = Some(LAYOUTS_NOTE.to_owned());
        assert_eq!(
            engine(&["--dest-dir", "layouts"]).unwrap(),
            ("native", note)
        );
        assert_eq!(
            engine(&["--dest-dir", "layouts", "--engine", "skopeo"]).unwrap(),
            ("skopeo", None)
        );
        assert_eq!(
            engine(&["--dest", "h.example/m"]).unwrap(),
            ("skopeo", None)
        );
        let error = engine(&["--dest-dir", "layouts", "--insecure-policy"])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--insecure-policy is a skopeo option; the native engine (which copies into local OCI layouts when no engine is named)")
                && error.ends_with("(drop it, or use --engine skopeo)"),
            "{error}"
        );
    }

    #[test]
    fn platforms_are_copied_natively_and_refused_to_skopeo_and_crane() {
        use clap::Parser as _;
        let settings = |args: &[&str]| {
            let mut argv = vec![
                "ferry",
                "sync",
                "--dest",
                "h.example/m",
                "--skopeo",
                "/bin/sh",
            ];
            argv.extend(args);
            Settings::from_cli(Cli::try_parse_from(argv).unwrap())
        };
        let sync = |args: &[&str]| match settings(args).unwrap().command {
            CommandSettings::Sync(sync) => sync,
            _ => unreachable!("a sync command"),
        };
        let chosen = sync(&["--platform", "linux/arm64,linux/amd64"]);
        assert_eq!(
            (chosen.engine.name(), chosen.engine_note.as_deref()),
            ("native", Some(PLATFORMS_NOTE))
        );
        assert_eq!(
            chosen.plan.options.platforms.as_ref().map(|p| p.label()),
            Some("linux/amd64,linux/arm64".to_owned())
        );
        // A rerun of the failed list asks for the same platforms.
        let flags = &chosen.plan.rerun.flags;
        assert!(
            flags.ends_with(&[
                "--platform".to_owned(),
                "linux/amd64,linux/arm64".to_owned(),
                "--engine".to_owned(),
                "native".to_owned()
            ]),
            "{flags:?}"
        );
        let native = sync(&["--platform", "linux/arm64", "--engine", "native"]);
        assert_eq!((native.engine.name(), native.engine_note), ("native", None));
        for engine in ["skopeo", "crane"] {
            let error = settings(&["--platform", "linux/arm64", "--engine", engine])
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!(
                    "--platform needs the native engine (--engine native), and {engine} was \
                     asked for: {engine} copies a single platform's image"
                )) && error.ends_with("or pass --engine native"),
                "{error}"
            );
        }
        let bad = settings(&["--platform", "linux"]).unwrap_err().to_string();
        assert_eq!(
            bad,
            "--platform \"linux\" is not os/arch or os/arch/variant (e.g. linux/arm64, linux/arm/v7)"
        );
    }

    #[test]
    fn crane_is_found_and_refused_a_skopeo_option() {
        use clap::Parser as _;
        let engine = |args: &[&str]| {
            let mut argv = vec![
                "ferry",
                "sync",
                "--dest",
                "h.example/m",
                "--engine",
                "crane",
            ];
            argv.extend(args);
            let settings = Settings::from_cli(Cli::try_parse_from(argv).unwrap())?;
            match settings.command {
                CommandSettings::Sync(sync) => Ok::<_, SettingsError>(sync.engine),
                _ => unreachable!("a sync command"),
            }
        };
        match engine(&["--crane", "/bin/sh"]).unwrap() {
            EngineSettings::Crane(options) => {
                assert_eq!(options.binary, std::path::Path::new("/bin/sh"));
            }
            other => panic!("{other:?}"),
        }
        let missing = engine(&["--crane", "/nonexistent/crane"])
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("crane was not found (/nonexistent/crane: ")
                && missing.ends_with(
                    "install it (go install github.com/google/go-containerregistry/cmd/crane@latest) or point --crane/FERRY_CRANE at it"
                ),
            "{missing}"
        );
        assert!(matches!(
            engine(&["--crane", "/bin/sh", "--insecure-policy"]),
            Err(SettingsError::InsecurePolicyWithout { engine: "crane" })
        ));
    }
}
