//! End-to-end tests of `ferry sync` and the listing commands against real `docker-registry`
//! processes and the real skopeo and crane, and ferry's native engine (the tests that copy run
//! once per engine; the one with a stand-in engine for skopeo and crane only). Sources
//! are pushed as generated multi-arch images with uncompressed layers; Docker Hub and Quay
//! names reach the local source registry through a registries.conf redirect, exactly as a
//! mirror of a mirror would be set up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::engines::{engine_tests, per_binary_engine, per_engine, Engine};
use crate::common::mirror::*;
use crate::common::*;

per_engine!(
    targets_land_where_show_images_said_with_upstream_digests,
    a_missing_image_fails_alone_and_lands_in_the_failed_list,
    the_failed_list_feeds_back_with_the_runs_tls_registries_conf_and_engine,
    wrong_destination_credentials_are_unauthorized,
    a_whole_repository_with_an_explicit_target_copies_every_tag,
    registries_behind_tls_are_verified_with_the_cas_given,
    a_side_nobody_marked_insecure_is_verified_though_the_other_side_is_insecure,
    credentials_a_docker_credential_helper_gives_reach_the_engine,
    dry_run_prints_the_engines_commands_without_secrets_and_copies_nothing,
);

// A stand-in engine binary that never finishes: there is none to stand in for natively.
per_binary_engine!(ctrl_c_stops_running_copies_and_still_writes_the_report);

// Into local OCI layouts, which crane does not write.
engine_tests!(
    a_layout_another_ferry_writes_is_waited_for_and_its_files_left_alone: skopeo, native
);

fn targets_land_where_show_images_said_with_upstream_digests(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    let nginx = m.push("library/nginx:1.25", "nginx-1.25");
    let nginx_next = m.push("library/nginx:1.26", "nginx-1.26");
    let redis = m.push("library/redis:7", "redis-7");
    let exporter = m.push("quay/prometheus/node-exporter:v1.7.0", "node-exporter");
    let alpine = m.push("library/alpine:3.19", "alpine");
    let busybox = m.push("library/busybox:1.36", "busybox");
    let explicit = format!("{}/base/nginx", m.dest.addr());
    let list = m.write(
        "source-images.list",
        &format!(
            "# the usual suspects\n\
             nginx:1.25\n\
             index.docker.io/library/nginx:1.26   # Docker Hub alias\n\
             \n\
             redis:7\n\
             quay.io/prometheus/node-exporter:v1.7.0\n\
             alpine@{alpine}\n\
             busybox:1.36@{busybox}\n\
             nginx:1.25 {explicit}\n"
        ),
    );

    let shown = run(
        m.ferry()
            .arg("show-images")
            .arg(&list)
            .arg("--dest")
            .arg(m.prefix()),
        0,
    );
    let targets: Vec<String> = stdout_of(&shown).lines().map(str::to_owned).collect();
    let p = m.prefix();
    assert_eq!(
        targets,
        [
            format!("{p}/docker.io/library/nginx:1.25"),
            format!("{p}/docker.io/library/nginx:1.26"),
            format!("{p}/docker.io/library/redis:7"),
            format!("{p}/quay.io/prometheus/node-exporter:v1.7.0"),
            format!("{p}/docker.io/library/alpine@{alpine}"),
            format!("{p}/docker.io/library/busybox:1.36@{busybox}"),
            format!("{explicit}:1.25"),
        ]
    );

    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.sync(&list)
            .arg("--report")
            .arg(&report_path)
            .env("FERRY_DEST_USERNAME", USER)
            .env("FERRY_DEST_PASSWORD", PASSWORD),
        0,
    );
    let expected = [
        &nginx,
        &nginx_next,
        &redis,
        &exporter,
        &alpine,
        &busybox,
        &nginx,
    ];
    for (target, digest) in targets.iter().zip(expected) {
        // busybox was pinned by digest and pushed to its tag: the tag must carry that digest.
        let target = target.split('@').next().unwrap();
        let target = if target.ends_with("alpine") {
            format!("{target}@{alpine}")
        } else {
            target.to_owned()
        };
        assert_eq!(
            m.target_digest(&target).as_deref(),
            Some(digest.as_str()),
            "{target}\n{}",
            stdout_of(&out)
        );
    }

    let report = report(&report_path);
    assert_eq!(report["summary"]["synced"], 7, "{report:#}");
    assert_eq!(report["summary"]["failed"], 0);
    for image in images(&report) {
        assert_eq!(image["status"], "synced", "{image:#}");
        assert_eq!(image["attempts"], 1);
        assert!(image["error"].is_null());
    }
    // Each first copy moves both platforms' layer and config: 4 blobs, counted alike by every
    // engine; the pinned and explicit copies know their digest.
    assert_eq!(images(&report)[0]["blobs_copied"], 4, "{report:#}");
    assert_eq!(images(&report)[0]["manifests_written"], 3, "{report:#}");
    assert_eq!(images(&report)[4]["digest"], alpine.as_str());
    assert_eq!(images(&report)[6]["digest"], nginx.as_str());

    // The password never reached the engine's argv or environment; the private file that
    // carried it (skopeo's auth file, crane's DOCKER_CONFIG) did, and it is gone now. The
    // native engine copies in-process: it started no skopeo and no crane.
    let runs = match m.engine {
        Engine::Skopeo | Engine::Crane(_) => 7,
        Engine::Native => 0,
    };
    let invocations = m.invocations();
    assert_eq!(invocations.len(), runs, "{invocations:?}");
    for argv in &invocations {
        assert!(
            !argv.iter().any(|a| a.contains(PASSWORD)),
            "password in argv: {argv:?}"
        );
    }
    let environments = m.environments();
    assert_eq!(environments.len(), runs);
    for env in &environments {
        assert!(
            !env.contains(PASSWORD),
            "password in the environment:\n{env}"
        );
    }
    let private: Vec<PathBuf> = match m.engine {
        Engine::Skopeo => invocations
            .iter()
            .map(|argv| {
                let at = argv.iter().position(|a| a == "--dest-authfile");
                PathBuf::from(&argv[at.expect("--dest-authfile") + 1])
            })
            .collect(),
        Engine::Crane(_) => environments
            .iter()
            .map(|env| {
                let dir = env_value(env, "DOCKER_CONFIG").expect("DOCKER_CONFIG is set");
                Path::new(dir).join("config.json")
            })
            .collect(),
        Engine::Native => Vec::new(),
    };
    for file in private {
        assert!(!file.exists(), "left behind: {}", file.display());
    }
    assert!(!stdout_of(&out).contains(PASSWORD) && !stderr_of(&out).contains(PASSWORD));
    let report = std::fs::read_to_string(&report_path).unwrap();
    assert!(
        !report.contains(PASSWORD),
        "password in the report:\n{report}"
    );
}

fn a_missing_image_fails_alone_and_lands_in_the_failed_list(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let redis = m.push("library/redis:7", "redis");
    let list = m.write("images.list", "nginx:1.25\nnginx:9.9\nredis:7\n");
    let failed_path = m.scratch.path().join("failed.list");

    let p = m.prefix();
    let ran = m
        .test_sync(&list)
        .report()
        .arg("--failed-list")
        .arg(&failed_path)
        .code(1)
        .stdout_results(format!(
            "failed  {p}/docker.io/library/nginx:9.9  [t]  not-found: manifest unknown: \
             docker.io/library/nginx:9.9 does not exist in the source\n\
             synced  {p}/docker.io/library/nginx:1.25  [t]  4 blobs copied, 0 reused\n\
             synced  {p}/docker.io/library/redis:7  [t]  4 blobs copied, 0 reused\n\
             3 images: 2 synced, 0 skipped, 1 failed in [t]\n"
        ))
        .run();

    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/nginx:1.25")),
        Some(nginx)
    );
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/redis:7")),
        Some(redis)
    );
    let report = ran.report();
    let statuses: Vec<&str> = images(report)
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["synced", "failed", "synced"]);
    let missing = &images(report)[1];
    assert_eq!(missing["source"], "docker.io/library/nginx:9.9");
    assert_eq!(missing["error"]["kind"], "not-found", "{missing:#}");
    assert!(missing["error"]["message"]
        .as_str()
        .unwrap()
        .contains("manifest unknown"));

    // The failed list is valid input naming exactly the failed image.
    let shown = run(m.ferry().arg("show-raw-images").arg(&failed_path), 0);
    assert_eq!(stdout_of(&shown), "docker.io/library/nginx:9.9\n");

    // Fed back exactly as its header says, it lands where the first run meant it to.
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    assert!(
        failed.starts_with(&format!(
            "# images that failed in the last ferry run; feed back with: ferry sync THIS_FILE \
             --dest-tls-verify=false --registries-conf {} --engine {}\n",
            m.conf.display(),
            m.engine.name()
        )),
        "{failed}"
    );
    let fixed = m.push("library/nginx:9.9", "nginx-9.9");
    run(&mut m.feed_back(&failed_path), 0);
    assert_eq!(
        m.target_digest(&format!("{p}/docker.io/library/nginx:9.9")),
        Some(fixed)
    );
    assert!(!m.scratch.path().join("mirror").exists());
}

/// A failed list of registry targets, from a run that reached its registries through TLS
/// flags, a CA directory, registries.conf and credentials in the environment: its header is
/// the whole command that feeds it back (no `--dest-dir`: the lines name their targets), names
/// the credentials without their values, and run as written (the secret given again) it
/// copies what failed, with the same engine.
fn the_failed_list_feeds_back_with_the_runs_tls_registries_conf_and_engine(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    m.push("library/nginx:1.25", "nginx");
    let dest = m.dest.addr();
    let list = m.write(
        "images.list",
        &format!("nginx:1.25 {dest}/pinned/nginx:1.25\nnginx:9.9 {dest}/pinned/nginx:9.9\n"),
    );
    let failed_path = m.scratch.path().join("failed.list");
    let cert_dir = m.dest.cert_dir().unwrap();
    let creds = format!("{USER}:{PASSWORD}");
    // No --dest: the default layout root is no part of a run whose lines name their targets.
    run(
        m.ferry()
            .arg("sync")
            .arg(&list)
            .arg("--src-tls-verify=false")
            .arg("--dest-cert-dir")
            .arg(&cert_dir)
            .arg("--failed-list")
            .arg(&failed_path)
            .env("FERRY_DEST_CREDS", &creds),
        1,
    );
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    let header: Vec<&str> = failed.lines().take(2).collect();
    assert_eq!(
        header[0],
        format!(
            "# images that failed in the last ferry run; feed back with: ferry sync THIS_FILE \
             --src-tls-verify=false --dest-cert-dir {} --registries-conf {} --engine {}",
            cert_dir.display(),
            m.conf.display(),
            m.engine.name()
        ),
        "{failed}"
    );
    assert_eq!(
        header[1],
        "# secrets are never written here: give the rerun --dest-creds (or its environment \
         variables) as this run had them"
    );
    assert!(!failed.contains(PASSWORD), "{failed}");
    assert!(!failed.contains("--dest-dir"), "{failed}");

    let fixed = m.push("library/nginx:9.9", "nginx-9.9");
    let before = m.invocations().len();
    run(m.feed_back(&failed_path).env("FERRY_DEST_CREDS", &creds), 0);
    assert_eq!(
        m.target_digest(&format!("{dest}/pinned/nginx:9.9")),
        Some(fixed)
    );
    // The same engine copied it: one more run of skopeo or crane, none for native.
    let started = m.invocations().len() - before;
    let expected = match m.engine {
        Engine::Native => 0,
        Engine::Skopeo | Engine::Crane(_) => 1,
    };
    assert_eq!(started, expected, "{:?}", m.invocations());
    assert!(!m.scratch.path().join("mirror").exists());
}

fn wrong_destination_credentials_are_unauthorized(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    m.push("library/nginx:1.25", "nginx");
    m.push("library/redis:7", "redis");
    m.push("library/alpine:3.19", "alpine");
    let list = m.write("images.list", "nginx:1.25\nredis:7\nalpine:3.19\n");
    let report_path = m.scratch.path().join("report.json");
    let unauthorized_at_once = |report: &serde_json::Value| {
        assert_eq!(images(report).len(), 3, "{report:#}");
        for image in images(report) {
            assert_eq!(image["status"], "failed", "{image:#}");
            assert_eq!(image["error"]["kind"], "unauthorized", "{image:#}");
            assert_eq!(image["attempts"], 0, "{image:#}");
        }
    };

    // The kind is said once: `unauthorized: HOST refused …`, not `unauthorized: unauthorized:`.
    let p = m.prefix();
    let refused = format!(
        "[t]  unauthorized: {} refused the destination credentials while planning; not sending \
         them again\n",
        m.dest.addr()
    );
    let results = format!(
        "failed  {p}/docker.io/library/nginx:1.25  {refused}\
         failed  {p}/docker.io/library/redis:7  {refused}\
         failed  {p}/docker.io/library/alpine:3.19  {refused}\
         3 images: 0 synced, 0 skipped, 3 failed in [t]\n"
    );
    m.test_sync(&list)
        .arg("--report")
        .arg(&report_path)
        .env("FERRY_DEST_CREDS", format!("{USER}:not-the-password"))
        .code(1)
        .stdout_results(&results)
        .run();
    unauthorized_at_once(&report(&report_path));
    assert!(catalog(&m.dest).is_empty());
    // The planner's lookups found the password wrong, sending it once: no engine sends it
    // again.
    assert_eq!(m.dest.failed_logins(), 1, "{}", m.dest.log());
    assert_eq!(m.invocations(), Vec::<Vec<String>>::new());

    // --force skips the digest lookups; one lookup still settles the login before any copy.
    m.test_sync(&list)
        .args(["--force", "--retry-delay", "5s"])
        .arg("--report")
        .arg(&report_path)
        .env("FERRY_DEST_CREDS", format!("{USER}:not-the-password"))
        .code(1)
        .stdout_results(&results)
        .run();
    unauthorized_at_once(&report(&report_path));
    assert_eq!(m.dest.failed_logins(), 2, "{}", m.dest.log());
    assert_eq!(m.invocations(), Vec::<Vec<String>>::new());
    assert!(catalog(&m.dest).is_empty());
}

#[test]
fn a_malformed_list_exits_2_naming_every_bad_line_and_copies_nothing() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let first = m.write(
        "a.list",
        "nginx:1.25\nnginx:1.25:extra\n\nredis:7 h.example/r:7 third-column\n",
    );
    let second = m.write(
        "b.list",
        "Nginx:1\nalpine@sha256:abc\ndocker.io/library/nginx:1.25\n",
    );

    let duplicate = format!(
        "[dir]/b.list:3: warning: \"docker.io/library/nginx:1.25\" to \
         \"{}/docker.io/library/nginx:1.25\" is also at [dir]/a.list:1; copied once\n",
        m.prefix()
    );
    let syntax =
        "[dir]/a.list:2: invalid image reference \"nginx:1.25:extra\": invalid repository \
                  path component \"nginx:1.25\": only a-z, 0-9, '.', '_' and '-' are allowed\n\
                  [dir]/a.list:4: unexpected third column \"third-column\" (a line is: SOURCE \
                  [TARGET])\n\
                  [dir]/b.list:1: invalid image reference \"Nginx:1\": repository name must be \
                  lowercase\n\
                  [dir]/b.list:2: invalid image reference \"alpine@sha256:abc\": sha256 digest \
                  must have 64 hex characters\n";
    m.test_sync(&first)
        .arg(&second)
        .code(2)
        .stdout("")
        .stderr(format!(
            "{duplicate}{syntax}ferry: error: 4 problems in the input; nothing was copied\n"
        ))
        .run();
    assert!(
        m.invocations().is_empty(),
        "skopeo ran: {:?}",
        m.invocations()
    );
    assert!(catalog(&m.dest).is_empty());

    // Every problem of every input in one report: syntax, a target two sources claim across
    // files, a source that cannot be scoped, a target that is its source.
    let p = m.prefix();
    let third = m.write(
        "c.list",
        &format!(
            "quay.io/other/nginx:1.25 {p}/docker.io/library/nginx:1.25\n\
             localhost:5000/app:1\nquay.io/a/b:1 quay.io/a/b\n"
        ),
    );
    m.test_sync(&first)
        .arg(&second)
        .arg(&third)
        .code(2)
        .stdout("")
        .stderr(format!(
            "{duplicate}{syntax}\
             [dir]/c.list:2: cannot map \"localhost:5000/app:1\" under \"{p}\": scoped name \
             would contain \"localhost:5000\", which is not a valid repository path component \
             (skopeo --scoped cannot create it either); give this image an explicit target (a \
             second column: SOURCE TARGET)\n\
             [dir]/c.list:3: target \"quay.io/a/b\" is the source itself; a mirror needs another \
             place\n\
             [dir]/c.list:1: target \"{p}/docker.io/library/nginx:1.25\" is also the target of \
             [dir]/a.list:1\n\
             ferry: error: 7 problems in the input; nothing was copied\n"
        ))
        .run();
    assert!(m.invocations().is_empty());
}

/// The same image asked for twice (two overlapping lists, or a whole repository beside a line
/// naming one of its tags) is a warning, copied once and reported once.
#[test]
fn an_image_asked_for_twice_is_copied_once() {
    let m = Mirror::new(false);
    for tag in ["1.25.3", "1.26.0"] {
        m.push(&format!("library/nginx:{tag}"), &format!("nginx-{tag}"));
    }
    let first = m.write("a.list", "nginx:1.25.3\n");
    let again = m.write("b.list", "docker.io/library/nginx:1.25.3\n");
    let repo = m.write("repo.list", "nginx\n");
    let p = m.prefix();
    let repeat = format!(
        "\"docker.io/library/nginx:1.25.3\" to \"{p}/docker.io/library/nginx:1.25.3\" is also \
         at [dir]/a.list:1; copied once\n"
    );
    // The repeat found once the repository is listed is a log line: WARN, said once, and not
    // called a warning twice.
    let ran = m
        .test_sync(&first)
        .arg(&again)
        .arg(&repo)
        .report()
        .stdout_results(format!(
            "synced  {p}/docker.io/library/nginx:1.26.0  [t]  4 blobs copied, 0 reused\n\
             synced  {p}/docker.io/library/nginx:1.25.3  [t]  4 blobs copied, 0 reused\n\
             2 images: 2 synced, 0 skipped, 0 failed in [t]\n"
        ))
        .stderr(format!(
            "[dir]/b.list:1: warning: {repeat} WARN [dir]/repo.list:1: {repeat}"
        ))
        .run();
    let targets: Vec<&str> = images(ran.report())
        .iter()
        .map(|i| i["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            format!("{p}/docker.io/library/nginx:1.25.3"),
            format!("{p}/docker.io/library/nginx:1.26.0")
        ]
    );
    assert_eq!(m.invocations().len(), 2, "{:?}", m.invocations());
}

/// A target without a registry host goes under --dest, not to Docker Hub; two digest pins of
/// one repository share its OCI layout.
#[test]
fn targets_stay_under_the_destination_and_digest_pins_share_a_layout() {
    let m = Mirror::new(false);
    let redis = m.push("library/redis:7.2.4", "redis");
    let list = m.write("images.list", "redis:7.2.4 mynginx\n");
    let shown = run(
        m.ferry()
            .args(["show-images", "--dest", "reg.example/third"])
            .arg(&list),
        0,
    );
    assert_eq!(stdout_of(&shown), "reg.example/third/mynginx:7.2.4\n");
    run(&mut m.sync(&list), 0);
    assert_eq!(remote_digest(&m.dest, "third/mynginx:7.2.4"), Some(redis));
    // Without a destination there is nothing to put it under.
    m.test()
        .arg("show-images")
        .arg(&list)
        .code(2)
        .stdout("")
        .stderr(
            "[dir]/images.list:1: target \"mynginx\" names no registry host: write it with one \
             (e.g. harbor.example/mynginx), or give --dest PREFIX to place it under\n\
             ferry: error: 1 problem in the input; nothing was copied\n",
        )
        .run();

    let a = m.push("library/nginx:a", "nginx-a");
    let b = m.push("library/nginx:b", "nginx-b");
    let pins = m.write("pins.list", &format!("nginx@{a}\nnginx@{b}\n"));
    run(m.ferry().arg("sync").arg(&pins), 0);
    let index = m
        .scratch
        .path()
        .join("mirror/docker.io/library/nginx/index.json");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let mut digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    digests.sort_unstable();
    let mut want = [a.as_str(), b.as_str()];
    want.sort_unstable();
    assert_eq!(digests, want);
    // And a rerun finds both current.
    let out = run(m.ferry().arg("sync").arg(&pins), 0);
    assert!(
        stdout_of(&out).contains("2 images: 0 synced, 2 skipped"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn without_a_destination_images_go_to_local_oci_layouts() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx-1.25");
    let nginx_next = m.push("library/nginx:1.26", "nginx-1.26");
    let redis6 = m.push("library/redis:6", "redis-6");
    let redis7 = m.push("library/redis:7", "redis-7");
    // A whole repository, straight from the source registry (skopeo lists its tags).
    m.write(
        "source-images.list",
        &format!(
            "nginx:1.25\nnginx:1.26\n{}/library/redis\n",
            m.source.addr()
        ),
    );

    let out = run(
        m.ferry()
            .arg("sync")
            .arg("--src-tls-verify=false")
            .arg("-j")
            .arg("3"),
        0,
    );
    assert!(
        stdout_of(&out).contains("4 images: 4 synced"),
        "{}",
        stdout_of(&out)
    );

    let layout_refs = |dir: &str| -> Vec<(String, String)> {
        let index = m.scratch.path().join("mirror").join(dir).join("index.json");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
        let mut refs: Vec<(String, String)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (name, m["digest"].as_str().unwrap().to_owned())
            })
            .collect();
        refs.sort();
        refs
    };
    assert_eq!(
        layout_refs("docker.io/library/nginx"),
        [("1.25".to_owned(), nginx), ("1.26".to_owned(), nginx_next)]
    );
    let redis_dir = format!("{}/library/redis", m.source.addr().replace(':', "_"));
    assert_eq!(
        layout_refs(&redis_dir),
        [("6".to_owned(), redis6), ("7".to_owned(), redis7)]
    );
}

/// The blob `digest` of an OCI layout, checked against its digest.
fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    use sha2::Digest as _;
    let got = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
    assert_eq!(got, digest, "{}", path.display());
    bytes
}

/// The entries of a layout's `index.json`: (ref name, media type, digest).
fn layout_entries(layout: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |m: &serde_json::Value, key: &str| m[key].as_str().unwrap_or("-").to_owned();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = &m["annotations"]["org.opencontainers.image.ref.name"];
            let name = name.as_str().unwrap_or("-").to_owned();
            (name, field(m, "mediaType"), field(m, "digest"))
        })
        .collect()
}

/// The quick start's own command (`ferry sync`, into ./mirror) with Docker's formats, which
/// most registries still serve: a Docker manifest list of two schema 2 manifests and a single
/// Docker schema 2 image, beside an OCI index. With no engine named ferry copies into the
/// layouts natively and says so once; each layout holds upstream's manifests byte for byte,
/// Docker media types and all, so every digest is upstream's. ferry reads them back (`verify`:
/// ok at upstream's digests; a second sync skips all three), and so does crane (`crane push
/// LAYOUT REF`, digests kept); skopeo 1.9 does not find a Docker-typed entry by its tag. Named,
/// skopeo fails on the Docker list with a hint naming the native engine.
#[test]
fn the_quick_start_mirrors_dockers_formats_into_layouts_with_upstream_digests() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let (redis, platforms) = push_new_docker_image(
        &m.source,
        m.scratch.path(),
        "library/redis:7",
        "redis",
        Form::DockerList,
    );
    let (busybox, _) = push_new_docker_image(
        &m.source,
        m.scratch.path(),
        "library/busybox:1",
        "busybox",
        Form::DockerSingle,
    );
    m.write("source-images.list", "nginx:1.25\nredis:7\nbusybox:1\n");
    let quick_start = || {
        let mut cmd = m.ferry();
        cmd.arg("sync").env_remove("FERRY_ENGINE");
        cmd
    };
    let out = run(&mut quick_start(), 0);
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(stdout.contains("3 images: 3 synced"), "{stdout}");
    let note = "ferry: copying into local OCI layouts with ferry's native engine (--engine native)";
    assert_eq!(stderr.matches(note).count(), 1, "{stderr}");
    assert!(stderr.contains("--engine skopeo"), "{stderr}");
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());

    let mirror = m.scratch.path().join("mirror/docker.io/library");
    let entry = |tag: &str, media_type: &str, digest: &str| {
        vec![(tag.to_owned(), media_type.to_owned(), digest.to_owned())]
    };
    let oci_index = "application/vnd.oci.image.index.v1+json";
    assert_eq!(
        layout_entries(&mirror.join("nginx")),
        entry("1.25", oci_index, &nginx)
    );
    assert_eq!(
        layout_entries(&mirror.join("redis")),
        entry("7", DOCKER_LIST, &redis)
    );
    assert_eq!(
        layout_entries(&mirror.join("busybox")),
        entry("1", DOCKER_MANIFEST, &busybox)
    );
    // Byte for byte: the list and both platforms' manifests are upstream's.
    let list = layout_blob(&mirror.join("redis"), &redis);
    assert_eq!(Some(list), raw_manifest(&m.source, "library/redis:7"));
    for platform in &platforms {
        let manifest = layout_blob(&mirror.join("redis"), platform);
        let upstream = raw_manifest(&m.source, &format!("library/redis@{platform}"));
        assert_eq!(Some(manifest), upstream, "{platform}");
    }

    // ferry reads the layouts back: verify finds each at upstream's digest, a rerun skips all.
    let verified = run(m.ferry().arg("verify"), 0);
    let verified = stdout_of(&verified);
    for (name, digest) in [
        ("nginx:1.25", &nginx),
        ("redis:7", &redis),
        ("busybox:1", &busybox),
    ] {
        let line = format!("verified  oci:mirror/docker.io/library/{name}  {digest}");
        assert!(
            verified.lines().any(|l| l == line),
            "no `{line}` in:\n{verified}"
        );
    }
    assert!(verified.contains("3 targets: 3 verified"), "{verified}");
    let again = run(&mut quick_start(), 0);
    assert!(
        stdout_of(&again).contains("3 images: 0 synced, 3 skipped"),
        "{}",
        stdout_of(&again)
    );

    // skopeo 1.9 finds no Docker-typed entry of a layout by its tag.
    for tag in ["redis:7", "busybox:1"] {
        let at = format!("oci:{}/{tag}", mirror.display());
        let out = run(Command::new("skopeo").args(["inspect", "--raw", &at]), 1);
        // logrus quotes the message, so the reference is in escaped quotes.
        let said = format!(
            "no descriptor found for reference \\\"{}\\\"",
            tag.split(':').nth(1).unwrap()
        );
        assert!(stderr_of(&out).contains(&said), "{}", stderr_of(&out));
    }
    // crane reads a layout of one image and pushes it as it is.
    if let Some(Engine::Crane(crane)) = Engine::crane() {
        for (name, digest) in [("redis:7", &redis), ("busybox:1", &busybox)] {
            let dir = mirror.join(name.split(':').next().unwrap());
            let target = format!("{}/round-trip/{name}", m.dest.addr());
            run(
                Command::new(&crane)
                    .args(["push", "--insecure"])
                    .arg(&dir)
                    .arg(&target),
                0,
            );
            let at = format!("round-trip/{name}");
            assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(digest), "{at}");
        }
    }

    // Named, skopeo fails on the Docker list, and says which engine writes it.
    let report_path = m.scratch.path().join("skopeo-report.json");
    let out = run(
        quick_start()
            .args([
                "--engine",
                "skopeo",
                "--dest-dir",
                "skopeo-mirror",
                "--report",
            ])
            .arg(&report_path),
        1,
    );
    assert!(
        stdout_of(&out).contains("3 images: 2 synced, 0 skipped, 1 failed"),
        "{}",
        stdout_of(&out)
    );
    let report = report(&report_path);
    let failed: Vec<&serde_json::Value> = images(&report)
        .iter()
        .filter(|i| i["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(
        failed[0]["source"].as_str().unwrap().ends_with("redis:7"),
        "{report:#}"
    );
    let message = failed[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Manifest list must be converted")
            && message.contains("Instructed to preserve digests")
            && message.contains("--engine native, which writes it as it is"),
        "{message}"
    );
}

fn a_whole_repository_with_an_explicit_target_copies_every_tag(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let v1 = m.push("team/app:1.0", "app-1");
    let v2 = m.push("team/app:2.0", "app-2");
    let list = m.write(
        "images.list",
        &format!(
            "{}/team/app {}/mirror/app\n",
            m.source.addr(),
            m.dest.addr()
        ),
    );
    run(m.sync(&list).arg("--src-tls-verify=false"), 0);
    assert_eq!(tags(&m.dest, "mirror/app"), ["1.0", "2.0"]);
    assert_eq!(remote_digest(&m.dest, "mirror/app:1.0"), Some(v1));
    assert_eq!(remote_digest(&m.dest, "mirror/app:2.0"), Some(v2));
    // ferry listed the tags: the engine was given one tag at a time, never the repository
    // (the native engine, copying in-process, started no skopeo or crane).
    let invocations = m.invocations();
    let runs = if m.engine == Engine::Native { 0 } else { 2 };
    assert_eq!(invocations.len(), runs, "{invocations:?}");
    for argv in &invocations {
        let last = argv.last().unwrap();
        assert!(last.ends_with(":1.0") || last.ends_with(":2.0"), "{argv:?}");
    }
}

/// Both registries speak HTTPS with certificates from their own CA and want a login: with the
/// CAs given (`--src-cert-dir`, `--dest-cert-dir`) the copy is verified on both sides and
/// lands; without one, it fails once as `tls`, naming the registry and its side's flag.
fn registries_behind_tls_are_verified_with_the_cas_given(engine: Engine) {
    const SOURCE_PASSWORD: &str = "S0urce-pw-never-in-argv";
    let scratch = TempDir::new("ferry-tls");
    let source = Registry::start_secure("reader", SOURCE_PASSWORD);
    let dest = Registry::start_secure(USER, PASSWORD);
    let digest = push_new_image(&source, scratch.path(), "team/app:1", "tls-app").digest;
    let list = scratch.path().join("images.list");
    let line = format!(
        "{}/team/app:1 {}/mirror/app:1\n",
        source.addr(),
        dest.addr()
    );
    std::fs::write(&list, line).unwrap();
    let log = scratch.path().join("argv.log");
    let recorder = engine.recorder(scratch.path(), &log);
    let report_path = scratch.path().join("report.json");
    let (src_certs, dest_certs) = (source.cert_dir().unwrap(), dest.cert_dir().unwrap());
    let sync = |cert_dirs: &[(&str, &Path)]| {
        let mut cmd = ferry();
        cmd.current_dir(scratch.path())
            .env("PATH", format!("{}:/usr/bin:/bin", recorder.display()))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                scratch.path().join("none.conf"),
            )
            .env("FERRY_ENGINE", engine.name())
            .env("FERRY_SRC_CREDS", format!("reader:{SOURCE_PASSWORD}"))
            .env("FERRY_DEST_CREDS", format!("{USER}:{PASSWORD}"))
            .args(["sync", "--retry-delay", "5s", "--report"])
            .arg(&report_path)
            .arg(&list);
        for (flag, dir) in cert_dirs {
            cmd.arg(flag).arg(dir);
        }
        cmd
    };
    std::fs::write(scratch.path().join("none.conf"), "").unwrap();

    run(
        &mut sync(&[
            ("--src-cert-dir", src_certs.as_path()),
            ("--dest-cert-dir", dest_certs.as_path()),
        ]),
        0,
    );
    assert_eq!(remote_digest(&dest, "mirror/app:1"), Some(digest));
    let argv = recorded_invocations(&log);
    let runs = if engine == Engine::Native { 0 } else { 1 };
    assert_eq!(argv.len(), runs, "{argv:?}");
    if let Engine::Crane(_) = engine {
        // Verified: no --insecure, and both CAs where Go reads them.
        assert_eq!(argv[0][0], "copy", "{argv:?}");
        assert!(!argv[0].contains(&"--insecure".to_owned()), "{argv:?}");
        let environments = recorded_environments(&log);
        let dirs = env_value(&environments[0], "SSL_CERT_DIR").expect("SSL_CERT_DIR");
        let want = format!("{}:{}:", src_certs.display(), dest_certs.display());
        assert!(dirs.starts_with(&want), "{dirs}");
    }
    for env in recorded_environments(&log) {
        assert!(
            !env.contains(PASSWORD) && !env.contains(SOURCE_PASSWORD),
            "{env}"
        );
    }
    let written = std::fs::read_to_string(&report_path).unwrap();
    assert!(
        !written.contains(PASSWORD) && !written.contains(SOURCE_PASSWORD),
        "{written}"
    );

    // Each CA missing in turn: one attempt, `tls`, the registry and the flag of its side.
    for (given, missing, flag) in [
        (
            ("--src-cert-dir", src_certs.as_path()),
            &dest,
            "--dest-cert-dir DIR",
        ),
        (
            ("--dest-cert-dir", dest_certs.as_path()),
            &source,
            "--src-cert-dir DIR",
        ),
    ] {
        let target = format!("{}/mirror/app:2", dest.addr());
        let line = format!("{}/team/app:1 {target}\n", source.addr());
        std::fs::write(&list, line).unwrap();
        run(&mut sync(&[given]), 1);
        let report = report(&report_path);
        let image = &images(&report)[0];
        assert_eq!(image["error"]["kind"], "tls", "{image:#}");
        assert_eq!(image["attempts"], 1, "{image:#}");
        let message = image["error"]["message"].as_str().unwrap();
        let said = format!("{} has a certificate from an authority", missing.addr());
        assert!(message.starts_with(&said), "{message}");
        assert!(message.contains(flag), "{message}");
    }
    // One engine run for each of the three copies; none at all for the native engine.
    let argv = recorded_invocations(&log);
    assert_eq!(argv.len(), 3 * runs, "{argv:?}");
}

/// `ferry sync LIST` with the engine, a recorder of it on PATH, no registries.conf and no
/// credentials from the test's environment; the caller adds the rest.
fn sync_one_line(scratch: &Path, engine: &Engine, recorder: &Path, list: &Path) -> Command {
    let mut cmd = ferry();
    let none = scratch.join("none.conf");
    std::fs::write(&none, "").unwrap();
    cmd.current_dir(scratch)
        .env("PATH", format!("{}:/usr/bin:/bin", recorder.display()))
        .env("CONTAINERS_REGISTRIES_CONF", none)
        .env("FERRY_ENGINE", engine.name())
        .env_remove("FERRY_SRC_CREDS")
        .env_remove("FERRY_DEST_CREDS")
        .args(["sync", "--retry-delay", "5s"])
        .arg(list);
    cmd
}

/// The one image of a failed run's report: its error kind and message, and its attempts.
fn failure_of(report_path: &Path) -> (String, String, u64) {
    let report = report(report_path);
    let image = &images(&report)[0];
    let kind = image["error"]["kind"].as_str().unwrap_or("-").to_owned();
    let message = image["error"]["message"].as_str().unwrap_or("-").to_owned();
    (kind, message, image["attempts"].as_u64().unwrap())
}

/// A registry nobody marked insecure is verified, whatever the other side of the copy is: an
/// untrusted TLS source (a CA nothing was given) with a plain-HTTP destination
/// (`--dest-tls-verify=false`), then an insecure plain-HTTP source with an untrusted TLS
/// destination. Every engine fails the image as `tls` on its first attempt, naming the
/// registry and its side's flag, and not one request reaches the untrusted registry (so
/// neither login is sent). crane has one `--insecure` for both sides, so it runs without it;
/// with the CA given it still reaches the plain-HTTP side on 127.0.0.1 by itself, and the copy
/// lands.
fn a_side_nobody_marked_insecure_is_verified_though_the_other_side_is_insecure(engine: Engine) {
    const SECRET: &str = "Untrusted-pw-never-sent";
    let scratch = TempDir::new("ferry-one-side");
    let untrusted = Registry::start_secure_logging_requests("robot", SECRET);
    let plain = Registry::start_plain();
    let certs = untrusted.cert_dir().unwrap();
    let from_untrusted = push_new_image(&untrusted, scratch.path(), "team/app:1", "tls-a").digest;
    let from_plain = push_new_image(&plain, scratch.path(), "team/app:2", "plain-b").digest;
    let log = scratch.path().join("argv.log");
    let recorder = engine.recorder(scratch.path(), &log);
    let report_path = scratch.path().join("report.json");
    let list = scratch.path().join("images.list");
    let (u, p) = (untrusted.addr(), plain.addr());

    // The untrusted source: read with its login by nobody.
    std::fs::write(&list, format!("{u}/team/app:1 {p}/mirror/app:1\n")).unwrap();
    let before = untrusted.requests().len();
    let out = run(
        sync_one_line(scratch.path(), &engine, &recorder, &list)
            .args(["--dest-tls-verify=false", "--report"])
            .arg(&report_path)
            .env("FERRY_SRC_CREDS", format!("robot:{SECRET}")),
        1,
    );
    let (kind, message, attempts) = failure_of(&report_path);
    assert_eq!((kind.as_str(), attempts), ("tls", 1), "{message}");
    let said = format!("{u} has a certificate from an authority this machine does not trust");
    assert!(message.starts_with(&said), "{message}");
    assert!(message.contains("--src-cert-dir DIR"), "{message}");
    assert_eq!(untrusted.requests()[before..], [] as [String; 0]);
    assert!(tags(&plain, "mirror/app").is_empty());
    assert!(!stdout_of(&out).contains(" synced "), "{}", stdout_of(&out));
    // With its CA given, the same copy lands.
    run(
        sync_one_line(scratch.path(), &engine, &recorder, &list)
            .arg("--dest-tls-verify=false")
            .arg("--src-cert-dir")
            .arg(&certs)
            .env("FERRY_SRC_CREDS", format!("robot:{SECRET}")),
        0,
    );
    assert_eq!(remote_digest(&plain, "mirror/app:1"), Some(from_untrusted));

    // The untrusted destination: given its login by nobody.
    std::fs::write(&list, format!("{p}/team/app:2 {u}/mirror/app:2\n")).unwrap();
    let before = untrusted.requests().len();
    run(
        sync_one_line(scratch.path(), &engine, &recorder, &list)
            .args(["--src-tls-verify=false", "--report"])
            .arg(&report_path)
            .env("FERRY_DEST_CREDS", format!("robot:{SECRET}")),
        1,
    );
    let (kind, message, attempts) = failure_of(&report_path);
    assert_eq!((kind.as_str(), attempts), ("tls", 1), "{message}");
    assert!(message.starts_with(&said), "{message}");
    assert!(message.contains("--dest-cert-dir DIR"), "{message}");
    assert_eq!(untrusted.requests()[before..], [] as [String; 0]);
    run(
        sync_one_line(scratch.path(), &engine, &recorder, &list)
            .arg("--src-tls-verify=false")
            .arg("--dest-cert-dir")
            .arg(&certs)
            .env("FERRY_DEST_CREDS", format!("robot:{SECRET}")),
        0,
    );
    assert_eq!(remote_digest(&untrusted, "mirror/app:2"), Some(from_plain));

    // crane never got --insecure: one side was verified in every run.
    let argv = recorded_invocations(&log);
    let runs = if engine == Engine::Native { 0 } else { 4 };
    assert_eq!(argv.len(), runs, "{argv:?}");
    for args in &argv {
        assert!(!args.contains(&"--insecure".to_owned()), "{args:?}");
    }
    for env in recorded_environments(&log) {
        assert!(!env.contains(SECRET), "{env}");
    }
}

/// crane cannot skip verification for one side alone: a source that is insecure for ferry
/// (`--src-tls-verify=false`) but speaks TLS with a certificate nothing trusts, copied to a
/// verified destination, is verified anyway and fails as `tls`, with the reason and the
/// engines that treat each side by its own settings; skopeo, which does, copies it.
#[test]
fn crane_verifies_an_insecure_side_when_the_other_is_verified_and_names_the_engines_that_do_not() {
    let Some(engine) = Engine::crane() else {
        return;
    };
    let scratch = TempDir::new("ferry-crane-one-side");
    let source = Registry::start_secure_logging_requests("reader", "Reader-pw");
    let dest = Registry::start_secure(USER, PASSWORD);
    let digest = push_new_image(&source, scratch.path(), "team/app:1", "one-side").digest;
    let log = scratch.path().join("argv.log");
    let recorder = engine.recorder(scratch.path(), &log);
    let report_path = scratch.path().join("report.json");
    let list = scratch.path().join("images.list");
    let (s, d) = (source.addr(), dest.addr());
    std::fs::write(&list, format!("{s}/team/app:1 {d}/mirror/app:1\n")).unwrap();
    let sync = |engine: &Engine| {
        let mut cmd = sync_one_line(scratch.path(), engine, &recorder, &list);
        cmd.args(["--src-tls-verify=false", "--dest-cert-dir"])
            .arg(dest.cert_dir().unwrap())
            .env("FERRY_SRC_CREDS", "reader:Reader-pw")
            .env("FERRY_DEST_CREDS", format!("{USER}:{PASSWORD}"))
            .arg("--report")
            .arg(&report_path);
        cmd
    };
    run(&mut sync(&engine), 1);
    let (kind, message, attempts) = failure_of(&report_path);
    assert_eq!((kind.as_str(), attempts), ("tls", 1), "{message}");
    assert!(
        message.starts_with(&format!(
            "{s} has a certificate from an authority this machine does not trust. The source is \
             insecure for ferry, but crane has one --insecure for both sides"
        )) && message.ends_with("copy with --engine skopeo or --engine native, which treat each side by its own settings"),
        "{message}"
    );
    // ferry's own lookups read the source, as told; crane sent it nothing.
    let by_crane: Vec<String> = source
        .requests()
        .into_iter()
        .filter(|r| r.contains("go-containerregistry"))
        .collect();
    assert!(by_crane.is_empty(), "{by_crane:#?}");
    assert!(tags(&dest, "mirror/app").is_empty());
    let argv = recorded_invocations(&log);
    assert_eq!(argv.len(), 1, "{argv:?}");
    assert!(!argv[0].contains(&"--insecure".to_owned()), "{argv:?}");
    // skopeo verifies the destination and not the source, as told.
    run(&mut sync(&Engine::Skopeo), 0);
    assert_eq!(remote_digest(&dest, "mirror/app:1"), Some(digest));
}

/// The destination's login comes from the user's Docker config through a credential helper:
/// skopeo reads that config itself; crane is handed what the helper told ferry (in ferry's
/// own private DOCKER_CONFIG, which names no helper), and the native engine logs in with it,
/// so for those two the helper is asked once per run.
fn credentials_a_docker_credential_helper_gives_reach_the_engine(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    let digest = m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let config_dir = m.scratch.path().join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        serde_json::json!({ "credHelpers": { m.dest.addr(): "ferrytest" } }).to_string(),
    )
    .unwrap();
    let asked = m.scratch.path().join("helper-asked");
    let helper = m.recorder.join("docker-credential-ferrytest");
    let script = format!(
        "#!/bin/sh\ncat >>{0}; echo >>{0}\n\
         echo '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
        asked.display()
    );
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(
        m.sync(&list)
            .env("DOCKER_CONFIG", &config_dir)
            .env("HOME", m.scratch.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR"),
        0,
    );
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    assert_eq!(m.target_digest(&target), Some(digest));
    let asked = std::fs::read_to_string(&asked).unwrap();
    let times = asked.lines().filter(|l| *l == m.dest.addr()).count();
    match m.engine {
        Engine::Skopeo => assert!(times >= 1, "{asked}"),
        Engine::Crane(_) | Engine::Native => assert_eq!(times, 1, "{asked}"),
    }
    if m.engine == Engine::Native {
        assert_eq!(m.invocations(), Vec::<Vec<String>>::new());
    }
    for env in m.environments() {
        assert!(!env.contains(PASSWORD), "{env}");
    }
    assert!(!stdout_of(&out).contains(PASSWORD) && !stderr_of(&out).contains(PASSWORD));
}

/// A dry run prints each copy's command and copies nothing; the credentials, from the
/// command line or the environment, are named but never shown. skopeo's: `skopeo sync` with a
/// private auth file. crane's: the source where registries.conf sends it (crane reads no
/// registries.conf), the credentials in a private DOCKER_CONFIG; the source is insecure
/// (registries.conf) and the destination verified with its CA, so crane is not given
/// `--insecure`, which would stop it verifying the destination. The native engine's: the copy
/// it would make itself.
fn dry_run_prints_the_engines_commands_without_secrets_and_copies_nothing(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let creds = format!("{USER}:{PASSWORD}");
    let by_flag = run(
        m.sync(&list)
            .arg("--dry-run")
            .arg("--dest-creds")
            .arg(&creds),
        0,
    );
    let by_env = run(
        m.sync(&list)
            .arg("--dry-run")
            .env("FERRY_DEST_CREDS", &creds),
        0,
    );
    for out in [&by_flag, &by_env] {
        let stdout = stdout_of(out);
        match &m.engine {
            Engine::Skopeo => {
                let command = stdout
                    .lines()
                    .find(|l| l.contains(" sync --all --scoped --preserve-digests "))
                    .unwrap_or_else(|| panic!("no sync command in:\n{stdout}"));
                assert!(
                    command.contains(
                        "--dest-authfile '<private auth file with the destination credentials>'"
                    ),
                    "{command}"
                );
                assert!(
                    command.ends_with(&format!("docker.io/library/nginx:1.25 {}", m.prefix())),
                    "{command}"
                );
            }
            Engine::Crane(_) => {
                let crane = m.recorder.join("crane");
                let command = format!(
                    "DOCKER_CONFIG=… SSL_CERT_DIR=… {} copy {}/library/nginx:1.25 \
                     {}/docker.io/library/nginx:1.25",
                    crane.display(),
                    m.source.addr(),
                    m.prefix()
                );
                assert!(
                    stdout.lines().any(|l| l == command),
                    "no `{command}` in:\n{stdout}"
                );
            }
            Engine::Native => {
                let command = format!(
                    "ferry native copy docker://docker.io/library/nginx:1.25 \
                     docker://{}/docker.io/library/nginx:1.25 (every platform, digests kept)",
                    m.prefix()
                );
                assert!(
                    stdout.lines().any(|l| l == command),
                    "no `{command}` in:\n{stdout}"
                );
            }
        }
        assert!(!stdout.contains(PASSWORD) && !stderr_of(out).contains(PASSWORD));
    }
    assert!(m.invocations().is_empty());
    assert!(catalog(&m.dest).is_empty());
}

/// crane's OCI layouts cannot be read back (it names images by their full reference and adds
/// a duplicate on every pull): without a registry to copy to, `--engine crane` stops before
/// anything runs. So does a skopeo-only flag, and a missing crane.
#[test]
fn crane_refuses_what_it_cannot_do_before_anything_runs() {
    let Some(engine) = Engine::crane() else {
        return;
    };
    let m = Mirror::with_engine(false, engine);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    m.test()
        .arg("sync")
        .arg(&list)
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: --engine crane cannot mirror into local OCI layouts: crane's `pull \
             --format oci` names images by their full reference and adds a duplicate entry on \
             every pull, which neither ferry nor skopeo can read back; give a registry with \
             --dest PREFIX, or use --engine native\n",
        )
        .run();
    m.test_sync(&list)
        .arg("--insecure-policy")
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: --insecure-policy is a skopeo option; crane checks no signature \
             policy (drop it, or use --engine skopeo)\n",
        )
        .run();
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
    assert!(!m.scratch.path().join("mirror").exists());

    m.test_sync(&list)
        .env("PATH", m.scratch.path())
        .env("FERRY_CRANE", "/nonexistent/crane")
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: crane was not found (/nonexistent/crane: cannot find binary path); \
             install it (go install github.com/google/go-containerregistry/cmd/crane@latest) or \
             point --crane/FERRY_CRANE at it\n",
        )
        .run();
    assert!(catalog(&m.dest).is_empty());
}

#[test]
fn missing_skopeo_is_a_configuration_error_with_a_hint() {
    // Named, skopeo must be there (without a name ferry would copy natively instead).
    let test = Test::new().file("images.list", "nginx:1.25\n");
    let path = test.dir().to_owned();
    test.args(["sync", "images.list", "--dest", "harbor.example/third"])
        .args(["--engine", "skopeo"])
        .env("PATH", path)
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: skopeo was not found (not on PATH: cannot find binary path); install \
             it (Debian/Ubuntu: apt-get install skopeo, Fedora: dnf install skopeo, macOS: brew \
             install skopeo), point --skopeo/FERRY_SKOPEO at it, or copy with --engine native\n",
        )
        .run();
}

fn ctrl_c_stops_running_copies_and_still_writes_the_report(engine: Engine) {
    let scratch = TempDir::new("ferry-sigint");
    // An engine that never finishes: ferry must stop it, not wait for it.
    let stand_in = scratch.path().join("slow-engine");
    let sleep = Sleeper::new(scratch.path(), 2999);
    std::fs::write(&stand_in, format!("#!/bin/sh\n{}\n", sleep.command())).unwrap();
    std::fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let list = scratch.path().join("images.list");
    std::fs::write(&list, "nginx:1.25\nredis:7\nalpine:3\n").unwrap();
    let report_path = scratch.path().join("report.json");
    let failed_path = scratch.path().join("failed.list");

    let mut child = ferry()
        .args(["sync", "--dest", "harbor.example/third", "-j", "2"])
        .args(engine.with_binary(&stand_in))
        .arg("--report")
        .arg(&report_path)
        .arg("--failed-list")
        .arg(&failed_path)
        .arg(&list)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Two copies running (-j 2) also means ferry's signal handling is in place.
    wait_until(Duration::from_secs(20), "the copies never started", || {
        sleep.running().lines().count() == 2
    });
    let status = signal_and_wait(
        &mut child,
        "INT",
        Duration::from_secs(15),
        "ferry did not stop after SIGINT",
    );
    assert_eq!(status.code(), Some(130));
    let leftovers = sleep.running();
    assert!(
        leftovers.is_empty(),
        "{} stand-ins outlived ferry: {leftovers}",
        engine.name()
    );

    let report = report(&report_path);
    assert_eq!(report["summary"]["interrupted"], true);
    assert_eq!(report["summary"]["failed"], 3);
    for image in images(&report) {
        assert_eq!(image["error"]["kind"], "interrupted", "{image:#}");
    }
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    assert_eq!(
        failed.lines().filter(|l| !l.starts_with('#')).count(),
        3,
        "{failed}"
    );
}

/// A source that accepts connections and never answers holds the planner's lookups for minutes:
/// SIGTERM or SIGHUP there still ends the run at once, with every image reported interrupted
/// and nothing copied.
#[test]
fn a_signal_while_planning_ends_the_run_with_a_report() {
    let m = Mirror::new(false);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = registries_conf(
        m.scratch.path(),
        &[("docker.io", &silent.local_addr().unwrap().to_string())],
    );
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let report_path = m.scratch.path().join(format!("report-{signal}.json"));
        let mut child = m
            .sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--report")
            .arg(&report_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Planning has begun once ferry's lookup is connected (and left waiting).
        silent.set_nonblocking(false).unwrap();
        let (_held, _) = silent.accept().unwrap();
        let status = signal_and_wait(
            &mut child,
            signal,
            Duration::from_secs(10),
            &format!("ferry went on planning after SIG{signal}"),
        );
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        let report = report(&report_path);
        assert_eq!(report["summary"]["interrupted"], true, "{report:#}");
        for image in images(&report) {
            assert_eq!(image["error"]["kind"], "interrupted", "{image:#}");
            assert_eq!(image["attempts"], 0, "{image:#}");
        }
        assert_eq!(images(&report).len(), 2, "{report:#}");
    }
    assert!(m.invocations().is_empty(), "a copy started");
}

/// Under `nohup` (SIGHUP ignored when ferry starts) a hangup does not stop the run; and when
/// stdout is gone (a closed pipe, as a closed terminal), the run still ends with its report.
#[test]
fn nohup_is_honoured_and_a_closed_stdout_does_not_lose_the_report() {
    let m = Mirror::new(false);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = registries_conf(
        m.scratch.path(),
        &[("docker.io", &silent.local_addr().unwrap().to_string())],
    );
    let list = m.write("images.list", "nginx:1.25\n");
    let report_path = m.scratch.path().join("report.json");
    let ferry_cmd = m.sync(&list);
    // sh ignores SIGHUP, as nohup does, then becomes ferry; stdout is a pipe nobody reads.
    let mut argv = vec![ferry_cmd.get_program().to_owned()];
    argv.extend(ferry_cmd.get_args().map(|a| a.to_owned()));
    argv.push("--report".into());
    argv.push(report_path.clone().into());
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' HUP; exec \"$@\"", "sh"])
        .args(&argv);
    for (key, value) in ferry_cmd.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .current_dir(m.scratch.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take()); // stdout is now a closed pipe
    let (_held, _) = silent.accept().unwrap();
    send_signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped ferry under nohup"
    );
    send_signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    let report = report(&report_path);
    assert_eq!(report["summary"]["interrupted"], true, "{report:#}");
}

/// `ferry show-images LIST | head -1`: the listing stops when its reader does, quietly.
#[test]
fn a_listing_piped_into_head_ends_quietly() {
    use std::io::BufRead as _;
    let scratch = TempDir::new("ferry-head");
    let list = scratch.path().join("images.list");
    let lines: String = (0..5000).map(|i| format!("nginx:1.{i}\n")).collect();
    std::fs::write(&list, lines).unwrap();
    for command in ["show-images", "show-raw-images"] {
        let mut child = ferry()
            .arg(command)
            .arg(&list)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        drop(reader); // the reader goes away, as head does
        let out = child.wait_with_output().unwrap();
        assert!(first.contains("nginx:1.0"), "{command}: {first}");
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr_of(&out));
        assert!(stderr_of(&out).is_empty(), "{command}: {}", stderr_of(&out));
    }
}

/// Settings are checked before anything is copied, and none is silently ignored.
#[test]
fn settings_are_checked_up_front_and_none_is_ignored() {
    let m = Mirror::new(false);
    let digest = m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");

    // --dest-dir on the command line wins over $FERRY_DEST; both flags at once conflict.
    let out = run(
        m.ferry()
            .env("FERRY_DEST", "reg.example/x")
            .args(["show-images", "--dest-dir", "layouts"])
            .arg(&list),
        0,
    );
    assert_eq!(
        stdout_of(&out),
        "oci:layouts/docker.io/library/nginx:1.25\n"
    );
    m.test()
        .args(["show-images", "--dest", "reg.example/x", "--dest-dir", "d"])
        .arg(&list)
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: --dest and --dest-dir cannot be used together: --dest mirrors into a \
             registry, --dest-dir into local OCI layouts\n",
        )
        .run();

    // An output file that cannot be written stops the run before any copy.
    m.test_sync(&list)
        .args(["--report", "/nonexistent/r.json"])
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: --report /nonexistent/r.json: its directory /nonexistent does not \
             exist\n",
        )
        .run();
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
    assert!(catalog(&m.dest).is_empty());

    // `-` is standard output, which the report then has to itself.
    let mut cmd = m.ferry();
    cmd.args(["plan", "--report", "-", "--dest-tls-verify=false", "--dest"])
        .arg(m.prefix())
        .arg(&list);
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    let ran = Test::mirror(&m, cmd)
        .stderr(format!(
            "STATE  SOURCE                        {:w$}  SOURCE DIGEST        TARGET DIGEST\n\
             new    docker.io/library/nginx:1.25  {target}  {}  -\n\
             1 entry: 1 new, 0 changed, 0 current, 0 source-missing, 0 unknown \
             ([..] requests in [t])\n",
            "TARGET",
            &digest[..19],
            w = target.len(),
        ))
        .run();
    let plan: serde_json::Value = serde_json::from_slice(&ran.output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON plan ({e}):\n{}", ran.stdout()));
    assert_eq!(plan["summary"]["new"], 1);

    // A limit for a registry no image touches is pointed out.
    m.test_sync(&list)
        .args(["--registry-rps", "ghcr.io=1"])
        .stdout_results(format!(
            "synced  {target}  [t]  4 blobs copied, 0 reused\n\
             1 image: 1 synced, 0 skipped, 0 failed in [t]\n"
        ))
        .stderr(
            "ferry: warning: --registry-rps ghcr.io: no image of this run comes from or goes to \
             ghcr.io\n",
        )
        .run();
}

/// Holds the advisory lock of a layout directory as another ferry process would.
struct HeldLayout {
    _directory: std::fs::File,
}

impl HeldLayout {
    fn hold(layout: &Path) -> HeldLayout {
        use std::os::fd::AsRawFd as _;
        std::fs::create_dir_all(layout).unwrap();
        let directory = std::fs::File::open(layout).unwrap();
        // SAFETY: flock on a descriptor the test owns.
        let locked = unsafe { libc::flock(directory.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(locked, 0, "cannot lock {}", layout.display());
        HeldLayout {
            _directory: directory,
        }
    }
}

/// A layout another ferry process is writing keeps that process's temporary files, and a job
/// for it waits for the other process instead of writing beside it; once it is free, the job
/// copies and tidies. (crane writes no layout.)
fn a_layout_another_ferry_writes_is_waited_for_and_its_files_left_alone(engine: Engine) {
    let engine = engine.name();
    let m = Mirror::new(false);
    let digest = m.push("library/nginx:1.25", "nginx-1.25");
    let list = m.write("images.list", "nginx:1.25\n");
    let layout = m.scratch.path().join("mirror/docker.io/library/nginx");
    let held = HeldLayout::hold(&layout);
    let theirs = layout.join("oci-put-blob-ferry-99999-0");
    std::fs::write(&theirs, b"half a blob").unwrap();

    let mut child = m
        .ferry()
        .args(["sync", "--engine", engine])
        .arg(&list)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{engine}: ferry did not wait for the layout"
    );
    assert!(
        theirs.exists(),
        "{engine}: ferry removed a temporary file of a process still writing the layout"
    );
    assert!(
        !layout.join("index.json").exists(),
        "{engine}: wrote beside the other process"
    );
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{engine}: {out:?}");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(index.contains(&digest), "{engine}: {index}");
    assert!(!theirs.exists(), "{engine}: a stale temporary file stayed");
}
