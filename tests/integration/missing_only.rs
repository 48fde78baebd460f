//! `--missing-only`: a tag already at the destination is taken as current without a single
//! request to the source (counted at a proxy in front of it), a new tag in the list is still
//! copied, and a tag `--always-check` names (`latest` by default) is still compared, so one
//! moved upstream is updated.

use crate::common::engines::{engine_tests, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

// skopeo plans both sides at once, the native engine looks the target up first: both must
// leave the source alone.
engine_tests!(a_rerun_asks_the_source_nothing_but_new_and_moving_tags: skopeo, native);

fn a_rerun_asks_the_source_nothing_but_new_and_moving_tags(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    m.push("library/app:1.0", "app-1.0");
    m.push("library/app:1.1", "app-1.1");
    m.push("library/tool:2", "tool-2");
    let old_latest = m.push("library/app:latest", "app-latest-1");
    // Every request to the source goes through the proxy, which logs it.
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.source.addr(), f64::INFINITY);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "app:1.0\napp:1.1\ntool:2\napp:latest\n");
    let sync = |extra: &[&str]| {
        let mut cmd = m.sync(&list);
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf).args(extra);
        cmd
    };
    run(&mut sync(&[]), 0);
    let target = |image: &str| format!("{}/docker.io/library/{image}", m.prefix());
    assert_eq!(m.target_digest(&target("app:latest")), Some(old_latest));

    // A no-op: the fixed tags cost no source request, `latest` one HEAD.
    let seen = proxy.log().lines().count();
    Test::mirror(&m, sync(&["--missing-only"]))
        .stdout_results(format!(
            "skipped {}  [t]  current at sha256:[..]\n\
             skipped {}  [t]  current at sha256:[..]\n\
             skipped {}  [t]  current at sha256:[..]\n\
             skipped {}  [t]  current at sha256:[..]\n\
             4 images: 0 synced, 4 skipped, 0 failed in [t]\n",
            target("app:1.0"),
            target("app:1.1"),
            target("tool:2"),
            target("app:latest"),
        ))
        .run();
    let asked: Vec<String> = proxy.log().lines().skip(seen).map(str::to_owned).collect();
    assert!(
        asked
            .iter()
            // `- - 400`: the probe for HTTPS of a registry registries.conf marks insecure.
            .all(|line| line.contains("/manifests/latest") || line == "- - 400"),
        "the source was asked about a fixed tag:\n{}",
        asked.join("\n")
    );
    assert!(
        asked.iter().any(|line| line.contains("/manifests/latest")),
        "latest was not compared: {asked:?}"
    );

    // Without `latest` in the list, a rerun sends the source nothing at all.
    let fixed = m.write("fixed.list", "app:1.0\napp:1.1\ntool:2\n");
    let seen = proxy.log().lines().count();
    let mut cmd = m.sync(&fixed);
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .arg("--missing-only");
    let out = run(&mut cmd, 0);
    assert!(
        stdout_of(&out).contains("3 images: 0 synced, 3 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    let log = proxy.log();
    let asked: Vec<&str> = log.lines().skip(seen).collect();
    assert_eq!(
        asked.len(),
        0,
        "a --missing-only no-op asked the source:\n{}",
        asked.join("\n")
    );

    // `latest` moved upstream, and a new tag joined the list: both are copied.
    let new_latest = m.push("library/app:latest", "app-latest-2");
    let new_tag = m.push("library/app:1.2", "app-1.2");
    std::fs::write(&list, "app:1.0\napp:1.1\ntool:2\napp:latest\napp:1.2\n").unwrap();
    let seen = proxy.log().lines().count();
    let out = run(&mut sync(&["--missing-only"]), 0);
    assert!(
        stdout_of(&out).contains("5 images: 2 synced, 3 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(m.target_digest(&target("app:latest")), Some(new_latest));
    assert_eq!(m.target_digest(&target("app:1.2")), Some(new_tag));
    let log = proxy.log();
    let asked: Vec<&str> = log.lines().skip(seen).collect();
    for fixed in ["/manifests/1.0", "/manifests/1.1", "tool/manifests/2"] {
        assert!(
            !asked.iter().any(|line| line.contains(fixed)),
            "the source was asked about {fixed}:\n{}",
            asked.join("\n")
        );
    }
}

/// `plan --missing-only` shows the entries it took as current without their source digests and
/// says how many; `--always-check` replaces the default; `verify` refuses the flag.
#[test]
fn plan_says_which_entries_were_not_compared() {
    let m = Mirror::new(false);
    m.push("library/app:1.0", "app-1.0");
    m.push("library/app:nightly", "app-nightly");
    let list = m.write("images.list", "app:1.0\napp:nightly\n");
    run(&mut m.sync(&list), 0);
    let plan = |extra: &[&str]| {
        Test::mirror(&m, m.ferry())
            .args([
                "plan",
                "images.list",
                "--dest",
                &m.prefix(),
                "--dest-tls-verify=false",
            ])
            .args(extra)
    };
    let app = format!("{}/docker.io/library/app", m.prefix());
    plan(&["--missing-only"])
        .stdout(format!(
            "STATE    SOURCE[..]TARGET[..]SOURCE DIGEST[..]TARGET DIGEST\n\
             current  docker.io/library/app:1.0[..]{app}:1.0[..]-[..]sha256:[..]\n\
             current  docker.io/library/app:nightly[..]{app}:nightly[..]sha256:[..]sha256:[..]\n\
             --missing-only: 1 entry present at the destination taken as current, their sources not asked\n\
             2 entries: 0 new, 0 changed, 2 current, 0 source-missing, 0 unknown ([..] requests in [t])\n"
        ))
        .run();
    plan(&["--missing-only", "--always-check", "1\\..*"])
        .stdout(format!(
            "STATE    SOURCE[..]TARGET[..]SOURCE DIGEST[..]TARGET DIGEST\n\
             current  docker.io/library/app:1.0[..]{app}:1.0[..]sha256:[..]sha256:[..]\n\
             current  docker.io/library/app:nightly[..]{app}:nightly[..]-[..]sha256:[..]\n\
             --missing-only: 1 entry present at the destination taken as current, their sources not asked\n\
             2 entries: 0 new, 0 changed, 2 current, 0 source-missing, 0 unknown ([..] requests in [t])\n"
        ))
        .run();
    plan(&["--always-check", "x"])
        .code(2)
        .stderr(
            "ferry: error: the following required arguments were not provided:\n  \
             --missing-only\n\nUsage: ferry plan [..]\n\nFor more information, try '--help'.\n",
        )
        .run();
    plan(&["--missing-only", "--always-check", "("])
        .code(2)
        .stderr("ferry: error: invalid --always-check regex \"(\": [..]\n")
        .run();
    Test::mirror(&m, m.ferry())
        .args(["verify", "images.list", "--dest", &m.prefix(), "--missing-only"])
        .code(2)
        .stderr("ferry: error: verify compares every target with its source; --missing-only is for plan and sync\n")
        .run();
}
