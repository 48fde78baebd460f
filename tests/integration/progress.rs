//! The progress view, end to end with a stand-in engine that takes its time: piped output holds
//! no control character and shows a heartbeat while copies are held up; on a terminal the live
//! view is drawn on stderr while stdout carries only the result lines.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A skopeo stand-in that takes `seconds` per copy and reports two blobs.
fn slow_skopeo(dir: &Path, seconds: &str) -> PathBuf {
    let path = dir.join("slow-skopeo");
    let script = format!(
        "#!/bin/sh\nsleep {seconds}\necho 'Copying blob sha256:aa'\necho 'Copying blob sha256:bb'\nexit 0\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A sync of two images that needs no registry: `--force` skips the lookups and the stand-in
/// copies nothing (skopeo named: layouts are copied natively by default).
fn offline_sync(dir: &TempDir, seconds: &str) -> Command {
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "127.0.0.1:9/x:1\n127.0.0.1:9/y:1\n").unwrap();
    let mut cmd = ferry();
    cmd.args(["sync", "--force", "--engine", "skopeo", "--skopeo"])
        .arg(slow_skopeo(dir.path(), seconds))
        .arg("--dest-dir")
        .arg(dir.path().join("mirror"))
        .arg(&list)
        .env_remove("FERRY_DEST");
    cmd
}

fn result_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or(""))
        .collect()
}

#[test]
fn piped_progress_is_a_heartbeat_without_control_characters() {
    let dir = TempDir::new("progress-plain");
    let out = run(
        offline_sync(&dir, "1.5").args(["--progress-interval", "300ms", "-j", "1"]),
        0,
    );
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(!stderr.contains('\r'), "{stderr:?}");
    // stdout: exactly the result lines and the summary.
    assert_eq!(result_lines(&stdout), ["synced", "synced", "2"], "{stdout}");
    let beats: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("ferry: ") && line.contains(" images done "))
        .collect();
    assert!(
        beats.len() >= 4,
        "a 3 s run with a 300 ms heartbeat: {stderr}"
    );
    assert!(
        beats
            .iter()
            .any(|b| b.contains("0/2 images done (0 skipped, 0 failed), 1 copying")),
        "{beats:#?}"
    );
    assert!(
        beats
            .iter()
            .any(|b| b.starts_with("ferry: 1/2 images done")),
        "{beats:#?}"
    );

    // `none` shows nothing but the result lines.
    let out = run(
        offline_sync(&dir, "0.5").args(["--progress", "none", "--progress-interval", "100ms"]),
        0,
    );
    assert_eq!(stderr_of(&out), "");
}

/// Under a terminal (`script`), with stdout sent to a file: the live view is drawn on the
/// terminal, the file gets the result lines only.
#[test]
fn on_a_terminal_the_live_view_goes_to_stderr_and_stdout_keeps_the_result_lines() {
    let dir = TempDir::new("progress-tty");
    let cmd = offline_sync(&dir, "1");
    let stdout_file = dir.path().join("stdout.txt");
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect();
    let shell = format!(
        "{} > {}",
        line.join(" "),
        shell_quote(&stdout_file.to_string_lossy())
    );
    let terminal = run(
        Command::new("script")
            .args(["-qec", &shell, "/dev/null"])
            .env_remove("FERRY_DEST"),
        0,
    );
    let drawn = stdout_of(&terminal);
    assert!(
        drawn.contains('\x1b'),
        "no live view on the terminal: {drawn:?}"
    );
    assert!(
        drawn.contains("/2 images (0 skipped, 0 failed, "),
        "{drawn:?}"
    );
    assert!(
        drawn.contains(": copying"),
        "no line per image in flight: {drawn:?}"
    );
    let stdout = std::fs::read_to_string(&stdout_file).unwrap();
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert_eq!(result_lines(&stdout), ["synced", "synced", "2"], "{stdout}");
}

/// `--log-format json`: every line on stderr, log lines and run events alike, is one JSON
/// object; stdout keeps the result lines.
#[test]
fn json_logs_are_one_object_per_line_with_the_events_fields() {
    let dir = TempDir::new("progress-json");
    let out = run(
        offline_sync(&dir, "0.2").args(["--log-format", "json", "-v"]),
        0,
    );
    let stderr = stderr_of(&out);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    for wanted in [
        "run_started",
        "planned",
        "attempt_started",
        "progress",
        "finished",
        "run_finished",
    ] {
        assert!(events.contains(&wanted), "no {wanted} in {events:?}");
    }
    let finished = lines.iter().find(|l| l["event"] == "finished").unwrap();
    assert!(
        finished["image"].as_str().unwrap().ends_with(":1"),
        "{finished}"
    );
    assert_eq!(finished["status"], "synced");
    assert_eq!(finished["attempts"], 1);
    // The -v log lines are JSON too.
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{stderr}");
    assert_eq!(result_lines(&stdout_of(&out)), ["synced", "synced", "2"]);
    // One envelope for all, and each entry's event names its source and target: `planned`
    // too, and the log lines of an image's copy.
    for line in &lines {
        assert_envelope(line);
        if line.get("index").is_some() || line["event"] == "planned" {
            assert!(
                line["source"].as_str().unwrap().starts_with("127.0.0.1:9/"),
                "{line}"
            );
            assert!(
                line["target"].as_str().unwrap().starts_with("oci:"),
                "{line}"
            );
        }
    }
    let running = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains(" running "))
        })
        .unwrap_or_else(|| panic!("no command line logged: {stderr}"));
    assert!(running["source"].is_string(), "{running}");
    assert!(running["target"].is_string(), "{running}");
}

/// A JSON log line's envelope: when, how bad, and what (an event or a message).
fn assert_envelope(line: &serde_json::Value) {
    let timestamp = line["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T') && timestamp.len() >= 20,
        "{line}"
    );
    assert!(
        ["DEBUG", "INFO", "WARN", "ERROR"].contains(&line["level"].as_str().unwrap_or("")),
        "{line}"
    );
    assert!(
        line["event"].is_string() != line["message"].is_string() || line["event"] == "finished",
        "an event or a message: {line}"
    );
}

/// Every line of `stderr` as a JSON object with the envelope.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    assert!(!stderr.is_empty());
    stderr
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stderr}"));
            assert!(value.is_object(), "{line}");
            assert_envelope(&value);
            value
        })
        .collect()
}

/// `--log-format json` for every command and every way ferry ends: a plan's warnings, a list
/// with a mistake, a usage error (clap's) and a bad setting, and `serve` from its start to
/// its first run of a broken list, whose problems it says once. Every line on stderr is one
/// JSON object with the envelope.
#[test]
fn with_json_logs_every_line_on_stderr_is_one_json_object() {
    let dir = TempDir::new("progress-json-all");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let pinned = write("pinned.list", &format!("127.0.0.1:9/x@sha256:{PINNED}\n"));
    let empty = write("empty.list", "# nothing yet\n");
    let broken = write("broken.list", "127.0.0.1:9/x:1\nNot An Image!\n");
    let mirror = dir.path().join("mirror");
    let ferry = || {
        let mut cmd = ferry();
        cmd.env_remove("FERRY_DEST");
        cmd
    };

    let out = run(
        ferry()
            .args(["plan", "--log-format", "json", "--dest-dir"])
            .arg(&mirror)
            .arg(&pinned)
            .arg(&empty),
        0,
    );
    let lines = json_lines(&stderr_of(&out));
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("no images")),
        "{lines:?}"
    );
    assert!(stdout_of(&out).starts_with("STATE"), "{}", stdout_of(&out));

    let out = run(
        ferry()
            .args(["sync", "--log-format=json", "--dest-dir"])
            .arg(&mirror)
            .arg(&broken),
        2,
    );
    let lines = json_lines(&stderr_of(&out));
    assert!(lines.iter().all(|l| l["level"] == "ERROR"), "{lines:?}");
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .contains("broken.list:2:"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap()["message"],
        "1 problem in the input; nothing was copied"
    );

    // clap's own errors, and a setting ferry refuses.
    for (args, says) in [
        (&["sync", "--log-format", "json", "--bogus"][..], "--bogus"),
        (&["--log-format", "json"][..], "subcommand"),
        (
            &["sync", "--log-format", "json", "--jobs", "x"][..],
            "--jobs",
        ),
        (
            &["plan", "--log-format", "json", "--dest", "no-host"][..],
            "destination",
        ),
    ] {
        let out = run(ferry().args(args), 2);
        let lines = json_lines(&stderr_of(&out));
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "ERROR" && l["message"].as_str().unwrap().contains(says)),
            "{args:?}: {lines:?}"
        );
    }

    // serve: its start, and the first run of a broken list (due at once).
    let mut child = ferry()
        .args([
            "serve",
            "--log-format",
            "json",
            "--every",
            "1h",
            "--progress",
            "none",
        ])
        .args(["--listen", "127.0.0.1:0", "--dest-dir"])
        .arg(&mirror)
        .arg(&broken)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}: {seen:?}"));
        seen.push(line.clone());
        if let Some((_, rest)) = line.split_once("on http://") {
            break rest.split('"').next().unwrap().to_owned();
        }
    };
    wait_until(
        std::time::Duration::from_secs(20),
        "a run of the broken list",
        || metrics(&addr).contains("ferry_runs_total{result=\"invalid-input\"} 1"),
    );
    signal_and_wait(
        &mut child,
        "TERM",
        std::time::Duration::from_secs(10),
        "serve stops",
    );
    seen.extend(rx.try_iter());
    let stderr = seen.join("\n");
    let lines = json_lines(&stderr);
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("syncing every")),
        "{stderr}"
    );
    let said = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains("broken.list:2:")
        })
        .count();
    assert_eq!(said, 1, "the input's problem, said once: {stderr}");
}

/// `/metrics` of a server at `addr`.
fn metrics(addr: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

// ---------------------------------------------------------------------------------------------
// On a real terminal, as a person sees it

/// What a terminal showed after a command ran on it.
struct Screen {
    status: i32,
    /// The visible lines, then the scrollback above them: everything left on the terminal.
    lines: Vec<String>,
    /// Every byte written to the terminal, for the frames drawn meanwhile.
    raw: String,
}

/// The python that has pyte (scripts/test installs it in a venv under target/), or `None`
/// (the test then says it was skipped; under CI, or with FERRY_REQUIRE_VALIDATORS=1, it fails
/// instead).
fn python_with_pyte() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ferry-test-venv/bin/python3");
    let candidates = [
        std::env::var_os("FERRY_TEST_PYTHON").map(PathBuf::from),
        Some(venv),
        Some(PathBuf::from("python3")),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import pyte"])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var_os("FERRY_REQUIRE_VALIDATORS").is_none(),
            "pyte is missing: scripts/test installs it"
        );
        eprintln!("SKIPPED: no python with pyte (scripts/test installs it)");
    }
    found
}

/// Runs `cmd` (its environment too) on a 200×100 pseudo-terminal, stdout and stderr both,
/// through `tests/terminal.py`, which renders what it drew with pyte, a terminal emulator.
fn on_terminal(cmd: &Command, dir: &Path) -> Option<Screen> {
    let python = python_with_pyte()?;
    let raw = dir.join(format!("terminal-{}.raw", unique()));
    let mut terminal = Command::new(python);
    terminal
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terminal.py"))
        .args(["--cols", "200", "--rows", "100", "--raw"])
        .arg(&raw)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(cwd) = cmd.get_current_dir() {
        terminal.current_dir(cwd);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => terminal.env(key, value),
            None => terminal.env_remove(key),
        };
    }
    let out = run(&mut terminal, 0);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line.as_str().unwrap().to_owned())
            .collect()
    };
    let mut lines = text("history");
    lines.extend(text("screen"));
    Some(Screen {
        status: value["status"].as_i64().unwrap() as i32,
        lines,
        raw: String::from_utf8_lossy(&std::fs::read(&raw).unwrap()).into_owned(),
    })
}

/// A skopeo stand-in that fails its first call with a network error, then copies nothing in
/// half a second.
fn skopeo_failing_once(dir: &Path) -> PathBuf {
    let path = dir.join("skopeo-failing-once");
    let marker = dir.join("failed-once");
    let script = format!(
        "#!/bin/sh\nif [ ! -e '{marker}' ]; then : > '{marker}'; echo 'time=\"2026-01-01T00:00:00Z\" \
         level=fatal msg=\"reading manifest: read tcp 127.0.0.1:1->127.0.0.1:9: read: \
         connection reset by peer\"' >&2; exit 1; fi\nsleep 0.5\nexit 0\n",
        marker = marker.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The frames of the live view drawn on the terminal: the text between its redraws.
fn frames(raw: &str) -> Vec<&str> {
    raw.split(['\r', '\n', '\x1b'])
        .filter(|frame| frame.contains(" images"))
        .collect()
}

const PINNED: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A warning and other log lines printed while the live view is drawn (a whole repository the
/// tag filters keep nothing of, while planning; each copy's command line, `-v`, while copying):
/// on the terminal at the end, as a terminal emulator shows it (scrollback included), the log
/// lines, the result lines and the summary, and not one stale frame of the view.
#[test]
fn log_lines_on_a_terminal_leave_no_stale_frame_of_the_live_view() {
    let m = crate::common::mirror::Mirror::new(false);
    m.push("library/nginx:1", "nginx");
    let list = m.write(
        "images.list",
        &format!("nginx\n127.0.0.1:9/x@sha256:{PINNED}\n127.0.0.1:9/y@sha256:{PINNED}\n"),
    );
    let mut cmd = m.ferry();
    cmd.args(["sync", "--engine", "skopeo", "--skopeo"])
        .arg(slow_skopeo(m.scratch.path(), "1"))
        .arg("--dest-dir")
        .arg(m.scratch.path().join("mirror"))
        .args(["-j", "1", "--progress", "tty", "-v", "--tags", "^none$"])
        .arg(&list);
    let Some(screen) = on_terminal(&cmd, m.scratch.path()) else {
        return;
    };
    let shown = screen.lines.join("\n");
    assert_eq!(screen.status, 0, "{shown}");
    // The view was drawn, over the copies.
    assert!(
        frames(&screen.raw).iter().any(|f| f.contains("0/2 images")),
        "{:?}",
        screen.raw
    );
    assert!(shown.contains("WARN"), "{shown}");
    assert!(
        shown.contains("the tag filters keep none of the 1 tag of"),
        "{shown}"
    );
    assert_eq!(
        shown.matches("INFO attempt 1: running").count(),
        2,
        "{shown}"
    );
    assert_eq!(shown.matches("synced  oci:").count(), 2, "{shown}");
    assert!(
        shown.contains("2 images: 2 synced, 0 skipped, 0 failed"),
        "{shown}"
    );
    for line in &screen.lines {
        assert!(
            !line.contains(" images (") && !line.contains(": copying") && !line.contains("ETA"),
            "a stale frame of the live view is left on the terminal: {line:?}\n{shown}"
        );
    }
}

/// The live view on a terminal: no time left is shown before an image finished (it cannot be
/// told), then it is; a retry's countdown counts down between events.
#[test]
fn the_live_view_tells_the_time_left_once_known_and_counts_down_to_a_retry() {
    let dir = TempDir::new("progress-countdown");
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!("127.0.0.1:9/x@sha256:{PINNED}\n127.0.0.1:9/y@sha256:{PINNED}\n"),
    )
    .unwrap();
    let mut cmd = ferry();
    cmd.args(["sync", "--force", "--engine", "skopeo", "--skopeo"])
        .arg(skopeo_failing_once(dir.path()))
        .arg("--dest-dir")
        .arg(dir.path().join("mirror"))
        .args(["-j", "1", "--progress", "tty", "--retry-delay", "8s"])
        .arg(&list)
        .env_remove("FERRY_DEST");
    let Some(screen) = on_terminal(&cmd, dir.path()) else {
        return;
    };
    assert_eq!(screen.status, 0, "{}", screen.lines.join("\n"));
    let frames = frames(&screen.raw);
    let before_any = frames.iter().filter(|f| f.contains(" 0/2 images"));
    for frame in before_any {
        assert!(!frame.contains("ETA"), "a time left before any: {frame:?}");
    }
    assert!(
        frames
            .iter()
            .any(|f| f.contains(" 1/2 images") && f.contains(", ETA ")),
        "no time left once one image is done: {frames:#?}"
    );
    // The retry waits 4 to 8 s: its countdown shows several values.
    let mut countdown: Vec<&str> = screen
        .raw
        .split(['\r', '\n', '\x1b'])
        .filter_map(|text| text.split("attempt 2/4 in ").nth(1))
        .filter_map(|rest| rest.split('s').next())
        .collect();
    countdown.sort_unstable();
    countdown.dedup();
    assert!(
        countdown.len() >= 3,
        "the countdown to the retry did not count down: {countdown:?}"
    );
}

/// Images held back by `--registry-jobs` are waiting, as the heartbeat says.
#[test]
fn images_held_back_by_registry_jobs_are_counted_as_waiting() {
    let dir = TempDir::new("progress-registry-jobs");
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "127.0.0.1:9/x:1\n127.0.0.1:9/y:1\n127.0.0.1:9/z:1\n").unwrap();
    let out = run(
        ferry()
            .args(["sync", "--force", "--engine", "skopeo", "--skopeo"])
            .arg(slow_skopeo(dir.path(), "1.5"))
            .arg("--dest-dir")
            .arg(dir.path().join("mirror"))
            .args(["-j", "3", "--registry-jobs", "127.0.0.1:9=1"])
            .args(["--progress", "plain", "--progress-interval", "300ms"])
            .arg(&list)
            .env_remove("FERRY_DEST"),
        0,
    );
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("0/3 images done (0 skipped, 0 failed), 1 copying, 2 waiting"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1/3 images done (0 skipped, 0 failed), 1 copying, 1 waiting"),
        "{stderr}"
    );
}
