//! The Python fronts in `scripts/` as fixtures, each a reverse proxy in front of a registry that
//! logs every request (`METHOD PATH STATUS [BYTES]`), so tests can count what a client asked
//! for. `rate-limit-proxy.py` is the tests' one fault proxy (and `scripts/bench.sh`'s Docker
//! Hub): it limits the rate as Docker Hub does (429, `Retry-After`, the quota headers), meters
//! pulls as Docker Hub does (`--pull-quota`: manifest GETs counted, HEADs free), refuses
//! manifest list uploads, throttles blob uploads, corrupts, cuts or redirects blob downloads,
//! refuses credentials (see its header; `rate_limit_proxy_selftest` tests it).
//! `hostile-registry.py` meets chosen repositories with an attack (a manifest whose bytes are
//! not its advertised digest, a digest that leaves the repository, a refused mount, ...: see
//! the script's header for the list, and how to add one). `listing-registry.py` stands in for the
//! namespace listings no local registry offers: Google's `child` field, Docker Hub's Hub API,
//! and a registry with no way to list at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{unique, wait_until};

/// The proxy in front of `upstream`, started with `args`; killed on drop.
pub struct ScriptProxy {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl ScriptProxy {
    pub fn start(dir: &Path, upstream: &str, args: &[&str]) -> ScriptProxy {
        ScriptProxy::start_script("rate-limit-proxy.py", dir, upstream, args)
    }

    /// The proxy in front of `upstream`, letting `requests_per_second` through as nginx
    /// `limit_req` without `burst` does (`f64::INFINITY`: every request); any other request is
    /// answered as Docker Hub answers one over its limit.
    pub fn rate_limited(dir: &Path, upstream: &str, requests_per_second: f64) -> ScriptProxy {
        let rate = requests_per_second.to_string();
        ScriptProxy::start(dir, upstream, &["--rate", &rate])
    }

    /// `scripts/hostile-registry.py` in front of `upstream`, meeting each repository of
    /// `attacks` (`(REPO, ATTACK)`; `*` for every repository) with its attack; `args` go on
    /// its command line too (`--upstream-ca FILE` for an HTTPS registry).
    pub fn hostile(
        dir: &Path,
        upstream: &str,
        attacks: &[(&str, &str)],
        args: &[&str],
    ) -> ScriptProxy {
        let mut all: Vec<String> = attacks
            .iter()
            .map(|(repository, attack)| format!("--attack={repository}={attack}"))
            .collect();
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        ScriptProxy::start_script("hostile-registry.py", dir, upstream, &all)
    }

    /// `scripts/listing-registry.py` in front of `upstream` in `mode` (`google`: Google's
    /// `child` listing and no catalog; `hub`: Docker Hub's Hub API; `bare`: no way to list a
    /// namespace), with `args` on its command line too.
    pub fn listing(dir: &Path, upstream: &str, mode: &str, args: &[&str]) -> ScriptProxy {
        let mut all = vec!["--mode", mode];
        all.extend(args);
        ScriptProxy::start_script("listing-registry.py", dir, upstream, &all)
    }

    fn start_script(name: &str, dir: &Path, upstream: &str, args: &[&str]) -> ScriptProxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name);
        let n = unique();
        let port_file = dir.join(format!("proxy-port-{n}"));
        let log = dir.join(format!("proxy-{n}.log"));
        let child = Command::new("python3")
            .arg(script)
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("run python3");
        wait_until(Duration::from_secs(20), "the proxy never listened", || {
            port_file.exists()
        });
        let port = std::fs::read_to_string(&port_file).unwrap();
        ScriptProxy {
            child,
            port: port.trim().parse().unwrap(),
            log,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far, one line each.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests were answered `429 Too Many Requests`.
    pub fn throttled(&self) -> usize {
        let log = self.log();
        log.lines()
            .filter(|line| line.split(' ').nth(2) == Some("429"))
            .count()
    }

    /// The logged requests whose method is `method` and whose path contains `part`.
    pub fn requests(&self, method: &str, part: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| {
                let mut fields = line.split(' ');
                fields.next() == Some(method) && fields.next().is_some_and(|p| p.contains(part))
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ScriptProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
