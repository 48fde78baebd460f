//! Several destinations (`--dest A --dest B`) end to end: a Basic-auth TLS registry (its
//! credentials from an auth file keyed by its host, its CA from `--dest-cert-dir`) and a
//! plain-HTTP one (insecure in registries.conf) each receive every image with upstream's
//! digests, with every engine; the native engine reads each source blob and manifest once
//! (counted at `scripts/rate-limit-proxy.py` in front of the source), skopeo and crane run one
//! copy per destination; a destination that is down fails its own entries only; an entry's
//! shard does not depend on the destinations; what cannot go to several destinations is a
//! usage error before anything runs.

use std::path::PathBuf;

use crate::common::engines::{per_engine, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

per_engine!(
    two_destinations_receive_every_image_with_upstream_digests,
    a_destination_that_is_down_fails_its_own_entries_only,
);

/// A mirror whose source sits behind a counting proxy, its TLS destination (`m.dest`, Basic
/// auth) and a second, plain-HTTP destination, with the registries.conf and auth file that
/// reach them.
struct Two {
    m: Mirror,
    plain: Registry,
    proxy: ScriptProxy,
    conf: PathBuf,
    authfile: PathBuf,
}

impl Two {
    fn new(engine: Engine) -> Two {
        let m = Mirror::with_engine(true, engine);
        let plain = Registry::start_plain();
        let proxy = ScriptProxy::start(m.scratch.path(), &m.source.addr(), &["--rate", "inf"]);
        // The plain destination is insecure by registries.conf, the TLS one verified with
        // its CA (--dest-cert-dir), each by its own settings.
        let conf = registries_conf(
            m.scratch.path(),
            &[("docker.io", &proxy.addr()), (&plain.addr(), &plain.addr())],
        );
        let auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{PASSWORD}"),
        );
        let authfile = m.write(
            "auth.json",
            &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, m.dest.addr()),
        );
        Two {
            m,
            plain,
            proxy,
            conf,
            authfile,
        }
    }

    fn tls_prefix(&self) -> String {
        self.m.prefix()
    }

    fn plain_prefix(&self) -> String {
        format!("{}/mirror", self.plain.addr())
    }

    /// `ferry COMMAND LIST` into both destinations.
    fn ferry(&self, command: &str, list: &std::path::Path) -> std::process::Command {
        let mut cmd = self.m.ferry();
        cmd.env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .arg(command)
            .arg(list)
            .arg("--dest")
            .arg(self.tls_prefix())
            .arg("--dest")
            .arg(self.plain_prefix())
            .arg("--dest-cert-dir")
            .arg(self.m.dest.cert_dir().unwrap())
            .arg("--dest-authfile")
            .arg(&self.authfile);
        cmd
    }
}

/// The stdout lines that start with `word` (result lines), sorted.
fn lines_starting(out: &std::process::Output, word: &str) -> Vec<String> {
    let mut lines: Vec<String> = stdout_of(out)
        .lines()
        .filter(|l| l.starts_with(word))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            format!("{}  {}", words[0], words[1])
        })
        .collect();
    lines.sort();
    lines
}

fn two_destinations_receive_every_image_with_upstream_digests(engine: Engine) {
    let t = Two::new(engine.clone());
    let layers = |base| Layers {
        base: Some(base),
        ..Layers::default()
    };
    let mut pushed = Vec::new();
    for name in ["nginx", "redis"] {
        let (layout, image) = make_layered_image(t.m.scratch.path(), name, &layers("debian"));
        push(&t.m.source, &layout, &format!("library/{name}:1"));
        pushed.push((name, image));
    }
    let list = t.m.write("images.list", "nginx:1\nredis:1\n");
    let report_path = t.m.scratch.path().join("report.json");
    let out = run(t.ferry("sync", &list).arg("--report").arg(&report_path), 0);
    let (a, b) = (t.tls_prefix(), t.plain_prefix());
    for (name, image) in &pushed {
        let repo = format!("docker.io/library/{name}:1");
        assert_eq!(
            remote_digest(&t.m.dest, &format!("third/{repo}")),
            Some(image.digest.clone()),
            "{a}/{repo}\n{}",
            stdout_of(&out)
        );
        assert_eq!(
            remote_digest(&t.plain, &format!("mirror/{repo}")),
            Some(image.digest.clone()),
            "{b}/{repo}"
        );
    }
    // The result lines name each destination's target, and a line per destination counts them.
    let synced = lines_starting(&out, "synced");
    let mut expected: Vec<String> = ["nginx", "redis"]
        .iter()
        .flat_map(|name| {
            [&a, &b].map(|prefix| format!("synced  {prefix}/docker.io/library/{name}:1"))
        })
        .collect();
    expected.sort();
    assert_eq!(synced, expected, "{}", stdout_of(&out));
    let stdout = stdout_of(&out);
    let tail: Vec<&str> = stdout.lines().rev().take(3).collect();
    assert_eq!(tail[2], format!("to {a}: 2 synced, 0 skipped, 0 failed"));
    assert_eq!(tail[1], format!("to {b}: 2 synced, 0 skipped, 0 failed"));
    assert!(
        tail[0].starts_with("4 images: 4 synced, 0 skipped, 0 failed in "),
        "{stdout}"
    );
    let written = report(&report_path);
    assert_eq!(written["destination"], format!("{a}, {b}"));
    let named: Vec<(String, String)> = images(&written)
        .iter()
        .map(|i| {
            (
                i["destination"].as_str().unwrap().to_owned(),
                i["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (destination, target) in &named {
        assert!(target.starts_with(&format!("{destination}/")), "{named:?}");
    }
    assert_eq!(named.len(), 4);

    let log = t.proxy.log();
    match &engine {
        Engine::Native => {
            // Every blob of the source (the shared base layers once), and every manifest, was
            // read from the source once for both destinations.
            let mut blobs: Vec<&String> = pushed.iter().flat_map(|(_, i)| &i.layers).collect();
            blobs.sort();
            blobs.dedup();
            assert_eq!(blobs.len(), 6, "2 bases and 2 top layers per image");
            for blob in blobs {
                let gets = t.proxy.requests("GET", &format!("/blobs/{blob}"));
                assert_eq!(gets.len(), 1, "{blob}: {gets:?}\n{log}");
            }
            let gets = t.proxy.requests("GET", "/blobs/");
            assert_eq!(
                gets.len(),
                6 + 4,
                "the layers and 4 configs, each once: {log}"
            );
            for (name, image) in &pushed {
                for manifest in std::iter::once(&image.digest).chain(&image.platform_digests) {
                    let path = format!("/v2/library/{name}/manifests/{manifest}");
                    assert_eq!(t.proxy.requests("GET", &path).len(), 1, "{path}\n{log}");
                }
            }
            assert_eq!(t.proxy.requests("GET", "/manifests/").len(), 6, "{log}");
            // One digest lookup per source, whatever the destinations.
            assert_eq!(t.proxy.requests("HEAD", "/manifests/").len(), 2, "{log}");
            assert!(t.m.invocations().is_empty(), "the native engine ran a tool");
        }
        Engine::Skopeo | Engine::Crane(_) => {
            // One copy per image and destination, each to its own destination.
            let runs = t.m.invocations();
            assert_eq!(runs.len(), 4, "{runs:?}");
            for prefix in [&a, &b] {
                let to = runs
                    .iter()
                    .filter(|argv| argv.iter().any(|arg| arg.contains(prefix.as_str())))
                    .count();
                assert_eq!(to, 2, "{prefix}: {runs:?}");
            }
        }
    }

    // Both destinations verify, each entry naming its destination; a rerun copies nothing.
    let verify_report = t.m.scratch.path().join("verify.json");
    let verified = run(
        t.ferry("verify", &list).arg("--report").arg(&verify_report),
        0,
    );
    assert!(
        stdout_of(&verified).contains("4 targets: 4 verified, 0 with problems"),
        "{}",
        stdout_of(&verified)
    );
    let entries = report(&verify_report)["entries"].clone();
    let destinations: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        destinations,
        [a.as_str(), b.as_str(), a.as_str(), b.as_str()]
    );
    let again = run(&mut t.ferry("sync", &list), 0);
    assert!(
        stdout_of(&again).contains("4 images: 0 synced, 4 skipped, 0 failed"),
        "{}",
        stdout_of(&again)
    );
}

fn a_destination_that_is_down_fails_its_own_entries_only(engine: Engine) {
    let mut t = Two::new(engine);
    let nginx = t.m.push("library/nginx:1", "nginx");
    let redis = t.m.push("library/redis:1", "redis");
    t.plain.stop();
    let list = t.m.write("images.list", "nginx:1\nredis:1\n");
    let report_path = t.m.scratch.path().join("report.json");
    let out = run(
        t.ferry("sync", &list)
            .args(["--retry-times", "1", "--retry-delay", "100ms"])
            .arg("--report")
            .arg(&report_path),
        1,
    );
    let (a, b) = (t.tls_prefix(), t.plain_prefix());
    for (name, digest) in [("nginx", &nginx), ("redis", &redis)] {
        assert_eq!(
            remote_digest(&t.m.dest, &format!("third/docker.io/library/{name}:1")).as_ref(),
            Some(digest),
            "{}",
            stdout_of(&out)
        );
    }
    assert_eq!(
        lines_starting(&out, "synced"),
        [
            format!("synced  {a}/docker.io/library/nginx:1"),
            format!("synced  {a}/docker.io/library/redis:1"),
        ],
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        lines_starting(&out, "failed"),
        [
            format!("failed  {b}/docker.io/library/nginx:1"),
            format!("failed  {b}/docker.io/library/redis:1"),
        ],
        "{}",
        stdout_of(&out)
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!("to {a}: 2 synced, 0 skipped, 0 failed\nto {b}: 0 synced, 0 skipped, 2 failed\n4 images: 2 synced, 0 skipped, 2 failed in ")),
        "{stdout}"
    );
    let report = report(&report_path);
    for image in images(&report) {
        let failed = image["destination"] == b.as_str();
        assert_eq!(
            image["status"],
            if failed { "failed" } else { "synced" },
            "{image}"
        );
        if failed {
            assert_eq!(image["error"]["kind"], "network", "{image}");
        }
    }
}

/// An entry's shard is where its target under the first destination puts it: each shard
/// holds the same entries as with that destination alone, now for every destination.
#[test]
fn an_entrys_shard_does_not_depend_on_the_destinations() {
    let list: String = (0..12)
        .map(|i| format!("quay.io/team/app{i}:1\n"))
        .collect();
    let shown = |shard: &str, dests: &[&str]| -> Vec<String> {
        let t = Test::new().file("list.txt", &list);
        let mut args = vec!["show-images", "list.txt", "--shard", shard];
        for dest in dests {
            args.extend(["--dest", dest]);
        }
        let ran = t.args(args).run();
        ran.stdout().lines().map(str::to_owned).collect()
    };
    let mut every = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let alone = shown(&shard, &["a.example/m"]);
        let both = shown(&shard, &["a.example/m", "b.example/x"]);
        let expected: Vec<String> = alone
            .iter()
            .flat_map(|target| {
                [
                    target.clone(),
                    target.replacen("a.example/m/", "b.example/x/", 1),
                ]
            })
            .collect();
        assert_eq!(both, expected, "shard {shard}");
        // The other order of destinations places entries by b.example/x.
        let swapped = shown(&shard, &["b.example/x", "a.example/m"]);
        assert_eq!(swapped.len(), 2 * shown(&shard, &["b.example/x"]).len());
        every.extend(alone);
    }
    every.sort();
    assert_eq!(every.len(), 12, "each entry in one shard: {every:?}");
}

/// What several destinations cannot take is refused before anything runs: a target with a
/// registry of its own, the same destination twice, and --dest-dir beside them.
#[test]
fn what_several_destinations_cannot_take_is_a_usage_error() {
    Test::new()
        .file("list.txt", "nginx:1\nredis:7 h.example/base/redis\n")
        .args([
            "show-images",
            "list.txt",
            "--dest",
            "a.example/m",
            "--dest",
            "b.example",
        ])
        .code(2)
        .stderr(
            "list.txt:2: target \"h.example/base/redis\" names its registry, so it cannot go to \
             each of the 2 destinations: write it without the registry host (it is then placed \
             under each --dest), or mirror it in a run of its own\n\
             ferry: error: 1 problem in the input; nothing was copied\n",
        )
        .run();
    Test::new()
        .file("list.txt", "nginx:1\n")
        .args([
            "sync",
            "list.txt",
            "--dest",
            "a.example/m",
            "--dest",
            "a.example/m",
        ])
        .code(2)
        .stderr(
            "ferry: error: --dest a.example/m is given twice: each destination receives every \
             image once\n",
        )
        .run();
    Test::new()
        .file("list.txt", "nginx:1\n")
        .args([
            "plan",
            "list.txt",
            "--dest",
            "a.example/m",
            "--dest",
            "b.example",
            "--dest-dir",
            "d",
        ])
        .code(2)
        .stderr(
            "ferry: error: --dest and --dest-dir cannot be used together: --dest mirrors into a \
             registry, --dest-dir into local OCI layouts\n",
        )
        .run();
    // A target without a registry host goes under each destination.
    Test::new()
        .file("list.txt", "redis:7 base/redis\n")
        .args([
            "show-images",
            "list.txt",
            "--dest",
            "a.example/m",
            "--dest",
            "b.example",
        ])
        .stdout("a.example/m/base/redis:7\nb.example/base/redis:7\n")
        .run();
}
