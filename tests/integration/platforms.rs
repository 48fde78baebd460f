//! `--platform`: only some platforms of an index mirrored, against real `docker-registry`
//! processes. The images are built here and pushed through the registry API (curl) as they
//! are: three-platform OCI indexes with buildx-style attestation manifests, a Docker manifest
//! list, single-platform images. What lands is read back from the registry (and an OCI layout),
//! and the requests of a rerun are counted at `scripts/rate-limit-proxy.py` in front of each
//! side.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common::engines::Engine;
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const UPSTREAM_DIGEST: &str = "io.ferry.upstream.digest";
const PLATFORMS: &str = "io.ferry.platforms";

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// `curl` against the plain-HTTP `registry`: the answer's status, headers (lowercase names)
/// and body.
fn curl(
    registry: &Registry,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, String) {
    let url = match target.starts_with("http") {
        true => target.to_owned(),
        false => format!("http://{}{target}", registry.addr()),
    };
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-i",
        "--noproxy",
        "*",
        "--max-time",
        "20",
        "-X",
        method,
    ]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    cmd.args(["--data-binary", "@-", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {method} {url}: {}",
        stderr_of(&out)
    );
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Pushes `bytes` as a blob of `repo`; returns its digest.
fn put_blob(registry: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_of(bytes);
    let (status, answer) = curl(
        registry,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(status, 202, "{answer}");
    let location = answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .expect("a Location")
        .trim()
        .to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    let (status, answer) = curl(
        registry,
        "PUT",
        &format!("{location}{separator}digest={digest}"),
        &["Content-Type: application/octet-stream"],
        bytes,
    );
    assert_eq!(status, 201, "{answer}");
    digest
}

/// Pushes `manifest` (serialized here, the bytes its digest is of) to `repo` at `reference`
/// (a tag, or its own digest when `None`); returns the bytes and their digest.
fn put_manifest(
    registry: &Registry,
    repo: &str,
    reference: Option<&str>,
    manifest: &Value,
) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = sha256_of(&bytes);
    let media_type = manifest["mediaType"].as_str().unwrap();
    let at = reference.unwrap_or(&digest);
    let (status, answer) = curl(
        registry,
        "PUT",
        &format!("/v2/{repo}/manifests/{at}"),
        &[&format!("Content-Type: {media_type}")],
        &bytes,
    );
    assert_eq!(status, 201, "PUT {repo}:{at}\n{answer}");
    (bytes, digest)
}

/// The descriptor of `bytes` pushed as `media_type`, with `extra` fields.
fn descriptor(media_type: &str, bytes: &[u8], extra: Value) -> Value {
    let mut value =
        json!({ "mediaType": media_type, "digest": sha256_of(bytes), "size": bytes.len() });
    if let Value::Object(extra) = extra {
        for (key, field) in extra {
            value[key] = field;
        }
    }
    value
}

/// The image of one platform (`os/arch[/variant]`), pushed by digest to `repo`: one layer of
/// bytes seeded by `seed`, a config naming the platform. In Docker's schema 2 types when
/// `docker`. Returns its manifest's descriptor with the platform, its layer's digest, and the
/// manifest.
fn push_platform_image(
    registry: &Registry,
    repo: &str,
    seed: &str,
    platform: &str,
    docker: bool,
) -> (Value, String, Value) {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut platform_json = json!({ "architecture": parts[1], "os": parts[0] });
    if let Some(variant) = parts.get(2) {
        platform_json["variant"] = json!(variant);
    }
    let layer = seeded_bytes(&format!("{seed}/{platform}"), 2048);
    let layer_digest = put_blob(registry, repo, &layer);
    let mut config = platform_json.clone();
    config["config"] = json!({});
    config["rootfs"] = json!({ "type": "layers", "diff_ids": [layer_digest] });
    let config = serde_json::to_vec(&config).unwrap();
    put_blob(registry, repo, &config);
    let (manifest_type, config_type, layer_type) = match docker {
        true => (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
        false => (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        ),
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, &config, json!({})),
        "layers": [descriptor(layer_type, &layer, json!({}))],
    });
    let (bytes, _) = put_manifest(registry, repo, None, &manifest);
    (
        descriptor(manifest_type, &bytes, json!({ "platform": platform_json })),
        layer_digest,
        manifest,
    )
}

/// A buildx-style attestation manifest of the image `of`: `unknown/unknown`, annotated as the
/// attestation of that digest, its layer an in-toto statement.
fn push_attestation(registry: &Registry, repo: &str, of: &str) -> Value {
    let statement = json!({ "_type": "https://in-toto.io/Statement/v0.1", "subject": [{ "digest": { "sha256": of.trim_start_matches("sha256:") } }] });
    let statement = serde_json::to_vec(&statement).unwrap();
    put_blob(registry, repo, &statement);
    // The same config for every attestation, as buildx's are alike: a second image's
    // attestation finds it at the destination already.
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    put_blob(registry, repo, config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config, json!({})),
        "layers": [descriptor("application/vnd.in-toto+json", &statement, json!({ "annotations": { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" } }))],
    });
    let (bytes, _) = put_manifest(registry, repo, None, &manifest);
    descriptor(
        OCI_MANIFEST,
        &bytes,
        json!({
            "platform": { "architecture": "unknown", "os": "unknown" },
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": of,
            },
        }),
    )
}

/// A multi-platform image as pushed.
struct Pushed {
    /// The index's digest (upstream's).
    digest: String,
    /// Its `manifests`, as pushed, in order.
    children: Vec<Value>,
    /// Each platform's layer digest, in the order of `platforms`.
    layers: Vec<String>,
}

impl Pushed {
    fn child(&self, at: usize) -> String {
        self.children[at]["digest"].as_str().unwrap().to_owned()
    }
}

/// An index of one image per platform at `repo:tag` (an OCI index, each image followed by its
/// attestation manifest when `attest`; or a Docker manifest list when `docker`).
fn push_index(
    registry: &Registry,
    repo_and_tag: &str,
    seed: &str,
    platforms: &[&str],
    attest: bool,
    docker: bool,
) -> Pushed {
    let (repo, tag) = repo_and_tag.split_once(':').unwrap();
    let mut images = Vec::new();
    let mut attestations = Vec::new();
    let mut layers = Vec::new();
    for platform in platforms {
        let (image, layer, _) = push_platform_image(registry, repo, seed, platform, docker);
        if attest {
            attestations.push(push_attestation(
                registry,
                repo,
                image["digest"].as_str().unwrap(),
            ));
        }
        images.push(image);
        layers.push(layer);
    }
    let children: Vec<Value> = images.into_iter().chain(attestations).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": if docker { DOCKER_LIST } else { OCI_INDEX },
        "manifests": children,
    });
    let (_, digest) = put_manifest(registry, repo, Some(tag), &index);
    Pushed {
        digest,
        children,
        layers,
    }
}

/// One platform's image alone at `repo:tag` (OCI types); returns its digest.
fn push_single(registry: &Registry, repo_and_tag: &str, seed: &str, platform: &str) -> String {
    let (repo, tag) = repo_and_tag.split_once(':').unwrap();
    let (_, _, manifest) = push_platform_image(registry, repo, seed, platform, false);
    put_manifest(registry, repo, Some(tag), &manifest).1
}

/// The manifest at `repo_ref` of `registry`, parsed, with its digest.
fn manifest_at(registry: &Registry, repo_ref: &str) -> (Value, String) {
    let raw = raw_manifest(registry, repo_ref).unwrap_or_else(|| panic!("no {repo_ref}"));
    (serde_json::from_slice(&raw).unwrap(), sha256_of(&raw))
}

/// A mirror copying natively, with a counting proxy in front of each registry; docker.io is
/// redirected to the source's proxy.
struct Counted {
    m: Mirror,
    source: ScriptProxy,
    dest: ScriptProxy,
    conf: std::path::PathBuf,
}

impl Counted {
    fn new() -> Counted {
        let m = Mirror::with_engine(false, Engine::Native);
        let source = ScriptProxy::start(m.scratch.path(), &m.source.addr(), &["--rate", "inf"]);
        let dest = ScriptProxy::start(m.scratch.path(), &m.dest.addr(), &["--rate", "inf"]);
        let conf = registries_conf(m.scratch.path(), &[("docker.io", &source.addr())]);
        Counted {
            m,
            source,
            dest,
            conf,
        }
    }

    /// `PREFIX` at the destination's proxy.
    fn prefix(&self) -> String {
        format!("{}/third", self.dest.addr())
    }

    /// `ferry COMMAND LIST --dest PREFIX --dest-tls-verify=false ARGS…` as a [`Test`].
    fn test(&self, command: &str, list: &std::path::Path, args: &[&str]) -> Test<'_> {
        self.m
            .test()
            .env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .arg(command)
            .arg(list)
            .arg("--dest")
            .arg(self.prefix())
            .arg("--dest-tls-verify=false")
            .args(args)
    }

    /// The requests each proxy logged from line `from` on.
    fn requests_since(&self, from: (usize, usize)) -> (Vec<String>, Vec<String>) {
        let since = |log: String, skip: usize| log.lines().skip(skip).map(str::to_owned).collect();
        (
            since(self.source.log(), from.0),
            since(self.dest.log(), from.1),
        )
    }

    fn marks(&self) -> (usize, usize) {
        (
            self.source.log().lines().count(),
            self.dest.log().lines().count(),
        )
    }
}

/// `--platform linux/arm64` over a three-platform OCI index with an attestation manifest per
/// platform: the arm64 image and its attestation land, digests kept, under an OCI index of
/// just them recording upstream's digest and the platforms; nothing of the other platforms
/// lands. A single-platform amd64 image is `skipped (platform)`, with why. A rerun copies
/// nothing, one `GET` of the target index and one `HEAD` at the source per tag; `plan` finds it
/// current and `verify` verified. Once the source's tag moves, `plan` says changed and `verify`
/// mismatch, as they do for another `--platform`, and a sync brings it up to date.
#[test]
fn only_the_platforms_asked_for_land_under_an_index_recording_upstream() {
    let c = Counted::new();
    let m = &c.m;
    let platforms = ["linux/amd64", "linux/arm64", "linux/s390x"];
    let pushed = push_index(
        &m.source,
        "library/multi:1",
        "multi",
        &platforms,
        true,
        false,
    );
    assert_eq!(pushed.children.len(), 6);
    push_single(&m.source, "library/single:1", "single", "linux/amd64");
    let list = m.write("images.list", "multi:1\nsingle:1\n");
    let p = c.prefix();
    let up = &pushed.digest;
    let skipped_single = format!(
        "skipped (platform) {p}/docker.io/library/single:1  [t]  the source is an image for \
         linux/amd64 only, not one of --platform linux/arm64\n"
    );
    let ran = c
        .test("sync", &list, &["--platform", "linux/arm64"])
        .report()
        .stdout_results(format!(
            "synced  {p}/docker.io/library/multi:1  [t]  4 blobs copied, 0 reused; linux/arm64 \
             of upstream {up}\n{skipped_single}2 images: 1 synced, 1 skipped, 0 failed in [t]\n"
        ))
        .run();
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
    let report = ran.report();
    assert_eq!(
        images(report)[0]["platform"],
        json!({ "outcome": "filtered", "upstream": up, "platforms": "linux/arm64" })
    );
    assert_eq!(images(report)[1]["status"], "skipped");
    assert_eq!(images(report)[1]["platform"]["outcome"], "skipped");

    // What landed: an OCI index of the arm64 image and its attestation, as upstream names them.
    let repo = "third/docker.io/library/multi";
    let (index, own) = manifest_at(&m.dest, &format!("{repo}:1"));
    assert_ne!(&own, up);
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(
        index["manifests"],
        json!([pushed.children[1], pushed.children[4]])
    );
    assert_eq!(
        index["annotations"],
        json!({ UPSTREAM_DIGEST: up, PLATFORMS: "linux/arm64" })
    );
    for at in [1, 4] {
        let child = pushed.child(at);
        assert_eq!(
            remote_digest(&m.dest, &format!("{repo}@{child}")),
            Some(child)
        );
    }
    for at in [0, 2, 3, 5] {
        let child = pushed.child(at);
        assert_eq!(
            remote_digest(&m.dest, &format!("{repo}@{child}")),
            None,
            "{at}"
        );
    }
    assert!(has_blob(&m.dest, repo, &pushed.layers[1]));
    assert!(!has_blob(&m.dest, repo, &pushed.layers[0]));
    assert!(!has_blob(&m.dest, repo, &pushed.layers[2]));
    assert!(tags(&m.dest, "third/docker.io/library/single").is_empty());

    // A rerun copies nothing: at the destination one GET of each target; at the source one
    // HEAD of the filtered image's tag (the skipped one is read again: it never lands).
    let marks = c.marks();
    c.test("sync", &list, &["--platform", "linux/arm64"])
        .stdout_results(format!(
            "skipped {p}/docker.io/library/multi:1  [t]  current at {up} (linux/arm64 of \
             upstream {up})\n{skipped_single}2 images: 0 synced, 2 skipped, 0 failed in [t]\n"
        ))
        .run();
    let (source, dest) = c.requests_since(marks);
    let on = |requests: &[String], part: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.contains(part))
            .cloned()
            .collect()
    };
    assert_eq!(
        on(&dest, "/library/multi/"),
        ["GET /v2/third/docker.io/library/multi/manifests/1 200"],
        "{dest:?}"
    );
    assert_eq!(
        on(&dest, "/library/single/"),
        ["GET /v2/third/docker.io/library/single/manifests/1 404"],
        "{dest:?}"
    );
    assert_eq!(
        on(&source, "/library/multi/"),
        ["HEAD /v2/library/multi/manifests/1 200"],
        "{source:?}"
    );

    // plan and verify compare the same.
    let own12 = &own[..19];
    let up12 = &up[..19];
    c.test("plan", &list, &["--platform", "linux/arm64"])
        .stdout(format!(
            "STATE[..]SOURCE[..]TARGET[..]SOURCE DIGEST[..]TARGET DIGEST\n\
             current[..]docker.io/library/multi:1[..]{p}/docker.io/library/multi:1[..]{up12}  {own12} (filtered)\n\
             other-platform  docker.io/library/single:1[..]{p}/docker.io/library/single:1[..]sha256:[..]-\n\
             other-platform  docker.io/library/single:1: the source is an image for linux/amd64 \
             only, not one of --platform linux/arm64\n\
             2 entries: 0 new, 0 changed, 1 current, 0 source-missing, 0 unknown, 1 \
             other-platform ([..] in [t])\n"
        ))
        .run();
    let verified = format!(
        "verified  {p}/docker.io/library/multi:1  {own} (linux/arm64 of upstream {up})\n\
         skipped   {p}/docker.io/library/single:1  (platform) the source is an image for \
         linux/amd64 only, not one of --platform linux/arm64\n"
    );
    c.test("verify", &list, &["--platform", "linux/arm64"])
        .stdout(format!(
            "{verified}2 targets: 1 verified, 1 skipped (platform), 0 with problems ([..] in [t])\n"
        ))
        .run();
    // Another set of platforms is not what the target holds.
    c.test("verify", &list, &["--platform", "linux/amd64,linux/arm64"])
        .code(1)
        .stdout(format!(
            "mismatch  {p}/docker.io/library/multi:1  target {own} (linux/arm64 of upstream \
             {up}) != source {up} (--platform linux/amd64,linux/arm64)\n\
             missing   {p}/docker.io/library/single:1  (source sha256:[..])\n\
             2 targets: 0 verified, 2 with problems ([..] in [t])\n"
        ))
        .run();

    // The source's tag moves on: changed, a mismatch, and the next sync follows it.
    let moved = push_index(
        &m.source,
        "library/multi:1",
        "multi-2",
        &platforms,
        true,
        false,
    );
    c.test("verify", &list, &["--platform", "linux/arm64"])
        .code(1)
        .stdout(format!(
            "mismatch  {p}/docker.io/library/multi:1  target {own} (linux/arm64 of upstream \
             {up}) != source {} (--platform linux/arm64)\n\
             skipped   [..]\n\
             2 targets: 0 verified, 1 skipped (platform), 1 with problems ([..] in [t])\n",
            moved.digest
        ))
        .run();
    c.test("plan", &list, &["--platform", "linux/arm64"])
        .stdout(format!(
            "STATE[..]\n\
             changed[..]docker.io/library/multi:1[..]{}  {own12} (filtered)\n\
             other-platform[..]\n\
             other-platform[..]\n\
             2 entries: 0 new, 1 changed, 0 current, 0 source-missing, 0 unknown, 1 \
             other-platform ([..] in [t])\n",
            &moved.digest[..19]
        ))
        .run();
    c.test("sync", &list, &["--platform", "linux/arm64"])
        .stdout_results(format!(
            "synced  {p}/docker.io/library/multi:1  [t]  3 blobs copied, 1 reused; linux/arm64 \
             of upstream {}\n{skipped_single}2 images: 1 synced, 1 skipped, 0 failed in [t]\n",
            moved.digest
        ))
        .run();
    let (index, _) = manifest_at(&m.dest, &format!("{repo}:1"));
    assert_eq!(index["annotations"][UPSTREAM_DIGEST], json!(moved.digest));
    assert_eq!(
        index["manifests"],
        json!([moved.children[1], moved.children[4]])
    );
}

/// The same with a Docker manifest list of three schema 2 images: the arm64 image lands with
/// its Docker type and digest, under an OCI index (Docker's list has no annotations) that
/// records the list's digest; a rerun finds it current, `verify` verified. An entry pinned by
/// digest alone is copied whole: its target is named by upstream's digest.
#[test]
fn a_docker_manifest_list_is_filtered_into_an_oci_index_of_its_docker_images() {
    let c = Counted::new();
    let m = &c.m;
    let platforms = ["linux/amd64", "linux/arm/v7", "linux/arm64"];
    let pushed = push_index(
        &m.source,
        "library/listed:1",
        "listed",
        &platforms,
        false,
        true,
    );
    let other = push_index(
        &m.source,
        "library/pinned:1",
        "pinned",
        &platforms,
        false,
        true,
    );
    let list = m.write(
        "images.list",
        &format!("listed:1\npinned@{}\n", other.digest),
    );
    let p = c.prefix();
    let up = &pushed.digest;
    let args = ["--platform", "linux/arm64", "-j", "1"];
    c.test("sync", &list, &args)
        .stdout_results(format!(
            "synced  {p}/docker.io/library/listed:1  [t]  2 blobs copied, 0 reused; \
             linux/arm64 of upstream {up}\n\
             synced  {p}/docker.io/library/pinned@{}  [t]  6 blobs copied, 0 reused\n\
             2 images: 2 synced, 0 skipped, 0 failed in [t]\n",
            other.digest
        ))
        .run();
    let repo = "third/docker.io/library/listed";
    let (index, own) = manifest_at(&m.dest, &format!("{repo}:1"));
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"], json!([pushed.children[2]]));
    assert_eq!(pushed.children[2]["mediaType"], DOCKER_MANIFEST);
    assert_eq!(
        index["annotations"],
        json!({ UPSTREAM_DIGEST: up, PLATFORMS: "linux/arm64" })
    );
    let child = pushed.child(2);
    assert_eq!(
        remote_digest(&m.dest, &format!("{repo}@{child}")),
        Some(child)
    );
    for at in [0, 1] {
        let child = pushed.child(at);
        assert_eq!(remote_digest(&m.dest, &format!("{repo}@{child}")), None);
    }
    // Pinned by digest alone: upstream's list, whole.
    let pinned = format!("third/docker.io/library/pinned@{}", other.digest);
    assert_eq!(remote_digest(&m.dest, &pinned), Some(other.digest.clone()));
    c.test("sync", &list, &args)
        .stdout_results(format!(
            "skipped {p}/docker.io/library/listed:1  [t]  current at {up} (linux/arm64 of \
             upstream {up})\n\
             skipped {p}/docker.io/library/pinned@{0}  [t]  current at {0}\n\
             2 images: 0 synced, 2 skipped, 0 failed in [t]\n",
            other.digest
        ))
        .run();
    c.test("verify", &list, &args[..2])
        .stdout(format!(
            "verified  {p}/docker.io/library/listed:1  {own} (linux/arm64 of upstream {up})\n\
             verified  {p}/docker.io/library/pinned@{0}  {0}\n\
             2 targets: 2 verified, 0 with problems ([..] in [t])\n",
            other.digest
        ))
        .run();
}

/// Into local OCI layouts (no `--dest`): the layout's tag names the index of the subset, which
/// records upstream's digest, and holds the arm64 image's blobs alone; a rerun finds it
/// current, `verify` verified.
#[test]
fn a_layout_holds_the_index_of_the_platforms_asked_for() {
    let m = Mirror::with_engine(false, Engine::Native);
    let platforms = ["linux/amd64", "linux/arm64", "linux/s390x"];
    let pushed = push_index(
        &m.source,
        "library/multi:1",
        "layout",
        &platforms,
        true,
        false,
    );
    let list = m.write("images.list", "multi:1\n");
    let layouts = m.scratch.path().join("layouts");
    let run_in = |command: &str| {
        m.test()
            .arg(command)
            .arg(&list)
            .arg("--dest-dir")
            .arg(&layouts)
            .args(["--platform", "linux/arm64"])
    };
    let up = &pushed.digest;
    run_in("sync")
        .stdout_results(format!(
            "synced  oci:[dir]/layouts/docker.io/library/multi:1  [t]  4 blobs copied, 0 reused; \
             linux/arm64 of upstream {up}\n1 image: 1 synced, 0 skipped, 0 failed in [t]\n"
        ))
        .run();
    let layout = layouts.join("docker.io/library/multi");
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &top["manifests"][0];
    assert_eq!(entry["mediaType"], OCI_INDEX);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "1"
    );
    let own = entry["digest"].as_str().unwrap().to_owned();
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let written = std::fs::read(blob(&own)).unwrap();
    assert_eq!(sha256_of(&written), own);
    let index: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(
        index["manifests"],
        json!([pushed.children[1], pushed.children[4]])
    );
    assert_eq!(index["annotations"][UPSTREAM_DIGEST], json!(up));
    assert!(blob(&pushed.child(1)).is_file());
    assert!(blob(&pushed.layers[1]).is_file());
    for absent in [pushed.child(0), pushed.child(2), pushed.layers[0].clone()] {
        assert!(!blob(&absent).exists(), "{absent}");
    }
    run_in("sync")
        .stdout_results(format!(
            "skipped oci:[dir]/layouts/docker.io/library/multi:1  [t]  current at {up} \
             (linux/arm64 of upstream {up})\n1 image: 0 synced, 1 skipped, 0 failed in [t]\n"
        ))
        .run();
    run_in("verify")
        .stdout(format!(
            "verified  oci:[dir]/layouts/docker.io/library/multi:1  {own} (linux/arm64 of \
             upstream {up})\n1 target: 1 verified, 0 with problems ([..] in [t])\n"
        ))
        .run();
}

/// skopeo and crane copy a single platform's image where an index has several, never an index
/// of a subset: `--platform` with either is refused before anything runs (exit 2), naming
/// `--engine native`; without an engine named, the native engine copies, and says so once.
#[test]
fn platforms_are_refused_to_skopeo_and_crane_and_copied_natively_when_no_engine_is_named() {
    let m = Mirror::new(false);
    let pushed = push_index(
        &m.source,
        "library/multi:1",
        "engines",
        &["linux/amd64", "linux/arm64"],
        false,
        false,
    );
    let list = m.write("images.list", "multi:1\n");
    for engine in ["skopeo", "crane"] {
        m.test_sync(&list)
            .args(["--platform", "linux/arm64", "--engine", engine])
            .code(2)
            .stdout("")
            .stderr(format!(
                "ferry: error: --platform needs the native engine (--engine native), and \
                 {engine} was asked for: {engine} copies a single platform's image where an \
                 index has several (skopeo's --override-os/--override-arch without --all, \
                 crane's --platform), not an index of the platforms asked for that records \
                 upstream's digest, which ferry plans and verifies against; drop --engine \
                 {engine} (ferry then copies natively) or pass --engine native\n"
            ))
            .run();
    }
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
    assert!(tags(&m.dest, "third/docker.io/library/multi").is_empty());
    let p = m.prefix();
    m.test_sync(&list)
        .env_remove("FERRY_ENGINE")
        .args(["--platform", "linux/arm64"])
        .stdout_results(format!(
            "synced  {p}/docker.io/library/multi:1  [t]  2 blobs copied, 0 reused; linux/arm64 \
             of upstream {}\n1 image: 1 synced, 0 skipped, 0 failed in [t]\n",
            pushed.digest
        ))
        .stderr(
            "ferry: copying with ferry's native engine (--engine native), which writes an \
             index of just the platforms --platform asks for: skopeo and crane copy one \
             platform's image instead\n",
        )
        .run();
    assert!(m.invocations().is_empty(), "{:?}", m.invocations());
}
