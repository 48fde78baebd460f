//! Namespace lines (`quay.io/ns/*`, `gcr.io/gns/**`), listed the three ways registries offer:
//! a real registry:2's catalog (30 repositories under two namespaces, pages of 10), Google's
//! `child` field and Docker Hub's Hub API (stand-ins from `scripts/listing-registry.py` in
//! front of real registries, which serve the images); a registry with no way is an error
//! naming the ways tried. Offline listings show the line as written.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::engines::{engine_tests, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

/// The sources of a plan report's entries, without their tags, each once.
fn repositories(report: &serde_json::Value) -> BTreeSet<String> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let source = e["source"].as_str().unwrap();
            source
                .rsplit_once(':')
                .map_or(source, |(repo, _)| repo)
                .to_owned()
        })
        .collect()
}

fn names(prefix: &str, relatives: &[&str]) -> BTreeSet<String> {
    relatives.iter().map(|r| format!("{prefix}/{r}")).collect()
}

/// Pushes the image in `layout` as `REPO:1.0` for every repository, four at a time.
fn push_all(registry: &Registry, layout: &Path, repos: &[String]) {
    for chunk in repos.chunks(4) {
        std::thread::scope(|scope| {
            for repo in chunk {
                scope.spawn(move || push(registry, layout, &format!("{repo}:1.0")));
            }
        });
    }
}

#[test]
fn a_catalog_expands_namespaces_by_depth_with_exclusions_past_its_pages() {
    let m = Mirror::with_engine(false, Engine::Native);
    // registry:2 with catalog pages of 10: ferry's first ask (n=1000) is refused, and the
    // listing then pages through the registry's own pages of 10.
    let source = Registry::start_plain_paging_catalog(10);
    let direct: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    let mut repos: Vec<String> = direct.iter().map(|r| format!("quay/ns/{r}")).collect();
    repos.extend((0..6).map(|i| format!("quay/ns/sub/b{i}")));
    repos.extend((0..2).map(|i| format!("quay/ns/sub/deep/c{i}")));
    repos.extend((0..10).map(|i| format!("quay/other/d{i}")));
    assert_eq!(repos.len(), 30);
    let (layout, _) = make_image(m.scratch.path(), "namespaced");
    push_all(&source, &layout, &repos);
    assert_eq!(catalog(&source).len(), 30);
    let conf = registries_conf(
        m.scratch.path(),
        &[("quay.io", &format!("{}/quay", source.addr()))],
    );
    let plan = |list: &str, extra: &[&str]| {
        let name = format!("ns-{}.list", unique());
        let list_path = m.write(&name, list);
        let report_path = m.scratch.path().join(format!("plan-{}.json", unique()));
        let out = run(
            m.ferry()
                .env("CONTAINERS_REGISTRIES_CONF", &conf)
                .arg("plan")
                .arg(&list_path)
                .args(["--dest", &m.prefix(), "--dest-tls-verify=false", "--report"])
                .arg(&report_path)
                .args(extra),
            0,
        );
        (out, report(&report_path), list_path.display().to_string())
    };
    let all_direct: Vec<&str> = direct.iter().map(String::as_str).collect();

    // `*`: exactly the repositories directly under it.
    let (out, planned, list) = plan("quay.io/ns/*\n", &["-v"]);
    assert_eq!(repositories(&planned), names("quay.io/ns", &all_direct));
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!(
            "namespace  quay.io/ns/* ({list}:1): 12 repositories by GET /v2/_catalog ("
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "listed  quay.io/ns/a11  (quay.io/ns/*, {list}:1)\n"
        )),
        "{stdout}"
    );

    // `**`: every depth; the other namespace never.
    let mut deep = all_direct.clone();
    deep.extend(["sub/b0", "sub/b1", "sub/b2", "sub/b3", "sub/b4", "sub/b5"]);
    deep.extend(["sub/deep/c0", "sub/deep/c1"]);
    let (_, planned, _) = plan("quay.io/ns/**\n", &[]);
    assert_eq!(repositories(&planned), names("quay.io/ns", &deep));

    // --exclude-repos drops the names under the namespace it matches, whole.
    let (out, planned, list) = plan(
        "quay.io/ns/**\n",
        &["--exclude-repos", "a1.*|sub/deep/.*", "-v"],
    );
    let kept: Vec<&str> = deep
        .iter()
        .copied()
        .filter(|r| !["a1", "a10", "a11", "sub/deep/c0", "sub/deep/c1"].contains(r))
        .collect();
    assert_eq!(repositories(&planned), names("quay.io/ns", &kept));
    assert!(
        stdout_of(&out).contains(&format!(
            "excluded  quay.io/ns/sub/deep/c0  (--exclude-repos, {list}:1)\n"
        )),
        "{}",
        stdout_of(&out)
    );

    // The same in skopeo's YAML: a repository key ending in /*.
    let yaml = m.write("ns.yaml", "quay.io:\n  images:\n    \"ns/*\": []\n");
    let report_path = m.scratch.path().join("yaml-plan.json");
    run(
        m.ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("plan")
            .arg(&yaml)
            .args(["--dest", &m.prefix(), "--dest-tls-verify=false", "--report"])
            .arg(&report_path),
        0,
    );
    assert_eq!(
        repositories(&report(&report_path)),
        names("quay.io/ns", &all_direct)
    );

    // A namespace past --max-repos fails with the flag named, copying nothing of it.
    let (out, planned, list) = plan(
        "quay.io/ns/*\nquay.io/other/d0:1.0\n",
        &["--max-repos", "5"],
    );
    assert_eq!(
        repositories(&planned),
        names("quay.io/other", &["d0"]),
        "{}",
        stdout_of(&out)
    );
    assert!(
        stdout_of(&out).contains(&format!(
            "unknown  quay.io/ns/* ({list}:1): other: quay.io/ns/* lists more than --max-repos 5 \
             repositories; raise --max-repos, or name a narrower namespace\n"
        )),
        "{}",
        stdout_of(&out)
    );

    // Sharded: each repository's tags in one shard, the shards together every repository.
    let mut seen = BTreeSet::new();
    for k in 0..3 {
        let (_, planned, _) = plan("quay.io/ns/**\n", &["--shard", &format!("{k}/3")]);
        for repository in repositories(&planned) {
            assert!(
                seen.insert(repository.clone()),
                "{repository} in two shards"
            );
        }
    }
    assert_eq!(seen, names("quay.io/ns", &deep));

    // Copied, then one repository disappears upstream: said, and kept at the destination.
    let list = m.write("direct.list", "quay.io/ns/*\n");
    let out = run(m.sync(&list).env("CONTAINERS_REGISTRIES_CONF", &conf), 0);
    assert!(
        stdout_of(&out).contains("12 images: 12 synced, 0 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    std::fs::remove_dir_all(source.repository_dir("quay/ns/a0")).unwrap();
    let out = run(m.sync(&list).env("CONTAINERS_REGISTRIES_CONF", &conf), 0);
    assert!(
        stdout_of(&out).contains("11 images: 0 synced, 11 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    let target = format!("{}/quay.io/ns/a0", m.prefix());
    assert_eq!(
        stderr_of(&out),
        format!(
            "ferry: warning: {}:1: quay.io/ns/a0 is no longer listed under quay.io/ns/*; its \
             mirror {target} is kept (ferry never deletes)\n",
            list.display()
        )
    );
    assert_eq!(tags(&m.dest, "third/quay.io/ns/a0"), ["1.0"]);
}

// Google's listing with skopeo and with ferry's own engine (both pull through the stand-in).
engine_tests!(google_child_listings_expand_and_copy: skopeo, native);

fn google_child_listings_expand_and_copy(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let mut digests = Vec::new();
    for repo in ["gns/a", "gns/sub/b", "gns/sub/c", "other/z"] {
        digests.push((repo, m.push(&format!("{repo}:1"), repo)));
    }
    let google = ScriptProxy::listing(m.scratch.path(), &m.source.addr(), "google", &[]);
    let conf = registries_conf(m.scratch.path(), &[("gcr.io", &google.addr())]);
    let list = m.write("google.list", "gcr.io/gns/**\n");
    let out = run(m.sync(&list).env("CONTAINERS_REGISTRIES_CONF", &conf), 0);
    assert!(
        stdout_of(&out).contains("3 images: 3 synced, 0 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    for (repo, digest) in &digests[..3] {
        let target = format!("{}/gcr.io/{repo}:1", m.prefix());
        assert_eq!(m.target_digest(&target).as_ref(), Some(digest), "{target}");
    }
    let log = google.log();
    assert!(
        !log.contains("/v2/_catalog"),
        "a catalog was asked for:\n{log}"
    );
    // The listing read each repository's tags: planning asked no more.
    for repo in ["gns/a", "gns/sub/b", "gns/sub/c"] {
        let asked = log
            .lines()
            .filter(|l| l.starts_with(&format!("GET /v2/{repo}/tags/list")))
            .count();
        assert_eq!(asked, 1, "{repo}:\n{log}");
    }

    // `*` takes only what is directly under it; -v says how it was listed.
    let direct = m.write("direct.list", "gcr.io/gns/*\n");
    Test::mirror(&m, m.ferry())
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args([
            "plan",
            "direct.list",
            "--dest",
            &m.prefix(),
            "--dest-tls-verify=false",
            "-v",
        ])
        .stdout(
            "STATE    SOURCE[..]\n\
             current  gcr.io/gns/a:1[..]\n\
             namespace  gcr.io/gns/* (direct.list:1): 1 repository by Google's child \
             field of GET /v2/…/tags/list (3 listings)\n\
             listed  gcr.io/gns/a  (gcr.io/gns/*, direct.list:1)\n\
             1 entry: 0 new, 0 changed, 1 current, 0 source-missing, 0 unknown ([..])\n",
        )
        .run();
    drop(direct);
}

#[test]
fn the_hub_api_lists_a_docker_hub_namespace_with_its_own_login() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("hubns/x:1", "x");
    m.push("hubns/y:1", "y");
    // Not one level below: Docker Hub has no such repositories.
    m.push("hubns/z/deep:1", "deep");
    let hub = ScriptProxy::listing(
        m.scratch.path(),
        &m.source.addr(),
        "hub",
        &["--page-size", "1", "--login", "hubuser:hub-pass"],
    );
    let hub_api = format!("http://{}", hub.addr());
    let list = m.write("hub.list", "hubns/*\n");
    let failed_list = m.scratch.path().join("failed.list");
    let out = run(
        m.sync(&list)
            .args(["--hub-api", &hub_api, "--failed-list"])
            .arg(&failed_list)
            .env("FERRY_SRC_CREDS", "hubuser:hub-pass"),
        0,
    );
    assert!(
        stdout_of(&out).contains("2 images: 2 synced, 0 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    let log = hub.log();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "POST /v2/users/login 200",
            "GET /v2/namespaces/hubns/repositories?page_size=100 200",
            "GET /v2/namespaces/hubns/repositories?page_size=1&page=2 200",
        ],
        "{log}"
    );

    // A login the Hub API refuses fails the line, which the failed list feeds back.
    let out = run(
        m.sync(&list)
            .args(["--hub-api", &hub_api, "--failed-list"])
            .arg(&failed_list)
            .env("FERRY_SRC_CREDS", "hubuser:wrong"),
        1,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!("failed  {}/docker.io/hubns/*  ", m.prefix()))
            && stdout.contains(
                "  unauthorized: could not list the repositories of docker.io/hubns/* (1 \
                 attempt), so nothing was copied for it: logging in to the Docker Hub API: \
                 unauthorized (HTTP 401)\n"
            ),
        "{stdout}"
    );
    let failed = std::fs::read_to_string(&failed_list).unwrap();
    assert!(
        failed.contains(&format!(
            "\ndocker.io/hubns/* {}/docker.io/hubns  # {}:1 (unauthorized)\n",
            m.prefix(),
            list.display()
        )),
        "{failed}"
    );
}

#[test]
fn a_registry_with_no_way_to_list_is_named_with_the_ways_tried() {
    let m = Mirror::with_engine(false, Engine::Native);
    m.push("quay/ns/a:1", "a");
    let bare = ScriptProxy::listing(m.scratch.path(), &m.source.addr(), "bare", &[]);
    let conf = registries_conf(
        m.scratch.path(),
        &[("quay.io", &format!("{}/quay", bare.addr()))],
    );
    m.write("ns.list", "quay.io/ns/*\n");
    let bare = bare.addr();
    Test::mirror(&m, m.ferry())
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args([
            "plan",
            "ns.list",
            "--dest",
            &m.prefix(),
            "--dest-tls-verify=false",
        ])
        .stdout(format!(
            "STATE  SOURCE  TARGET  SOURCE DIGEST  TARGET DIGEST\n\
             unknown  quay.io/ns/* (ns.list:1): other: {bare} offers no way to list the \
             repositories of quay.io/ns/*: GET /v2/quay/ns/tags/list answered HTTP 404 (no \
             Google registry's child field), GET /v2/_catalog answered HTTP 404 (no catalog), \
             and it is not Docker Hub (the Hub API); list its repositories one per line instead\n\
             1 entry: 0 new, 0 changed, 0 current, 0 source-missing, 1 unknown ([..])\n"
        ))
        .run();
}

#[test]
fn offline_listings_show_a_namespace_as_written_and_say_so() {
    let list = "nginx:1\nregistry.k8s.io/*\ngcr.io/g/** harbor.example/g\n";
    let notes = "ferry: note: list:2: registry.k8s.io/* is a namespace: its repositories are \
                 listed by plan and sync (plan -v names them), not offline\n\
                 ferry: note: list:3: gcr.io/g/** is a namespace: its repositories are listed \
                 by plan and sync (plan -v names them), not offline\n";
    Test::new()
        .file("list", list)
        .args(["show-images", "list", "--dest", "h.example/m"])
        .stdout(
            "h.example/m/docker.io/library/nginx:1\nh.example/m/registry.k8s.io/*\n\
             harbor.example/g/**\n",
        )
        .stderr(notes)
        .run();
    Test::new()
        .file("list", list)
        .args(["show-raw-images", "list"])
        .stdout("docker.io/library/nginx:1\nregistry.k8s.io/*\ngcr.io/g/**\n")
        .stderr(notes)
        .run();
    // A dry run sends no request: it names the namespace and what each repository gets.
    Test::new()
        .file("list", "registry.k8s.io/*\n")
        .args(["sync", "list", "--dest", "h.example/m", "--engine", "native", "--dry-run"])
        .stdout(
            "# list:1 -> registry.k8s.io/*\n\
             # for each repository REPO that registry.k8s.io/* lists, and each TAG of it that \
             passes the tag filters (the namespace is listed in a real run):\n\
             [..]registry.k8s.io/REPO:TAG[..]h.example/m/registry.k8s.io/REPO:TAG[..]\n\
             # dry run: 1 entry, nothing copied; targets already current are skipped in a real run\n",
        )
        .run();
    // What cannot work is an input error, before anything is listed.
    Test::new()
        .file(
            "list",
            "localhost:5000/ns/*\nquay.io/x/* h.example/y:1\ndocker.io/*\n",
        )
        .args(["plan", "list", "--dest", "h.example/m"])
        .code(2)
        .stderr(
            "list:2: the target \"h.example/y:1\" of namespace quay.io/x/* must be a repository \
             without a tag or digest: its repositories go under it\n\
             list:3: invalid namespace \"docker.io/*\": Docker Hub as a whole cannot be listed: \
             name a namespace of it (e.g. docker.io/bitnami/*)\n\
             list:1: cannot map \"localhost:5000/ns/*\" under \"h.example/m\": scoped name \
             would contain \"localhost:5000\", which is not a valid repository path component \
             (skopeo --scoped cannot create it either); give this image an explicit target (a \
             second column: SOURCE TARGET)\n\
             ferry: error: 3 problems in the input; nothing was copied\n",
        )
        .run();
}

#[test]
fn a_namespace_goes_to_each_of_several_destinations() {
    let m = Mirror::with_engine(false, Engine::Native);
    let second = Registry::start_plain();
    let a = m.push("gns/a:1", "gns/a");
    let b = m.push("gns/sub/b:1", "gns/sub/b");
    let google = ScriptProxy::listing(m.scratch.path(), &m.source.addr(), "google", &[]);
    let conf = registries_conf(m.scratch.path(), &[("gcr.io", &google.addr())]);
    let list = m.write("google.list", "gcr.io/gns/**\n");
    let other = format!("{}/other", second.addr());
    let out = run(
        m.sync(&list)
            .args(["--dest", &other])
            .env("CONTAINERS_REGISTRIES_CONF", &conf),
        0,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("4 images: 4 synced, 0 skipped, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("to {other}: 2 synced, 0 skipped, 0 failed")),
        "{stdout}"
    );
    for (repo, digest) in [("gns/a", &a), ("gns/sub/b", &b)] {
        let target = format!("{}/gcr.io/{repo}:1", m.prefix());
        assert_eq!(m.target_digest(&target).as_ref(), Some(digest), "{target}");
        let at_second = remote_digest(&second, &format!("other/gcr.io/{repo}:1"));
        assert_eq!(at_second.as_ref(), Some(digest), "{repo} at {other}");
    }
    // Each repository's tags were listed once, for both destinations.
    let log = google.log();
    for repo in ["gns/a", "gns/sub/b"] {
        let asked = log
            .lines()
            .filter(|l| l.starts_with(&format!("GET /v2/{repo}/tags/list")))
            .count();
        assert_eq!(asked, 1, "{repo}:\n{log}");
    }
    // Offline, the line shows under each destination.
    let out = run(
        m.ferry().arg("show-images").arg(&list).args([
            "--dest",
            "h.example/m",
            "--dest",
            "g.example/n",
        ]),
        0,
    );
    assert_eq!(
        stdout_of(&out),
        "h.example/m/gcr.io/gns/**\ng.example/n/gcr.io/gns/**\n"
    );
}
