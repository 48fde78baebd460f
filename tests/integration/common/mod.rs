//! Fixtures for ferry's integration tests.
//!
//! They start real `docker-registry` processes on loopback ports (plain HTTP, or HTTPS with a
//! per-registry CA plus htpasswd basic auth), generate small multi-arch OCI images on the spot and
//! push them with skopeo, read results back (digests, tags, catalog), write registries.conf files,
//! record the skopeo invocations of the binary under test, and run commands with failure messages
//! that show the command line, exit status, stdout and stderr.
//!
//! All the tests share one binary and run side by side: everything lives in unique temp dirs
//! and on ports picked per registry, stand-in processes are found by their own directory
//! ([`Sleeper`]), and no test changes the environment of the test process (each sets its
//! child's). Nothing leaves 127.0.0.1. Every helper panics with a message that says what failed.

pub mod artifacts;
pub mod engines;
pub mod mirror;
pub mod script_proxy;
pub mod test;
pub mod token_proxy;

pub use test::Test;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// The real skopeo: the fixtures and the recorder never go through a PATH stand-in.
const SKOPEO: &str = "/usr/bin/skopeo";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A number unique within the test binary, for names that parallel tests must not share.
pub fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// Temp dirs

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}-{}-{}-{nanos}", std::process::id(), unique());
        let path = std::env::temp_dir().join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Registries

/// A `docker-registry` child process on 127.0.0.1, with config, log and storage in its temp dir.
pub struct Registry {
    dir: TempDir,
    port: u16,
    /// Sent back in an `X-Ferry-Fixture` header, so the readiness check knows it reached this
    /// registry and not another test's that won a race for the same port.
    id: String,
    /// For a secure registry: the user and password htpasswd accepts.
    credentials: Option<(String, String)>,
    /// Whether the registry logs every request it serves (see [`Registry::requests`]).
    access_log: bool,
    /// The most repositories one page of its catalog holds (`catalog.maxentries`).
    catalog_page: Option<usize>,
    child: Option<Child>,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn start_plain() -> Registry {
        Registry::launch(TempDir::new("ferry-registry"), None, false)
    }

    /// HTTPS with a server cert for 127.0.0.1/localhost signed by a fresh CA, and basic auth.
    pub fn start_secure(user: &str, password: &str) -> Registry {
        let dir = TempDir::new("ferry-registry");
        make_tls_and_htpasswd(dir.path(), user, password);
        Registry::launch(dir, Some((user.to_string(), password.to_string())), false)
    }

    /// As [`Registry::start_secure`], logging every request it serves: a test can tell that
    /// nothing reached it ([`Registry::requests`]).
    pub fn start_secure_logging_requests(user: &str, password: &str) -> Registry {
        let dir = TempDir::new("ferry-registry");
        make_tls_and_htpasswd(dir.path(), user, password);
        Registry::launch(dir, Some((user.to_string(), password.to_string())), true)
    }

    /// Plain HTTP, no auth, whose catalog pages hold at most `entries` repositories (and
    /// which refuses, with 400, a page asked to hold more).
    pub fn start_plain_paging_catalog(entries: usize) -> Registry {
        let mut registry = Registry::launch(TempDir::new("ferry-registry"), None, false);
        registry.catalog_page = Some(entries);
        registry.restart();
        registry
    }

    /// Where the registry keeps repository `repo` on disk: removing it makes the repository
    /// gone, as a registry's garbage collection of a deleted one would.
    pub fn repository_dir(&self, repo: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(repo)
    }

    /// The requests the registry served, in order, as its access log writes them (`… "GET
    /// /v2/ HTTP/1.1" 401 87 "" "AGENT"`); a request refused during the TLS handshake, or
    /// plain HTTP to a TLS port, never gets that far. Empty unless started to log them.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains("] \"") && line.contains(" HTTP/1."))
            .map(String::from)
            .collect()
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory holding only the CA as `ca.crt`, as `skopeo --cert-dir` wants; None for plain.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        let certs = self.dir.path().join("certs");
        self.credentials.as_ref().map(|_| certs)
    }

    pub fn ca_file(&self) -> Option<PathBuf> {
        self.cert_dir().map(|d| d.join("ca.crt"))
    }

    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    /// What the registry has logged (level error and up); part of every start failure message.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Logins htpasswd refused: the registry logs each ("error authenticating user").
    pub fn failed_logins(&self) -> usize {
        self.log().matches("error authenticating user").count()
    }

    /// Kill and reap the process; a no-op when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port with the same storage (stops it first if running).
    pub fn restart(&mut self) {
        self.stop();
        let mut failures = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(why) => writeln!(failures, "- {why}").unwrap(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let addr = self.addr();
        panic!("docker-registry did not restart on {addr}:\n{failures}");
    }

    fn launch(dir: TempDir, credentials: Option<(String, String)>, access_log: bool) -> Registry {
        let id = format!("{}-{}", std::process::id(), unique());
        let mut registry = Registry {
            dir,
            port: 0,
            id,
            credentials,
            access_log,
            catalog_page: None,
            child: None,
        };
        let mut failures = String::new();
        for _ in 0..START_ATTEMPTS {
            // Free a moment ago; if another process takes it first, the registry exits and we
            // try the next one.
            let probe = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            registry.port = probe.local_addr().expect("probe listener address").port();
            drop(probe);
            match registry.spawn_and_wait() {
                Ok(()) => return registry,
                Err(why) => writeln!(failures, "- port {}: {why}", registry.port).unwrap(),
            }
        }
        panic!("docker-registry did not start in {START_ATTEMPTS} attempts:\n{failures}");
    }

    /// Write the config for the current port, spawn, and wait until this registry answers.
    /// On failure the process is gone and the error holds its log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let config = self.dir.path().join("config.yml");
        fs::write(&config, self.config_yaml()).expect("write registry config");
        let log = fs::File::create(self.dir.path().join("registry.log")).expect("create log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run docker-registry (apt install it): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let (status, log) = (describe(status), self.log());
                return Err(format!("exited with {status}; log:\n{log}"));
            }
            if self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                let log = self.log();
                return Err(format!("not ready after {READY_TIMEOUT:?}; log:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn config_yaml(&self) -> String {
        let dir = self.dir.path();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\n\
             storage:\n  filesystem:\n    rootdirectory: {:?}\n  delete:\n    enabled: true\n\
             http:\n  addr: {}\n  headers:\n    X-Ferry-Fixture: [{:?}]\n",
            !self.access_log,
            dir.join("storage"),
            self.addr(),
            self.id,
        );
        if self.credentials.is_some() {
            let (cert, key) = (dir.join("tls/server.crt"), dir.join("tls/server.key"));
            let htpasswd = dir.join("htpasswd");
            write!(
                yaml,
                "  tls:\n    certificate: {cert:?}\n    key: {key:?}\n\
                 auth:\n  htpasswd:\n    realm: ferry-test\n    path: {htpasswd:?}\n"
            )
            .unwrap();
        }
        if let Some(entries) = self.catalog_page {
            write!(yaml, "catalog:\n  maxentries: {entries}\n").unwrap();
        }
        yaml
    }

    /// True when the server on our port is this registry and serves requests.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let answer = if self.credentials.is_some() {
            // TCP is up; one curl call checks TLS with our CA, our credentials and the marker.
            drop(stream);
            self.http_get("/v2/").ok()
        } else {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut text = String::new();
            let request = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
            let sent = stream.write_all(request.as_bytes()).is_ok();
            (sent && stream.read_to_string(&mut text).is_ok()).then(|| HttpAnswer::parse(&text))
        };
        answer.is_some_and(|a| a.status == 200 && a.header("x-ferry-fixture") == Some(&self.id))
    }

    /// GET a registry API path with curl (TLS and credentials as needed).
    fn http_get(&self, path: &str) -> Result<HttpAnswer, String> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--noproxy", "*", "--max-time", "10"]);
        let url = match (self.ca_file(), &self.credentials) {
            (Some(ca), Some((user, password))) => {
                cmd.arg("--cacert").arg(ca);
                cmd.arg("--user").arg(format!("{user}:{password}"));
                format!("https://{}{path}", self.addr())
            }
            _ => format!("http://{}{path}", self.addr()),
        };
        let out = cmd.arg(url).stdin(Stdio::null()).output();
        let out = out.map_err(|e| format!("cannot run curl: {e}"))?;
        match out.status.success() {
            true => Ok(HttpAnswer::parse(&stdout_of(&out))),
            false => Err(failure_report(&cmd, &out)),
        }
    }

    /// skopeo flags that reach this registry: `prefix` is "" for inspect, "dest-" for copy.
    fn skopeo_access(&self, prefix: &str) -> Vec<String> {
        match (self.cert_dir(), &self.credentials) {
            (Some(certs), Some((user, password))) => vec![
                format!("--{prefix}cert-dir={}", certs.display()),
                format!("--{prefix}creds={user}:{password}"),
            ],
            _ => vec![format!("--{prefix}tls-verify=false")],
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP response as far as the fixtures read one.
struct HttpAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpAnswer {
    fn parse(text: &str) -> HttpAnswer {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
        let status = status.unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        HttpAnswer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// The first value of a header; `name` in lowercase.
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    }
}

/// CA, server cert (SAN IP:127.0.0.1, DNS:localhost) and htpasswd file under `dir`:
/// `tls/` holds the keys and server cert, `certs/` only the CA as `ca.crt`.
fn make_tls_and_htpasswd(dir: &Path, user: &str, password: &str) {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).expect("create tls dir");
    fs::create_dir_all(dir.join("certs")).expect("create certs dir");
    let cnf = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ferry-test\n\
        [ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
        [server_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
        extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n";
    fs::write(tls.join("openssl.cnf"), cnf).expect("write openssl.cnf");
    let openssl = |args: &str| {
        let mut cmd = Command::new("openssl");
        run(cmd.args(args.split(' ')).current_dir(&tls), 0)
    };
    // EC keys: RSA key generation would cost more than starting the registry.
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -config openssl.cnf";
    let ca_name = format!("/CN=ferry-test-ca-{}-{}", std::process::id(), unique());
    openssl(&format!(
        "req -x509 {new_key} -extensions ca_ext -subj {ca_name} -days 2 \
         -keyout ca.key -out ../certs/ca.crt"
    ));
    openssl(&format!(
        "req -new {new_key} -subj /CN=localhost -keyout server.key -out server.csr"
    ));
    openssl(
        "x509 -req -in server.csr -CA ../certs/ca.crt -CAkey ca.key -set_serial 1 -days 2 \
         -extfile openssl.cnf -extensions server_ext -out server.crt",
    );
    let entry = run(Command::new("htpasswd").args(["-Bbn", user, password]), 0);
    let entry = format!("{}\n", stdout_of(&entry).trim_end());
    fs::write(dir.join("htpasswd"), entry).expect("write htpasswd");
}

// ---------------------------------------------------------------------------------------------
// Images

/// A generated multi-arch image: the index digest and its per-platform manifest digests
/// (linux/amd64 first, then linux/arm64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub digest: String,
    pub platform_digests: Vec<String>,
    /// Every layer digest, per platform bottom first (linux/amd64's, then linux/arm64's).
    pub layers: Vec<String>,
}

/// Build an OCI layout in a fresh dir under `dir`: an index over linux/amd64 and linux/arm64, each
/// a manifest with one uncompressed tar layer whose file depends on `seed` and the arch. Same seed,
/// same digests. The layout's index.json names the index "latest".
pub fn make_image(dir: &Path, seed: &str) -> (PathBuf, Image) {
    make_layered_image(dir, seed, &Layers::default())
}

/// What else [`make_layered_image`] puts in each platform's image.
#[derive(Debug, Clone, Default)]
pub struct Layers<'a> {
    /// A base layer first, depending only on this seed and the arch: images with the same
    /// base share it, as images built `FROM` one base do.
    pub base: Option<&'a str>,
    /// Bytes of incompressible content added to the top layer (0: a few lines of text).
    pub top_bytes: usize,
}

/// Deterministic, incompressible bytes: xorshift64* seeded by the sha256 of `seed` (fast in
/// a debug build, where tests generate tens of MiB).
pub fn seeded_bytes(seed: &str, length: usize) -> Vec<u8> {
    let hash = Sha256::digest(seed.as_bytes());
    let mut state = u64::from_le_bytes(hash[..8].try_into().unwrap()) | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// [`make_image`] with `layers`: an optional shared base layer under the top one, and a top
/// layer of any size. The image's `layers` list each platform's layer digests, bottom first.
pub fn make_layered_image(dir: &Path, seed: &str, layers: &Layers) -> (PathBuf, Image) {
    let layout = loop {
        let candidate = dir.join(format!("oci-{}", unique()));
        if fs::create_dir(&candidate).is_ok() {
            break candidate;
        }
        assert!(dir.is_dir(), "make_image: no directory {dir:?}");
    };
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("create blobs dir");

    let mut entries = Vec::new();
    let mut platform_digests = Vec::new();
    let mut all_layers = Vec::new();
    for arch in ["amd64", "arm64"] {
        let mut written = Vec::new();
        if let Some(base) = layers.base {
            let content = format!("ferry test base layer\nbase: {base}\narch: {arch}\n");
            let tar = tar_with_one_file("ferry-base.txt", content.as_bytes());
            written.push(write_blob(&blobs, OCI_LAYER_TAR, tar));
        }
        let mut content = format!("ferry test image\nseed: {seed}\narch: {arch}\n").into_bytes();
        content.extend(seeded_bytes(&format!("{seed}/{arch}"), layers.top_bytes));
        let tar = tar_with_one_file("ferry-fixture.txt", &content);
        written.push(write_blob(&blobs, OCI_LAYER_TAR, tar));
        let diff_ids: Vec<String> = written.iter().map(|l| format!("{:?}", l.digest)).collect();
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        let config = write_blob(&blobs, OCI_CONFIG, config.into_bytes());
        let layer_json: Vec<String> = written.iter().map(|l| l.json("")).collect();
        all_layers.extend(written.iter().map(|l| l.digest.clone()));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
            config.json(""),
            layer_json.join(",")
        );
        let manifest = write_blob(&blobs, OCI_MANIFEST, manifest.into_bytes());
        let platform = format!(r#","platform":{{"architecture":"{arch}","os":"linux"}}"#);
        entries.push(manifest.json(&platform));
        platform_digests.push(manifest.digest);
    }
    let entries = entries.join(",");
    let index =
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{entries}]}}"#);
    let index = write_blob(&blobs, OCI_INDEX, index.into_bytes());
    let top = index.json(r#","annotations":{"org.opencontainers.image.ref.name":"latest"}"#);
    let index_json = format!(r#"{{"schemaVersion":2,"manifests":[{top}]}}"#);
    fs::write(layout.join("index.json"), index_json).expect("write index.json");
    let oci_layout = r#"{"imageLayoutVersion":"1.0.0"}"#;
    fs::write(layout.join("oci-layout"), oci_layout).expect("write oci-layout");
    let digest = index.digest;
    (
        layout,
        Image {
            digest,
            platform_digests,
            layers: all_layers,
        },
    )
}

/// The descriptor of a blob written to a layout.
struct Blob {
    media_type: &'static str,
    digest: String,
    size: usize,
}

impl Blob {
    /// The descriptor as JSON; `extra` is spliced in before the closing brace.
    fn json(&self, extra: &str) -> String {
        let Blob {
            media_type,
            digest,
            size,
        } = self;
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}{extra}}}"#)
    }
}

fn write_blob(blobs: &Path, media_type: &'static str, bytes: Vec<u8>) -> Blob {
    let digest = sha256_digest(&bytes);
    let path = blobs.join(&digest["sha256:".len()..]);
    fs::write(&path, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    Blob {
        media_type,
        digest,
        size: bytes.len(),
    }
}

/// A ustar archive holding one regular file; fixed mode, owner and mtime keep it stable.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "name too long for a ustar header: {name}");
    let mut header = [0u8; 512];
    let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, name.as_bytes());
    put(100, b"0000644\0"); // mode
    put(108, b"0000000\0"); // uid
    put(116, b"0000000\0"); // gid
    put(124, format!("{:011o}\0", content.len()).as_bytes()); // size
    put(136, b"00000000000\0"); // mtime
    put(148, b"        "); // the checksum is summed with its own field as spaces
    put(156, b"0"); // regular file
    put(257, b"ustar\x0000"); // magic and version
    put(265, b"root"); // owner name
    put(297, b"root"); // group name
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0); // end of archive: two zero blocks
    tar
}

/// Push an OCI layout (its "latest") with `skopeo copy --all --preserve-digests`; returns the
/// digest skopeo reports for what it pushed.
pub fn push(registry: &Registry, layout: &Path, repo_and_tag: &str) -> String {
    push_as(registry, layout, repo_and_tag, Form::OciIndex)
}

/// How [`push_as`] writes a generated image to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As generated: an OCI index of OCI manifests with uncompressed layers.
    OciIndex,
    /// Converted by skopeo to a Docker schema 2 manifest list (gzip layers).
    DockerList,
    /// The linux/amd64 image alone, as its OCI manifest.
    OciSingle,
    /// The linux/amd64 image alone, converted to a Docker schema 2 manifest.
    DockerSingle,
}

/// Push an OCI layout (its "latest") in `form`; returns the digest skopeo reports for what it
/// pushed (for a converted form, a digest of its own).
pub fn push_as(registry: &Registry, layout: &Path, repo_and_tag: &str, form: Form) -> String {
    let digest_file = registry.dir.path().join(format!("pushed-{}", unique()));
    let mut cmd = Command::new(SKOPEO);
    cmd.args([
        "--insecure-policy",
        "--override-arch",
        "amd64",
        "--override-os",
        "linux",
    ]);
    cmd.args(
        match form {
            Form::OciIndex => "copy --all --preserve-digests --quiet",
            Form::DockerList => "copy --all --format v2s2 --quiet",
            Form::OciSingle => "copy --preserve-digests --quiet",
            Form::DockerSingle => "copy --format v2s2 --quiet",
        }
        .split(' '),
    );
    cmd.args(registry.skopeo_access("dest-"))
        .arg(format!("--digestfile={}", digest_file.display()))
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{}/{repo_and_tag}", registry.addr()));
    run(&mut cmd, 0);
    let digest = fs::read_to_string(&digest_file).expect("read skopeo --digestfile");
    digest.trim().to_string()
}

/// `make_image` + `push`; checks that the registry kept the index digest.
pub fn push_new_image(
    registry: &Registry,
    scratch: &Path,
    repo_and_tag: &str,
    seed: &str,
) -> Image {
    let (layout, image) = make_image(scratch, seed);
    let pushed = push(registry, &layout, repo_and_tag);
    assert_eq!(
        pushed, image.digest,
        "push changed the digest of {repo_and_tag}"
    );
    image
}

/// Docker's manifest list and schema 2 manifest media types.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A generated image in one of Docker's formats, as pushed: `Form::DockerList`, a Docker
/// manifest list of two schema 2 manifests (linux/amd64, linux/arm64), or
/// `Form::DockerSingle`, the linux/amd64 image as one schema 2 manifest (skopeo converts the
/// generated OCI image, gzipping its layers). Checks that the registry holds exactly that
/// form; returns the digest of the top-level manifest, with its children's for a list.
pub fn push_new_docker_image(
    registry: &Registry,
    scratch: &Path,
    repo_and_tag: &str,
    seed: &str,
    form: Form,
) -> (String, Vec<String>) {
    let (layout, _) = make_image(scratch, seed);
    let pushed = push_as(registry, &layout, repo_and_tag, form);
    let raw = raw_manifest(registry, repo_and_tag).expect("the pushed image is there");
    assert_eq!(sha256_digest(&raw), pushed, "{repo_and_tag}");
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let children: Vec<String> = match form {
        Form::DockerList => {
            assert_eq!(manifest["mediaType"], DOCKER_LIST, "{manifest:#}");
            let list = manifest["manifests"].as_array().unwrap();
            assert_eq!(list.len(), 2, "{manifest:#}");
            list.iter()
                .map(|child| {
                    assert_eq!(child["mediaType"], DOCKER_MANIFEST, "{manifest:#}");
                    child["digest"].as_str().unwrap().to_owned()
                })
                .collect()
        }
        Form::DockerSingle => {
            assert_eq!(manifest["mediaType"], DOCKER_MANIFEST, "{manifest:#}");
            Vec::new()
        }
        Form::OciIndex | Form::OciSingle => panic!("{form:?} is not one of Docker's formats"),
    };
    (pushed, children)
}

// ---------------------------------------------------------------------------------------------
// Reading back

/// The raw top-level manifest of `repo_ref` ("repo:tag" or "repo@sha256:…"); None when the
/// registry says the manifest or the repository is unknown.
pub fn raw_manifest(registry: &Registry, repo_ref: &str) -> Option<Vec<u8>> {
    let mut cmd = Command::new(SKOPEO);
    let url = format!("docker://{}/{repo_ref}", registry.addr());
    cmd.args(["inspect", "--raw"])
        .args(registry.skopeo_access(""))
        .arg(url);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo inspect");
    let stderr = stderr_of(&out);
    if out.status.success() {
        Some(out.stdout)
    } else if stderr.contains("manifest unknown") || stderr.contains("name unknown") {
        None
    } else {
        let report = failure_report(&cmd, &out);
        panic!("skopeo inspect failed, and not for a missing manifest\n{report}")
    }
}

/// sha256 of the raw top-level manifest of `repo_ref`, None when it does not exist.
pub fn remote_digest(registry: &Registry, repo_ref: &str) -> Option<String> {
    raw_manifest(registry, repo_ref).map(|raw| sha256_digest(&raw))
}

/// Whether `repo` in `registry` holds blob `digest` whole (`GET` answered 200 with its bytes).
pub fn has_blob(registry: &Registry, repo: &str, digest: &str) -> bool {
    let answer = registry_get(registry, &format!("/v2/{repo}/blobs/{digest}"));
    answer.status == 200
}

/// The tags of `repo`, sorted; empty when the repository does not exist.
pub fn tags(registry: &Registry, repo: &str) -> Vec<String> {
    let (path, addr) = (format!("/v2/{repo}/tags/list"), registry.addr());
    let HttpAnswer { status, body, .. } = registry_get(registry, &path);
    match status {
        200 => sorted(json_strings(&body, "tags")),
        404 if body.contains("NAME_UNKNOWN") => Vec::new(),
        _ => panic!("GET {path} in {addr}: HTTP {status}\n{body}"),
    }
}

/// The repositories in the registry (`GET /v2/_catalog`, following its pages), sorted.
pub fn catalog(registry: &Registry) -> Vec<String> {
    let mut repositories = Vec::new();
    let mut next = Some("/v2/_catalog".to_string());
    while let Some(path) = next {
        let answer = registry_get(registry, &path);
        let (status, body) = (answer.status, &answer.body);
        assert_eq!(status, 200, "GET {path} in {}:\n{body}", registry.addr());
        repositories.extend(json_strings(&answer.body, "repositories"));
        // Link: </v2/_catalog?last=x&n=100>; rel="next"
        let link = answer.header("link").filter(|l| l.contains("rel=\"next\""));
        next = link.and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()));
    }
    sorted(repositories)
}

fn registry_get(registry: &Registry, path: &str) -> HttpAnswer {
    let answer = registry.http_get(path);
    answer.unwrap_or_else(|e| panic!("GET {path} in {} failed:\n{e}", registry.addr()))
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// The string array under `key` in a registry's JSON answer (`null` reads as empty). Registry
/// names and tags never contain quotes, commas or escapes, which keeps this simple.
fn json_strings(body: &str, key: &str) -> Vec<String> {
    let key_at = body.find(&format!("\"{key}\":"));
    let after_key = key_at.map(|at| &body[at + key.len() + 3..]);
    let Some(value) = after_key.map(str::trim_start) else {
        panic!("no {key:?} in {body}")
    };
    if value.starts_with("null") {
        return Vec::new();
    }
    let Some(items) = value.strip_prefix('[').and_then(|v| v.split(']').next()) else {
        panic!("{key:?} is not an array in {body}")
    };
    let items = items.split(',').map(|item| item.trim().trim_matches('"'));
    items
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Configuration and stand-ins for the binary under test

/// Write a registries.conf that sends each prefix to a location (`insecure = true`); a new file
/// per call, so several configs can share `dir`.
pub fn registries_conf(dir: &Path, redirects: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("# ferry test fixture\nunqualified-search-registries = []\n");
    for (prefix, location) in redirects {
        let entry = format!("prefix = {prefix:?}\nlocation = {location:?}\ninsecure = true");
        write!(text, "\n[[registry]]\n{entry}\n").unwrap();
    }
    let path = dir.join(format!("registries-{}.conf", unique()));
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A fresh directory holding an executable `skopeo` that appends its argv (TAB-separated, one
/// invocation per line) to `log` and its environment to a file of its own under `log.env/`,
/// then execs the real skopeo. Put it first on PATH.
pub fn skopeo_recorder(dir: &Path, log: &Path) -> PathBuf {
    recorder(dir, "skopeo", Path::new(SKOPEO), log)
}

/// A recorder (as [`skopeo_recorder`]) named `name` in a fresh directory, that execs `real`.
pub fn recorder(dir: &Path, name: &str, real: &Path, log: &Path) -> PathBuf {
    recorders(dir, &[(name, real)], log)
}

/// A fresh directory holding a recorder (as [`skopeo_recorder`]) of each `(name, real)`, all
/// logging to `log`: one log of every process any of them started.
pub fn recorders(dir: &Path, binaries: &[(&str, &Path)], log: &Path) -> PathBuf {
    let names: Vec<&str> = binaries.iter().map(|(name, _)| *name).collect();
    let bin = dir.join(format!("{}-recorder-{}", names.join("-"), unique()));
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("create {}: {e}", bin.display()));
    let environments = env_dumps(log);
    fs::create_dir_all(&environments).expect("create the environment dump dir");
    for (name, real) in binaries {
        write_recorder(&bin, name, real, log, &environments);
    }
    bin
}

fn write_recorder(bin: &Path, name: &str, real: &Path, log: &Path, environments: &Path) {
    // The line is written with one printf, one append: parallel invocations do not interleave.
    let script = format!(
        "#!/bin/sh\n# {name} stand-in written by ferry's test fixtures\n\
         tab=$(printf '\\t')\nline=''\nsep=''\n\
         for arg in \"$@\"; do\n  line=\"$line$sep$arg\"\n  sep=$tab\ndone\n\
         env >{}/$$\n\
         printf '%s\\n' \"$line\" >> {}\nexec {} \"$@\"\n",
        shell_quote(&environments.to_string_lossy()),
        shell_quote(&log.to_string_lossy()),
        shell_quote(&real.to_string_lossy()),
    );
    let path = bin.join(name);
    fs::write(&path, script).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod recorder");
}

/// Where a recorder logging argv to `log` dumps the environments it ran with.
fn env_dumps(log: &Path) -> PathBuf {
    let mut dir = log.as_os_str().to_owned();
    dir.push(".env");
    PathBuf::from(dir)
}

/// The environments (`env` output) a recorder ran with, one per invocation, in no order.
pub fn recorded_environments(log: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(env_dumps(log)) else {
        return Vec::new();
    };
    entries
        .map(|entry| fs::read_to_string(entry.expect("read dir entry").path()).expect("read dump"))
        .collect()
}

/// The value of `name` in an `env` dump, if set.
pub fn env_value<'a>(dump: &'a str, name: &str) -> Option<&'a str> {
    dump.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
}

/// The invocations a recorder logged, in order; empty when it never ran.
pub fn recorded_invocations(log: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let args = |line: &str| match line {
        "" => Vec::new(), // an invocation without arguments
        _ => line.split('\t').map(String::from).collect(),
    };
    text.lines().map(args).collect()
}

/// The ferry binary under test.
pub fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// Run `cmd` with a null stdin and captured output; panic with the command line, exit status,
/// stdout and stderr unless it exits with `expect_code`.
pub fn run(cmd: &mut Command, expect_code: i32) -> Output {
    let out = cmd.stdin(Stdio::null()).output();
    let out = out.unwrap_or_else(|e| panic!("cannot start `{}`: {e}", command_line(cmd)));
    if out.status.code() != Some(expect_code) {
        let report = failure_report(cmd, &out);
        panic!("expected exit code {expect_code}\n{report}");
    }
    out
}

/// Polls `done` every 50 ms; panics with `what` when it is still false after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kill -SIGNAL PID` (`SIGNAL` as `TERM`, `INT`, `HUP`).
pub fn send_signal(pid: u32, signal: &str) {
    run(
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]),
        0,
    );
}

/// Sends `signal` to `child` and returns its exit status, which must come within `limit` of
/// the signal (else panics with `what`).
pub fn signal_and_wait(child: &mut Child, signal: &str, limit: Duration, what: &str) -> ExitStatus {
    let sent = Instant::now();
    send_signal(child.id(), signal);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(sent.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes whose command line (its arguments joined by spaces) contains `text`, one
/// `PID COMMAND LINE` per line; empty when none. A fixed string, not a pattern; tests share
/// one binary and the machine, so look for something only the test's own processes have in
/// their arguments (see [`Sleeper`]).
pub fn processes_matching(text: &str) -> String {
    let mut found = String::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Gone meanwhile, or a zombie (its command line is empty): not running.
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        let line = line.trim_end();
        if line.contains(text) {
            writeln!(found, "{pid} {line}").unwrap();
        }
    }
    found
}

/// A `sleep` for a stand-in to run, found again by its command line: `DIR/sleeper-N/sleep
/// SECONDS`, a link to the real one in a directory of the test's own. Tests run side by side
/// in one binary (and other suites on the same machine): looking for `sleep 300` would count
/// another test's sleepers too.
pub struct Sleeper {
    command: String,
}

impl Sleeper {
    pub fn new(dir: &Path, seconds: u32) -> Sleeper {
        let real = ["/usr/bin/sleep", "/bin/sleep"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .expect("no sleep in /usr/bin or /bin");
        let bin = dir.join(format!("sleeper-{}", unique()));
        fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("create {}: {e}", bin.display()));
        // Named `sleep` still, for a multi-call coreutils that looks at its name.
        let link = bin.join("sleep");
        std::os::unix::fs::symlink(real, &link)
            .unwrap_or_else(|e| panic!("link {}: {e}", link.display()));
        Sleeper {
            command: format!("{} {seconds}", link.display()),
        }
    }

    /// The command line to run in a script (`DIR/sleeper-N/sleep SECONDS`).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The sleepers of this command running now, one line each (see [`processes_matching`]).
    pub fn running(&self) -> String {
        processes_matching(&self.command)
    }
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn failure_report(cmd: &Command, out: &Output) -> String {
    let (line, status) = (command_line(cmd), describe(out.status));
    let (stdout, stderr) = (stdout_of(out), stderr_of(out));
    let (stdout, stderr) = (stdout.trim_end(), stderr.trim_end());
    format!(
        "command: {line}\nstatus: {status}\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n---"
    )
}

/// The command as a shell line, with the working dir and environment changes it runs with.
fn command_line(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        write!(line, "cd {} && ", shell_quote(&dir.to_string_lossy())).unwrap();
    }
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        match value {
            Some(value) => write!(line, "{key}={} ", shell_quote(&value.to_string_lossy())),
            None => write!(line, "env -u {key} "),
        }
        .unwrap();
    }
    line.push_str(&shell_quote(&cmd.get_program().to_string_lossy()));
    for arg in cmd.get_args() {
        write!(line, " {}", shell_quote(&arg.to_string_lossy())).unwrap();
    }
    line
}

pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// "exit code 1", or "killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    let signal = status.signal().unwrap_or(0);
    // Linux numbering of signals 1 to 15.
    let names = "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM";
    match names.split(' ').nth((signal as usize).wrapping_sub(1)) {
        Some(name) => format!("killed by signal {signal} (SIG{name})"),
        None => format!("killed by signal {signal}"),
    }
}
