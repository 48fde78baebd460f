//! Hostile and broken registries, end to end: `scripts/hostile-registry.py` in front of a real
//! `docker-registry`, meeting one repository with one attack (see the script's header), and
//! ferry run with each engine against it. A digest header that would lead out of the
//! repository is refused before any request uses it.

mod common;

use common::engines::{per_engine, Engine};
use common::mirror::*;
use common::script_proxy::ScriptProxy;
use common::*;

per_engine!(a_digest_header_that_leaves_the_repository_is_never_requested);

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
