//! The progress view, end to end with a stand-in engine that takes its time: piped output holds
//! no control character and shows a heartbeat while copies are held up; on a terminal the live
//! view is drawn on stderr while stdout carries only the result lines.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

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
        drawn.contains("/2 images (0 skipped, 0 failed)"),
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
}
