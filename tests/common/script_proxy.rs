//! `scripts/rate-limit-proxy.py` as a fixture: a reverse proxy in front of a registry that can
//! limit the rate, refuse manifest list uploads, corrupt or cut blob downloads, and logs every
//! request (`METHOD PATH STATUS [BYTES]`), so tests can count what a client asked for.

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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rate-limit-proxy.py");
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
