//! Failures a nightly mirror meets: an engine that hangs, a connection that drops once, a
//! missing image, a certificate nobody trusts, a destination that goes away mid-run, one that
//! answers 503 to a manifest list upload, and a SIGTERM from the CI runner. Real registries
//! and the real skopeo and crane, and ferry's native engine (the engine-independent faults run
//! once per engine); a stand-in for the engine only where a fault cannot be provoked otherwise
//! (a hang, a one-off network error, holding a copy back until the destination is gone), and
//! those run for skopeo and crane only: the native engine has no binary to stand in for (its
//! own tests of those faults are the `native_*` ones below).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::engines::{per_binary_engine, per_engine, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

per_engine!(
    missing_images_fail_on_the_first_attempt,
    a_host_that_does_not_resolve_is_tried_once,
    a_registry_refusing_connections_costs_one_round_of_retries,
    a_manifest_list_upload_refused_once_lands_with_its_digest,
);

// Each of these runs the engine from a stand-in (`stand_in`): one that hangs, fails once,
// holds its copy back, sleeps until a signal, or is killed with ferry.
per_binary_engine!(
    a_hung_copy_times_out_and_the_others_finish,
    a_transient_network_failure_is_retried_and_counted,
    sigterm_stops_everything_and_exits_143_with_a_report,
    a_destination_that_dies_mid_run_fails_the_rest_as_network_and_a_rerun_completes,
    a_signal_removes_the_private_auth_file_and_no_output_holds_the_password,
    a_killed_ferry_takes_the_engine_with_it_and_the_next_run_removes_its_credentials,
);

/// A stand-in for the mirror's engine: runs `script` (sh) with the arguments, then the real
/// engine. `sync_with` runs ferry with it.
fn stand_in(m: &Mirror, script: &str) -> PathBuf {
    let dir = m.scratch.path();
    let path = dir.join(format!(
        "{}-stand-in-{}",
        m.engine.name(),
        std::process::id()
    ));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{script}\nexec {} \"$@\"\n",
            m.engine.binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn kinds_and_attempts(report: &serde_json::Value) -> Vec<(String, u64)> {
    images(report)
        .iter()
        .map(|i| {
            let kind = i["error"]["kind"].as_str().unwrap_or("-").to_owned();
            (kind, i["attempts"].as_u64().unwrap())
        })
        .collect()
}

/// `m.sync(list)` with the engine run from `stand_in`.
fn sync_with(m: &Mirror, list: &Path, stand_in: &Path) -> Command {
    let mut cmd = m.sync(list);
    cmd.args(m.engine.with_binary(stand_in));
    cmd
}

/// [`sync_with`] as a [`Test`].
fn test_with<'a>(m: &'a Mirror, list: &Path, stand_in: &Path) -> Test<'a> {
    Test::mirror(m, sync_with(m, list, stand_in))
}

fn a_hung_copy_times_out_and_the_others_finish(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    m.push("library/nginx:1.25", "nginx");
    m.push("library/hang:1", "hang");
    m.push("library/redis:7", "redis");
    let list = m.write("images.list", "nginx:1.25\nhang:1\nredis:7\n");
    let sleep = Sleeper::new(m.scratch.path(), 300);
    let skopeo = stand_in(
        &m,
        &format!(
            "case \"$*\" in *library/hang*) exec {};; esac",
            sleep.command()
        ),
    );
    let started = Instant::now();
    let ran = test_with(&m, &list, &skopeo)
        .args(["--image-timeout", "2s", "--retry-times", "1"])
        .args(["--retry-delay", "100ms"])
        .report()
        .code(1)
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [
            ("-".to_owned(), 1),
            ("timeout".to_owned(), 2),
            ("-".to_owned(), 1)
        ],
        "{report:#}"
    );
    let leftovers = sleep.running();
    assert!(
        leftovers.is_empty(),
        "the hung copy outlived its timeout: {leftovers}"
    );
}

fn a_transient_network_failure_is_retried_and_counted(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let marker = m.scratch.path().join("failed-once");
    // What each engine says when a connection drops.
    let said = match m.engine {
        Engine::Skopeo => "time=\"x\" level=fatal msg=\"writing blob: Patch \\\"http://r/v2/x\\\": read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer\"",
        Engine::Crane(_) => "Error: PATCH http://r/v2/x/blobs/uploads/u: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
        Engine::Native => unreachable!("a stand-in test"),
    };
    let skopeo = stand_in(
        &m,
        &format!(
            "if [ ! -e {0} ]; then touch {0}; echo '{said}' >&2; exit 1; fi",
            marker.display()
        ),
    );
    let ran = test_with(&m, &list, &skopeo)
        .args(["--retry-delay", "100ms"])
        .report()
        .run();
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [("-".to_owned(), 2)],
        "{report:#}"
    );
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    assert_eq!(m.target_digest(&target), Some(nginx));
}

fn missing_images_fail_on_the_first_attempt(engine: Engine) {
    // --force skips the plan, so the engine itself meets the missing image. The source is
    // named by its own address (with an explicit target, as a port requires), so no docker.io
    // name and no registries.conf are involved.
    let m = Mirror::with_engine(false, engine);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write(
        "images.list",
        &format!(
            "{}/library/nginx:9.9 {}/x/nginx:9.9\n",
            m.source.addr(),
            m.dest.addr()
        ),
    );
    let ran = m
        .test_sync(&list)
        .args(["--force", "--retry-delay", "5s", "--src-tls-verify=false"])
        .report()
        .code(1)
        .run();
    let missing = ran.report();
    assert_eq!(
        kinds_and_attempts(missing),
        [("not-found".to_owned(), 1)],
        "{missing:#}"
    );
    let message = images(missing)[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("manifest unknown"), "{message}");
}

/// skopeo verifies each side by its own settings: the source is insecure (registries.conf), the
/// destination is not, and its CA was not given. (crane has one switch for both sides; how it
/// is kept verifying such a destination is in
/// `sync::a_side_nobody_marked_insecure_is_verified_though_the_other_side_is_insecure`.)
#[test]
fn an_untrusted_destination_certificate_fails_on_the_first_attempt() {
    // A TLS destination whose CA ferry was not given.
    let m = Mirror::new(true);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let started = Instant::now();
    let ran = m
        .test()
        .arg("sync")
        .arg(&list)
        .arg("--dest")
        .arg(m.prefix())
        .env("FERRY_DEST_CREDS", format!("{USER}:{PASSWORD}"))
        .args(["--retry-delay", "5s"])
        .report()
        .code(1)
        .stdout_results(format!(
            "failed  {}/docker.io/library/nginx:1.25  [t]  tls: {} has a certificate from an \
             authority this machine does not trust: pass its CA with --dest-cert-dir DIR (a \
             directory holding the CA as a .crt file), or --dest-tls-verify=false to skip \
             verification\n\
             1 image: 0 synced, 0 skipped, 1 failed in [t]\n",
            m.prefix(),
            m.dest.addr()
        ))
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a TLS failure must not be retried"
    );
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [("tls".to_owned(), 1)],
        "{report:#}"
    );
}

fn sigterm_stops_everything_and_exits_143_with_a_report(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    m.push("library/nginx:1.25", "nginx");
    m.push("library/redis:7", "redis");
    let list = m.write("images.list", "nginx:1.25\nredis:7\n");
    let sleep = Sleeper::new(m.scratch.path(), 301);
    let skopeo = stand_in(&m, &format!("exec {}", sleep.command()));
    let report_path = m.scratch.path().join("report.json");
    let failed_path = m.scratch.path().join("failed.list");
    let mut child = sync_with(&m, &list, &skopeo)
        .arg("--report")
        .arg(&report_path)
        .arg("--failed-list")
        .arg(&failed_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "the copies never started", || {
        sleep.running().lines().count() == 2
    });
    // The grace period is 10 s; the engine (here: sleep) dies on SIGTERM at once.
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(12),
        "ferry did not stop within the grace period",
    );
    assert_eq!(status.code(), Some(143));
    let leftovers = sleep.running();
    assert!(
        leftovers.is_empty(),
        "the engine outlived ferry: {leftovers}"
    );
    let report = report(&report_path);
    assert_eq!(report["summary"]["interrupted"], true);
    let kinds: Vec<String> = kinds_and_attempts(&report)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds, ["interrupted", "interrupted"]);
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    assert_eq!(
        failed.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{failed}"
    );
    // A rerun completes what was interrupted.
    run(&mut m.sync(&list), 0);
    assert!(m
        .target_digest(&format!("{}/docker.io/library/redis:7", m.prefix()))
        .is_some());
}

fn a_destination_that_dies_mid_run_fails_the_rest_as_network_and_a_rerun_completes(engine: Engine) {
    let mut m = Mirror::with_engine(false, engine);
    let mut digests = Vec::new();
    for name in ["early-a", "early-b", "late-a", "late-b"] {
        digests.push((name, m.push(&format!("library/{name}:1"), name)));
    }
    let list = m.write("images.list", "early-a:1\nearly-b:1\nlate-a:1\nlate-b:1\n");
    // The late copies say they are waiting, then hold until the test has killed the
    // destination; the early ones run at once and say when the engine has exited. (A tag is
    // visible a moment before the engine has its answer: stopping the registry in that moment
    // would fail an early copy too.)
    let gate = m.scratch.path().join("go");
    let waiting = m.scratch.path().join("waiting");
    let done = m.scratch.path().join("done");
    std::fs::create_dir(&waiting).unwrap();
    std::fs::create_dir(&done).unwrap();
    let skopeo = stand_in(
        &m,
        &format!(
            "case \"$*\" in *library/late-*) touch {waiting}/$$; \
             while [ ! -e {gate} ]; do sleep 0.05; done;; \
             *library/early-*) {engine} \"$@\"; s=$?; touch {done}/$$; exit $s;; esac",
            waiting = waiting.display(),
            done = done.display(),
            gate = gate.display(),
            engine = m.engine.binary().display(),
        ),
    );
    let report_path = m.scratch.path().join("report.json");
    let failed_path = m.scratch.path().join("failed.list");
    let child = sync_with(&m, &list, &skopeo)
        .args(["-j", "4", "--registry-jobs", "docker.io=4"])
        .args(["--retry-times", "2", "--retry-delay", "200ms"])
        .arg("--report")
        .arg(&report_path)
        .arg("--failed-list")
        .arg(&failed_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = m.prefix();
    let target = |name: &str| format!("{prefix}/docker.io/library/{name}:1");
    wait_until(
        Duration::from_secs(60),
        "the early copies never finished",
        || {
            std::fs::read_dir(&done).unwrap().count() == 2
                && std::fs::read_dir(&waiting).unwrap().count() == 2
        },
    );
    m.dest.stop();
    std::fs::write(&gate, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let first = report(&report_path);
    // The early images landed; the late ones failed as network errors, one after every
    // retry. The other too, unless it was waiting to retry when the first's schedule ended:
    // then the destination was out of this run, and it failed at once.
    let outcomes = kinds_and_attempts(&first);
    assert_eq!(
        outcomes[..2],
        [("-".to_owned(), 1), ("-".to_owned(), 1)],
        "{first:#}"
    );
    let mut late: Vec<u64> = outcomes[2..]
        .iter()
        .map(|(kind, attempts)| {
            assert_eq!(kind, "network", "{first:#}");
            *attempts
        })
        .collect();
    late.sort_unstable();
    assert!(late == [3, 3] || late == [2, 3], "{first:#}");
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    let failed: Vec<&str> = failed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|l| l.contains("late-")), "{failed:?}");

    // Back up with its storage: the failed tags were never written, the rerun copies only
    // them, and every digest then matches the source's.
    m.dest.restart();
    for name in ["late-a", "late-b"] {
        assert_eq!(m.target_digest(&target(name)), None, "{name}");
    }
    let second_path = m.scratch.path().join("second.json");
    run(m.sync(&list).arg("--report").arg(&second_path), 0);
    let second = report(&second_path);
    assert_eq!(second["summary"]["skipped"], 2, "{second:#}");
    assert_eq!(second["summary"]["synced"], 2, "{second:#}");
    for (name, digest) in &digests {
        assert_eq!(
            m.target_digest(&target(name)).as_ref(),
            Some(digest),
            "{name}"
        );
    }
}

fn a_signal_removes_the_private_auth_file_and_no_output_holds_the_password(engine: Engine) {
    let m = Mirror::with_engine(true, engine);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let sleep = Sleeper::new(m.scratch.path(), 302);
    let (skopeo, args_path, env_path) =
        recording_stand_in(&m, &format!("exec {}", sleep.command()));
    let report_path = m.scratch.path().join("report.json");
    let failed_path = m.scratch.path().join("failed.list");
    let child = sync_with(&m, &list, &skopeo)
        .env("FERRY_DEST_CREDS", format!("{USER}:{PASSWORD}"))
        .arg("-v")
        .arg("--report")
        .arg(&report_path)
        .arg("--failed-list")
        .arg(&failed_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the copy never started", || {
        args_path.exists()
    });
    let args = std::fs::read_to_string(&args_path).unwrap();
    let env = std::fs::read_to_string(&env_path).unwrap();
    let (auth_file, scratch) = private_file(&m.engine, &args, &env, "--dest-authfile");
    let auth_dir = auth_file.parent().unwrap().to_owned();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&auth_file), 0o600);
    assert_eq!(mode(&auth_dir), 0o700);
    assert_eq!(mode(&scratch), 0o700);

    send_signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    for gone in [&auth_file, &auth_dir, &scratch] {
        assert!(!gone.exists(), "{} outlived ferry", gone.display());
    }
    let outputs = [
        ("argv", args),
        ("environment", env),
        ("stdout", stdout_of(&out)),
        ("stderr (-v)", stderr_of(&out)),
        ("report", std::fs::read_to_string(&report_path).unwrap()),
        (
            "failed list",
            std::fs::read_to_string(&failed_path).unwrap(),
        ),
    ];
    // Also as the auth file holds it: base64 of user:password.
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    for (name, text) in outputs {
        assert!(!text.contains(PASSWORD), "the password is in the {name}");
        assert!(
            !text.contains(&encoded),
            "the encoded login is in the {name}"
        );
    }
}

/// A stand-in for the mirror's engine that writes its arguments (one per line) and its
/// environment to files, then runs `then`; returns it and the two files.
fn recording_stand_in(m: &Mirror, then: &str) -> (PathBuf, PathBuf, PathBuf) {
    let args_path = m.scratch.path().join("engine-args");
    let env_path = m.scratch.path().join("engine-env");
    let script = format!(
        "env >{1}.part && mv {1}.part {1}\n\
         printf '%s\\n' \"$@\" >{0}.part && mv {0}.part {0}; {then}",
        args_path.display(),
        env_path.display()
    );
    (stand_in(m, &script), args_path, env_path)
}

/// The private file an engine's credentials were handed over in, and the run's scratch
/// directory holding it: skopeo's auth file (`flag`, in its argv), crane's `config.json` in
/// the `DOCKER_CONFIG` of its environment.
fn private_file(engine: &Engine, args: &str, env: &str, flag: &str) -> (PathBuf, PathBuf) {
    match engine {
        Engine::Skopeo => {
            let lines: Vec<&str> = args.lines().collect();
            let file = lines
                .iter()
                .position(|a| *a == flag)
                .map(|i| PathBuf::from(lines[i + 1]))
                .unwrap_or_else(|| panic!("no {flag} in {lines:?}"));
            let scratch = file.parent().unwrap().to_owned();
            (file, scratch)
        }
        Engine::Crane(_) => {
            let dir = env_value(env, "DOCKER_CONFIG")
                .unwrap_or_else(|| panic!("no DOCKER_CONFIG in the environment:\n{env}"));
            let dir = PathBuf::from(dir);
            (dir.join("config.json"), dir.parent().unwrap().to_owned())
        }
        Engine::Native => unreachable!("the native engine hands credentials to no process"),
    }
}

/// A destination that answers the first manifest list upload with 503, a passing fault (the
/// proxy in front of it, `--fail-list-puts 1`): the image lands with its digest, whichever
/// engine copies it. skopeo reports a failed list upload under `--preserve-digests` as "must
/// be converted … but we cannot modify it", whatever the cause: ferry reads the cause from
/// skopeo's debug log and retries as for any 5xx, so it lands on attempt 2. crane retries a
/// 5xx itself (go-containerregistry's transport: three tries, 1 s then 3 s apart) within one of
/// ferry's attempts, and the native engine retries it within the request: both land on
/// attempt 1.
fn a_manifest_list_upload_refused_once_lands_with_its_digest(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let digest = m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    // crane sends its requests in parallel: the proxy's bucket must never run dry.
    let proxy = ScriptProxy::start(
        m.scratch.path(),
        &m.dest.addr(),
        &["--rate", "inf", "--fail-list-puts", "1"],
    );
    let report_path = m.scratch.path().join("report.json");
    let mut cmd = m.ferry();
    cmd.arg("sync")
        .arg(&list)
        .arg("--dest")
        .arg(format!("{}/third", proxy.addr()))
        .args(["--dest-tls-verify=false", "--retry-delay", "100ms", "-v"])
        .arg("--report")
        .arg(&report_path);
    let out = run(&mut cmd, 0);
    let log = proxy.log();
    let puts: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("PUT ") && l.contains("/manifests/1.25 "))
        .collect();
    assert_eq!(puts.len(), 2, "{log}");
    assert!(
        puts[0].ends_with(" 503") && puts[1].ends_with(" 201"),
        "{log}"
    );
    let refused = log
        .lines()
        .filter(|l| l.starts_with("PUT ") && l.ends_with(" 503"));
    assert_eq!(refused.count(), 1, "{log}");
    let stderr = stderr_of(&out);
    let attempts = match m.engine {
        Engine::Skopeo => {
            assert!(
                stderr.contains("attempt 1 failed (network: writing the manifest list: ")
                    && stderr.contains("503 Service Unavailable); retrying"),
                "the refused upload was not retried as a network fault:\n{stderr}"
            );
            2
        }
        Engine::Crane(_) | Engine::Native => 1,
    };
    let report = report(&report_path);
    assert_eq!(report["images"][0]["status"], "synced", "{report:#}");
    assert_eq!(report["images"][0]["attempts"], attempts, "{report:#}");
    assert_eq!(
        m.target_digest(&format!("{}/docker.io/library/nginx:1.25", m.prefix())),
        Some(digest)
    );
}

/// A host name that does not resolve will not resolve on a retry either: the copy is tried
/// once and fails `network`, without the retry delay.
fn a_host_that_does_not_resolve_is_tried_once(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    let list = m.write("images.list", "nonexistent.invalid/x/app:1\n");
    let started = Instant::now();
    let ran = m
        .test_sync(&list)
        .args(["--retry-times", "3", "--retry-delay", "10s"])
        .report()
        .code(1)
        .run();
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [("network".to_owned(), 1)],
        "{report:#}"
    );
    // One engine run; none for the native engine, which copies in-process.
    let runs = if m.engine == Engine::Native { 0 } else { 1 };
    assert_eq!(m.invocations().len(), runs, "{:?}", m.invocations());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// A destination that refuses connections: once one image's whole retry schedule has met
/// the refusal, the images still queued for it, and those waiting to retry, fail at once
/// as `network` naming it, without starting the engine.
fn a_registry_refusing_connections_costs_one_round_of_retries(engine: Engine) {
    let mut m = Mirror::with_engine(false, engine);
    let names: Vec<String> = (0..7).map(|i| format!("app{i}")).collect();
    for name in &names {
        m.push(&format!("library/{name}:1"), name);
    }
    let list: String = names.iter().map(|n| format!("{n}:1\n")).collect();
    let list = m.write("images.list", &list);
    let down = m.dest.addr();
    m.dest.stop();
    let started = Instant::now();
    let ran = m
        .test_sync(&list)
        .args(["-j", "2", "--retry-times", "3", "--retry-delay", "200ms"])
        .report()
        .code(1)
        .run();
    let elapsed = started.elapsed();
    let report = ran.report();
    let results = images(report);
    assert_eq!(results.len(), names.len(), "{report:#}");
    for image in results {
        assert_eq!(image["error"]["kind"], "network", "{image:#}");
    }
    let runs = m.invocations().len();
    // At most the two images running when the first schedule ended go through theirs (none
    // runs an engine process with the native engine).
    let most = if m.engine == Engine::Native { 0 } else { 2 * 4 };
    assert!(
        runs <= most,
        "{runs} engine runs for {} images\n{}",
        names.len(),
        ran.stdout()
    );
    let not_tried = format!(
        "{down} refused connections through a whole round of retries; not tried again in this run"
    );
    let skipped = results
        .iter()
        .filter(|i| i["error"]["message"] == not_tried.as_str())
        .count();
    assert!(skipped >= names.len() - 2, "{report:#}");
    assert!(
        ran.stdout().contains(&format!("network: {not_tried}")),
        "{}",
        ran.stdout()
    );
    // One round is four attempts, about 3 s with every engine (a refused request is not
    // retried by itself: the native engine once took 15 s, each attempt first waiting out
    // 0.5 s, 1 s and 2 s). Every image going through its round would take four times as long.
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
}

/// Every file under `dir`, relative to it, sorted; empty when `dir` does not exist.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A copy into a local OCI layout stopped by `--image-timeout` while skopeo was writing a
/// blob leaves neither skopeo's temporary blob file nor the layout it had started.
#[test]
fn a_timed_out_oci_copy_leaves_no_temporary_blob() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let started_blob = m.scratch.path().join("blob-started");
    let skopeo = stand_in(
        &m,
        &format!(
            "for a in \"$@\"; do last=$a; done\n\
             case \"$last\" in oci:*) d=${{last#oci:}}; d=${{d%:*}}; mkdir -p \"$d/blobs\"; \
             head -c 1048576 /dev/zero >\"$d/oci-put-blob123\"; touch {}; exec sleep 304;; esac",
            started_blob.display()
        ),
    );
    let ran = m
        .test()
        .arg("sync")
        .arg(&list)
        .arg("--skopeo")
        .arg(&skopeo)
        .args(["--image-timeout", "2s", "--retry-times", "0"])
        .report()
        .code(1)
        .run();
    assert!(started_blob.exists(), "the stand-in never wrote its blob");
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [("timeout".to_owned(), 1)],
        "{report:#}"
    );
    let mirror = m.scratch.path().join("mirror");
    assert_eq!(files_under(&mirror), Vec::<String>::new());
}

/// A copy into a local OCI layout that fails (a missing image, met by skopeo under
/// `--force`) leaves no directory below the mirror root.
#[test]
fn a_failed_oci_copy_leaves_no_directory() {
    let m = Mirror::new(false);
    let list = m.write("images.list", "nginx:9.9\n");
    let ran = m
        .test()
        .arg("sync")
        .arg(&list)
        .arg("--force")
        .report()
        .code(1)
        .run();
    let report = ran.report();
    assert_eq!(
        kinds_and_attempts(report),
        [("not-found".to_owned(), 1)],
        "{report:#}"
    );
    assert_eq!(m.invocations().len(), 1);
    let mirror = m.scratch.path().join("mirror");
    assert_eq!(files_under(&mirror), Vec::<String>::new());
}

/// A temporary blob file an earlier run left when it was killed is removed by the next run,
/// even one with nothing to copy.
#[test]
fn a_rerun_removes_the_temporary_blobs_a_crashed_run_left() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    run(m.ferry().arg("sync").arg(&list), 0);
    let layout = m.scratch.path().join("mirror/docker.io/library/nginx");
    assert!(layout.join("index.json").exists());
    let leftover = layout.join("oci-put-blob4242");
    std::fs::write(&leftover, vec![0u8; 4096]).unwrap();
    let out = run(m.ferry().arg("sync").arg(&list), 0);
    assert!(stdout_of(&out).contains("0 failed"), "{}", stdout_of(&out));
    assert!(
        !leftover.exists(),
        "{} outlived the rerun",
        leftover.display()
    );
    assert!(layout.join("index.json").exists());
}

/// `kill -9` runs none of ferry's cleanup: the engine must still die with it, and the next run
/// removes the private directory (with the credentials) the killed one left.
fn a_killed_ferry_takes_the_engine_with_it_and_the_next_run_removes_its_credentials(
    engine: Engine,
) {
    let m = Mirror::with_engine(false, engine);
    m.push("library/nginx:1.25", "nginx");
    let list = m.write("images.list", "nginx:1.25\n");
    let sleep = Sleeper::new(m.scratch.path(), 306);
    let (skopeo, args_path, env_path) =
        recording_stand_in(&m, &format!("exec {}", sleep.command()));
    // A temporary directory of this test's runs alone: any ferry starting in the shared one
    // (another test's) would remove what the killed run left before the test looks.
    let tmp = m.scratch.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = sync_with(&m, &list, &skopeo)
        .env("TMPDIR", &tmp)
        .env("FERRY_SRC_CREDS", "someone:secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the copy never started", || {
        args_path.exists()
    });
    let args = std::fs::read_to_string(&args_path).unwrap();
    let env = std::fs::read_to_string(&env_path).unwrap();
    let (auth_file, scratch) = private_file(&m.engine, &args, &env, "--src-authfile");

    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        Duration::from_secs(5),
        "the engine outlived the ferry that started it",
        || sleep.running().is_empty(),
    );
    assert!(
        auth_file.exists(),
        "a SIGKILL leaves the scratch directory; the next run is the one to remove it"
    );

    assert!(scratch.starts_with(&tmp), "{}", scratch.display());

    run(m.sync(&list).env("TMPDIR", &tmp), 0);
    assert!(
        !scratch.exists(),
        "{} outlived the next run",
        scratch.display()
    );
}

/// The destination killed while the native engine copies (the source paced at 2 requests a
/// second so the run takes a while): what landed stays, the rest fails as `network` after
/// one round of retries without a tag, and a rerun on the same storage completes it.
#[test]
fn native_a_destination_that_dies_mid_run_fails_the_rest_as_network_and_a_rerun_completes() {
    let mut m = Mirror::new(false);
    let names = ["first", "second", "third", "fourth"];
    let digests: Vec<String> = names
        .iter()
        .map(|n| m.push(&format!("library/{n}:1"), n))
        .collect();
    let list: String = names.iter().map(|n| format!("{n}:1\n")).collect();
    let list = m.write("images.list", &list);
    let report_path = m.scratch.path().join("report.json");
    let child = m
        .sync(&list)
        .args([
            "--engine",
            "native",
            "-j",
            "1",
            "--registry-rps",
            "docker.io=2",
        ])
        .args(["--retry-times", "2", "--retry-delay", "200ms"])
        .arg("--report")
        .arg(&report_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = m.prefix();
    let target = |name: &str| format!("{prefix}/docker.io/library/{name}:1");
    wait_until(
        Duration::from_secs(60),
        "the first image never landed",
        || m.target_digest(&target("first")).is_some(),
    );
    m.dest.stop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let first = report(&report_path);
    let outcomes = kinds_and_attempts(&first);
    assert_eq!(outcomes[0], ("-".to_owned(), 1), "{first:#}");
    let failed: Vec<&(String, u64)> = outcomes.iter().filter(|(k, _)| k != "-").collect();
    assert!(failed.len() >= 2, "{first:#}");
    assert!(
        failed.iter().all(|(kind, _)| kind == "network"),
        "{first:#}"
    );
    // One image went through its whole schedule; the others failed at once after it.
    assert!(
        failed.iter().any(|(_, attempts)| *attempts == 3),
        "{first:#}"
    );

    m.dest.restart();
    let landed = outcomes.iter().filter(|(k, _)| k == "-").count();
    for (name, (kind, _)) in names.iter().zip(&outcomes) {
        if kind != "-" {
            assert_eq!(m.target_digest(&target(name)), None, "{name} was tagged");
        }
    }
    let second_path = m.scratch.path().join("second.json");
    run(
        m.sync(&list)
            .args(["--engine", "native"])
            .arg("--report")
            .arg(&second_path),
        0,
    );
    let second = report(&second_path);
    assert_eq!(second["summary"]["skipped"], landed, "{second:#}");
    assert_eq!(
        second["summary"]["synced"],
        names.len() - landed,
        "{second:#}"
    );
    for (name, digest) in names.iter().zip(&digests) {
        assert_eq!(
            m.target_digest(&target(name)).as_ref(),
            Some(digest),
            "{name}"
        );
    }
}

/// SIGTERM while the native engine copies from a slow source: ferry exits 143 at once with the
/// report, the copies in flight are interrupted without a tag or a manifest at the
/// destination, and a rerun completes them.
#[test]
fn native_sigterm_stops_the_copies_without_writing_a_tag() {
    let m = Mirror::new(false);
    let pushed: Vec<Image> = ["nginx", "redis"]
        .iter()
        .map(|name| {
            let (layout, image) = make_image(m.scratch.path(), name);
            push(&m.source, &layout, &format!("library/{name}:1"));
            image
        })
        .collect();
    let list = m.write("images.list", "nginx:1\nredis:1\n");
    let proxy = ScriptProxy::start(m.scratch.path(), &m.source.addr(), &["--rate", "1"]);
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
    let report_path = m.scratch.path().join("report.json");
    let mut child = m
        .sync(&list)
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["--engine", "native", "--registry-rps", "docker.io=1"])
        .arg("--report")
        .arg(&report_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "no blob was ever asked for",
        || proxy.log().contains("/blobs/sha256:"),
    );
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(5),
        "ferry did not stop at once",
    );
    assert_eq!(status.code(), Some(143));
    let report = report(&report_path);
    assert_eq!(report["summary"]["interrupted"], true, "{report:#}");
    for image in images(&report) {
        assert_eq!(image["status"], "failed", "{image:#}");
        assert_eq!(image["error"]["kind"], "interrupted", "{image:#}");
    }
    for (name, image) in ["nginx", "redis"].iter().zip(&pushed) {
        let repo = format!("{}/docker.io/library/{name}", m.prefix());
        assert_eq!(
            m.target_digest(&format!("{repo}:1")),
            None,
            "{name} was tagged"
        );
        for manifest in image.platform_digests.iter().chain([&image.digest]) {
            let at = format!("{repo}@{manifest}");
            assert_eq!(m.target_digest(&at), None, "{at} was written");
        }
    }
    run(m.sync(&list).args(["--engine", "native"]), 0);
    for (name, image) in ["nginx", "redis"].iter().zip(&pushed) {
        let target = format!("{}/docker.io/library/{name}:1", m.prefix());
        assert_eq!(m.target_digest(&target), Some(image.digest.clone()));
    }
}

/// A source that accepts connections and never answers, held open by a thread of the test.
fn stalled_source() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => held.push(stream),
                Err(_) => return,
            }
        }
    });
    (addr, handle)
}

/// A run stopped while a whole repository's tags are being listed reports it `interrupted`,
/// never as a repository the source does not have.
#[test]
fn a_tag_listing_cut_short_by_a_signal_is_interrupted_not_missing() {
    let m = Mirror::new(false);
    let (stalled, _thread) = stalled_source();
    let list = m.write(
        "images.list",
        &format!("{stalled}/team/app {}/app\n", m.prefix()),
    );
    let report_path = m.scratch.path().join("report.json");
    let mut child = m
        .sync(&list)
        .args(["--engine", "native", "--src-tls-verify=false", "--report"])
        .arg(&report_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = signal_and_wait(
        &mut child,
        "TERM",
        Duration::from_secs(5),
        "ferry did not stop at once",
    );
    assert_eq!(status.code(), Some(143));
    let report = report(&report_path);
    let images = images(&report);
    assert_eq!(images.len(), 1, "{report:#}");
    assert_eq!(images[0]["error"]["kind"], "interrupted", "{report:#}");
    let message = images[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stopped before the tags of") && !message.contains("does not exist"),
        "{message}"
    );
}
