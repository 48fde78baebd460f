//! Digest-first planning end to end: real registries, real skopeo, the real binary. A rerun
//! with nothing to do starts no skopeo; a re-pointed source tag is the one `changed` entry; a
//! tampered target fails `verify`; whole repositories expand through the tag filters.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::mirror::*;
use crate::common::*;

fn plan_report(m: &Mirror, list: &Path, extra: &[&str]) -> serde_json::Value {
    let path = m.scratch.path().join("plan.json");
    let mut cmd = m.ferry();
    cmd.arg("plan")
        .arg(list)
        .arg("--dest")
        .arg(m.prefix())
        .arg("--dest-tls-verify=false");
    cmd.arg("--report").arg(&path).args(extra);
    run(&mut cmd, 0);
    report(&path)
}

fn entries(report: &serde_json::Value) -> Vec<(String, String)> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_second_run_starts_no_skopeo_and_skips_everything() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    m.push("library/redis:7", "redis");
    m.push("quay/prometheus/node-exporter:v1.7.0", "exporter");
    let alpine = m.push("library/alpine:3.19", "alpine");
    let list = m.write(
        "images.list",
        &format!("nginx:1.25\nredis:7\nquay.io/prometheus/node-exporter:v1.7.0\nalpine@{alpine}\n"),
    );
    run(&mut m.sync(&list), 0);
    let first = m.invocations().len();
    assert_eq!(first, 4);

    let report_path = m.scratch.path().join("second.json");
    let out = run(m.sync(&list).arg("--report").arg(&report_path), 0);
    assert_eq!(m.invocations().len(), first, "the no-op run started skopeo");
    assert!(
        stdout_of(&out).contains("4 images: 0 synced, 4 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    let report = report(&report_path);
    for image in images(&report) {
        assert_eq!(image["status"], "skipped", "{image:#}");
        assert!(image["digest"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(images(&report)[0]["digest"], nginx.as_str());
}

#[test]
fn a_repointed_source_tag_is_the_one_changed_entry_and_the_next_sync_fixes_it() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx-old");
    m.push("library/redis:7", "redis");
    let list = m.write("images.list", "nginx:1.25\nredis:7\nnginx:1.26\n");
    m.push("library/nginx:1.26", "nginx-next");
    run(&mut m.sync(&list), 0);

    let newer = m.push("library/nginx:1.25", "nginx-new");
    let plan = plan_report(&m, &list, &[]);
    assert_eq!(
        entries(&plan),
        [
            (
                "docker.io/library/nginx:1.25".to_owned(),
                "changed".to_owned()
            ),
            ("docker.io/library/redis:7".to_owned(), "current".to_owned()),
            (
                "docker.io/library/nginx:1.26".to_owned(),
                "current".to_owned()
            ),
        ]
    );
    assert_eq!(plan["entries"][0]["source_digest"], newer.as_str());
    assert_ne!(plan["entries"][0]["target_digest"], newer.as_str());

    let before = m.invocations().len();
    let out = run(&mut m.sync(&list), 0);
    assert!(
        stdout_of(&out).contains("3 images: 1 synced, 2 skipped"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        m.invocations().len(),
        before + 1,
        "only the changed image is copied"
    );
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    assert_eq!(m.target_digest(&target), Some(newer));
    run(
        m.ferry()
            .arg("verify")
            .arg(&list)
            .arg("--dest")
            .arg(m.prefix())
            .arg("--dest-tls-verify=false"),
        0,
    );
}

#[test]
fn verify_names_a_tampered_and_a_missing_target() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let redis = m.push("library/redis:7", "redis");
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    run(&mut m.sync(&list), 0);
    let verify = || {
        m.test()
            .arg("verify")
            .arg(&list)
            .arg("--dest")
            .arg(m.prefix())
            .arg("--dest-tls-verify=false")
    };
    let p = m.prefix();
    verify()
        .stdout(format!(
            "verified  {p}/docker.io/library/nginx:1.25  {nginx}\n\
             verified  {p}/docker.io/library/redis:7  {redis}\n\
             2 targets: 2 verified, 0 with problems ([..] requests in [t])\n"
        ))
        .run();

    // Someone pushes another image over the mirror's nginx tag.
    let impostor = push_new_image(
        &m.dest,
        m.scratch.path(),
        "third/docker.io/library/nginx:1.25",
        "impostor",
    )
    .digest;
    let mismatch = format!(
        "mismatch  {p}/docker.io/library/nginx:1.25  target {impostor} != source {nginx}\n"
    );
    verify()
        .code(1)
        .stdout(format!(
            "{mismatch}\
             verified  {p}/docker.io/library/redis:7  {redis}\n\
             2 targets: 1 verified, 1 with problems ([..] requests in [t])\n"
        ))
        .run();

    // A new list entry that was never synced is reported missing.
    std::fs::write(&list, "nginx:1.25\nredis:7\nalpine:3\n").unwrap();
    let alpine = m.push("library/alpine:3", "alpine");
    verify()
        .code(1)
        .stdout(format!(
            "{mismatch}\
             verified  {p}/docker.io/library/redis:7  {redis}\n\
             missing   {p}/docker.io/library/alpine:3  (source {alpine})\n\
             3 targets: 1 verified, 2 with problems ([..] requests in [t])\n"
        ))
        .run();
}

#[test]
fn whole_repositories_expand_through_each_tag_filter() {
    let m = Mirror::new(false);
    let tags = [
        "1.24.0",
        "1.25.0",
        "1.25.3",
        "1.25.3-alpine",
        "1.26.0-rc.1",
        "1.26.0",
        "v1.27.1",
        "latest",
    ];
    for tag in tags {
        m.push(&format!("library/app:{tag}"), &format!("app-{tag}"));
    }
    let list = m.write("images.list", "# every tag of app\napp\n");
    let kept = |extra: &[&str]| -> BTreeSet<String> {
        entries(&plan_report(&m, &list, extra))
            .into_iter()
            .map(|(source, _)| {
                source
                    .trim_start_matches("docker.io/library/app:")
                    .to_owned()
            })
            .collect()
    };
    let set = |tags: &[&str]| {
        tags.iter()
            .map(|t| (*t).to_owned())
            .collect::<BTreeSet<_>>()
    };

    assert_eq!(kept(&[]), set(&tags));
    assert_eq!(
        kept(&["--tags", r"1\.25\..*"]),
        set(&["1.25.0", "1.25.3", "1.25.3-alpine"])
    );
    assert_eq!(
        kept(&["--exclude-tags", ".*-alpine|latest|v.*"]),
        set(&["1.24.0", "1.25.0", "1.25.3", "1.26.0-rc.1", "1.26.0"])
    );
    assert_eq!(
        kept(&["--no-prerelease"]),
        set(&[
            "1.24.0",
            "1.25.0",
            "1.25.3",
            "1.25.3-alpine",
            "1.26.0",
            "v1.27.1",
            "latest"
        ])
    );
    assert_eq!(
        kept(&["--semver", ">=1.25, <1.27"]),
        set(&["1.25.0", "1.25.3", "1.25.3-alpine", "1.26.0"])
    );
    assert_eq!(
        kept(&["--latest", "2", "--no-prerelease"]),
        set(&["v1.27.1", "1.26.0"])
    );

    // `plan -v` says which filter dropped each tag.
    let mut cmd = m.ferry();
    cmd.args([
        "plan",
        "-v",
        "--semver",
        ">=1.25, <1.27",
        "--dest-tls-verify=false",
        "--dest",
    ])
    .arg(m.prefix())
    .arg(&list);
    let out = stdout_of(&run(&mut cmd, 0));
    assert!(
        out.contains("dropped  docker.io/library/app:1.24.0  (--semver,"),
        "{out}"
    );
    assert!(
        out.contains("dropped  docker.io/library/app:latest  (--semver (not a version),"),
        "{out}"
    );

    // A filter that keeps nothing is no error, but it is said, naming the line.
    let mut cmd = m.ferry();
    cmd.args([
        "plan",
        "--tags",
        "nomatch",
        "--dest-tls-verify=false",
        "--dest",
    ])
    .arg(m.prefix())
    .arg(&list);
    let out = run(&mut cmd, 0);
    assert!(
        stderr_of(&out).contains(&format!(
            "{}:2: the tag filters keep none of the 8 tags of docker.io/library/app",
            list.display()
        )),
        "{}",
        stderr_of(&out)
    );
    // So is a list with no image in it.
    let empty = m.write("empty.list", "# nothing yet\n");
    let mut cmd = m.ferry();
    cmd.args(["plan", "--dest-tls-verify=false", "--dest"])
        .arg(m.prefix())
        .arg(&empty);
    let out = run(&mut cmd, 0);
    assert!(
        stderr_of(&out).contains(&format!("{}: no images in this list", empty.display())),
        "{}",
        stderr_of(&out)
    );

    // And a sync copies exactly the selected tags.
    run(m.sync(&list).args(["--semver", ">=1.25, <1.27"]), 0);
    assert_eq!(
        tags_in(&m, "third/docker.io/library/app"),
        set(&["1.25.0", "1.25.3", "1.25.3-alpine", "1.26.0"])
    );
}

fn tags_in(m: &Mirror, repo: &str) -> BTreeSet<String> {
    tags(&m.dest, repo).into_iter().collect()
}

#[test]
fn a_missing_repository_or_tag_is_source_missing_and_needs_no_skopeo() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\nnginx:9.9\nghost\n");
    let plan = plan_report(&m, &list, &[]);
    assert_eq!(
        entries(&plan),
        [
            ("docker.io/library/nginx:1.25".to_owned(), "new".to_owned()),
            (
                "docker.io/library/nginx:9.9".to_owned(),
                "source-missing".to_owned()
            ),
            (
                "docker.io/library/ghost".to_owned(),
                "source-missing".to_owned()
            ),
        ]
    );
    let report_path = m.scratch.path().join("sync.json");
    run(m.sync(&list).arg("--report").arg(&report_path), 1);
    assert_eq!(
        m.invocations().len(),
        1,
        "only the existing image reaches skopeo"
    );
    let report = report(&report_path);
    let kinds: Vec<&str> = images(&report)
        .iter()
        .map(|i| i["error"]["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds, ["-", "not-found", "not-found"]);
}

#[test]
fn force_copies_even_what_is_current() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    run(&mut m.sync(&list), 0);
    let out = run(m.sync(&list).arg("--force"), 0);
    assert!(
        stdout_of(&out).contains("1 image: 1 synced, 0 skipped"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(m.invocations().len(), 2);
}

#[test]
fn credentials_come_from_a_docker_credential_helper_asked_once_per_host() {
    let m = Mirror::new(true);
    for name in ["nginx", "redis", "alpine"] {
        m.push(&format!("library/{name}:1"), name);
    }
    let list = m.write("images.list", "nginx:1\nredis:1\nalpine:1\n");
    // A docker config naming a helper for the destination, and the helper on PATH.
    let config_dir = m.scratch.path().join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        serde_json::json!({ "credHelpers": { m.dest.addr(): "ferrytest" } }).to_string(),
    )
    .unwrap();
    // The helper notes each time it is asked, and for which server, then runs `answer`.
    let asked = m.scratch.path().join("helper-asked");
    let helper = m.recorder.join("docker-credential-ferrytest");
    let install_helper = |answer: &str| {
        let script = format!(
            "#!/bin/sh\ncat >>{0}; echo >>{0}\n{answer}\n",
            asked.display()
        );
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    // `ferry plan` with `docker_config` as DOCKER_CONFIG; the JSON report.
    let path = m.scratch.path().join("plan.json");
    let plan_with = |docker_config: &Path| {
        let mut cmd = m.ferry();
        cmd.env("DOCKER_CONFIG", docker_config)
            .env("HOME", m.scratch.path());
        cmd.args(["plan", "--dest"])
            .arg(m.prefix())
            .arg("--dest-cert-dir")
            .arg(m.dest.cert_dir().unwrap());
        cmd.arg("--report").arg(&path).arg(&list);
        run(&mut cmd, 0);
        report(&path)
    };

    install_helper(&format!(
        "echo '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'"
    ));
    let plan = plan_with(&config_dir);
    // Authenticated HEADs on the destination: the targets are simply not there yet.
    for entry in plan["entries"].as_array().unwrap() {
        assert_eq!(entry["state"], "new", "{plan:#}");
        assert!(entry["error"].is_null(), "{plan:#}");
    }
    // Three repositories, each challenged, but one host: the helper was asked once.
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("{}\n", m.dest.addr())
    );

    // Without the helper the same lookup is unauthorized.
    let plan = plan_with(&m.scratch.path().join("none"));
    assert_eq!(plan["entries"][0]["state"], "unknown", "{plan:#}");
    assert_eq!(
        plan["entries"][0]["error"]["kind"], "unauthorized",
        "{plan:#}"
    );

    // A failing helper fails every lookup for its host, but is asked once, not per repository.
    install_helper("exit 1");
    std::fs::remove_file(&asked).unwrap();
    let plan = plan_with(&config_dir);
    for entry in plan["entries"].as_array().unwrap() {
        let message = entry["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("credential helper docker-credential-ferrytest failed"),
            "{plan:#}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("{}\n", m.dest.addr())
    );
}

/// A whole-repository line whose tag listing fails is never handed to skopeo as a whole (which
/// would copy `latest` or every tag, past the filters and the redirects): the listing is retried
/// like a copy, and when it keeps failing the entry fails with the listing's kind.
#[test]
fn a_repository_listed_only_after_a_retry_is_copied_tag_by_tag_through_the_filter() {
    let mut m = Mirror::new(false);
    for tag in ["v3.5.12", "v3.5.13", "latest"] {
        m.push(&format!("quay/coreos/etcd:{tag}"), &format!("etcd-{tag}"));
    }
    let list = m.write("repo.list", "quay.io/coreos/etcd\n");
    let report_path = m.scratch.path().join("report.json");

    // Down while ferry first lists the tags, back a moment later.
    m.source.stop();
    let mut cmd = m.sync(&list);
    cmd.args(["--tags", r"v3\.5\.12", "--retry-delay", "1s", "--report"])
        .arg(&report_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("ferry starts");
    std::thread::sleep(std::time::Duration::from_millis(300));
    m.source.restart();
    let out = child.wait_with_output().expect("ferry runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    assert_eq!(
        tags_in(&m, "third/quay.io/coreos/etcd"),
        BTreeSet::from(["v3.5.12".to_owned()])
    );
    let copies: Vec<String> = m
        .invocations()
        .into_iter()
        .map(|argv| argv.join(" "))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:#?}");
    assert!(
        copies[0].contains("quay.io/coreos/etcd:v3.5.12"),
        "{copies:#?}"
    );
    let report = report(&report_path);
    let images = images(&report);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["status"], "synced");
    assert_eq!(
        images[0]["target"],
        format!("{}/quay.io/coreos/etcd:v3.5.12", m.prefix())
    );
}

#[test]
fn a_repository_that_cannot_be_listed_fails_with_the_listings_kind_and_copies_nothing() {
    let mut m = Mirror::new(false);
    m.push("quay/coreos/etcd:v3.5.12", "etcd");
    m.source.stop();
    let list = m.write("repo.list", "quay.io/coreos/etcd\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.sync(&list)
            .args(["--retry-times", "1", "--retry-delay", "100ms", "--report"])
            .arg(&report_path),
        1,
    );
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
    let report = report(&report_path);
    let images = images(&report);
    assert_eq!(images.len(), 1, "{report}");
    assert_eq!(images[0]["status"], "failed");
    assert_eq!(images[0]["error"]["kind"], "network");
    let message = images[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not list the tags of quay.io/coreos/etcd (2 attempts)"),
        "{message}"
    );
    assert!(
        stdout_of(&out).contains("could not list the tags"),
        "{}",
        stdout_of(&out)
    );

    // `plan` says the same, and does not pretend a sync would copy it.
    let mut cmd = m.ferry();
    cmd.args([
        "plan",
        "--retry-times",
        "0",
        "--dest-tls-verify=false",
        "--dest",
    ])
    .arg(m.prefix())
    .arg(&list);
    let planned = stdout_of(&run(&mut cmd, 0));
    assert!(planned.contains("could not list the tags"), "{planned}");
}

/// A plain-HTTP registry, or one whose CA ferry was not given, is one `tls` failure in plan,
/// verify and sync alike, naming the registry and the flag that helps.
#[test]
fn tls_failures_read_the_same_in_plan_verify_and_sync_with_the_flag_that_helps() {
    for secure in [false, true] {
        let m = Mirror::new(secure);
        let digest = m.push("library/nginx:1.25", "nginx");
        let list = m.write("images.list", "nginx:1.25\n");
        let (words, flag) = match secure {
            false => (
                "speaks plain HTTP, not HTTPS: to use it anyway, pass --dest-tls-verify=false \
                 (or set insecure = true for it in registries.conf)",
                "--dest-tls-verify=false",
            ),
            true => (
                "has a certificate from an authority this machine does not trust: pass its CA \
                 with --dest-cert-dir DIR (a directory holding the CA as a .crt file), or \
                 --dest-tls-verify=false to skip verification",
                "--dest-cert-dir DIR",
            ),
        };
        let said = format!("tls: {} {words}", m.dest.addr());
        let source = "docker.io/library/nginx:1.25";
        let target = format!("{}/{source}", m.prefix());
        let (short, w) = (&digest[..19], target.len());
        for (command, code, stdout) in [
            (
                "plan",
                0,
                format!(
                    "STATE    SOURCE                        {:w$}  SOURCE DIGEST        TARGET DIGEST\n\
                     unknown  {source}  {target}  {short}  - (tls)\n\
                     unknown  {source}: {said}\n\
                     1 entry: 0 new, 0 changed, 0 current, 0 source-missing, 1 unknown \
                     ([..] requests in [t])\n",
                    "TARGET"
                ),
            ),
            (
                "verify",
                1,
                format!(
                    "error     {target}  {said}\n\
                     1 target: 0 verified, 1 with problems ([..] requests in [t])\n"
                ),
            ),
            (
                "sync",
                1,
                format!(
                    "failed  {target}  [t]  {said}\n\
                     1 image: 0 synced, 0 skipped, 1 failed in [t]\n"
                ),
            ),
        ] {
            let mut test = m.test().arg(command).arg(&list).arg("--dest").arg(m.prefix());
            if secure {
                test = test.env("FERRY_DEST_CREDS", format!("{USER}:{PASSWORD}"));
            }
            let ran = test.report().code(code).stdout(stdout).run();
            if command == "sync" {
                let report = ran.report();
                assert_eq!(images(report)[0]["error"]["kind"], "tls", "{report:#}");
                let message = images(report)[0]["error"]["message"].as_str().unwrap();
                assert!(message.contains(flag), "{message}");
            }
        }
    }
}

/// A source that is down fails its lookups on the source's side: the table shows the failure
/// in the SOURCE DIGEST column and the target's digest, which was read, in its own. One
/// destination whose certificate nothing trusts fails every entry the same way: its hint is
/// said once, after the table, for all of them.
#[test]
fn a_lookup_failure_shows_on_its_side_and_each_reason_is_said_once() {
    let mut m = Mirror::new(false);
    m.push("library/nginx:1", "nginx");
    m.push("library/redis:1", "redis");
    let list = m.write("images.list", "nginx:1\nredis:1\n");
    run(&mut m.sync(&list), 0);
    let p = m.prefix();
    let target = |name: &str| format!("{p}/docker.io/library/{name}:1");
    let short = |digest: Option<String>| digest.unwrap()[..19].to_owned();
    let nginx = short(remote_digest(&m.dest, "third/docker.io/library/nginx:1"));
    let redis = short(remote_digest(&m.dest, "third/docker.io/library/redis:1"));
    m.source.stop();
    let w = target("nginx").len();
    m.test()
        .arg("plan")
        .arg(&list)
        .arg("--dest")
        .arg(&p)
        .args(["--dest-tls-verify=false", "--retry-times", "0"])
        .stdout(format!(
            "STATE    SOURCE                     {:w$}  SOURCE DIGEST  TARGET DIGEST\n\
             unknown  docker.io/library/nginx:1  {}  - (network)    {nginx}\n\
             unknown  docker.io/library/redis:1  {}  - (network)    {redis}\n\
             unknown  docker.io/library/nginx:1: network: docker.io/library/nginx:1: [..]\n\
             unknown  docker.io/library/redis:1: network: docker.io/library/redis:1: [..]\n\
             2 entries: 0 new, 0 changed, 0 current, 0 source-missing, 2 unknown \
             ([..] requests in [t])\n",
            "TARGET",
            target("nginx"),
            target("redis"),
        ))
        .run();

    let m = Mirror::new(true);
    let digests =
        ["nginx", "redis", "alpine"].map(|name| m.push(&format!("library/{name}:1"), name));
    let [nginx, redis, alpine] = digests.map(|digest| short(Some(digest)));
    let list = m.write("images.list", "nginx:1\nredis:1\nalpine:1\n");
    let p = m.prefix();
    let target = |name: &str| format!("{p}/docker.io/library/{name}:1");
    let w = target("alpine").len();
    m.test()
        .arg("plan")
        .arg(&list)
        .arg("--dest")
        .arg(&p)
        .stdout(format!(
            "STATE    SOURCE                      {:w$}  SOURCE DIGEST        TARGET DIGEST\n\
             unknown  docker.io/library/nginx:1   {:w$}  {nginx}  - (tls)\n\
             unknown  docker.io/library/redis:1   {:w$}  {redis}  - (tls)\n\
             unknown  docker.io/library/alpine:1  {:w$}  {alpine}  - (tls)\n\
             unknown  docker.io/library/nginx:1, docker.io/library/redis:1, \
             docker.io/library/alpine:1 (3 entries): tls: {} has a certificate from an authority \
             this machine does not trust: pass its CA with --dest-cert-dir DIR (a directory \
             holding the CA as a .crt file), or --dest-tls-verify=false to skip verification\n\
             3 entries: 0 new, 0 changed, 0 current, 0 source-missing, 3 unknown \
             ([..] requests in [t])\n",
            "TARGET",
            target("nginx"),
            target("redis"),
            target("alpine"),
            m.dest.addr(),
        ))
        .run();
}
