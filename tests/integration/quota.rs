//! Docker Hub's pull quota, with `scripts/rate-limit-proxy.py --pull-quota` standing in for it
//! in front of a real registry (each manifest GET one pull, HEADs free, the `ratelimit-*`
//! headers on every manifest answer, 429 once nothing is left): `plan` says what a sync would
//! pull and what is left; `sync --pull-budget 5` copies what fits and defers the rest, with the
//! time the quota frees up, exit 1 and a failed list of just those; a no-op rerun (HEADs only)
//! spends nothing; serve exports what is left.

use crate::common::engines::{per_engine, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

const IMAGES: usize = 8;
const QUOTA: u32 = 10;

/// A mirror whose docker.io is the stand-in Docker Hub, holding `IMAGES` single-platform images
/// (one pull each) `img-N:1.0`, and the list of them.
struct Hub {
    m: Mirror,
    proxy: ScriptProxy,
    conf: std::path::PathBuf,
    list: std::path::PathBuf,
}

impl Hub {
    fn new(engine: Engine) -> Hub {
        let m = Mirror::with_engine(false, engine);
        for i in 0..IMAGES {
            let (layout, _) = make_image(m.scratch.path(), &format!("img-{i}"));
            push_as(
                &m.source,
                &layout,
                &format!("library/img-{i}:1.0"),
                Form::OciSingle,
            );
        }
        let proxy = ScriptProxy::start(
            m.scratch.path(),
            &m.source.addr(),
            &["--rate", "inf", "--pull-quota", &QUOTA.to_string()],
        );
        let conf = registries_conf(m.scratch.path(), &[("docker.io", &proxy.addr())]);
        let list: String = (0..IMAGES).map(|i| format!("img-{i}:1.0\n")).collect();
        let list = m.write("images.list", &list);
        Hub {
            m,
            proxy,
            conf,
            list,
        }
    }

    /// Pulls the stand-in counted so far: manifest GETs it answered 200.
    fn pulls(&self) -> usize {
        self.proxy
            .log()
            .lines()
            .filter(|line| {
                line.starts_with("GET ") && line.contains("/manifests/") && line.ends_with(" 200")
            })
            .count()
    }

    fn sync(&self, extra: &[&str]) -> std::process::Command {
        let mut cmd = self.m.sync(&self.list);
        cmd.env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .args(extra);
        cmd
    }
}

#[test]
fn plan_says_the_pulls_a_sync_needs_and_what_is_left() {
    let hub = Hub::new(Engine::Skopeo);
    let proxy = hub.proxy.addr();
    let out = run(
        hub.m
            .ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
            .arg("plan")
            .arg(&hub.list)
            .args(["--dest", &hub.m.prefix(), "--dest-tls-verify=false"]),
        0,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!(
            "\npulls  {proxy}: 8 needed for 8 images; 10 of 10 left in its 6h window\n"
        )),
        "{stdout}"
    );
    assert_eq!(hub.pulls(), 0, "plan pulled: {}", hub.proxy.log());

    // Six spent elsewhere: not enough left, and plan says so.
    for i in 0..6 {
        let path = format!("/v2/library/img-{i}/manifests/1.0");
        let out = run(
            std::process::Command::new("curl").args([
                "-sS",
                "-o",
                "/dev/null",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
                &format!("http://{proxy}{path}"),
            ]),
            0,
        );
        drop(out);
    }
    assert_eq!(hub.pulls(), 6);
    let out = run(
        hub.m
            .ferry()
            .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
            .arg("plan")
            .arg(&hub.list)
            .args(["--dest", &hub.m.prefix(), "--dest-tls-verify=false"]),
        0,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!(
            "\npulls  {proxy}: 8 needed for 8 images; 4 of 10 left in its 6h window; not \
             enough: a sync with --pull-budget defers the rest (the window frees them by "
        )),
        "{stdout}"
    );
}

per_engine!(a_pull_budget_copies_what_fits_and_defers_the_rest);

fn a_pull_budget_copies_what_fits_and_defers_the_rest(engine: Engine) {
    let hub = Hub::new(engine);
    let m = &hub.m;
    let failed_list = m.scratch.path().join("failed.list");
    let report_path = m.scratch.path().join("report.json");
    let out = run(
        hub.sync(&["--pull-budget", "5", "-j", "1", "-v", "--failed-list"])
            .arg(&failed_list)
            .arg("--report")
            .arg(&report_path),
        1,
    );
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(
        stdout.ends_with(&format!(
            "{IMAGES} images: 5 synced, 0 skipped, 3 failed in {}\n",
            stdout.rsplit(" in ").next().unwrap().trim_end()
        )),
        "{stdout}"
    );
    assert_eq!(hub.pulls(), 5, "{}", hub.proxy.log());
    assert_eq!(hub.proxy.throttled(), 0, "the budget let a 429 happen");
    let proxy = hub.proxy.addr();
    let deferred: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("failed "))
        .collect();
    assert_eq!(deferred.len(), 3, "{stdout}");
    for line in &deferred {
        assert!(
            line.contains(&format!(
                "  deferred: not copied: its 1 pull would take this run past the pull budget \
                 for {proxy} (5 of 5 spent); the quota window frees them by "
            )) && line.ends_with(" UTC at the latest"),
            "{line}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "ferry: 3 images deferred: the pull budget for {proxy} would have been crossed (5 \
             pulls spent); the quota window frees them by "
        )) && stderr.contains("at the latest: rerun the failed list then"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{proxy}: 5 of 10 pulls left; this run's copies spent 5"
        )),
        "{stderr}"
    );
    // The failed list holds just the deferred images, and feeds them back.
    let failed = std::fs::read_to_string(&failed_list).unwrap();
    let lines: Vec<&str> = failed.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 3, "{failed}");
    assert!(lines.iter().all(|l| l.ends_with("(deferred)")), "{failed}");
    let report = report(&report_path);
    let kinds: Vec<&str> = images(&report)
        .iter()
        .filter_map(|image| image["error"]["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["deferred"; 3]);

    // A no-op rerun of what was copied sends HEADs only: no pull.
    let copied: String = images(&report)
        .iter()
        .filter(|image| image["status"] == "synced")
        .map(|image| format!("{}\n", image["source"].as_str().unwrap()))
        .collect();
    let copied = m.write("copied.list", &copied);
    let out = run(
        m.sync(&copied)
            .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
            .args(["--pull-budget", "auto"]),
        0,
    );
    assert!(
        stdout_of(&out).contains("5 images: 0 synced, 5 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(hub.pulls(), 5, "a no-op rerun pulled: {}", hub.proxy.log());

    // auto keeps a tenth of the window (1 of 10): of the 5 left it spends 4, enough for the
    // three deferred images.
    let out = run(&mut hub.sync(&["--pull-budget", "auto"]), 0);
    assert!(
        stdout_of(&out).contains("8 images: 3 synced, 5 skipped, 0 failed"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(hub.pulls(), 8, "{}", hub.proxy.log());
    // Two left, one of them kept: of two new images, one is copied.
    for i in [8, 9] {
        let (layout, _) = make_image(m.scratch.path(), &format!("img-{i}"));
        push_as(
            &m.source,
            &layout,
            &format!("library/img-{i}:1.0"),
            Form::OciSingle,
        );
    }
    let more = m.write("more.list", "img-8:1.0\nimg-9:1.0\n");
    let out = run(
        m.sync(&more)
            .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
            .args(["--pull-budget", "auto"]),
        1,
    );
    assert!(
        stdout_of(&out).contains("2 images: 1 synced, 0 skipped, 1 failed"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        stdout_of(&out).contains(&format!(
            "deferred: not copied: its 1 pull would take this run past the pull budget for \
             {proxy} (1 of 1 spent)"
        )),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(hub.pulls(), 9, "{}", hub.proxy.log());
    assert_eq!(hub.proxy.throttled(), 0);
}

/// `serve` exports what each metered registry has left after a run.
#[test]
fn serve_exports_the_quota_left() {
    let hub = Hub::new(Engine::Native);
    let m = &hub.m;
    let mut child = hub
        .m
        .ferry()
        .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
        .arg("serve")
        .arg(&hub.list)
        .args([
            "--dest",
            &m.prefix(),
            "--dest-tls-verify=false",
            "--every",
            "1h",
            "--listen",
            "127.0.0.1:0",
            "--progress",
            "none",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let collected = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut text = collected.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    let addr = || {
        let text = lines.lock().unwrap().clone();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("ferry: serving /metrics, /healthz, /readyz and /catalog on http://")
            })
            .map(str::to_owned)
    };
    wait_until(
        std::time::Duration::from_secs(20),
        "no listen address",
        || addr().is_some(),
    );
    let url = format!("http://{}/metrics", addr().unwrap());
    let series = format!(
        "ferry_registry_quota_remaining{{registry=\"{}\"}} ",
        hub.proxy.addr()
    );
    let metrics = || {
        let out = run(std::process::Command::new("curl").args(["-sS", &url]), 0);
        stdout_of(&out)
    };
    wait_until(
        std::time::Duration::from_secs(60),
        "the run never ended",
        || metrics().contains("ferry_runs_total{result=\"success\"} 1"),
    );
    let text = metrics();
    let left = text
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(left, "2", "{text}");
    assert_eq!(hub.pulls(), IMAGES);
    let status = signal_and_wait(
        &mut child,
        "TERM",
        std::time::Duration::from_secs(20),
        "serve did not stop",
    );
    assert_eq!(status.code(), Some(143));
}

/// With several destinations the native engine reads each source manifest once for all of
/// them: the budget charges what was pulled, so a budget of 5 copies 5 images to each
/// destination (skopeo and crane pull once per destination, and are charged so).
#[test]
fn a_pull_budget_charges_one_read_for_several_destinations() {
    let hub = Hub::new(Engine::Native);
    let m = &hub.m;
    let second = Registry::start_plain();
    let other = format!("{}/other", second.addr());
    let list: String = (0..5).map(|i| format!("img-{i}:1.0\n")).collect();
    let list = m.write("five.list", &list);
    let out = run(
        m.sync(&list)
            .env("CONTAINERS_REGISTRIES_CONF", &hub.conf)
            .args(["--dest", &other, "--pull-budget", "5", "-j", "1"]),
        0,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("10 images: 10 synced, 0 skipped, 0 failed"),
        "{stdout}\n{}",
        stderr_of(&out)
    );
    assert_eq!(hub.pulls(), 5, "{}", hub.proxy.log());
}
