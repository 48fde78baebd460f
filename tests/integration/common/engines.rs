//! The copy engines the end-to-end tests run once each: the real skopeo, the real crane, and
//! ferry's native engine (its own registry client, no binary).
//!
//! crane is found through `$FERRY_TEST_CRANE`, else on `PATH` (`scripts/test` exports the first
//! from `../shared/crane/bin`). Without one, a crane test says loudly that it was skipped and
//! passes; with `FERRY_REQUIRE_CRANE=1` (as CI sets it) it fails instead.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SKOPEO;

/// A copy engine of ferry's, with its real binary (the native engine copies in-process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Skopeo,
    Crane(PathBuf),
    Native,
}

impl Engine {
    /// The engine `name` (`skopeo`, `crane`, `native`) for a test, `None` when its test is
    /// skipped (see [`Engine::crane`]).
    pub fn for_test(name: &str) -> Option<Engine> {
        match name {
            "skopeo" => Some(Engine::Skopeo),
            "crane" => Engine::crane(),
            "native" => Some(Engine::Native),
            _ => panic!("no engine {name:?}"),
        }
    }

    /// The real crane, or `None` after saying that the test was skipped (on the terminal:
    /// cargo test shows no output of a test that passes). Panics when crane is required.
    pub fn crane() -> Option<Engine> {
        let found = crane_binary();
        if found.is_none() {
            assert!(
                std::env::var("FERRY_REQUIRE_CRANE").as_deref() != Ok("1"),
                "FERRY_REQUIRE_CRANE=1 but no crane was found (set FERRY_TEST_CRANE)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: crane not found (set FERRY_TEST_CRANE): {}",
                std::thread::current().name().unwrap_or("a crane test")
            );
        }
        found.map(Engine::Crane)
    }

    /// `skopeo`, `crane` or `native`, as `--engine` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Skopeo => "skopeo",
            Engine::Crane(_) => "crane",
            Engine::Native => "native",
        }
    }

    /// The real binary. The native engine has none: a test that needs one (a stand-in that
    /// hangs, fails once, is killed…) runs with `per_binary_engine!`.
    pub fn binary(&self) -> PathBuf {
        match self {
            Engine::Skopeo => PathBuf::from(SKOPEO),
            Engine::Crane(path) => path.clone(),
            Engine::Native => panic!("the native engine has no binary (use per_binary_engine!)"),
        }
    }

    /// The binaries a run with this engine could start, for recorders on PATH: the engine's
    /// own, and for native every other engine's (skopeo, crane when installed), so that a
    /// test sees that a native run started none.
    pub fn recorded(&self) -> Vec<(&'static str, PathBuf)> {
        match self {
            Engine::Skopeo | Engine::Crane(_) => vec![(self.name(), self.binary())],
            Engine::Native => std::iter::once(("skopeo", PathBuf::from(SKOPEO)))
                .chain(crane_binary().map(|crane| ("crane", crane)))
                .collect(),
        }
    }

    /// A fresh directory under `dir` with a recorder of each of [`Engine::recorded`], all
    /// logging to `log`; put it first on PATH.
    pub fn recorder(&self, dir: &Path, log: &Path) -> PathBuf {
        let recorded = self.recorded();
        let binaries: Vec<(&str, &Path)> = recorded
            .iter()
            .map(|(name, real)| (*name, real.as_path()))
            .collect();
        super::recorders(dir, &binaries, log)
    }

    /// ferry's flags that run this engine from `binary` (a stand-in).
    pub fn with_binary(&self, binary: &Path) -> Vec<OsString> {
        assert!(
            *self != Engine::Native,
            "the native engine runs no binary (use per_binary_engine!)"
        );
        vec![
            "--engine".into(),
            self.name().into(),
            format!("--{}", self.name()).into(),
            binary.into(),
        ]
    }
}

/// crane from `$FERRY_TEST_CRANE` (which must then be executable), else from `PATH`.
fn crane_binary() -> Option<PathBuf> {
    match std::env::var_os("FERRY_TEST_CRANE").filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                is_executable(&path),
                "FERRY_TEST_CRANE={} is not an executable file",
                path.display()
            );
            Some(path)
        }
        None => on_path("crane"),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `per_engine!(name, …)`: for each `fn name(engine: Engine)`, a test module `name` with one
/// test per engine, `name::skopeo`, `name::crane` (skipped, loudly, without a crane) and
/// `name::native`.
macro_rules! per_engine {
    ($($name:ident),* $(,)?) => {
        $(crate::common::engines::engine_tests!($name: skopeo, crane, native);)*
    };
}

/// `per_binary_engine!(name, …)`: as `per_engine!`, for the engines that run a binary
/// (`name::skopeo`, `name::crane`): tests that put a stand-in in its place.
macro_rules! per_binary_engine {
    ($($name:ident),* $(,)?) => {
        $(crate::common::engines::engine_tests!($name: skopeo, crane);)*
    };
}

/// `engine_tests!(name: skopeo, native)`: the module `name` with a test per engine named, each
/// calling `super::name(engine)`; for a test that some engine cannot run at all (crane writes
/// no layout it reads back, and waits out no 429).
macro_rules! engine_tests {
    ($name:ident: $($engine:ident),*) => {
        mod $name {
            $(
                #[test]
                fn $engine() {
                    let name = stringify!($engine);
                    if let Some(engine) = crate::common::engines::Engine::for_test(name) {
                        super::$name(engine);
                    }
                }
            )*
        }
    };
}
pub(crate) use {engine_tests, per_binary_engine, per_engine};
