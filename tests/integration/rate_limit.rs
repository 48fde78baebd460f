//! A source registry that allows 2 requests per second (`scripts/rate-limit-proxy.py` in front
//! of a real registry: a token bucket answering 429 with Retry-After, as Docker Hub does): ferry
//! and skopeo must get through it without a single failed image, and a no-op rerun must take
//! about tags / rate seconds, not fail.

use std::time::{Duration, Instant};

use crate::common::engines::{engine_tests, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

const RATE: f64 = 2.0;
const IMAGES: usize = 8;

// skopeo waits out a 429 with Retry-After, the native engine paces and retries each request
// itself; crane does neither (see the last test).
engine_tests!(
    a_throttled_source_syncs_without_failures_and_a_no_op_rerun_runs_at_its_rate: skopeo, native
);

fn a_throttled_source_syncs_without_failures_and_a_no_op_rerun_runs_at_its_rate(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let mut digests = Vec::new();
    for i in 0..IMAGES {
        digests.push(m.push(&format!("library/img-{i}:1.0"), &format!("img-{i}")));
    }
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.source.addr(), RATE);
    // docker.io now reaches the source only through the limiter.
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list: String = (0..IMAGES).map(|i| format!("img-{i}:1.0\n")).collect();
    let list = m.write("images.list", &list);
    let sync = |report: &str| {
        let mut cmd = m.sync(&list);
        cmd.env("CONTAINERS_REGISTRIES_CONF", &conf);
        cmd.args([
            "--retry-delay",
            "1s",
            "--max-retry-delay",
            "8s",
            "--retry-times",
            "8",
            "--report",
        ]);
        cmd.arg(m.scratch.path().join(report));
        cmd
    };

    let cold = Instant::now();
    let out = run(&mut sync("cold.json"), 0);
    let cold = cold.elapsed();
    let report_cold = report(&m.scratch.path().join("cold.json"));
    assert_eq!(
        report_cold["summary"]["synced"],
        IMAGES,
        "{}",
        stdout_of(&out)
    );
    assert_eq!(report_cold["summary"]["failed"], 0);
    for (i, digest) in digests.iter().enumerate() {
        let target = format!("{}/docker.io/library/img-{i}:1.0", m.prefix());
        assert_eq!(m.target_digest(&target).as_ref(), Some(digest), "{target}");
    }
    let cold_429s = proxy.throttled();
    // Said once, however many 429s carried the spent quota.
    assert_eq!(
        stderr_of(&out).matches("pull quota spent").count(),
        1,
        "{}",
        stderr_of(&out)
    );

    let no_op = Instant::now();
    let out = run(&mut sync("no-op.json"), 0);
    let no_op = no_op.elapsed();
    let report_no_op = report(&m.scratch.path().join("no-op.json"));
    assert_eq!(
        report_no_op["summary"]["skipped"],
        IMAGES,
        "{}",
        stdout_of(&out)
    );
    let expected = Duration::from_secs_f64(IMAGES as f64 / RATE);
    println!(
        "{}: cold {:.1}s ({cold_429s} x 429), no-op {:.1}s ({} x 429) for {IMAGES} tags at {RATE} req/s (expected about {:.1}s)",
        m.engine.name(),
        cold.as_secs_f64(),
        no_op.as_secs_f64(),
        proxy.throttled() - cold_429s,
        expected.as_secs_f64()
    );
    // One HEAD per tag at the source's pace: about tags / rate, never failing, never much slower.
    assert!(
        no_op >= expected / 2,
        "the no-op run was faster than the limiter allows: {no_op:?}"
    );
    assert!(
        no_op <= expected * 3,
        "the no-op run took {no_op:?}, expected about {expected:?}"
    );
}

/// Copies from a source that answered 429 go one at a time; from one that did not, in parallel.
/// A skopeo stand-in notes any overlap (a second copy starting while one runs).
#[test]
fn copies_from_a_throttled_source_take_turns() {
    let m = Mirror::new(false);
    for i in 0..4 {
        m.push(&format!("library/img-{i}:1.0"), &format!("img-{i}"));
    }
    let list: String = (0..4).map(|i| format!("img-{i}:1.0\n")).collect();
    let list = m.write("images.list", &list);
    let running = m.scratch.path().join("running");
    let overlap = m.scratch.path().join("overlap");
    let skopeo = m.write(
        "skopeo-stand-in",
        &format!(
            "#!/bin/sh\nif mkdir {r} 2>/dev/null; then sleep 0.5; rmdir {r}; else touch {o}; fi\n",
            r = running.display(),
            o = overlap.display()
        ),
    );
    std::fs::set_permissions(&skopeo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sync = |conf: &std::path::Path| {
        let mut cmd = m.sync(&list);
        cmd.env("CONTAINERS_REGISTRIES_CONF", conf)
            .args(["-j", "4", "--registry-jobs", "docker.io=4", "--skopeo"])
            .arg(&skopeo);
        cmd
    };

    // Unthrottled: the four copies overlap (so the stand-in does see overlap).
    run(&mut sync(&m.conf), 0);
    assert!(overlap.exists(), "four parallel copies never overlapped");
    std::fs::remove_file(&overlap).unwrap();

    // Behind the limiter the parallel lookups draw 429s: the copies then take turns.
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.source.addr(), RATE);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    run(&mut sync(&conf), 0);
    assert!(proxy.throttled() > 0, "the lookups were never throttled");
    assert!(
        !overlap.exists(),
        "copies from a throttled source overlapped"
    );
}

/// A registry that asks for an hour's silence (`Retry-After: 3600`) is not asked again every
/// two minutes for a quarter of an hour per lookup: the lookups end `rate-limited` at once.
#[test]
fn a_long_retry_after_ends_the_lookup_instead_of_waiting() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    m.push("library/redis:7", "redis");
    // One request an hour: the first passes, every other one is told to wait up to 3600 s.
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.source.addr(), 1.0 / 3600.0);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    let report_path = m.scratch.path().join("plan.json");
    let mut cmd = m.ferry();
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .arg("plan")
        .arg(&list)
        .arg("--dest")
        .arg(m.prefix())
        .arg("--dest-tls-verify=false")
        .arg("--report")
        .arg(&report_path);
    let started = Instant::now();
    let out = run(&mut cmd, 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the lookups waited: {:?}\n{}",
        started.elapsed(),
        stderr_of(&out)
    );
    let plan = report(&report_path);
    let kinds: Vec<&str> = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"]["kind"].as_str().unwrap_or("-"))
        .collect();
    assert!(kinds.contains(&"rate-limited"), "{plan:#}");
    assert!(
        stderr_of(&out).contains("gives up rather than wait"),
        "{}",
        stderr_of(&out)
    );
}

/// crane retries no 429 to a read and asks for the manifest right after its `/v2/` ping, so
/// behind a limiter without burst its run meets a 429: the failure is `rate-limited` and says
/// which engines wait such a limit out.
#[test]
fn a_crane_copy_refused_with_429_names_the_engines_that_wait_it_out() {
    let Some(engine) = Engine::crane() else {
        return;
    };
    let m = Mirror::with_engine(false, engine);
    m.push("library/img-0:1.0", "img-0");
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.source.addr(), RATE);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let list = m.write("images.list", "img-0:1.0\n");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(["--retry-times", "0", "--report"])
            .arg(&report_path),
        1,
    );
    let image = &report(&report_path)["images"][0];
    assert_eq!(
        image["error"]["kind"],
        "rate-limited",
        "{}",
        stdout_of(&out)
    );
    let message = image["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "(crane does not wait out a 429 itself; behind a strict rate limit, \
             --engine native or --engine skopeo does)"
        ),
        "{message}"
    );
    assert!(proxy.throttled() >= 1);
}
