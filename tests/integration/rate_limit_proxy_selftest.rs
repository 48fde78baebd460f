//! Proves `scripts/rate-limit-proxy.py`, the tests' fault proxy, acts like a registry behind
//! nginx `limit_req`: requests over the rate get Docker Hub's 429 with `Retry-After` and its
//! quota headers on a connection that stays open, requests under it pass, and everything a
//! pulling skopeo sends (the `/v2/` ping, manifest HEAD/GET, blob HEAD/GET of a few hundred
//! KiB) comes back byte-exact.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::script_proxy::ScriptProxy;
use crate::common::*;
use sha2::{Digest as _, Sha256};

/// No request of these tests comes anywhere near it: skopeo's requests all pass.
const GENEROUS: f64 = 1000.0;

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// curl without any proxy from the environment, with a deadline.
fn curl() -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "--max-time", "10"]);
    cmd
}

/// One GET of `url`: the status and the response head (status line and headers).
fn status_and_head(url: &str) -> (u16, String) {
    let mut cmd = curl();
    cmd.args(["-o", "/dev/null", "-D", "-", "-w", "%{http_code}", url]);
    let out = stdout_of(&run(&mut cmd, 0));
    let (head, code) = out.rsplit_once("\r\n\r\n").unwrap_or(("", &out));
    let code = code.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    (code, head.to_string())
}

/// The value of `name` in a response head, case-insensitively.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = head.lines().filter_map(|l| l.split_once(':'));
    let found = lines.find(|(key, _)| key.trim().eq_ignore_ascii_case(name));
    found.map(|(_, value)| value.trim())
}

/// Requests to `/v2/…` the proxy saw, passed on or refused.
fn registry_requests(proxy: &ScriptProxy) -> usize {
    proxy.log().lines().filter(|l| l.contains(" /v2")).count()
}

/// What the proxy saw, for failure messages.
fn counts(proxy: &ScriptProxy) -> String {
    format!(
        "proxy: {} registry requests, {} answered 429:\n{}",
        registry_requests(proxy),
        proxy.throttled(),
        proxy.log()
    )
}

#[test]
fn requests_over_the_rate_get_429_with_retry_after() {
    let scratch = TempDir::new("ferry-rate-proxy");
    let registry = Registry::start_plain();
    let proxy = ScriptProxy::rate_limited(scratch.path(), &registry.addr(), 2.0);
    let ping = format!("http://{}/v2/", proxy.addr());

    let answers: Vec<(u16, String)> = (0..10).map(|_| status_and_head(&ping)).collect();

    let codes: Vec<u16> = answers.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes[0], 200, "{codes:?}\n{}", counts(&proxy));
    let refused = codes[1..].iter().filter(|&&code| code == 429).count();
    assert!(refused >= 5, "{codes:?}\n{}", counts(&proxy));
    assert!(
        codes.iter().all(|code| [200, 429].contains(code)),
        "{codes:?}"
    );
    for (_, head) in answers.iter().filter(|(code, _)| *code == 429) {
        let retry_after = header(head, "retry-after").unwrap_or_else(|| panic!("{head}"));
        let seconds: u64 = retry_after.parse().unwrap_or_else(|_| panic!("{head}"));
        // At 2 rps the next token is at most 0.5 s away, which rounds up to 1.
        assert_eq!(seconds, 1, "{head}");
    }
    assert_eq!(registry_requests(&proxy), 10, "{}", counts(&proxy));
    assert_eq!(proxy.throttled(), refused, "{}", counts(&proxy));

    // Spaced out, every request finds a token.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(600));
        let (code, head) = status_and_head(&ping);
        assert_eq!(code, 200, "{head}\n{}", counts(&proxy));
    }
    assert_eq!(proxy.throttled(), refused, "{}", counts(&proxy));
}

#[test]
fn refusal_is_docker_hub_json_on_a_connection_that_stays_open() {
    let scratch = TempDir::new("ferry-rate-proxy");
    let registry = Registry::start_plain();
    let proxy = ScriptProxy::rate_limited(scratch.path(), &registry.addr(), 0.1);
    let ping = format!("http://{}/v2/", proxy.addr());

    // Three transfers in one curl run: one connection if the 429s keep it open.
    let mut cmd = curl();
    cmd.args(["-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"]);
    cmd.args(["-w", "%{http_code} %{num_connects}\n", &ping, &ping, &ping]);
    let out = stdout_of(&run(&mut cmd, 0));
    assert_eq!(out, "200 1\n429 0\n429 0\n", "{}", counts(&proxy));

    let mut cmd = curl();
    let out = stdout_of(&run(cmd.args(["-i", &ping]), 0));
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 429 Too Many Requests"), "{out}");
    assert_eq!(header(head, "content-type"), Some("application/json"));
    let json =
        "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"You have reached your pull \
                rate limit. You may increase the limit by authenticating and upgrading: \
                https://www.docker.com/increase-rate-limit\"}]}";
    assert_eq!(body, json);
    // Docker Hub's quota headers, saying it is spent.
    assert_eq!(
        header(head, "ratelimit-remaining"),
        Some("0;w=21600"),
        "{head}"
    );
    assert_eq!(
        header(head, "ratelimit-limit"),
        Some("100;w=21600"),
        "{head}"
    );
    assert_eq!(
        header(head, "content-length"),
        Some(&*json.len().to_string())
    );
    // At 0.1 rps the next token is up to 10 s away, and Retry-After rounds up.
    let seconds: u64 = header(head, "retry-after").unwrap().parse().unwrap();
    assert!((9..=10).contains(&seconds), "{head}");
    assert_eq!(proxy.throttled(), 3, "{}", counts(&proxy));
}

#[test]
fn skopeo_pulls_through_the_proxy_when_not_throttled() {
    let scratch = TempDir::new("ferry-rate-proxy");
    let registry = Registry::start_plain();
    let image = push_new_image(&registry, scratch.path(), "library/nginx:1.25", "seed");
    let proxy = ScriptProxy::rate_limited(scratch.path(), &registry.addr(), GENEROUS);
    let source = format!("docker://{}/library/nginx:1.25", proxy.addr());

    let mut inspect = Command::new("skopeo");
    inspect.args([
        "--insecure-policy",
        "inspect",
        "--raw",
        "--tls-verify=false",
    ]);
    let raw = run(inspect.arg(&source), 0).stdout;
    assert_eq!(sha256_digest(&raw), image.digest, "{}", counts(&proxy));

    let layout = scratch.path().join("pulled");
    copy_all(&source, &layout);
    let index = fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(index.contains(&image.digest), "{index}");
    for digest in &image.platform_digests {
        let blob = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
        assert!(blob.is_file(), "{} not pulled", blob.display());
    }
    assert_eq!(proxy.throttled(), 0, "{}", counts(&proxy));
}

#[test]
fn large_blobs_come_through_byte_exact() {
    let scratch = TempDir::new("ferry-rate-proxy");
    let registry = Registry::start_plain();
    let (layout, manifest, layer) = image_with_large_layer(scratch.path());
    assert_eq!(push(&registry, &layout, "library/big:1"), manifest);
    let proxy = ScriptProxy::rate_limited(scratch.path(), &registry.addr(), GENEROUS);
    let blob_path = format!("/v2/library/big/blobs/{layer}");
    let (via_proxy, direct) = (
        format!("http://{}{blob_path}", proxy.addr()),
        format!("http://{}{blob_path}", registry.addr()),
    );

    let body = scratch.path().join("blob");
    let mut get = curl();
    get.args(["-D", "-", "-o"]).arg(&body).arg(&via_proxy);
    let head = stdout_of(&run(&mut get, 0));
    let bytes = fs::read(&body).unwrap();
    assert!(bytes.len() > 256 * 1024, "{} bytes", bytes.len());
    assert_eq!(sha256_digest(&bytes), layer, "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length = bytes.len().to_string();
    assert_eq!(header(&head, "content-length"), Some(&*length), "{head}");
    let upstream = stdout_of(&run(curl().args(["-I", &direct]), 0));
    for name in ["content-type", "docker-content-digest"] {
        let expected = header(&upstream, name);
        assert!(expected.is_some(), "no {name} upstream:\n{upstream}");
        assert_eq!(header(&head, name), expected, "{name}:\n{head}");
    }

    let head = stdout_of(&run(curl().args(["-I", &via_proxy]), 0));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-length"), Some(&*length), "{head}");
    assert_eq!(header(&head, "docker-content-digest"), Some(&*layer));

    let pulled = scratch.path().join("pulled");
    copy_all(&format!("docker://{}/library/big:1", proxy.addr()), &pulled);
    let copied = fs::read(pulled.join("blobs/sha256").join(&layer["sha256:".len()..]));
    assert_eq!(copied.unwrap(), bytes);
    assert_eq!(proxy.throttled(), 0, "{}", counts(&proxy));
}

/// `skopeo copy --all --preserve-digests` from `source` into the OCI layout `layout`.
fn copy_all(source: &str, layout: &Path) {
    let mut copy = Command::new("skopeo");
    copy.args([
        "--insecure-policy",
        "copy",
        "--all",
        "--preserve-digests",
        "--quiet",
    ])
    .arg("--src-tls-verify=false")
    .arg(source)
    .arg(format!("oci:{}:x", layout.display()));
    run(&mut copy, 0);
}

/// An OCI layout whose "latest" is a single-platform manifest over one uncompressed layer of
/// 384 KiB of pseudo-random bytes (the generated test images have layers of 2 KiB); returns the
/// layout, the manifest digest and the layer digest.
fn image_with_large_layer(dir: &Path) -> (PathBuf, String, String) {
    let content = dir.join("content");
    fs::create_dir(&content).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64; // xorshift: incompressible, the same every run
    let noise: Vec<u8> = (0..384 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    fs::write(content.join("noise.bin"), noise).unwrap();
    let tar = dir.join("layer.tar");
    let mut cmd = Command::new("tar");
    cmd.args([
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mtime=@0",
        "-cf",
    ])
    .arg(&tar)
    .arg("-C")
    .arg(&content)
    .arg("noise.bin");
    run(&mut cmd, 0);

    let layout = dir.join("big");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let write_blob = |bytes: Vec<u8>| {
        let (digest, size) = (sha256_digest(&bytes), bytes.len());
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        (digest, size)
    };
    let (layer, layer_size) = write_blob(fs::read(&tar).unwrap());
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let (config, config_size) = write_blob(config.into_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let manifest = manifest.into_bytes();
    let manifest_size = manifest.len();
    let (manifest, _) = write_blob(manifest);
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#
    );
    fs::write(layout.join("index.json"), index).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    (layout, manifest, layer)
}
