//! Proves the integration-test fixtures in `common` work against real processes: registries
//! start, images push and read back digest-exact, TLS + auth is enforced, restart keeps data,
//! registries.conf redirects skopeo, the recorders log argv (a native mirror's, of every engine
//! binary), and `run` reports failures fully.

use std::fs;
use std::process::Command;

use crate::common::*;

fn text(raw: Vec<u8>) -> String {
    String::from_utf8(raw).expect("manifest is UTF-8")
}

/// The first `"digest":"…"` after `after` in a JSON text.
fn digest_after(json: &str, after: &str) -> String {
    let from = json
        .find(after)
        .unwrap_or_else(|| panic!("{after} not in {json}"))
        + after.len();
    let rest = &json[from..];
    let start = rest.find("\"digest\":\"").expect("a digest follows") + "\"digest\":\"".len();
    rest[start..].split('"').next().unwrap().to_string()
}

#[test]
fn temp_dir_is_fresh_and_removed_on_drop() {
    let a = TempDir::new("ferry-selftest");
    let b = TempDir::new("ferry-selftest");
    assert_ne!(a.path(), b.path());
    assert!(a.path().is_dir());
    fs::write(a.path().join("f"), "x").unwrap();
    let kept = a.path().to_path_buf();
    drop(a);
    assert!(!kept.exists(), "{} survived drop", kept.display());
}

#[test]
fn plain_push_reads_back_the_same_digest() {
    let scratch = TempDir::new("ferry-selftest");
    let registry = Registry::start_plain();
    assert!(registry.addr().starts_with("127.0.0.1:"));
    assert_eq!(registry.cert_dir(), None);
    assert_eq!(registry.credentials(), None);

    let image = push_new_image(&registry, scratch.path(), "library/nginx:1.25", "one");
    assert_eq!(
        remote_digest(&registry, "library/nginx:1.25"),
        Some(image.digest.clone())
    );
    let by_digest = format!("library/nginx@{}", image.digest);
    assert_eq!(
        remote_digest(&registry, &by_digest),
        Some(image.digest.clone())
    );
    assert_eq!(tags(&registry, "library/nginx"), ["1.25"]);
    assert_eq!(catalog(&registry), ["library/nginx"]);

    // A second push of another layout under a new tag goes through `push` directly.
    let (layout, other) = make_image(scratch.path(), "two");
    assert_eq!(push(&registry, &layout, "library/nginx:1.26"), other.digest);
    assert_eq!(tags(&registry, "library/nginx"), ["1.25", "1.26"]);
}

#[test]
fn missing_things_read_as_none_or_empty() {
    let scratch = TempDir::new("ferry-selftest");
    let registry = Registry::start_plain();
    assert_eq!(catalog(&registry), Vec::<String>::new());
    assert_eq!(remote_digest(&registry, "nothing/here:1"), None);
    assert_eq!(tags(&registry, "nothing/here"), Vec::<String>::new());

    let image = push_new_image(&registry, scratch.path(), "some/repo:1", "m");
    assert_eq!(remote_digest(&registry, "some/repo:2"), None);
    let wrong = image.digest.replace(&image.digest[7..15], "00000000");
    assert_eq!(
        remote_digest(&registry, &format!("some/repo@{wrong}")),
        None
    );
}

#[test]
fn images_are_deterministic_per_seed() {
    let scratch = TempDir::new("ferry-selftest");
    let (layout_a, a) = make_image(scratch.path(), "seed-a");
    let (layout_b, again) = make_image(scratch.path(), "seed-a");
    let (_, other) = make_image(scratch.path(), "seed-b");
    assert_ne!(layout_a, layout_b);
    assert_eq!(a, again);
    assert_ne!(a.digest, other.digest);
    assert_eq!(a.platform_digests.len(), 2);
    assert_ne!(a.platform_digests[0], a.platform_digests[1]);
    assert!(a
        .platform_digests
        .iter()
        .all(|d| !other.platform_digests.contains(d)));
    assert!(layout_a.join("oci-layout").is_file());
    let index_json = fs::read_to_string(layout_a.join("index.json")).unwrap();
    assert!(
        index_json.contains(r#""org.opencontainers.image.ref.name":"latest""#),
        "{index_json}"
    );
}

#[test]
fn layers_are_valid_uncompressed_tars() {
    let scratch = TempDir::new("ferry-selftest");
    let (layout, image) = make_image(scratch.path(), "tarcheck");
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    for (digest, arch) in image.platform_digests.iter().zip(["amd64", "arm64"]) {
        let manifest = fs::read_to_string(blob(digest)).unwrap();
        let layer = digest_after(&manifest, "\"layers\":");
        // The system tar reads the hand-written archive back.
        let out = run(Command::new("tar").arg("-xOf").arg(blob(&layer)), 0);
        assert_eq!(
            stdout_of(&out),
            format!("ferry test image\nseed: tarcheck\narch: {arch}\n")
        );
        let listing = run(Command::new("tar").arg("-tvf").arg(blob(&layer)), 0);
        assert!(
            stdout_of(&listing).contains("ferry-fixture.txt"),
            "{}",
            stdout_of(&listing)
        );
    }
}

#[test]
fn pushed_index_has_two_platforms_with_uncompressed_layers() {
    let scratch = TempDir::new("ferry-selftest");
    let registry = Registry::start_plain();
    let image = push_new_image(&registry, scratch.path(), "multi/arch:v1", "platforms");

    let index = text(raw_manifest(&registry, "multi/arch:v1").expect("index exists"));
    assert!(
        index.contains(r#""mediaType":"application/vnd.oci.image.index.v1+json""#),
        "{index}"
    );
    assert_eq!(index.matches(r#""platform":"#).count(), 2, "{index}");
    for (digest, arch) in image.platform_digests.iter().zip(["amd64", "arm64"]) {
        assert!(
            index.contains(&format!(r#""digest":"{digest}""#)),
            "{index}"
        );
        assert!(
            index.contains(&format!(r#""architecture":"{arch}""#)),
            "{index}"
        );
        let reference = format!("multi/arch@{digest}");
        assert_eq!(remote_digest(&registry, &reference).as_ref(), Some(digest));
        let manifest = text(raw_manifest(&registry, &reference).unwrap());
        assert!(
            manifest.contains(r#""mediaType":"application/vnd.oci.image.layer.v1.tar","#),
            "layer is not an uncompressed tar: {manifest}"
        );
        assert!(
            !manifest.contains("gzip") && !manifest.contains("zstd"),
            "{manifest}"
        );
    }
}

#[test]
fn secure_registry_needs_credentials_and_its_ca() {
    let scratch = TempDir::new("ferry-selftest");
    let registry = Registry::start_secure("mirror", "s3cret pass");
    let cert_dir = registry.cert_dir().expect("secure registry has a cert dir");
    let entries: Vec<_> = fs::read_dir(&cert_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["ca.crt"]);
    assert_eq!(registry.ca_file(), Some(cert_dir.join("ca.crt")));
    assert_eq!(
        registry.credentials(),
        Some(("mirror".into(), "s3cret pass".into()))
    );

    let image = push_new_image(&registry, scratch.path(), "team/app:1", "secure");
    assert_eq!(remote_digest(&registry, "team/app:1"), Some(image.digest));
    assert_eq!(tags(&registry, "team/app"), ["1"]);
    assert_eq!(catalog(&registry), ["team/app"]);

    let url = format!("docker://{}/team/app:1", registry.addr());
    let anonymous = run(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg("--cert-dir")
            .arg(&cert_dir)
            .arg(&url),
        1,
    );
    assert!(
        stderr_of(&anonymous).contains("authentication required"),
        "{}",
        stderr_of(&anonymous)
    );
    let wrong_password = run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--creds", "mirror:wrong"])
            .arg("--cert-dir")
            .arg(&cert_dir)
            .arg(&url),
        1,
    );
    assert!(
        stderr_of(&wrong_password).contains("unauthorized"),
        "{}",
        stderr_of(&wrong_password)
    );
    let untrusted = run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--creds", "mirror:s3cret pass"])
            .arg(&url),
        1,
    );
    assert!(
        stderr_of(&untrusted).contains("certificate"),
        "{}",
        stderr_of(&untrusted)
    );

    // Removing the registry removes its temp dir (CA included).
    drop(registry);
    assert!(!cert_dir.exists());
}

#[test]
fn restart_keeps_data_on_the_same_port() {
    let scratch = TempDir::new("ferry-selftest");
    let mut registry = Registry::start_plain();
    let image = push_new_image(&registry, scratch.path(), "keep/me:1", "restart");
    let addr = registry.addr();

    registry.stop();
    registry.stop(); // idempotent
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "stopped registry still listens"
    );
    registry.restart();
    assert_eq!(registry.addr(), addr);
    assert_eq!(
        remote_digest(&registry, "keep/me:1"),
        Some(image.digest.clone())
    );
    registry.restart(); // restart while running works too
    assert_eq!(catalog(&registry), ["keep/me"]);
}

#[test]
fn secure_registry_restarts() {
    let scratch = TempDir::new("ferry-selftest");
    let mut registry = Registry::start_secure("u", "p");
    let image = push_new_image(&registry, scratch.path(), "r/s:1", "secure-restart");
    registry.restart();
    assert_eq!(remote_digest(&registry, "r/s:1"), Some(image.digest));
}

#[test]
fn registries_conf_redirects_skopeo_to_the_local_registry() {
    let scratch = TempDir::new("ferry-selftest");
    let registry = Registry::start_plain();
    let hub = push_new_image(&registry, scratch.path(), "library/x:1", "hub");
    let quay = push_new_image(&registry, scratch.path(), "quay/org/app:2", "quay");
    let quay_location = format!("{}/quay", registry.addr());
    let conf = registries_conf(
        scratch.path(),
        &[("docker.io", &registry.addr()), ("quay.io", &quay_location)],
    );
    for (reference, expected) in [
        ("docker.io/library/x:1", &hub),
        ("quay.io/org/app:2", &quay),
    ] {
        let out = run(
            Command::new("skopeo")
                .arg("--registries-conf")
                .arg(&conf)
                .args(["inspect", "--raw", &format!("docker://{reference}")]),
            0,
        );
        let digest = format!(
            "sha256:{:x}",
            <sha2::Sha256 as sha2::Digest>::digest(&out.stdout)
        );
        assert_eq!(
            digest, expected.digest,
            "{reference} did not reach the local registry"
        );
    }
    let second = registries_conf(scratch.path(), &[]);
    assert_ne!(second, conf, "each call writes its own file");
}

#[test]
fn recorder_logs_argv_and_runs_real_skopeo() {
    let scratch = TempDir::new("ferry-selftest");
    let log = scratch.path().join("skopeo.log");
    let bin = skopeo_recorder(scratch.path(), &log);
    assert!(bin.join("skopeo").is_file());
    assert_eq!(recorded_invocations(&log), Vec::<Vec<String>>::new());

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let version = run(
        Command::new("skopeo").env("PATH", &path).arg("--version"),
        0,
    );
    assert!(
        stdout_of(&version).contains("skopeo version"),
        "{}",
        stdout_of(&version)
    );
    // Exit codes pass through, and arguments with spaces stay whole.
    run(
        Command::new("skopeo")
            .env("PATH", &path)
            .args(["inspect", "--raw", "docker://bad ref:1"]),
        1,
    );
    assert_eq!(
        recorded_invocations(&log),
        [
            vec!["--version".to_string()],
            vec![
                "inspect".into(),
                "--raw".into(),
                "docker://bad ref:1".into()
            ]
        ]
    );
}

/// A mirror for the native engine puts recorders of skopeo and crane on PATH: a test that
/// finds none of them ran sees it, not an unrecorded run.
#[test]
fn a_native_mirror_records_every_engine_binary() {
    let m = mirror::Mirror::with_engine(false, engines::Engine::Native);
    let recorded: Vec<&str> = engines::Engine::Native
        .recorded()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(recorded.contains(&"skopeo"), "{recorded:?}");
    if std::env::var_os("FERRY_TEST_CRANE").is_some_and(|c| !c.is_empty()) {
        assert!(recorded.contains(&"crane"), "{recorded:?}");
    }
    assert_eq!(m.invocations(), Vec::<Vec<String>>::new());
    // `skopeo --version` and `crane version`, each through its recorder, in one log.
    let mut asked = Vec::new();
    for name in &recorded {
        let arg = if *name == "skopeo" {
            "--version"
        } else {
            "version"
        };
        run(Command::new(m.recorder.join(name)).arg(arg), 0);
        asked.push(vec![arg.to_owned()]);
    }
    assert_eq!(m.invocations(), asked);
    assert_eq!(m.environments().len(), recorded.len());
}

#[test]
fn run_reports_command_status_and_output() {
    let out = run(Command::new("sh").args(["-c", "echo hi; exit 3"]), 3);
    assert_eq!(stdout_of(&out), "hi\n");

    let failure = std::panic::catch_unwind(|| {
        run(
            Command::new("sh")
                .env("FERRY_X", "a b")
                .args(["-c", "echo to-out; echo to-err >&2; exit 4"]),
            0,
        )
    })
    .expect_err("run must panic on a wrong exit code");
    let message = failure
        .downcast_ref::<String>()
        .expect("panic message is a String");
    for part in [
        "expected exit code 0",
        "exit code 4",
        "FERRY_X='a b' sh -c",
        "to-out",
        "to-err",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
}

#[test]
fn ferry_command_points_at_the_binary() {
    let out = run(ferry().arg("--help"), 0);
    assert!(stdout_of(&out).contains("ferry"), "{}", stdout_of(&out));
}

#[test]
fn parallel_registries_get_distinct_ports() {
    let registries: Vec<Registry> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                s.spawn(move || {
                    if i % 2 == 0 {
                        Registry::start_plain()
                    } else {
                        Registry::start_secure("u", "p")
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addrs: Vec<String> = registries.iter().map(Registry::addr).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), registries.len());
    for registry in &registries {
        assert_eq!(catalog(registry), Vec::<String>::new());
    }
}

/// The panic message of `f`, which must panic.
fn panic_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let failure = std::panic::catch_unwind(f).expect_err("the test must fail");
    match failure.downcast::<String>() {
        Ok(message) => *message,
        Err(failure) => failure.downcast_ref::<&str>().unwrap().to_string(),
    }
}

/// A `Test` passes on exactly the output it names, with durations as `[t]`, its directory as
/// `[dir]` and `[..]` for any text in a line; results in any order before their summary.
#[test]
fn a_test_passes_on_exactly_its_output() {
    let ran = Test::new()
        .file("list.txt", "nginx:1.25\nredis:7\n")
        .args(["show-raw-images", "list.txt"])
        .stdout("docker.io/library/nginx:1.25\ndocker.io/library/redis:7\n")
        .stderr("")
        .run();
    assert!(ran.path("list.txt").is_file(), "the directory went early");
    let test = Test::new().file("bad.txt", "Nginx:1\n");
    let bad = test.dir().join("bad.txt");
    test.arg("show-raw-images")
        .arg(&bad)
        .code(2)
        .stderr("[dir]/bad.txt:1: invalid image reference \"Nginx:1\": [..] lowercase\n[..]\n")
        .run();
    Test::new()
        .file("list.txt", "127.0.0.1:9/x:1\n127.0.0.1:9/y:1\n")
        .args(["sync", "--force", "--engine", "skopeo", "--skopeo", "true"])
        .args(["--dest-dir", "mirror", "list.txt", "-j", "2"])
        .stdout_results(
            "synced  oci:mirror/127.0.0.1_9/y:1  [t]  0 blobs copied, 0 reused\n\
             synced  oci:mirror/127.0.0.1_9/x:1  [t]  0 blobs copied, 0 reused\n\
             2 images: 2 synced, 0 skipped, 0 failed in [t]\n",
        )
        .run();
}

/// A `Test` fails, showing both outputs and where they part, on a line more or less, a missing
/// final newline, a wrong exit code, a result too many, or a summary out of place.
#[test]
fn a_test_fails_on_any_other_output() {
    let listing = || {
        Test::new()
            .file("list.txt", "nginx:1.25\nredis:7\n")
            .args(["show-raw-images", "list.txt"])
    };
    let message = panic_of(|| {
        listing().stdout("docker.io/library/nginx:1.25\n").run();
    });
    for part in [
        "stdout is not as expected; first difference at line 2: expected None, got \
         Some(\"docker.io/library/redis:7\\n\")",
        "--- expected stdout ---\ndocker.io/library/nginx:1.25\n--- got stdout ---",
        "command: ",
        "show-raw-images list.txt",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    let message = panic_of(|| {
        listing()
            .stdout("docker.io/library/nginx:1.25\ndocker.io/library/redis:7")
            .run();
    });
    assert!(message.contains("first difference at line 2"), "{message}");
    let message = panic_of(|| {
        listing().code(1).run();
    });
    assert!(message.contains("expected exit code 1"), "{message}");
    let message = panic_of(|| {
        listing().stderr("[..]").run();
    });
    assert!(message.contains("stderr is not as expected"), "{message}");

    let sync = || {
        Test::new()
            .file("list.txt", "127.0.0.1:9/x:1\n")
            .args(["sync", "--force", "--engine", "skopeo", "--skopeo", "true"])
            .args(["--dest-dir", "mirror", "list.txt"])
    };
    let message = panic_of(|| {
        sync()
            .stdout_results(
                "synced  oci:mirror/127.0.0.1_9/x:1  [t]  0 blobs copied, 0 reused\n\
                 synced  oci:mirror/127.0.0.1_9/x:1  [t]  0 blobs copied, 0 reused\n\
                 1 image: 1 synced, 0 skipped, 0 failed in [t]\n",
            )
            .run();
    });
    assert!(
        message.contains("the results (in any order): missing"),
        "{message}"
    );
    let message = panic_of(|| {
        sync()
            .stdout_results(
                "1 image: 1 synced, 0 skipped, 0 failed in [t]\n\
                 synced  oci:mirror/127.0.0.1_9/x:1  [t]  0 blobs copied, 0 reused\n",
            )
            .run();
    });
    assert!(message.contains("the last line: expected"), "{message}");
}
