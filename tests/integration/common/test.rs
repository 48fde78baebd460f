//! One run of ferry, written as a test reads: the world it runs in (a fresh directory and the
//! files it holds, or a [`Mirror`]'s registries), the command, and what it must do: its exit
//! code and, where the output is the contract (listings, plan tables, result lines, error
//! messages), exactly what it prints.
//!
//! ```text
//! Test::new()
//!     .file("list.txt", "Nginx:1\n")
//!     .args(["show-raw-images", "list.txt"])
//!     .code(2)
//!     .stderr("list.txt:1: invalid image reference \"Nginx:1\": …\nferry: error: …\n")
//!     .run();
//! ```
//!
//! Output is compared after two substitutions, so that what varies from run to run can be
//! written down: every duration ferry prints (`0.3s`) reads `[t]`, and the world's directory
//! reads `[dir]`; in an expected line, `[..]` stands for any text (a dependency's words, a
//! count of requests). A mismatch shows the command, both outputs, and the first line that
//! differs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::mirror::Mirror;
use super::{failure_report, ferry, shell_quote, stderr_of, stdout_of, unique, TempDir};

/// Where a [`Test`] runs: a directory of its own, or a mirror's (registries, redirect, engine).
enum World<'a> {
    Own(TempDir),
    Mirror(&'a Mirror),
}

impl World<'_> {
    fn dir(&self) -> &Path {
        match self {
            World::Own(dir) => dir.path(),
            World::Mirror(m) => m.scratch.path(),
        }
    }
}

/// What an output must be.
enum Expected {
    /// Exactly this.
    Exact(String),
    /// These lines, the last one last and the others in any order: a sync's result lines come
    /// in the order its copies finish, its summary closes them.
    Results(String),
}

/// A ferry command in its world, and what it must do (see the module's doc).
pub struct Test<'a> {
    world: World<'a>,
    cmd: Command,
    code: i32,
    stdout: Option<Expected>,
    stderr: Option<Expected>,
    report: Option<PathBuf>,
    terminal: bool,
}

impl Test<'static> {
    /// ferry in a fresh directory, with none of the user's `FERRY_*` settings.
    pub fn new() -> Test<'static> {
        let dir = TempDir::new("ferry-test");
        let mut cmd = ferry();
        cmd.current_dir(dir.path());
        for name in [
            "FERRY_DEST",
            "FERRY_ENGINE",
            "FERRY_SKOPEO",
            "FERRY_CRANE",
            "FERRY_SRC_CREDS",
            "FERRY_DEST_CREDS",
            "FERRY_DEST_USERNAME",
            "FERRY_DEST_PASSWORD",
        ] {
            cmd.env_remove(name);
        }
        Test::in_world(World::Own(dir), cmd)
    }
}

impl<'a> Test<'a> {
    /// `cmd`, one of the mirror's ([`Mirror::ferry`], [`Mirror::sync`]): in its scratch
    /// directory, its registries reached through its registries.conf, with its engine and the
    /// recorders first on PATH.
    pub fn mirror(m: &'a Mirror, cmd: Command) -> Test<'a> {
        Test::in_world(World::Mirror(m), cmd)
    }

    fn in_world(world: World<'a>, cmd: Command) -> Test<'a> {
        Test {
            world,
            cmd,
            code: 0,
            stdout: None,
            stderr: None,
            report: None,
            terminal: false,
        }
    }

    /// The world's directory, where ferry runs.
    pub fn dir(&self) -> &Path {
        self.world.dir()
    }

    /// Writes `name` (relative to the world's directory, its directories made) with
    /// `contents`.
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// The exit code it must end with (0 unless said).
    pub fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }

    /// Exactly what it must print on stdout.
    pub fn stdout(mut self, expected: impl Into<String>) -> Self {
        self.stdout = Some(Expected::Exact(expected.into()));
        self
    }

    /// What a sync must print on stdout: these result lines in any order (they come as the
    /// copies finish), then the last line, its summary.
    pub fn stdout_results(mut self, expected: impl Into<String>) -> Self {
        self.stdout = Some(Expected::Results(expected.into()));
        self
    }

    /// Exactly what it must print on stderr.
    pub fn stderr(mut self, expected: impl Into<String>) -> Self {
        self.stderr = Some(Expected::Exact(expected.into()));
        self
    }

    /// Asks for a JSON report (`--report FILE` in the world's directory), for [`Ran::report`].
    pub fn report(mut self) -> Self {
        let path = self.dir().join(format!("report-{}.json", unique()));
        self.cmd.arg("--report").arg(&path);
        self.report = Some(path);
        self
    }

    /// Runs it under `script`, on a pseudo-terminal: what it draws there, stdout and stderr
    /// alike, comes back as stdout.
    pub fn on_a_terminal(mut self) -> Self {
        self.terminal = true;
        self
    }

    /// Runs it with a null stdin and checks the exit code and the outputs; panics with the
    /// command, its status and both outputs when one is not as expected.
    pub fn run(mut self) -> Ran<'a> {
        if self.terminal {
            self.cmd = under_script(&self.cmd);
        }
        let cmd = self.cmd.stdin(Stdio::null());
        let output = cmd.output();
        let output = output.unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let dir = self.world.dir();
        let mut problems = Vec::new();
        if output.status.code() != Some(self.code) {
            problems.push(format!("expected exit code {}", self.code));
        }
        for (name, expected, got) in [
            ("stdout", &self.stdout, stdout_of(&output)),
            ("stderr", &self.stderr, stderr_of(&output)),
        ] {
            if let Some(expected) = expected {
                if let Some(problem) = compare(name, expected, &normalize(&got, dir)) {
                    problems.push(problem);
                }
            }
        }
        if !problems.is_empty() {
            let report = failure_report(&self.cmd, &output);
            panic!("{}\n{report}", problems.join("\n"));
        }
        let report = self.report.as_deref().map(super::mirror::report);
        Ran {
            world: self.world,
            output,
            report,
        }
    }
}

/// A run that did what its [`Test`] expected, for the checks that follow.
pub struct Ran<'a> {
    /// Kept for its directory, which stays until the run is dropped.
    world: World<'a>,
    pub output: Output,
    report: Option<serde_json::Value>,
}

impl Ran<'_> {
    pub fn stdout(&self) -> String {
        stdout_of(&self.output)
    }

    pub fn stderr(&self) -> String {
        stderr_of(&self.output)
    }

    /// `name` in the world's directory, which stays until the run is dropped.
    pub fn path(&self, name: &str) -> PathBuf {
        self.world.dir().join(name)
    }

    /// The JSON report the run wrote (see [`Test::report`]).
    pub fn report(&self) -> &serde_json::Value {
        self.report.as_ref().expect("the test asked for no report")
    }
}

/// `cmd` run by `script`, which gives it a terminal and writes what it drew on its stdout.
fn under_script(cmd: &Command) -> Command {
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    script
}

/// `text` with every duration ferry prints (`0.3s`, `12.0s`) as `[t]` and `dir` as `[dir]`.
fn normalize(text: &str, dir: &Path) -> String {
    static DURATION: OnceLock<regex::Regex> = OnceLock::new();
    let duration = DURATION.get_or_init(|| regex::Regex::new(r"\b[0-9]+\.[0-9]s\b").unwrap());
    let text = text.replace(&*dir.to_string_lossy(), "[dir]");
    duration.replace_all(&text, "[t]").into_owned()
}

/// Whether `line` is what `pattern` says: the same text, where each `[..]` stands for any
/// text (as in cargo's own tests) within the line.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut pieces = pattern.split("[..]");
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// None when `got` is what `expected` says; else what differs.
fn compare(name: &str, expected: &Expected, got: &str) -> Option<String> {
    // Lines keep their ends: a missing final newline is a difference too.
    let have: Vec<&str> = got.split_inclusive('\n').collect();
    let difference = match expected {
        Expected::Exact(want) => {
            let want: Vec<&str> = want.split_inclusive('\n').collect();
            let at =
                (0..want.len().max(have.len())).find(|&i| match (want.get(i), have.get(i)) {
                    (Some(w), Some(h)) => !line_matches(w, h),
                    _ => true,
                })?;
            format!(
                "line {}: expected {:?}, got {:?}",
                at + 1,
                want.get(at),
                have.get(at)
            )
        }
        Expected::Results(want) => {
            let want: Vec<&str> = want.split_inclusive('\n').collect();
            match (want.split_last(), have.split_last()) {
                (None, None) => return None,
                (Some((w, _)), Some((h, _))) if !line_matches(w, h) => {
                    format!("the last line: expected {w:?}, got {h:?}")
                }
                (Some((_, want)), Some((_, have))) => {
                    let mut unmatched = have.to_vec();
                    let mut missing = Vec::new();
                    for w in want {
                        match unmatched.iter().position(|h| line_matches(w, h)) {
                            Some(at) => {
                                unmatched.remove(at);
                            }
                            None => missing.push(*w),
                        }
                    }
                    if missing.is_empty() && unmatched.is_empty() {
                        return None;
                    }
                    format!(
                        "the results (in any order): missing {missing:?}, not expected \
                         {unmatched:?}"
                    )
                }
                (w, h) => format!(
                    "the last line: expected {:?}, got {:?}",
                    w.map(|w| w.0),
                    h.map(|h| h.0)
                ),
            }
        }
    };
    let want = match expected {
        Expected::Exact(want) | Expected::Results(want) => want,
    };
    Some(format!(
        "{name} is not as expected; first difference at {difference}\n\
         --- expected {name} ---\n{want}--- got {name} ---\n{got}---"
    ))
}
