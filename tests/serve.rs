//! `ferry serve` on real registries: runs on a schedule seen through `/metrics` (parsed as the
//! Prometheus text format), inputs read again before each run, a broken list failing its run
//! while the server stays up, and SIGTERM in the middle of a run.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::mirror::*;
use common::*;

/// `GET path` on `addr`: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the endpoint answers");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The metrics, parsed by a Prometheus text-format parser.
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// Starts `ferry serve` and returns it with the address it listens on (read from stderr) and
/// the rest of its stderr as lines.
fn start(
    m: &Mirror,
    list: &std::path::Path,
    extra: &[&str],
) -> (Child, String, mpsc::Receiver<String>) {
    let mut cmd = m.ferry();
    cmd.arg("serve")
        .arg(list)
        .arg("--dest")
        .arg(m.prefix())
        .args([
            "--dest-tls-verify=false",
            "--listen",
            "127.0.0.1:0",
            "--progress",
            "none",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ferry serve starts");
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve says where it listens");
        if let Some(rest) = line.split_once("on http://") {
            break rest.1.trim().to_owned();
        }
    };
    (child, addr, rx)
}

/// Waits until `runs_total` counts `n` runs with `result`.
fn wait_for_runs(addr: &str, result: &str, n: f64) -> prometheus_parse::Scrape {
    let mut last = None;
    wait_until(
        Duration::from_secs(30),
        &format!("{n} {result} runs"),
        || {
            let s = scrape(addr);
            let done = value(&s, "ferry_runs_total", &[("result", result)]) >= n;
            last = Some(s);
            done
        },
    );
    last.unwrap()
}

#[test]
fn serve_runs_on_schedule_rereads_its_inputs_and_survives_a_broken_list() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    m.push("library/redis:1", "redis-1");
    m.push("library/alpine:1", "alpine-1");
    let list = m.write("images.list", "nginx:1\nredis:1\n");
    let (mut child, addr, _stderr) = start(&m, &list, &["--every", "2s"]);
    assert_eq!(get(&addr, "/healthz").0, 200);

    // The first run copies both images.
    let first = wait_for_runs(&addr, "success", 1.0);
    assert_eq!(
        value(&first, "ferry_last_run_images", &[("status", "synced")]),
        2.0
    );
    assert!(value(&first, "ferry_last_success_timestamp_seconds", &[]) > 1.7e9);
    assert!(value(&first, "ferry_registry_requests_total", &[("class", "2xx")]) > 0.0);
    // The second copies nothing: both are current.
    let second = wait_for_runs(&addr, "success", 2.0);
    assert_eq!(
        value(&second, "ferry_last_run_images", &[("status", "synced")]),
        0.0
    );
    assert_eq!(
        value(&second, "ferry_last_run_images", &[("status", "skipped")]),
        2.0
    );
    assert_eq!(
        value(&second, "ferry_images_total", &[("status", "synced")]),
        2.0
    );
    assert_eq!(m.invocations().len(), 2, "the no-op run starts no skopeo");

    // An edited list takes effect on the next run.
    std::fs::write(&list, "nginx:1\nredis:1\nalpine:1\n").unwrap();
    wait_until(Duration::from_secs(30), "the added image is copied", || {
        let s = scrape(&addr);
        value(&s, "ferry_images_total", &[("status", "synced")]) >= 3.0
    });
    assert!(remote_digest(&m.dest, "third/docker.io/library/alpine:1").is_some());

    // A broken list fails its run; the server stays up and says it is not ready.
    std::fs::write(&list, "nginx:1\nNot A Reference\n").unwrap();
    let broken = wait_for_runs(&addr, "invalid-input", 1.0);
    assert_eq!(value(&broken, "ferry_inputs_valid", &[]), 0.0);
    assert_eq!(get(&addr, "/readyz").0, 503);
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve exited on a broken list"
    );

    // Fixed, it is ready again.
    std::fs::write(&list, "nginx:1\n").unwrap();
    wait_until(Duration::from_secs(30), "ready again", || {
        get(&addr, "/readyz").0 == 200
    });
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(15),
        "serve ends on SIGTERM",
    );
    assert_eq!(status.code(), Some(143));
}

#[test]
fn sigterm_in_the_middle_of_a_run_stops_it_and_exits_143_with_no_child_left() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    let list = m.write("images.list", "nginx:1\n");
    // A skopeo that hangs: the run is under way while it sleeps.
    let fake = m.scratch.path().join("hanging-skopeo");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 307\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let report = m.scratch.path().join("report.json");
    let (mut child, addr, _stderr) = start(
        &m,
        &list,
        &[
            "--every",
            "1h",
            "--skopeo",
            fake.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    wait_until(Duration::from_secs(15), "the copy runs", || {
        processes_matching("sleep 307").lines().count() == 1
    });
    assert_eq!(value(&scrape(&addr), "ferry_copies_in_flight", &[]), 1.0);
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(15),
        "serve stops on SIGTERM",
    );
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        processes_matching("sleep 307"),
        "",
        "a child outlived serve"
    );
    let written = common::mirror::report(&report);
    assert_eq!(
        images(&written)[0]["error"]["kind"],
        "interrupted",
        "{written:#}"
    );
}

#[test]
fn sighup_starts_a_run_now() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    let list = m.write("images.list", "nginx:1\n");
    let (mut child, addr, _stderr) = start(&m, &list, &["--every", "1h"]);
    wait_for_runs(&addr, "success", 1.0);
    send_signal(child.id(), "HUP");
    let second = wait_for_runs(&addr, "success", 2.0);
    assert_eq!(
        value(&second, "ferry_last_run_images", &[("status", "skipped")]),
        1.0
    );
    let status = signal_and_wait(
        &mut child,
        "INT",
        Duration::from_secs(15),
        "serve ends on SIGINT",
    );
    assert_eq!(status.code(), Some(130));
}

/// With the native engine the bytes copied are counted, once: the second run copies nothing.
#[test]
fn serve_with_the_native_engine_counts_the_bytes_it_copies() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    let list = m.write("images.list", "nginx:1\n");
    let (mut child, addr, _stderr) = start(&m, &list, &["--every", "2s", "--engine", "native"]);
    let first = wait_for_runs(&addr, "success", 1.0);
    let bytes = value(&first, "ferry_copied_bytes_total", &[]);
    // At least the image's layers and configs: what the source holds for it.
    let blobs = blob_bytes(&m.source, "library/nginx", "1");
    assert!(blobs > 0);
    assert_eq!(
        bytes, blobs as f64,
        "the bytes counted are the image's blobs"
    );
    let second = wait_for_runs(&addr, "success", 2.0);
    assert_eq!(value(&second, "ferry_copied_bytes_total", &[]), bytes);
    assert!(
        m.invocations().is_empty(),
        "the native engine starts no skopeo"
    );
    let status = signal_and_wait(&mut child, "TERM", Duration::from_secs(15), "serve ends");
    assert_eq!(status.code(), Some(143));
}

/// The sizes of every config and layer under `repo:reference` in `registry`, each blob once.
fn blob_bytes(registry: &Registry, repo: &str, reference: &str) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![reference.to_owned()];
    while let Some(reference) = pending.pop() {
        let separator = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let raw = raw_manifest(registry, &format!("{repo}{separator}{reference}")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            pending.push(child["digest"].as_str().unwrap().to_owned());
        }
        let blobs = manifest["layers"].as_array().into_iter().flatten();
        for blob in blobs.chain(manifest.get("config")) {
            if seen.insert(blob["digest"].as_str().unwrap().to_owned()) {
                total += blob["size"].as_u64().unwrap();
            }
        }
    }
    total
}
