//! A ready-made mirror setup for end-to-end tests: a source registry that docker.io and
//! quay.io redirect to, a destination registry (plain, or HTTPS with basic auth), a scratch
//! directory, the copy engine to run (skopeo unless told), and a recorder of that engine first
//! on PATH (for the native engine, recorders of skopeo and crane, which it must never start).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::engines::Engine;
use super::*;

pub const USER: &str = "mirror-bot";
pub const PASSWORD: &str = "Pa55-w0rd-never-in-argv";

/// A source registry (docker.io and quay.io redirected to it), a destination registry, a
/// scratch directory, the engine `sync` runs, and a recorder of it first on PATH.
pub struct Mirror {
    pub scratch: TempDir,
    pub source: Registry,
    pub dest: Registry,
    pub conf: PathBuf,
    /// What the engine's recorder logs (argv lines; environments under `LOG.env/`); for the
    /// native engine, what any of skopeo's and crane's recorders logs.
    pub log: PathBuf,
    /// The directory of the recorders, first on PATH.
    pub recorder: PathBuf,
    pub engine: Engine,
}

impl Mirror {
    /// A mirror that copies with skopeo.
    pub fn new(secure_dest: bool) -> Mirror {
        Mirror::with_engine(secure_dest, Engine::Skopeo)
    }

    /// A mirror whose `sync` (and `ferry()`) runs `engine`, through a recorder on PATH (see
    /// [`Engine::recorded`]).
    pub fn with_engine(secure_dest: bool, engine: Engine) -> Mirror {
        let scratch = TempDir::new("ferry-sync");
        let source = Registry::start_plain();
        let dest = if secure_dest {
            Registry::start_secure(USER, PASSWORD)
        } else {
            Registry::start_plain()
        };
        let quay = format!("{}/quay", source.addr());
        let conf = registries_conf(
            scratch.path(),
            &[("docker.io", &source.addr()), ("quay.io", &quay)],
        );
        let log = scratch.path().join(format!("{}-argv.log", engine.name()));
        let recorder = engine.recorder(scratch.path(), &log);
        Mirror {
            scratch,
            source,
            dest,
            conf,
            log,
            recorder,
            engine,
        }
    }

    pub fn push(&self, repo_and_tag: &str, seed: &str) -> String {
        push_new_image(&self.source, self.scratch.path(), repo_and_tag, seed).digest
    }

    pub fn prefix(&self) -> String {
        format!("{}/third", self.dest.addr())
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// ferry with the redirect, the engine (its recorder on PATH), and no credentials or
    /// destination from the test's own environment.
    pub fn ferry(&self) -> Command {
        let mut cmd = ferry();
        let path = format!(
            "{}:{}",
            self.recorder.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.current_dir(self.scratch.path())
            .env("PATH", path)
            .env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .env("FERRY_ENGINE", self.engine.name())
            .env_remove("FERRY_SKOPEO")
            .env_remove("FERRY_CRANE")
            .env_remove("FERRY_DEST")
            .env_remove("FERRY_DEST_CREDS")
            .env_remove("FERRY_DEST_USERNAME")
            .env_remove("FERRY_DEST_PASSWORD");
        cmd
    }

    /// A [`Test`] of ferry in this mirror's world (as [`Mirror::ferry`] runs it).
    pub fn test(&self) -> Test<'_> {
        Test::mirror(self, self.ferry())
    }

    /// A [`Test`] of [`Mirror::sync`].
    pub fn test_sync(&self, list: &Path) -> Test<'_> {
        Test::mirror(self, self.sync(list))
    }

    pub fn sync(&self, list: &Path) -> Command {
        let mut cmd = self.ferry();
        cmd.arg("sync").arg(list).arg("--dest").arg(self.prefix());
        match self.dest.cert_dir() {
            Some(dir) => cmd.arg("--dest-cert-dir").arg(dir),
            None => cmd.arg("--dest-tls-verify=false"),
        };
        cmd
    }

    /// The command a failed list's header says feeds it back (`ferry sync THIS_FILE …`), run
    /// by `sh` with THIS_FILE standing for `failed_list` and `ferry` for the binary under test,
    /// in the scratch directory with the recorders on PATH and nothing else of the mirror's
    /// setup (no registries.conf, engine or credentials from the environment): what the header
    /// says must be enough, with the secrets it names given again by the caller.
    pub fn feed_back(&self, failed_list: &Path) -> Command {
        let text = std::fs::read_to_string(failed_list)
            .unwrap_or_else(|e| panic!("read {}: {e}", failed_list.display()));
        let header = text.lines().next().unwrap_or_default();
        let rest = header
            .split_once("; feed back with: ferry sync THIS_FILE")
            .unwrap_or_else(|| panic!("no rerun command in the header: {header}"))
            .1;
        let line = format!(
            "exec {} sync {}{rest}",
            shell_quote(env!("CARGO_BIN_EXE_ferry")),
            shell_quote(&failed_list.display().to_string())
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &line])
            .current_dir(self.scratch.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.recorder.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        for name in [
            "CONTAINERS_REGISTRIES_CONF",
            "FERRY_ENGINE",
            "FERRY_SKOPEO",
            "FERRY_CRANE",
            "FERRY_DEST",
            "FERRY_SRC_CREDS",
            "FERRY_DEST_CREDS",
            "FERRY_DEST_USERNAME",
            "FERRY_DEST_PASSWORD",
        ] {
            cmd.env_remove(name);
        }
        cmd
    }

    /// The engine's argv, one per run, in order (for native: of every skopeo or crane run).
    pub fn invocations(&self) -> Vec<Vec<String>> {
        recorded_invocations(&self.log)
    }

    /// The environments the engine ran with, one per run.
    pub fn environments(&self) -> Vec<String> {
        recorded_environments(&self.log)
    }

    /// The digest at a target printed by ferry (`HOST:PORT/repo:tag`) in the destination.
    pub fn target_digest(&self, target: &str) -> Option<String> {
        let repo_ref = target
            .strip_prefix(&format!("{}/", self.dest.addr()))
            .unwrap_or_else(|| panic!("{target} is not in the destination"));
        remote_digest(&self.dest, repo_ref)
    }
}

pub fn report(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn images(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["images"].as_array().expect("images is an array")
}
