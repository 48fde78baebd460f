//! The copy engines the end-to-end tests run once each: the real skopeo and the real crane.
//!
//! crane is found through `$FERRY_TEST_CRANE`, else on `PATH` (`scripts/test` exports the first
//! from `../shared/crane/bin`). Without one, a crane test says loudly that it was skipped and
//! passes; with `FERRY_REQUIRE_CRANE=1` (as CI sets it) it fails instead.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SKOPEO;

/// A copy engine of ferry's, with its real binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Skopeo,
    Crane(PathBuf),
}

impl Engine {
    /// The real crane, or `None` after saying that the test was skipped (on the terminal:
    /// cargo test shows no output of a test that passes). Panics when crane is required.
    pub fn crane() -> Option<Engine> {
        let given = std::env::var_os("FERRY_TEST_CRANE").filter(|v| !v.is_empty());
        let found = match given {
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
        };
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

    /// `skopeo` or `crane`, as `--engine` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Skopeo => "skopeo",
            Engine::Crane(_) => "crane",
        }
    }

    /// The real binary.
    pub fn binary(&self) -> PathBuf {
        match self {
            Engine::Skopeo => PathBuf::from(SKOPEO),
            Engine::Crane(path) => path.clone(),
        }
    }

    /// `base` for skopeo, another number for crane: stand-ins sleep this long, and tests find
    /// them by it (`sleep N`), so that the two engines' runs of one test, running at the same
    /// time, never count each other's.
    pub fn seconds(&self, base: u32) -> u32 {
        match self {
            Engine::Skopeo => base,
            Engine::Crane(_) => base + 1000,
        }
    }

    /// ferry's flags that run this engine from `binary` (a stand-in).
    pub fn with_binary(&self, binary: &Path) -> Vec<OsString> {
        vec![
            "--engine".into(),
            self.name().into(),
            format!("--{}", self.name()).into(),
            binary.into(),
        ]
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
/// test per engine, `name::skopeo` and `name::crane` (skipped, loudly, without a crane).
#[allow(unused_macros)] // not every test binary runs tests per engine
macro_rules! per_engine {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn skopeo() {
                    super::$name(crate::common::engines::Engine::Skopeo);
                }

                #[test]
                fn crane() {
                    if let Some(engine) = crate::common::engines::Engine::crane() {
                        super::$name(engine);
                    }
                }
            }
        )*
    };
}
#[allow(unused_imports)] // not every test binary runs tests per engine
pub(crate) use per_engine;
