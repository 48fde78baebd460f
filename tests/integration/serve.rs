//! `ferry serve` on real registries: runs on a schedule seen through `/metrics` (parsed as the
//! Prometheus text format), inputs read again before each run, a broken list failing its run
//! while the server stays up, and SIGTERM in the middle of a run; the schedule's checks and
//! the next run's time; the endpoint under `HEAD`, out of file descriptors, and with more
//! idle connections than it keeps open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::mirror::*;
use crate::common::*;

/// `GET path` on `addr`: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path)
}

/// `METHOD path` on `addr`: the status code and the body.
fn request(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the endpoint answers");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
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

/// Whether the scrape has any sample of `name`.
fn has(scrape: &prometheus_parse::Scrape, name: &str) -> bool {
    scrape.samples.iter().any(|s| s.metric == name)
}

/// Starts `ferry serve` and returns it with the address it listens on (read from stderr) and
/// the rest of its stderr as lines.
fn start(m: &Mirror, list: &Path, extra: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
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
        .args(extra);
    spawn_serve(cmd)
}

/// Starts `cmd` (a `ferry serve … --listen 127.0.0.1:0`) as [`start`] does.
fn spawn_serve(cmd: Command) -> (Child, String, mpsc::Receiver<String>) {
    spawn_serve_with(cmd, true)
}

/// Starts `cmd` as [`start`] does; unless `keep_stderr`, its stderr is closed once it said
/// where it listens, as in `ferry serve … 2>&1 | head -1`.
fn spawn_serve_with(
    mut cmd: Command,
    keep_stderr: bool,
) -> (Child, String, mpsc::Receiver<String>) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ferry serve starts");
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let last = !keep_stderr && line.contains("on http://");
            if tx.send(line).is_err() || last {
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
    // skopeo reports no byte counts: the series is left out rather than stuck at 0.
    assert!(!has(&first, "ferry_copied_bytes_total"));
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
    // The run that failed is the last run: it ran no image, whatever the one before did.
    for status in ["synced", "skipped", "failed"] {
        let last = value(&broken, "ferry_last_run_images", &[("status", status)]);
        assert_eq!(last, 0.0, "ferry_last_run_images{{status={status:?}}}");
    }
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
    let sleep = Sleeper::new(m.scratch.path(), 307);
    std::fs::write(&fake, format!("#!/bin/sh\nexec {}\n", sleep.command())).unwrap();
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
        sleep.running().lines().count() == 1
    });
    assert_eq!(value(&scrape(&addr), "ferry_copies_in_flight", &[]), 1.0);
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(15),
        "serve stops on SIGTERM",
    );
    assert_eq!(status.code(), Some(143));
    assert_eq!(sleep.running(), "", "a child outlived serve");
    let written = crate::common::mirror::report(&report);
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

// ---------------------------------------------------------------------------------------------
// The schedule

/// `ferry serve ARGS` with `env`, given 10 s to exit (a server that starts is killed, and its
/// exit code is then `timeout`'s 124).
fn serve_briefly(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = TempDir::new("serve-schedule");
    let list = dir.path().join("images.list");
    std::fs::write(&list, "nginx:1\n").unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["10", env!("CARGO_BIN_EXE_ferry"), "serve"])
        .arg(&list)
        .args(["--dest", "127.0.0.1:9/third", "--progress", "none"])
        .args(args)
        .env_remove("TZ")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd.output().expect("timeout runs")
}

#[test]
fn serve_refuses_a_schedule_it_cannot_keep_with_a_usage_error() {
    // (arguments, environment, what the error says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&[], &[], "--every <DURATION>|--cron <EXPR>"),
        // croner would take a 7th field as years.
        (&["--cron", "0 0 3 * * * 2030"], &[], "7 fields; give 5"),
        (&["--cron", "0 0 31 2 *"], &[], "names no time to come"),
        // chrono would silently take the system's zone.
        (
            &["--cron", "0 3 * * *"],
            &[("TZ", "Bogus/Zone")],
            "TZ=\"Bogus/Zone\" is no time zone",
        ),
        (
            &["--cron", "0 3 * * *"],
            &[("TZ", ":Nowhere/Town")],
            "TZ=\":Nowhere/Town\" is no time zone",
        ),
    ];
    for (args, env, says) in cases {
        let out = serve_briefly(args, env);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} {env:?}: {says:?} not in {stderr}"
        );
    }
}

/// A printed `next run at 2026-11-02 03:00:00 +05:30 (ZONE)`: its Unix time and zone.
fn next_run_line(line: &str) -> Option<(i64, String)> {
    let rest = line.strip_prefix("ferry: next run at ")?;
    let (time, zone) = rest.split_once(" (")?;
    let time = chrono::DateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S %:z").ok()?;
    Some((time.timestamp(), zone.strip_suffix(')')?.to_owned()))
}

/// The lines of `stderr` up to the first that `wanted` picks (within 30 s).
fn read_until<T>(stderr: &mpsc::Receiver<String>, mut wanted: impl FnMut(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr
            .recv_timeout(left)
            .expect("the line serve should print");
        if let Some(found) = wanted(&line) {
            return found;
        }
    }
}

#[test]
fn serve_says_when_the_next_cron_run_is_due_in_its_time_zone() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    let list = m.write("images.list", "nginx:1\n");
    // Every 3 seconds, in a zone half an hour off any whole-hour one.
    let mut cmd = m.ferry();
    cmd.env("TZ", "Asia/Kolkata");
    cmd.arg("serve")
        .arg(&list)
        .arg("--dest")
        .arg(m.prefix())
        .args(["--dest-tls-verify=false", "--listen", "127.0.0.1:0"])
        .args(["--progress", "none", "--cron", "*/3 * * * * *"]);
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (child, addr, stderr) = spawn_serve(cmd);
    let mut server = Server(child, stderr);
    let stderr = &server.1;
    let scheduled = read_until(stderr, |l| {
        l.starts_with("ferry: syncing").then(|| l.to_owned())
    });
    assert_eq!(
        scheduled,
        "ferry: syncing at \"*/3 * * * * *\" in Asia/Kolkata"
    );
    let line = read_until(stderr, |l| {
        l.starts_with("ferry: next run").then(|| l.to_owned())
    });
    assert!(line.contains(" +05:30 (Asia/Kolkata)"), "{line}");
    let (first, zone) = next_run_line(&line).expect("a local time with its offset and zone");
    assert_eq!(zone, "Asia/Kolkata");
    let now = started.as_secs() as i64;
    assert!(
        first > now - 1 && first <= now + 10 && first % 3 == 0,
        "the first run at {first}, started at {now}"
    );

    // After the run, the next one is said again, and exported.
    wait_for_runs(&addr, "success", 1.0);
    let (next, _) = read_until(stderr, next_run_line);
    assert!(next > first && next % 3 == 0, "{next} after {first}");
    let exported = value(&scrape(&addr), "ferry_next_run_timestamp_seconds", &[]) as i64;
    assert!(
        exported >= next && exported % 3 == 0,
        "ferry_next_run_timestamp_seconds {exported}, printed {next}"
    );
    let status = signal_and_wait(&mut server.0, "TERM", Duration::from_secs(15), "serve ends");
    assert_eq!(status.code(), Some(143));
}

// ---------------------------------------------------------------------------------------------
// The endpoint

/// A server that a test started, ended also when the test fails, and its stderr's lines
/// (kept: a closed pipe would fail the server's writes).
struct Server(Child, mpsc::Receiver<String>);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `ferry serve` that runs nothing for a year (`--cron "0 0 1 1 *"`), started under
/// `wrapper` (e.g. `prlimit`), and its address; its stderr closed after the address unless
/// `keep_stderr`.
fn idle_server(dir: &Path, wrapper: &[&str], keep_stderr: bool) -> (Server, String) {
    let list = dir.join("images.list");
    std::fs::write(&list, "nginx:1\n").unwrap();
    let mut cmd = Command::new(
        wrapper
            .first()
            .copied()
            .unwrap_or(env!("CARGO_BIN_EXE_ferry")),
    );
    if !wrapper.is_empty() {
        cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_ferry"));
    }
    cmd.arg("serve")
        .arg(&list)
        .args(["--dest", "127.0.0.1:9/third", "--cron", "0 0 1 1 *"])
        .args(["--listen", "127.0.0.1:0", "--progress", "none"])
        .env("TZ", "UTC0");
    let (child, addr, stderr) = spawn_serve_with(cmd, keep_stderr);
    (Server(child, stderr), addr)
}

#[test]
fn before_the_first_run_every_result_is_counted_at_0_and_head_answers_like_get() {
    let dir = TempDir::new("serve-idle");
    let (_server, addr) = idle_server(dir.path(), &[], true);
    let metrics = scrape(&addr);
    for result in [
        "success",
        "images-failed",
        "invalid-input",
        "interrupted",
        "skipped",
    ] {
        let counted = metrics
            .samples
            .iter()
            .any(|s| s.metric == "ferry_runs_total" && s.labels.get("result") == Some(result));
        assert!(
            counted,
            "no ferry_runs_total{{result={result:?}}} before the first run"
        );
    }
    // The next run: 1 January, 00:00 UTC.
    let next = value(&metrics, "ferry_next_run_timestamp_seconds", &[]) as i64;
    let date = chrono::DateTime::from_timestamp(next, 0).unwrap();
    assert_eq!(date.format("%m-%d %H:%M:%S").to_string(), "01-01 00:00:00");
    assert!(!has(&metrics, "ferry_copied_bytes_total"));

    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/x", 404),
    ] {
        let (head, body) = request(&addr, "HEAD", path);
        assert_eq!((head, body.as_str()), (status, ""), "HEAD {path}");
    }
    assert_eq!(request(&addr, "POST", "/healthz").0, 405);
}

/// The CPU time (user + system) `pid` has used, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold blanks) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_second: u64 = stdout_of(&out).trim().parse().unwrap();
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The file descriptors `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `n` connections to `addr` that send nothing.
fn idle_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("the kernel queues the connection"))
        .collect()
}

/// Waits for `GET /healthz` to answer 200, each try bounded by a 2 s read timeout.
fn healthz_answers_within(addr: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answered = TcpStream::connect(addr).ok().and_then(|mut stream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            write!(stream, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).ok()?;
            Some(response.starts_with("HTTP/1.1 200"))
        });
        if answered == Some(true) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "/healthz did not answer within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Out of file descriptors, the accept loop backs off instead of spinning a core, and the
/// server answers again once connections close; its stderr closed, the warning it cannot
/// write ends nothing.
#[test]
fn out_of_file_descriptors_serve_backs_off_and_answers_again_when_they_free_up() {
    let dir = TempDir::new("serve-emfile");
    let (server, addr) = idle_server(dir.path(), &["prlimit", "--nofile=40:40", "--"], false);
    let pid = server.0.id();
    assert_eq!(get(&addr, "/healthz").0, 200);
    // More connections than the server has descriptors left: it accepts until EMFILE.
    let held = idle_connections(&addr, 60);
    wait_until(
        Duration::from_secs(10),
        "serve uses up its descriptors",
        || open_files(pid) >= 38,
    );
    let before = cpu_time(pid);
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_time(pid) - before;
    let share = used.as_secs_f64() / measured.elapsed().as_secs_f64();
    assert!(
        share < 0.2,
        "serve used {used:?} of CPU in {:?} out of file descriptors ({:.0}%)",
        measured.elapsed(),
        share * 100.0
    );
    drop(held);
    // Well before the idle connections' own timeout (10 s) would free them.
    let took = healthz_answers_within(&addr, Duration::from_secs(5));
    eprintln!("out of descriptors: {used:?} CPU in 3 s; /healthz again {took:?} after closing");
}

/// Idle connections beyond the server's bound wait in the kernel's queue; they hold no
/// descriptor of the server.
#[test]
fn serve_keeps_at_most_64_connections_open() {
    let dir = TempDir::new("serve-connections");
    let (server, addr) = idle_server(dir.path(), &[], true);
    let pid = server.0.id();
    assert_eq!(get(&addr, "/healthz").0, 200);
    let base = open_files(pid);
    let held = idle_connections(&addr, 150);
    std::thread::sleep(Duration::from_secs(1));
    let open = open_files(pid) - base;
    assert!(
        (60..=64).contains(&open),
        "{open} connections open for 150 idle clients"
    );
    drop(held);
    let took = healthz_answers_within(&addr, Duration::from_secs(5));
    eprintln!("150 idle clients: {open} open at the server; /healthz again {took:?} after closing");
}

/// `/catalog` is 404 until a run has finished, then that run's catalog: the HTML page of
/// `report catalog` (parsed as HTML5, with every image in it) and `/catalog.md` its Markdown.
#[test]
fn serve_serves_the_last_runs_catalog_and_none_before_the_first() {
    let m = Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    m.push("library/redis:7", "redis-7");
    let list = m.write("images.list", "nginx:1\nredis:7\nnginx:9.9\n");
    // No run before next New Year, but the one SIGHUP starts.
    let (mut child, addr, _stderr) = start(&m, &list, &["--cron", "0 0 1 1 *"]);
    for path in ["/catalog", "/catalog.md"] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.starts_with("no run has finished yet"), "{body}");
    }
    send_signal(child.id(), "HUP");
    wait_for_runs(&addr, "images-failed", 1.0);
    let prefix = m.prefix();
    let (status, markdown) = get(&addr, "/catalog.md");
    assert_eq!(status, 200, "{markdown}");
    assert!(
        markdown.contains("**1 registry, 2 repositories, 2 tags, 1 failed**"),
        "{markdown}"
    );
    for (repo, tag) in [("nginx", "1"), ("redis", "7")] {
        let target = format!("{prefix}/docker.io/library/{repo}:{tag}");
        let digest = m.target_digest(&target).expect("synced");
        let row = format!("| `{tag}` | `{target}` | `{digest}` | — | ");
        assert!(markdown.contains(&row), "{row} not in {markdown}");
        assert!(markdown.contains(&format!("| `docker pull {target}` |")));
    }
    assert!(
        markdown.contains(&format!(
            "| `docker.io/library/nginx:9.9` | `{prefix}/docker.io/library/nginx:9.9` | not-found"
        )),
        "{markdown}"
    );
    let (status, html) = get(&addr, "/catalog");
    assert_eq!(status, 200, "{html}");
    if let Some(python) = crate::catalog::python_with_html5lib() {
        let page = crate::catalog::parse_html(&python, &html);
        crate::catalog::check_page(&page);
        let rows = crate::catalog::rows(&page);
        let targets: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(
            targets,
            [
                format!("{prefix}/docker.io/library/nginx:9.9"),
                format!("{prefix}/docker.io/library/nginx:1"),
                format!("{prefix}/docker.io/library/redis:7"),
            ]
        );
    }
    let status = signal_and_wait(&mut child, "TERM", Duration::from_secs(15), "serve ends");
    assert_eq!(status.code(), Some(143));
}
