//! Hostile and broken registries, end to end: `scripts/hostile-registry.py` in front of a real
//! `docker-registry`, meeting one repository with one attack (see the script's header), and
//! ferry run with each engine against it. A source whose manifest is not the digest it
//! advertises fails its image (the native engine before writing anything, skopeo and crane once
//! the landed digest shows it); a digest header that would lead out of the repository is
//! refused before any request uses it; a destination that answers a mount with an upload
//! session, or refuses a streamed upload once with 401, still gets every image. A registry's
//! error text full of terminal control reaches stdout and stderr escaped, reports raw.

mod common;

use std::path::Path;

use common::engines::{per_binary_engine, per_engine, Engine};
use common::mirror::*;
use common::script_proxy::ScriptProxy;
use common::*;

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

/// A source whose answers for `library/evil:1` carry `Docker-Content-Digest:
/// sha256:../../../../x`. The target exists already (an older image), so the plan asks the
/// source for its digest. No engine sends a request outside the repository (as a URL built
/// from that digest would: `/v2/library/x`, with the source's credentials), and the native
/// engine fails the image naming the header, not as a missing image.
fn a_digest_header_that_leaves_the_repository_is_never_requested(engine: Engine) {
    let m = Mirror::with_engine(false, engine.clone());
    let evil = m.push("library/evil:1", "evil");
    let (older, _) = make_image(m.scratch.path(), "older");
    push(&m.dest, &older, "third/docker.io/library/evil:1");
    let hostile = ScriptProxy::hostile(
        m.scratch.path(),
        &m.source.addr(),
        &[("library/evil", "digest-traversal")],
        &[],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &hostile.addr())]);
    let list = m.write("images.list", "evil:1\n");
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
    let image = &images(&report)[0];
    assert_ne!(image["error"]["kind"], "not-found", "{report:#}");
    if engine == Engine::Native {
        assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
        assert_eq!(image["status"], "failed", "{report:#}");
        assert_eq!(image["error"]["kind"], "other", "{report:#}");
        let message = image["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Docker-Content-Digest header is invalid")
                && message.contains("sha256:../../../../x")
                && message.contains("not a sha256 digest"),
            "{message}"
        );
        assert_ne!(
            m.target_digest(&format!("{}/docker.io/library/evil:1", m.prefix())),
            Some(evil)
        );
    }
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
