//! The native engine (`--engine native`) end to end, against real `docker-registry` processes:
//! every digest equals upstream's (OCI indexes with uncompressed layers, Docker schema 2 lists,
//! single-platform images), into a Basic-auth TLS destination, a plain-HTTP one, and from a
//! Bearer-token source; a base layer shared by two images travels once and is mounted once; a
//! corrupt blob fails its image and never lands; a cut download resumes where it was cut. The
//! requests are counted at `scripts/rate-limit-proxy.py` in front of a registry.

use std::io::{Read as _, Write as _};
use std::process::Command;

use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::token_proxy::TokenProxy;
use crate::common::*;

/// The manifests a top-level manifest names (none for an image).
fn children(raw: &[u8]) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(raw).unwrap();
    value["manifests"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| m["digest"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every manifest of `repo_ref` in the source is in the destination under `target_repo`, with
/// the same digest: the top one at the target's tag, each child by its digest.
fn assert_same_tree(m: &Mirror, repo_ref: &str, target: &str) {
    let raw = raw_manifest(&m.source, repo_ref).unwrap_or_else(|| panic!("no {repo_ref}"));
    let digest = sha256_of(&raw);
    let repo = target.rsplit_once(':').unwrap().0;
    assert_eq!(
        m.target_digest(target).as_deref(),
        Some(digest.as_str()),
        "{target}"
    );
    for child in children(&raw) {
        let at = format!("{repo}@{child}");
        assert_eq!(
            m.target_digest(&at).as_deref(),
            Some(child.as_str()),
            "{at}"
        );
    }
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn native(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.args(["--engine", "native"])
}

#[test]
fn every_manifest_form_lands_with_upstream_digests_in_a_basic_auth_tls_destination() {
    let m = Mirror::new(true);
    let forms = [
        ("oci-index", Form::OciIndex),
        ("docker-list", Form::DockerList),
        ("oci-single", Form::OciSingle),
        ("docker-single", Form::DockerSingle),
    ];
    for (name, form) in forms {
        let (layout, _) = make_image(m.scratch.path(), name);
        push_as(&m.source, &layout, &format!("library/{name}:1"), form);
    }
    let list: String = forms.iter().map(|(n, _)| format!("{n}:1\n")).collect();
    let list = m.write("images.list", &list);
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        native(&mut m.sync(&list))
            .arg("--report")
            .arg(&report_path)
            .env("FERRY_DEST_USERNAME", USER)
            .env("FERRY_DEST_PASSWORD", PASSWORD),
        0,
    );
    for (name, _) in forms {
        let target = format!("{}/docker.io/library/{name}:1", m.prefix());
        assert_same_tree(&m, &format!("library/{name}:1"), &target);
    }
    let report = report(&report_path);
    assert_eq!(report["summary"]["synced"], 4, "{report:#}");
    let written: Vec<u64> = images(&report)
        .iter()
        .map(|i| i["manifests_written"].as_u64().unwrap())
        .collect();
    assert_eq!(written, [3, 3, 1, 1], "{report:#}");
    for image in images(&report) {
        assert_eq!(image["attempts"], 1, "{image:#}");
        assert!(image["blobs_copied"].as_u64().unwrap() >= 2, "{image:#}");
        let digest = image["digest"].as_str().unwrap();
        assert!(digest.starts_with("sha256:"), "{image:#}");
    }
    assert!(
        m.invocations().is_empty(),
        "skopeo ran: {:?}",
        m.invocations()
    );
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
}

/// Two images built on one base into a plain-HTTP destination: the base layer of each
/// platform goes up once (one `PUT`), and the second image mounts it (one `POST ?mount=`).
#[test]
fn a_shared_base_layer_is_uploaded_once_and_mounted_once() {
    let m = Mirror::new(false);
    let layers = Layers {
        base: Some("debian"),
        ..Layers::default()
    };
    let mut pushed = Vec::new();
    for name in ["app-a", "app-b"] {
        let (layout, image) = make_layered_image(m.scratch.path(), name, &layers);
        push(&m.source, &layout, &format!("library/{name}:1"));
        pushed.push(image);
    }
    assert_eq!(pushed[0].layers[0], pushed[1].layers[0], "no shared base");
    let proxy = ScriptProxy::start(m.scratch.path(), &m.dest.addr(), &["--rate", "inf"]);
    let list = m.write("images.list", "app-a:1\napp-b:1\n");
    let prefix = format!("{}/third", proxy.addr());
    let sync = || {
        let mut cmd = m.ferry();
        cmd.arg("sync").arg(&list).arg("--dest").arg(&prefix).args([
            "--dest-tls-verify=false",
            "-j",
            "2",
            "--engine",
            "native",
        ]);
        cmd
    };
    run(&mut sync(), 0);
    for (name, image) in ["app-a", "app-b"].iter().zip(&pushed) {
        let target = format!("third/docker.io/library/{name}:1");
        assert_eq!(remote_digest(&m.dest, &target), Some(image.digest.clone()));
    }
    let log = proxy.log();
    // Bases at 0 and 2, tops at 1 and 3 (amd64, arm64).
    for base in [&pushed[0].layers[0], &pushed[0].layers[2]] {
        let uploads = proxy.requests("PUT", &format!("digest={base}"));
        let patches = proxy.requests("PATCH", "/blobs/uploads/");
        assert_eq!(uploads.len(), 1, "{base} uploaded {uploads:?}\n{log}");
        assert!(patches.is_empty(), "{patches:?}");
        let mounts = proxy.requests("POST", &format!("mount={base}"));
        assert_eq!(mounts.len(), 1, "{base} mounted {mounts:?}\n{log}");
        assert!(mounts[0].ends_with(" 201"), "{mounts:?}");
        // Looked for once, where it was first uploaded: the mount's 201 says it is in.
        let heads = proxy.requests("HEAD", &format!("/blobs/{base}"));
        assert_eq!(heads.len(), 1, "{base}: {heads:?}\n{log}");
    }
    for image in &pushed {
        for top in [&image.layers[1], &image.layers[3]] {
            let uploads = proxy.requests("PUT", &format!("digest={top}"));
            assert_eq!(uploads.len(), 1, "{top}: {uploads:?}\n{log}");
        }
    }
    // A rerun finds both current: one HEAD per tag, nothing uploaded.
    let before = proxy.log().lines().count();
    let out = run(&mut sync(), 0);
    assert!(
        stdout_of(&out).contains("2 images: 0 synced, 2 skipped"),
        "{}",
        stdout_of(&out)
    );
    let rerun: Vec<String> = proxy
        .log()
        .lines()
        .skip(before)
        .map(str::to_owned)
        .collect();
    assert!(
        rerun
            .iter()
            .all(|l| l.starts_with("HEAD ") || l.starts_with("- ")),
        "{rerun:?}"
    );
}

/// The login of the token proxies below.
const HUB_USER: &str = "hub-reader";
const HUB_PASSWORD: &str = "t0ken-Pa55";

/// An auth file with that login for `host`.
fn hub_auth_file(m: &Mirror, host: &str) -> std::path::PathBuf {
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{HUB_USER}:{HUB_PASSWORD}"),
    );
    let auths = serde_json::json!({ "auths": { host: { "auth": auth } } });
    m.write("auth.json", &auths.to_string())
}

/// A source behind Docker Hub-style token auth: blobs and manifests come through with the
/// Bearer token of each repository.
#[test]
fn a_bearer_token_source_is_copied_with_upstream_digests() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let redis = m.push("library/redis:7", "redis");
    let proxy = TokenProxy::start(&m.source.addr(), HUB_USER, HUB_PASSWORD);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let auth_file = hub_auth_file(&m, &proxy.addr());
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    run(
        native(&mut m.sync(&list))
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--src-authfile")
            .arg(&auth_file),
        0,
    );
    let p = m.prefix();
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/nginx:1.25")),
        Some(nginx)
    );
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/redis:7")),
        Some(redis)
    );
    // One token per repository, reused for its manifests and blobs.
    assert_eq!(proxy.granted_tokens(), 2, "{}", proxy.log());
    assert!(
        proxy
            .log()
            .lines()
            .any(|l| l.contains("/blobs/") && l.ends_with("-> 200")),
        "{}",
        proxy.log()
    );
}

/// A source that serves one image's blobs with a byte flipped: that image fails as `other`
/// with "digest mismatch" on its first attempt, nothing of it is tagged or stored, and the
/// other images land.
#[test]
fn a_corrupt_blob_fails_its_image_and_never_lands() {
    let m = Mirror::new(false);
    let good = m.push("library/good:1", "good");
    let (layout, bad) = make_image(m.scratch.path(), "bad");
    push(&m.source, &layout, "library/bad:1");
    let other = m.push("library/other:1", "other");
    let proxy = ScriptProxy::start(
        m.scratch.path(),
        &m.source.addr(),
        &["--rate", "inf", "--corrupt-blobs", "/library/bad/"],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "good:1\nbad:1\nother:1\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        native(&mut m.sync(&list))
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-delay", "100ms"])
            .arg("--report")
            .arg(&report_path),
        1,
    );
    let report = report(&report_path);
    let bad_result = &images(&report)[1];
    assert_eq!(bad_result["status"], "failed", "{report:#}");
    assert_eq!(bad_result["error"]["kind"], "other", "{report:#}");
    assert_eq!(bad_result["attempts"], 1, "{report:#}");
    let message = bad_result["error"]["message"].as_str().unwrap();
    assert!(message.contains("digest mismatch"), "{message}");
    let p = m.prefix();
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/good:1")),
        Some(good)
    );
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/other:1")),
        Some(other)
    );
    let bad_repo = "third/docker.io/library/bad";
    assert!(tags(&m.dest, bad_repo).is_empty(), "{}", stdout_of(&out));
    for layer in &bad.layers {
        assert!(!has_blob(&m.dest, bad_repo, layer), "{layer} landed");
    }
}

/// A 20 MiB layer per platform: it goes up in chunks (`PATCH`), and when the source connection
/// drops a megabyte into its download, the copy resumes there with `Range`: the image lands and
/// the source sends each layer's bytes once.
#[test]
fn a_large_blob_goes_up_in_chunks_and_a_cut_download_resumes_where_it_was_cut() {
    let m = Mirror::new(false);
    let size = 20 << 20;
    let layers = Layers {
        top_bytes: size,
        ..Layers::default()
    };
    let (layout, image) = make_layered_image(m.scratch.path(), "big", &layers);
    push(&m.source, &layout, "library/big:1");
    let cut = (1 << 20).to_string();
    let source = ScriptProxy::start(
        m.scratch.path(),
        &m.source.addr(),
        &["--rate", "inf", "--log-bytes", "--cut-blobs-after", &cut],
    );
    let dest = ScriptProxy::start(m.scratch.path(), &m.dest.addr(), &["--rate", "inf"]);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &source.addr())]);
    let list = m.write("images.list", "big:1\n");
    let report_path = m.scratch.path().join("report.json");
    let mut cmd = m.ferry();
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .arg("sync")
        .arg(&list)
        .arg("--dest")
        .arg(format!("{}/third", dest.addr()))
        .args(["--dest-tls-verify=false", "--engine", "native", "-v"])
        .arg("--report")
        .arg(&report_path);
    let out = run(&mut cmd, 0);
    assert_eq!(
        remote_digest(&m.dest, "third/docker.io/library/big:1"),
        Some(image.digest.clone())
    );
    let report = report(&report_path);
    assert_eq!(report["images"][0]["attempts"], 1, "{}", stderr_of(&out));
    for layer in [&image.layers[0], &image.layers[1]] {
        let gets = source.requests("GET", &format!("/blobs/{layer}"));
        let fetched: u64 = gets
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert!(gets.len() >= 2, "{layer} was not cut: {gets:?}");
        assert!(
            gets[1].contains(" 206 "),
            "not resumed with a range: {gets:?}"
        );
        let blob_size = size as u64 + 2048; // the tar's header and end blocks
        assert!(
            (blob_size..blob_size + 1024).contains(&fetched),
            "{layer}: {fetched} bytes fetched: {gets:?}\n{}",
            stderr_of(&out)
        );
        let puts = dest.requests("PUT", &format!("digest={layer}"));
        assert_eq!(puts.len(), 1, "{puts:?}");
    }
    let patches = dest.requests("PATCH", "/blobs/uploads/");
    assert_eq!(patches.len(), 4, "two 16 MiB chunks per layer: {patches:?}");
}

/// The same image set synced by skopeo and by the native engine into two destinations gives
/// the same digests everywhere: the engines are interchangeable.
#[test]
fn skopeo_and_native_agree_on_every_digest() {
    let m = Mirror::new(false);
    let other = Registry::start_plain();
    let names = ["one", "two"];
    for name in names {
        m.push(&format!("library/{name}:1"), name);
    }
    let list = m.write("images.list", "one:1\ntwo:1\n");
    run(&mut m.sync(&list), 0);
    let mut cmd = m.ferry();
    cmd.arg("sync")
        .arg(&list)
        .arg("--dest")
        .arg(format!("{}/third", other.addr()))
        .args(["--dest-tls-verify=false", "--engine", "native"]);
    run(&mut cmd, 0);
    for name in names {
        let repo_ref = format!("third/docker.io/library/{name}:1");
        assert_eq!(
            remote_digest(&m.dest, &repo_ref),
            remote_digest(&other, &repo_ref),
            "{name}"
        );
    }
}

/// The layout's `index.json` as (ref name, digest) pairs, sorted.
fn layout_refs(layout: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut refs: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("-");
            (name.to_owned(), m["digest"].as_str().unwrap().to_owned())
        })
        .collect();
    refs.sort();
    refs
}

/// Without a destination the native engine writes OCI layouts, one per repository holding its
/// tags: skopeo reads them, ferry's planner finds them current, and skopeo copies them on to a
/// registry with every digest intact. A Docker list is written byte for byte too.
#[test]
fn native_layouts_are_read_by_skopeo_and_round_trip_to_a_registry() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx-1.25");
    let nginx_next = m.push("library/nginx:1.26", "nginx-1.26");
    let (layout, _) = make_image(m.scratch.path(), "redis");
    push_as(&m.source, &layout, "library/redis:7", Form::DockerList);
    let redis = remote_digest(&m.source, "library/redis:7").unwrap();
    let list = m.write("source-images.list", "nginx:1.25\nnginx:1.26\nredis:7\n");
    let out = run(native(m.ferry().arg("sync").arg(&list)), 0);
    assert!(
        stdout_of(&out).contains("3 images: 3 synced"),
        "{}",
        stdout_of(&out)
    );
    let mirror = m.scratch.path().join("mirror/docker.io/library");
    let pair = |name: &str, digest: &str| (name.to_owned(), digest.to_owned());
    assert_eq!(
        layout_refs(&mirror.join("nginx")),
        [pair("1.25", &nginx), pair("1.26", &nginx_next)]
    );
    assert_eq!(layout_refs(&mirror.join("redis")), [pair("7", &redis)]);
    let leftovers: Vec<_> = std::fs::read_dir(mirror.join("nginx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("oci-put-blob"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A Docker manifest list is kept as it is, Docker media type and all (as skopeo keeps a
    // single Docker image); skopeo 1.9 reads only OCI-typed entries of a layout.
    let redis_blob = mirror
        .join("redis/blobs/sha256")
        .join(&redis["sha256:".len()..]);
    assert_eq!(sha256_of(&std::fs::read(redis_blob).unwrap()), redis);
    let text = std::fs::read_to_string(mirror.join("redis/index.json")).unwrap();
    assert!(
        text.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "{text}"
    );
    for (dir, tag, digest) in [("nginx", "1.25", &nginx), ("nginx", "1.26", &nginx_next)] {
        let layout = format!("oci:{}:{tag}", mirror.join(dir).display());
        let raw = run(
            Command::new("skopeo").args(["inspect", "--raw", &layout]),
            0,
        );
        assert_eq!(&sha256_of(&raw.stdout), digest, "{layout}");
        // And on to a registry, digests kept.
        let target = format!("docker://{}/round-trip/{dir}:{tag}", m.dest.addr());
        run(
            Command::new("skopeo").args([
                "--insecure-policy",
                "copy",
                "--all",
                "--preserve-digests",
                "--quiet",
                "--dest-tls-verify=false",
                &layout,
                &target,
            ]),
            0,
        );
        let repo_ref = format!("round-trip/{dir}:{tag}");
        assert_eq!(remote_digest(&m.dest, &repo_ref).as_ref(), Some(digest));
    }

    let rerun = run(native(m.ferry().arg("sync").arg(&list)), 0);
    assert!(
        stdout_of(&rerun).contains("3 images: 0 synced, 3 skipped"),
        "{}",
        stdout_of(&rerun)
    );
}

/// The quick start on a machine without skopeo: no engine named, so ferry copies into the
/// layouts with its own (as it does with skopeo installed) and says why once; into a registry
/// it says once that skopeo is missing; naming skopeo there is a configuration error with the
/// remedy.
#[test]
fn without_skopeo_the_quick_start_copies_natively_and_says_so_once() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let redis = m.push("library/redis:7", "redis");
    m.write("source-images.list", "nginx:1.25\nredis:7\n");
    let bare = m.scratch.path().join("bare-path");
    std::fs::create_dir(&bare).unwrap();
    let out = run(
        m.ferry()
            .arg("sync")
            .env("PATH", &bare)
            .env_remove("FERRY_ENGINE"),
        0,
    );
    let stderr = stderr_of(&out);
    assert_eq!(
        stderr
            .matches("copying into local OCI layouts with ferry's native engine")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("skopeo is not installed"), "{stderr}");
    let mirror = m.scratch.path().join("mirror/docker.io/library");
    assert_eq!(
        layout_refs(&mirror.join("nginx")),
        [("1.25".to_owned(), nginx)]
    );
    assert_eq!(
        layout_refs(&mirror.join("redis")),
        [("7".to_owned(), redis)]
    );

    // Into a registry, skopeo would be the engine: its absence is said once. A dry run names
    // the native copy and copies nothing.
    let dry = run(
        m.ferry()
            .args(["sync", "--dry-run", "--dest", &m.prefix()])
            .env("PATH", &bare)
            .env_remove("FERRY_ENGINE"),
        0,
    );
    let stderr = stderr_of(&dry);
    assert_eq!(
        stderr.matches("skopeo is not installed").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("native engine"), "{stderr}");
    let p = m.prefix();
    assert!(
        stdout_of(&dry).contains(&format!(
            "ferry native copy docker://docker.io/library/nginx:1.25 docker://{p}/docker.io/library/nginx:1.25"
        )),
        "{}",
        stdout_of(&dry)
    );
    assert!(catalog(&m.dest).is_empty());

    let out = run(
        m.ferry()
            .args(["sync", "--engine", "skopeo"])
            .env("PATH", &bare),
        2,
    );
    assert!(
        stderr_of(&out).contains("apt-get install skopeo"),
        "{}",
        stderr_of(&out)
    );
}

/// The native engine tells the bytes it moves: on a terminal each image's line shows MB, MB/s
/// and ETA; in a log the heartbeat says how much moved. (The source is paced at 4 requests a
/// second, so the copy lasts long enough to be seen.)
#[test]
fn native_progress_shows_bytes_rate_and_time_left() {
    let m = Mirror::new(false);
    let layers = Layers {
        top_bytes: 2 << 20,
        ..Layers::default()
    };
    let (layout, _) = make_layered_image(m.scratch.path(), "big", &layers);
    push(&m.source, &layout, "library/big:1");
    let proxy = ScriptProxy::start(m.scratch.path(), &m.source.addr(), &["--rate", "inf"]);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "big:1\n");
    let sync = |dest: &str, progress: &[&str]| {
        let mut cmd = m.ferry();
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("sync")
            .arg(&list)
            .args([
                "--dest",
                dest,
                "--dest-tls-verify=false",
                "--engine",
                "native",
            ])
            .args(["--registry-rps", "docker.io=4"])
            .args(progress);
        cmd
    };
    let plain = run(
        &mut sync(
            &format!("{}/plain", m.dest.addr()),
            &["--progress", "plain", "--progress-interval", "200ms"],
        ),
        0,
    );
    let stderr = stderr_of(&plain);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("ferry: 0/1 image done") && l.contains(" MB moved (")),
        "{stderr}"
    );

    let cmd = sync(&format!("{}/tty", m.dest.addr()), &["--progress", "tty"]);
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect();
    let stdout_file = m.scratch.path().join("stdout.txt");
    let shell = format!(
        "{} > {}",
        line.join(" "),
        shell_quote(&stdout_file.to_string_lossy())
    );
    let mut script = Command::new("script");
    script.args(["-qec", &shell, "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let drawn = stdout_of(&run(&mut script, 0));
    assert!(
        drawn.contains(" MB/s, ETA "),
        "no bytes, rate and ETA in the live view: {drawn:?}"
    );
    let stdout = std::fs::read_to_string(&stdout_file).unwrap();
    assert!(stdout.starts_with("synced "), "{stdout}");
}

/// A destination that answers 429 to blob uploads (streamed bodies, which cannot simply be
/// sent again): the blob's upload starts again at the slower pace, and the image lands on its
/// first attempt.
#[test]
fn a_429_to_a_streamed_upload_starts_that_blob_again() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let proxy = ScriptProxy::start(
        m.scratch.path(),
        &m.dest.addr(),
        &["--rate", "inf", "--throttle-uploads", "2"],
    );
    let list = m.write("images.list", "nginx:1.25\n");
    let report_path = m.scratch.path().join("report.json");
    let mut cmd = m.ferry();
    cmd.arg("sync")
        .arg(&list)
        .arg("--dest")
        .arg(format!("{}/third", proxy.addr()))
        .args(["--dest-tls-verify=false", "--engine", "native", "-v"])
        .args(["--retry-delay", "10s"])
        .arg("--report")
        .arg(&report_path);
    let out = run(&mut cmd, 0);
    let report = report(&report_path);
    assert_eq!(report["images"][0]["attempts"], 1, "{}", stderr_of(&out));
    let refused = proxy.log().lines().filter(|l| l.ends_with(" 429")).count();
    assert_eq!(refused, 2, "{}", proxy.log());
    assert_eq!(
        remote_digest(&m.dest, "third/docker.io/library/nginx:1.25"),
        Some(nginx)
    );
}

/// A target that does not exist needs no source lookup before its copy: the native engine's
/// read of the manifest by tag is that lookup. So a cold copy sends the source no HEAD, and a
/// rerun one HEAD per tag on each side.
#[test]
fn a_new_target_costs_no_source_head_before_its_copy() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx-1.25");
    let redis = m.push("library/redis:7", "redis-7");
    let proxy = ScriptProxy::start(m.scratch.path(), &m.source.addr(), &["--rate", "inf"]);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    let sync = || {
        let mut cmd = m.sync(&list);
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--engine", "native"]);
        cmd
    };
    run(&mut sync(), 0);
    for (repo_ref, digest) in [("nginx:1.25", &nginx), ("redis:7", &redis)] {
        let target = format!("{}/docker.io/library/{repo_ref}", m.prefix());
        assert_eq!(m.target_digest(&target).as_ref(), Some(digest), "{target}");
    }
    let cold = proxy.log();
    assert!(proxy.requests("HEAD", "/manifests/").is_empty(), "{cold}");
    // Each top manifest read once, by tag.
    for tag in ["nginx/manifests/1.25", "redis/manifests/7"] {
        assert_eq!(proxy.requests("GET", tag).len(), 1, "{cold}");
    }

    let before = cold.lines().count();
    let out = run(&mut sync(), 0);
    assert!(stdout_of(&out).contains("2 skipped"), "{}", stdout_of(&out));
    let rerun: Vec<String> = proxy
        .log()
        .lines()
        .skip(before)
        .map(str::to_owned)
        .collect();
    let heads = rerun.iter().filter(|l| l.starts_with("HEAD ")).count();
    assert_eq!(heads, 2, "{rerun:?}");
    assert!(
        rerun.iter().all(|l| !l.starts_with("GET /v2/library")),
        "{rerun:?}"
    );
}

/// Docker Hub, gcr.io and quay.io send blob downloads to a CDN on another host. Behind a
/// Bearer-token source whose blob GETs answer 307 to such a host, the native engine follows
/// the redirect without taking the registry's token along (the stand-in CDN refuses any
/// `Authorization`), and the digests are upstream's.
#[test]
fn blob_downloads_redirected_to_another_host_carry_no_credentials() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let cdn = ScriptProxy::start(
        m.scratch.path(),
        &m.source.addr(),
        &["--rate", "inf", "--refuse-authorization"],
    );
    let tokens = TokenProxy::start(&m.source.addr(), HUB_USER, HUB_PASSWORD);
    let redirect = format!("http://{}", cdn.addr());
    let hub = ScriptProxy::start(
        m.scratch.path(),
        &tokens.addr(),
        &["--rate", "inf", "--redirect-blobs", &redirect],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &hub.addr())]);
    let auth_file = hub_auth_file(&m, &hub.addr());
    let list = m.write("images.list", "nginx:1.25\n");
    let out = run(
        native(&mut m.sync(&list))
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--src-authfile")
            .arg(&auth_file),
        0,
    );
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    assert_eq!(m.target_digest(&target), Some(nginx), "{}", stdout_of(&out));
    let redirected = hub.requests("GET", "/blobs/sha256:");
    let fetched = cdn.requests("GET", "/blobs/sha256:");
    assert!(!redirected.is_empty(), "{}", hub.log());
    assert!(
        redirected.iter().all(|l| l.ends_with(" 307")),
        "{redirected:?}"
    );
    assert_eq!(fetched.len(), redirected.len(), "{}", cdn.log());
    assert!(fetched.iter().all(|l| l.ends_with(" 200")), "{}", cdn.log());
    // The manifests did need the token.
    assert!(tokens.granted_tokens() >= 1, "{}", tokens.log());
    // And the stand-in CDN does refuse a request that carries one.
    let path = fetched[0].split(' ').nth(1).unwrap();
    let mut stream = std::net::TcpStream::connect(cdn.addr()).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n",
        cdn.addr()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 400") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
}
