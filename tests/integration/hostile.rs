//! Hostile and broken registries, end to end: `scripts/hostile-registry.py` in front of a real
//! `docker-registry`, meeting one repository with one attack (see the script's header), and
//! ferry run with each engine against it. A source whose manifest is not the digest it
//! advertises fails its image (the native engine before writing anything, skopeo and crane once
//! the landed digest shows it); a digest header that would lead out of the repository is
//! refused before any request uses it, and fails its image with every engine; a destination
//! that answers a mount with an upload session, or refuses a streamed upload once with 401,
//! still gets every image. Registries that stall or send without end cost a bounded time and
//! bounded memory: each such run is timed and its peak memory measured (see [`Watched`]). A
//! registry's error text full of terminal control reaches stdout and stderr escaped, reports raw.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::engines::{per_binary_engine, per_engine, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

per_engine!(
    a_manifest_that_is_not_its_advertised_digest_fails_its_image,
    a_digest_header_that_leaves_the_repository_is_never_requested,
    images_sharing_layers_land_when_the_destination_refuses_mounts,
    a_registrys_error_text_reaches_the_terminal_escaped_and_the_report_raw,
);

// The engine runs from a stand-in that moves the source's tag first.
per_binary_engine!(a_tag_moved_between_plan_and_copy_is_not_taken_for_a_mismatch);

/// The images of a run's report, by target.
fn result<'a>(report: &'a serde_json::Value, target: &str) -> &'a serde_json::Value {
    images(report)
        .iter()
        .find(|image| image["target"] == target)
        .unwrap_or_else(|| panic!("no {target} in {report:#}"))
}

/// A source whose `library/swapped:1`, read by tag, is served with its true digest in
/// `Docker-Content-Digest` but a body one byte longer. The native engine fails the image
/// before writing anything, at a registry or into a layout; skopeo and crane write what they
/// read, and the image fails once the digest that landed shows it, naming both digests. The
/// other image lands.
fn a_manifest_that_is_not_its_advertised_digest_fails_its_image(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    let good = m.push("library/good:1", "good");
    let swapped = m.push("library/swapped:1", "swapped");
    let hostile = ScriptProxy::hostile(
        m.scratch.path(),
        &m.source.addr(),
        &[("library/swapped", "manifest-body-mismatch")],
        &[],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &hostile.addr())]);
    let list = m.write("images.list", "good:1\nswapped:1\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--report")
            .arg(&report_path),
        1,
    );
    let p = m.prefix();
    let target = format!("{p}/docker.io/library/swapped:1");
    let report = report(&report_path);
    let failed = result(&report, &target);
    assert_eq!(failed["status"], "failed", "{report:#}");
    assert_eq!(failed["error"]["kind"], "other", "{report:#}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("digest mismatch"), "{message}");
    assert!(message.contains(&swapped), "{message}");
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/good:1")),
        Some(good.clone()),
        "{}",
        stdout_of(&out)
    );
    // The body served by tag: the one skopeo and crane wrote.
    let served = format!(
        "{}\n",
        String::from_utf8(raw_manifest(&m.source, "library/swapped:1").unwrap()).unwrap()
    );
    let served = sha256_of(served.as_bytes());
    match engine {
        Engine::Native => {
            assert_eq!(m.target_digest(&target), None, "{message}");
            assert!(message.contains("nothing was written"), "{message}");
            assert!(
                catalog(&m.dest).iter().all(|r| !r.contains("swapped")),
                "{:?}",
                catalog(&m.dest)
            );
            // Nor into a layout.
            let out = run(
                m.ferry()
                    .env("CONTAINERS_REGISTRIES_CONF", &conf)
                    .arg("sync")
                    .arg(&list),
                1,
            );
            let layouts = m.scratch.path().join("mirror/docker.io/library");
            assert!(
                layouts.join("good/index.json").exists(),
                "{}",
                stdout_of(&out)
            );
            assert_no_file_named(&layouts, &served["sha256:".len()..]);
            assert!(!layouts.join("swapped/index.json").exists());
        }
        Engine::Skopeo | Engine::Crane(_) => {
            assert_eq!(m.target_digest(&target), Some(served.clone()), "{message}");
            assert!(
                message.contains(&format!("the target now holds {served}")),
                "{message}"
            );
        }
    }
}

/// No file under `dir` is named `name`.
fn assert_no_file_named(dir: &Path, name: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_ne!(
            path.file_name().unwrap(),
            name,
            "{} was written",
            path.display()
        );
        if path.is_dir() {
            assert_no_file_named(&path, name);
        }
    }
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// An honest source whose tag moves after the plan looked at it (the engine's stand-in pushes
/// another image to it first): skopeo and crane copy the tag as it is then, and the digest
/// that landed, though not the planned one, is what the source now advertises. The image is
/// synced with that digest.
fn a_tag_moved_between_plan_and_copy_is_not_taken_for_a_mismatch(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    m.push("library/moving:1", "before");
    let (layout, next) = make_image(m.scratch.path(), "after");
    let move_tag = format!(
        "{} --insecure-policy copy --all --preserve-digests --quiet --dest-tls-verify=false \
         oci:{}:latest docker://{}/library/moving:1",
        Engine::Skopeo.binary().display(),
        layout.display(),
        m.source.addr()
    );
    let stand_in = m.scratch.path().join("stand-in");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\n{move_tag} || exit 99\nexec {} \"$@\"\n",
            engine.binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let list = m.write("images.list", "moving:1\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.sync(&list)
            .args(engine.with_binary(&stand_in))
            .arg("--report")
            .arg(&report_path),
        0,
    );
    let target = format!("{}/docker.io/library/moving:1", m.prefix());
    assert_eq!(
        m.target_digest(&target),
        Some(next.digest.clone()),
        "{}",
        stdout_of(&out)
    );
    let report = report(&report_path);
    assert_eq!(
        images(&report)[0]["digest"],
        next.digest.as_str(),
        "{report:#}"
    );
}

/// A source whose answers for `library/evil` carry `Docker-Content-Digest:
/// sha256:../../../../x`. The target of `evil:1` exists already (an older image), so the plan
/// asks the source for its digest; that of `evil:2` does not (the native engine then reads the
/// manifest without a lookup first). No engine sends a request outside the repository (as a
/// URL built from that digest would: `/v2/library/x`, with the source's credentials), and
/// every engine's images fail naming the header (`other`), not as missing images, and are never
/// copied by tag regardless: a registry that sends such a digest is broken or hostile.
fn a_digest_header_that_leaves_the_repository_is_never_requested(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    let evil = m.push("library/evil:1", "evil");
    m.push("library/evil:2", "evil");
    let (older, _) = make_image(m.scratch.path(), "older");
    push(&m.dest, &older, "third/docker.io/library/evil:1");
    let hostile = ScriptProxy::hostile(
        m.scratch.path(),
        &m.source.addr(),
        &[("library/evil", "digest-traversal")],
        &[],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &hostile.addr())]);
    let list = m.write("images.list", "evil:1\nevil:2\n");
    let report_path = m.scratch.path().join("report.json");
    let mut cmd = m.sync(&list);
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .arg("--report")
        .arg(&report_path);
    let out = cmd.output().unwrap();
    let log = hostile.log();
    assert!(
        log.contains("HEAD /v2/library/evil/manifests/1 200"),
        "{log}"
    );
    for line in log.lines() {
        let path = line.split(' ').nth(1).unwrap_or_default();
        assert!(
            // `-`: a client's probe for TLS, refused.
            ["-", "/v2/"].contains(&path) || path.starts_with("/v2/library/evil/"),
            "a request left the repository: {line}\n{log}"
        );
    }
    let report = report(&report_path);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    for image in images(&report) {
        assert_eq!(image["status"], "failed", "{report:#}");
        assert_eq!(image["error"]["kind"], "other", "{report:#}");
        let message = image["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Docker-Content-Digest header is invalid")
                && message.contains("sha256:../../../../x")
                && message.contains("not a sha256 digest"),
            "{message}"
        );
    }
    assert_ne!(
        m.target_digest(&format!("{}/docker.io/library/evil:1", m.prefix())),
        Some(evil)
    );
    assert_eq!(
        m.target_digest(&format!("{}/docker.io/library/evil:2", m.prefix())),
        None
    );
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
}

/// Three images with the same layers into a Basic-auth destination behind a front that drops
/// `mount=` and `from=` from blob upload POSTs, one image at a time: the registry answers each
/// mount the second and third image ask for with an upload session (202), and the blob goes up
/// into it with the destination's credentials. Every image lands with every engine.
fn images_sharing_layers_land_when_the_destination_refuses_mounts(engine: Engine) {
    let m = Mirror::with_engine(true, engine.clone());
    let names = ["a", "b", "c"];
    let digests: Vec<String> = names
        .iter()
        .map(|name| m.push(&format!("library/{name}:1"), "shared"))
        .collect();
    let ca = m.dest.ca_file().unwrap();
    let front = ScriptProxy::hostile(
        m.scratch.path(),
        &m.dest.addr(),
        &[("*", "no-mount")],
        &["--upstream-ca", ca.to_str().unwrap()],
    );
    let list = m.write("images.list", "a:1\nb:1\nc:1\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.ferry()
            .arg("sync")
            .arg(&list)
            .arg("--dest")
            .arg(format!("{}/third", front.addr()))
            .args(["--dest-tls-verify=false", "-j", "1"])
            .env("FERRY_DEST_USERNAME", USER)
            .env("FERRY_DEST_PASSWORD", PASSWORD)
            .arg("--report")
            .arg(&report_path),
        0,
    );
    let report = report(&report_path);
    assert_eq!(report["summary"]["synced"], 3, "{report:#}");
    for (name, digest) in names.iter().zip(&digests) {
        let at = format!("third/docker.io/library/{name}:1");
        assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(digest), "{at}");
    }
    let log = front.log();
    if engine == Engine::Native {
        // Asked for (a repository's first request is challenged), and refused.
        let mounts = front.requests("POST", "mount=");
        let sessions = mounts.iter().filter(|l| l.ends_with(" 202")).count();
        assert!(sessions >= 4, "{log}");
        assert!(
            mounts
                .iter()
                .all(|l| l.ends_with(" 202") || l.ends_with(" 401")),
            "{mounts:?}"
        );
        // Each blob went up into its session with the credentials: none was refused.
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| !l.starts_with("POST ") && l.contains("/blobs/uploads/"))
            .filter(|l| l.ends_with(" 401"))
            .collect();
        assert!(refused.is_empty(), "{refused:?}\n{}", stderr_of(&out));
    }
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
}

/// A Basic-auth destination that refuses one streamed blob upload with 401 (as a token that
/// expired during the run would be): the body is gone, so the native engine starts that blob
/// again with the renewed credentials, and the image lands on its first attempt.
#[test]
fn a_401_to_a_streamed_upload_starts_that_blob_again() {
    let m = Mirror::with_engine(true, Engine::Native);
    let digest = m.push("library/nginx:1.25", "nginx");
    let ca = m.dest.ca_file().unwrap();
    let front = ScriptProxy::hostile(
        m.scratch.path(),
        &m.dest.addr(),
        &[("third/docker.io/library/nginx", "unauthorized-upload-once")],
        &["--upstream-ca", ca.to_str().unwrap()],
    );
    let list = m.write("images.list", "nginx:1.25\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.ferry()
            .arg("sync")
            .arg(&list)
            .arg("--dest")
            .arg(format!("{}/third", front.addr()))
            .args(["--dest-tls-verify=false", "-v"])
            .env("FERRY_DEST_USERNAME", USER)
            .env("FERRY_DEST_PASSWORD", PASSWORD)
            .arg("--report")
            .arg(&report_path),
        0,
    );
    let report = report(&report_path);
    assert_eq!(report["images"][0]["attempts"], 1, "{}", stderr_of(&out));
    let refused: Vec<String> = front
        .log()
        .lines()
        .filter(|l| !l.starts_with("POST ") && l.contains("/blobs/uploads/"))
        .filter(|l| l.ends_with(" 401"))
        .map(str::to_owned)
        .collect();
    assert_eq!(refused.len(), 1, "{}", front.log());
    assert_eq!(
        remote_digest(&m.dest, "third/docker.io/library/nginx:1.25"),
        Some(digest)
    );
}

/// No control character that a terminal obeys (C0 but the line break, DEL, C1).
fn assert_no_control(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what} holds {bad:?}:\n{text}");
}

/// A source that refuses manifest reads with an error message full of terminal control
/// (`\x1b[2J`, colours, CR, a line break and a forged result line, BEL, DEL, a C1 CSI). What
/// ferry prints of it, on stdout and stderr (result lines, -v log lines, JSON logs), holds no
/// control character and no forged line; the failed list no forged entry; the reports keep
/// the registry's words (raw with the native engine and crane; skopeo quotes them in its own
/// log).
fn a_registrys_error_text_reaches_the_terminal_escaped_and_the_report_raw(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    m.push("library/evil:1", "evil");
    let hostile = ScriptProxy::hostile(
        m.scratch.path(),
        &m.source.addr(),
        &[("library/evil", "error-escapes")],
        &[],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &hostile.addr())]);
    let list = m.write("images.list", "evil:1\n");
    let report_path = m.scratch.path().join("report.json");
    let failed_path = m.scratch.path().join("failed.list");
    let out = run(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("-v")
            .arg("--report")
            .arg(&report_path)
            .arg("--failed-list")
            .arg(&failed_path),
        1,
    );
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_no_control("stdout", &stdout);
    assert_no_control("stderr", &stderr);
    assert!(
        stdout.lines().all(|l| !l.starts_with("synced  forged")),
        "{stdout}"
    );
    let report = report(&report_path);
    for image in images(&report) {
        assert_eq!(image["status"], "failed", "{report:#}");
        let message = image["error"]["message"].as_str().unwrap();
        assert!(message.contains("FAKE-ALERT"), "{message}");
    }
    let target = format!("{}/docker.io/library/evil:1", m.prefix());
    let message = result(&report, &target)["error"]["message"]
        .as_str()
        .unwrap();
    if engine == Engine::Native || matches!(engine, Engine::Crane(_)) {
        assert!(message.contains("\x1b[2J\x1b[31mFAKE-ALERT"), "{message:?}");
        // Shown, not obeyed.
        assert!(stdout.contains("\\x1b[2J\\x1b[31mFAKE-ALERT"), "{stdout}");
    }
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    assert_no_control("the failed list", &failed);
    let entries: Vec<&str> = failed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(entries.len(), 1, "{failed}");

    // JSON logs keep the raw text, JSON-escaped, one line each.
    let out = run(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--log-format", "json"]),
        1,
    );
    let stderr = stderr_of(&out);
    assert_no_control("stderr", &stderr);
    let finished: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1, "{stderr}");
    for line in &finished {
        assert!(
            line["message"].as_str().unwrap().contains("FAKE-ALERT"),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hangs and unbounded reads: each run is timed and its peak memory measured, with margins wide
// enough for a loaded machine and far below what the unbounded code took.

/// Peak memory a run against a hostile registry may reach: ferry needs a few tens of MB; an
/// unbounded read took gigabytes.
const PEAK_KIB: u64 = 150 * 1024;

/// One run of ferry, stopped (SIGKILL) if it outlives its limit or grows past four times
/// [`PEAK_KIB`] (an unbounded read grows by hundreds of MB a second): how it ended, how long it
/// took, its peak memory (VmHWM from /proc, read as it ran), and its stdout lines with the
/// time each came.
struct Watched {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    peak_kib: u64,
    lines: Vec<(Duration, String)>,
    killed: bool,
}

impl Watched {
    fn describe(&self) -> String {
        format!(
            "exit {:?} after {:.1}s{}, peak {} MiB\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            if self.killed { " (killed)" } else { "" },
            self.peak_kib / 1024,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Asserts that the run ended by itself with `code`, within `limit` and [`PEAK_KIB`].
    fn ended(&self, code: i32, limit: Duration) {
        // Shown with --nocapture: the numbers a change should keep.
        eprintln!(
            "exit {:?} after {:.1}s, peak {} MiB",
            self.code,
            self.elapsed.as_secs_f64(),
            self.peak_kib / 1024
        );
        assert!(!self.killed, "still running: {}", self.describe());
        assert_eq!(self.code, Some(code), "{}", self.describe());
        assert!(self.elapsed < limit, "took too long: {}", self.describe());
        assert!(self.peak_kib > 0, "no peak measured: {}", self.describe());
        assert!(
            self.peak_kib < PEAK_KIB,
            "too much memory: {}",
            self.describe()
        );
    }

    /// When the first stdout line containing `part` came.
    fn line_at(&self, part: &str) -> Duration {
        self.lines
            .iter()
            .find(|(_, line)| line.contains(part))
            .unwrap_or_else(|| panic!("no line with {part:?}: {}", self.describe()))
            .0
    }
}

/// Runs `cmd`, killed after `limit` (see [`Watched`]).
fn watched(cmd: &mut Command, limit: Duration) -> Watched {
    use std::io::{BufRead as _, Read as _};
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("ferry starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push((started.elapsed(), line));
            }
        })
    };
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak_kib, mut killed) = (0, false);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // The high-water mark only grows: the last reading before the exit is the peak.
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        peak_kib = peak_kib.max(hwm.unwrap_or(0));
        if (started.elapsed() > limit || peak_kib > 4 * PEAK_KIB) && !killed {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    reader.join().unwrap();
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    Watched {
        code: status.code(),
        stdout: lines.iter().map(|(_, line)| format!("{line}\n")).collect(),
        stderr: errors.join().unwrap(),
        elapsed,
        peak_kib,
        lines,
        killed,
    }
}

/// A source whose docker.io names go through the hostile front (meeting `attacks`) and whose
/// quay.io names go straight to the registry (under `quay/`): the front and the
/// registries.conf that says so.
fn hostile_source(m: &Mirror, attacks: &[(&str, &str)]) -> (ScriptProxy, PathBuf) {
    let front = ScriptProxy::hostile(m.scratch.path(), &m.source.addr(), attacks, &[]);
    let quay = format!("{}/quay", m.source.addr());
    let conf = registries_conf(
        m.scratch.path(),
        &[("docker.io", &front.addr()), ("quay.io", &quay)],
    );
    (front, conf)
}

/// The plan's entry for `source`.
fn entry<'a>(report: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == source)
        .unwrap_or_else(|| panic!("no {source} in {report:#}"))
}

/// `plan` of four tags of a repository whose registry accepts connections and never answers,
/// one image of another repository of that registry, and one of another registry: every
/// lookup of the silent repository ends at `--lookup-timeout` (2 s), side by side rather than
/// one after the other, and the other images are planned as if it were not there.
#[test]
fn lookups_of_a_silent_repository_end_at_the_lookup_timeout_side_by_side() {
    let m = Mirror::new(false);
    m.push("library/fine:1", "fine");
    m.push("quay/team/good:1", "good");
    let (_front, conf) = hostile_source(&m, &[("library/stalled", "stall")]);
    let list = m.write(
        "images.list",
        "stalled:1\nstalled:2\nstalled:3\nstalled:4\nfine:1\nquay.io/team/good:1\n",
    );
    let report_path = m.scratch.path().join("plan.json");
    let run = watched(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("plan")
            .arg(&list)
            .args(["--dest", &m.prefix(), "--dest-tls-verify=false"])
            .args(["--lookup-timeout", "2s", "--report"])
            .arg(&report_path),
        Duration::from_secs(90),
    );
    // The first lookup of the repository times out, and the others, which waited for it, give
    // up with it: about 2 s in all, where one lookup after the other would take 8 s or more.
    run.ended(0, Duration::from_secs(7));
    let report = report(&report_path);
    for tag in 1..=4 {
        let stalled = entry(&report, &format!("docker.io/library/stalled:{tag}"));
        assert_eq!(stalled["state"], "unknown", "{report:#}");
        assert_eq!(stalled["error"]["kind"], "timeout", "{report:#}");
        let message = stalled["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("within 2s (--lookup-timeout)"),
            "{message}"
        );
    }
    for healthy in ["docker.io/library/fine:1", "quay.io/team/good:1"] {
        assert_eq!(entry(&report, healthy)["state"], "new", "{report:#}");
    }
}

per_engine!(a_silent_source_holds_up_no_other_image);

/// A sync of four tags of a silent repository (as above) and one image of another registry,
/// with room for all at once: the healthy image lands while the silent ones are still being
/// waited for, and those fail as `timeout` once their time is up: at `--image-timeout` (which
/// counts their lookups) for skopeo and crane, which cannot tell a stall, at `--stall-timeout`
/// for the native engine.
fn a_silent_source_holds_up_no_other_image(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    let good = m.push("quay/team/good:1", "good");
    let (_front, conf) = hostile_source(&m, &[("library/stalled", "stall")]);
    let list = m.write(
        "images.list",
        "stalled:1\nstalled:2\nstalled:3\nstalled:4\nquay.io/team/good:1\n",
    );
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args([
                "-j",
                "8",
                "--registry-jobs",
                "docker.io=8",
                "--retry-times",
                "0",
            ])
            .args(["--lookup-timeout", "2s"])
            .args(["--image-timeout", "20s", "--stall-timeout", "12s"])
            .arg("--report")
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(40));
    let report = report(&report_path);
    let p = m.prefix();
    assert_eq!(
        m.target_digest(&format!("{p}/quay.io/team/good:1")),
        Some(good)
    );
    let landed = run.line_at("quay.io/team/good:1");
    let first_failed = run.line_at("failed ");
    assert!(
        landed + Duration::from_secs(5) < first_failed,
        "the healthy image landed at {landed:?}, the first silent one failed at \
         {first_failed:?}: {}",
        run.describe()
    );
    for tag in 1..=4 {
        let stalled = result(&report, &format!("{p}/docker.io/library/stalled:{tag}"));
        assert_eq!(stalled["status"], "failed", "{report:#}");
        assert_eq!(stalled["error"]["kind"], "timeout", "{report:#}");
    }
}

/// `--image-timeout` bounds an image's lookups too: with a lookup timeout longer than the
/// image's, an image of a silent source fails as `timeout` when the image's time is up,
/// planning included, and no copy is tried for it.
#[test]
fn the_image_timeout_counts_the_lookups_of_the_image() {
    let m = Mirror::new(false);
    let good = m.push("quay/team/good:1", "good");
    let (_front, conf) = hostile_source(&m, &[("library/stalled", "stall")]);
    let list = m.write("images.list", "stalled:1\nquay.io/team/good:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--lookup-timeout", "60s"])
            .args(["--image-timeout", "3s", "--report"])
            .arg(&report_path),
        Duration::from_secs(90),
    );
    run.ended(1, Duration::from_secs(20));
    let report = report(&report_path);
    let p = m.prefix();
    let stalled = result(&report, &format!("{p}/docker.io/library/stalled:1"));
    assert_eq!(stalled["error"]["kind"], "timeout", "{report:#}");
    let message = stalled["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("lookups ran past --image-timeout 3s"),
        "{message}"
    );
    assert_eq!(stalled["attempts"], 0, "{report:#}");
    assert!(
        m.invocations()
            .iter()
            .all(|argv| !argv.join(" ").contains("stalled")),
        "{:?}",
        m.invocations()
    );
    assert_eq!(
        m.target_digest(&format!("{p}/quay.io/team/good:1")),
        Some(good)
    );
}

/// A tag listing whose body stops halfway, the connection left open: the listing ends at
/// `--lookup-timeout` and fails the repository, saying why.
#[test]
fn a_tag_listing_that_stops_midway_ends_at_the_lookup_timeout() {
    let m = Mirror::new(false);
    m.push("library/slow:1", "slow");
    let (_front, conf) = hostile_source(&m, &[("library/slow", "stall-body")]);
    let list = m.write("images.list", "slow\n");
    let report_path = m.scratch.path().join("plan.json");
    let run = watched(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("plan")
            .arg(&list)
            .args(["--dest", &m.prefix(), "--dest-tls-verify=false"])
            .args(["--lookup-timeout", "2s", "--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(90),
    );
    run.ended(0, Duration::from_secs(15));
    let report = report(&report_path);
    let slow = entry(&report, "docker.io/library/slow");
    assert_eq!(slow["error"]["kind"], "timeout", "{report:#}");
    let message = slow["error"]["message"].as_str().unwrap();
    assert!(message.contains("(--lookup-timeout)"), "{message}");
}

/// Three images with the same layers, side by side, into a destination whose front reads the
/// first blob upload and never answers it: the image moving that blob fails at
/// `--stall-timeout`, the images waiting for the same blob fail with it (rather than each wait
/// out its own `--image-timeout`), and their retries land them, well within one image timeout.
#[test]
fn a_stalled_upload_fails_the_images_waiting_for_it_and_their_retries_land() {
    let m = Mirror::with_engine(false, Engine::Native);
    let names = ["a", "b", "c"];
    let digests: Vec<String> = names
        .iter()
        .map(|name| m.push(&format!("library/{name}:1"), "shared"))
        .collect();
    let front = ScriptProxy::hostile(
        m.scratch.path(),
        &m.dest.addr(),
        &[("*", "stall-upload-once")],
        &[],
    );
    let list = m.write("images.list", "a:1\nb:1\nc:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.ferry()
            .arg("sync")
            .arg(&list)
            .args(["--dest", &format!("{}/third", front.addr())])
            .args(["--dest-tls-verify=false", "-j", "3", "-v"])
            .args(["--stall-timeout", "2s", "--image-timeout", "60s"])
            .args(["--retry-times", "1", "--retry-delay", "1s"])
            .arg("--report")
            .arg(&report_path),
        Duration::from_secs(150),
    );
    run.ended(0, Duration::from_secs(30));
    let report = report(&report_path);
    assert_eq!(report["summary"]["synced"], 3, "{report:#}");
    for (name, digest) in names.iter().zip(&digests) {
        let at = format!("third/docker.io/library/{name}:1");
        assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(digest), "{at}");
    }
    assert!(
        run.stderr
            .contains("took no byte of it and gave no answer for 2s (--stall-timeout)"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("which this one waited for, failed"),
        "{}",
        run.describe()
    );
    assert!(
        !run.stderr.contains("--image-timeout"),
        "{}",
        run.describe()
    );
}

/// A source whose blob downloads stop halfway, the connection left open: the native engine
/// fails the image at `--stall-timeout`, saying how far the blob got, instead of waiting
/// minutes for each of several resumes.
#[test]
fn a_blob_download_that_stalls_fails_at_the_stall_timeout() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("library/slow:1", "slow");
    let (_front, conf) = hostile_source(&m, &[("library/slow", "stall-blob")]);
    let list = m.write("images.list", "slow:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--stall-timeout", "2s", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(20));
    let report = report(&report_path);
    let image = &images(&report)[0];
    assert_eq!(image["error"]["kind"], "timeout", "{report:#}");
    let message = image["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no byte arrived for 2s (--stall-timeout) after"),
        "{message}"
    );
}

per_engine!(a_manifest_without_end_is_read_no_further_than_4_mib);

/// A source that streams a manifest without end (and leaves the digest out of its HEAD, so that
/// a lookup must read the body): the plan's lookup stops at 4 MiB and fails the image, which no
/// engine then copies; the native engine's own read stops there too. Quick, and in little
/// memory, where the unbounded read grew to gigabytes.
fn a_manifest_without_end_is_read_no_further_than_4_mib(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    let (_front, conf) = hostile_source(&m, &[("library/endless", "endless-manifest")]);
    let (older, _) = make_image(m.scratch.path(), "older");
    // A target that exists: every engine's plan then asks the source for its digest.
    push(&m.dest, &older, "third/docker.io/library/endless:old");
    let list = m.write("images.list", "endless:1\nendless:old\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--image-timeout", "60s", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(30));
    let report = report(&report_path);
    for image in images(&report) {
        assert_eq!(image["status"], "failed", "{report:#}");
        assert_eq!(image["error"]["kind"], "other", "{report:#}");
        let message = image["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the manifest is larger than 4 MiB, the most ferry reads"),
            "{message}"
        );
    }
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
}

/// A 50 MB manifest (its Content-Length says so) is not read at all, and nothing of it lands
/// in a layout.
#[test]
fn a_huge_manifest_is_refused_and_never_written_into_a_layout() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("library/huge:1", "huge");
    let (_front, conf) = hostile_source(&m, &[("library/huge", "huge-manifest")]);
    let list = m.write("images.list", "huge:1\n");
    let run = watched(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["sync", "--retry-times", "0"])
            .arg(&list),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(20));
    assert!(
        run.stdout.contains("the manifest is larger than 4 MiB"),
        "{}",
        run.describe()
    );
    let layout = m.scratch.path().join("mirror/docker.io/library/huge");
    assert!(!layout.join("index.json").exists());
    if layout.exists() {
        for entry in walk(&layout) {
            let size = std::fs::metadata(&entry).unwrap().len();
            assert!(size < 4 << 20, "{} is {size} bytes", entry.display());
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// An error answer whose body never ends: the native engine reads the start of it for the
/// registry's words and fails the image at once.
#[test]
fn an_error_body_without_end_is_read_no_further_than_its_start() {
    let m = Mirror::with_engine(false, Engine::Native);
    let (_front, conf) = hostile_source(&m, &[("library/denied", "endless-error")]);
    let list = m.write("images.list", "denied:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(20));
    let report = report(&report_path);
    let message = images(&report)[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("HTTP 400"), "{message}");
}

/// A tag listing whose `Link` always names a next page: the listing stops at the pages
/// `--max-tags` takes and fails the repository, saying so; it does not run on, page after
/// page, for ever.
#[test]
fn a_tag_listing_without_end_stops_at_the_pages_max_tags_takes() {
    let m = Mirror::new(false);
    let (front, conf) = hostile_source(&m, &[("library/endless", "endless-tags")]);
    let list = m.write("images.list", "endless\n");
    let report_path = m.scratch.path().join("plan.json");
    let run = watched(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("plan")
            .arg(&list)
            .args(["--dest", &m.prefix(), "--dest-tls-verify=false"])
            .args(["--max-tags", "1000", "--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(90),
    );
    run.ended(0, Duration::from_secs(20));
    let report = report(&report_path);
    let endless = entry(&report, "docker.io/library/endless");
    assert_eq!(endless["error"]["kind"], "other", "{report:#}");
    let message = endless["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("goes on past 21 pages") && message.contains("--max-tags 1000"),
        "{message}"
    );
    let pages = front.requests("GET", "/tags/list").len();
    assert!(pages <= 21, "{pages} pages asked for");
}

/// A repository listing 100,000 tags: past the default `--max-tags` (10,000) the listing
/// stops and fails the repository, quickly and in little memory.
#[test]
fn a_repository_with_more_tags_than_max_tags_fails_its_listing() {
    let m = Mirror::new(false);
    let (front, conf) = hostile_source(&m, &[("library/many", "many-tags")]);
    let list = m.write("images.list", "many\n");
    let report_path = m.scratch.path().join("plan.json");
    let run = watched(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("plan")
            .arg(&list)
            .args(["--dest", &m.prefix(), "--dest-tls-verify=false"])
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(90),
    );
    run.ended(0, Duration::from_secs(20));
    let report = report(&report_path);
    let many = entry(&report, "docker.io/library/many");
    let message = many["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("lists more than --max-tags 10000 tags"),
        "{message}"
    );
    let pages = front.requests("GET", "/tags/list").len();
    assert!(pages <= 11, "{pages} pages asked for");
}

/// An index naming one manifest 5,000 times: the native engine reads that manifest once (and
/// its own children once each), not 5,000 times, and copies the image as it is.
#[test]
fn an_index_naming_one_manifest_5000_times_reads_it_once() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("library/repeated:1", "repeated");
    let (front, conf) = hostile_source(&m, &[("library/repeated", "repeated-child")]);
    let list = m.write("images.list", "repeated:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(0, Duration::from_secs(30));
    let by_digest = front.requests("GET", "/manifests/sha256:").len();
    // The real index, and each of its two platforms' manifests.
    assert_eq!(by_digest, 3, "{}", front.log());
    let report = report(&report_path);
    assert_eq!(images(&report)[0]["status"], "synced", "{report:#}");
}

/// Indexes three deep, forty to an index: the native engine stops at the third index down (2 are
/// allowed) after a few reads, rather than read tens of thousands of manifests.
#[test]
fn indexes_nested_three_deep_are_refused_after_a_few_reads() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("library/nested:1", "nested");
    let (front, conf) = hostile_source(&m, &[("library/nested", "nested-index")]);
    let list = m.write("images.list", "nested:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(20));
    let report = report(&report_path);
    let image = &images(&report)[0];
    assert_eq!(image["error"]["kind"], "other", "{report:#}");
    let message = image["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("it stacks indexes more than 2 deep"),
        "{message}"
    );
    let by_digest = front.requests("GET", "/manifests/sha256:").len();
    assert!(by_digest <= 2, "{}", front.log());
    assert!(catalog(&m.dest).is_empty(), "{:?}", catalog(&m.dest));
}

/// An index naming 1,001 manifests: refused before any of them is read.
#[test]
fn an_index_naming_more_than_1000_manifests_is_refused_before_reading_them() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("library/wide:1", "wide");
    let (front, conf) = hostile_source(&m, &[("library/wide", "wide-index")]);
    let list = m.write("images.list", "wide:1\n");
    let report_path = m.scratch.path().join("report.json");
    let run = watched(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        Duration::from_secs(120),
    );
    run.ended(1, Duration::from_secs(20));
    let report = report(&report_path);
    let message = images(&report)[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("its indexes name more than 1000 manifests"),
        "{message}"
    );
    assert!(
        front.requests("GET", "/manifests/sha256:").is_empty(),
        "{}",
        front.log()
    );
}
