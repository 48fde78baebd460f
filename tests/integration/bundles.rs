//! Bundles for air-gapped sites: `sync --dest-dir DIR --bundle FILE.tar` on the connected side,
//! `sync --from-dir DIR|FILE.tar --dest PREFIX` on the other, with the source registry gone.
//! The corpus is generated: an OCI index of two platforms, a Docker manifest list of two
//! schema 2 images, and a single Docker schema 2 image.

use std::path::{Path, PathBuf};

use crate::common::engines::Engine;
use crate::common::mirror::Mirror;
use crate::common::*;

/// What the connected side copied: each image's list name, scoped repository and digest.
struct Corpus {
    m: Mirror,
    images: Vec<(&'static str, &'static str, String)>,
    /// The Docker list's platform manifests.
    redis_platforms: Vec<String>,
    dir: PathBuf,
    tar: PathBuf,
}

/// The connected side: the corpus pushed to the source registry, synced into `bundle-dir` and
/// packed into `corpus.tar`; then the source registry is stopped.
fn connected_side() -> Corpus {
    let mut m = Mirror::with_engine(false, Engine::Native);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let (redis, redis_platforms) = push_new_docker_image(
        &m.source,
        m.scratch.path(),
        "library/redis:7",
        "redis",
        Form::DockerList,
    );
    let (busybox, _) = push_new_docker_image(
        &m.source,
        m.scratch.path(),
        "library/busybox:1",
        "busybox",
        Form::DockerSingle,
    );
    let list = m.write("source-images.list", "nginx:1.25\nredis:7\nbusybox:1\n");
    let out = run(
        m.ferry().arg("sync").arg(&list).args([
            "--dest-dir",
            "bundle-dir",
            "--bundle",
            "corpus.tar",
        ]),
        0,
    );
    assert!(
        stdout_of(&out).contains("3 images: 3 synced"),
        "{}",
        stdout_of(&out)
    );
    let said = stderr_of(&out);
    assert!(
        said.contains("ferry: bundle corpus.tar: 3 layouts (3 images), "),
        "{said}"
    );
    m.source.stop();
    let dir = m.scratch.path().join("bundle-dir");
    let tar = m.scratch.path().join("corpus.tar");
    Corpus {
        m,
        images: vec![
            ("busybox:1", "docker.io/library/busybox:1", busybox),
            ("nginx:1.25", "docker.io/library/nginx:1.25", nginx),
            ("redis:7", "docker.io/library/redis:7", redis),
        ],
        redis_platforms,
        dir,
        tar,
    }
}

/// `sync --from-dir FROM --dest PREFIX` into `registry`.
fn from_dir(m: &Mirror, from: &Path, registry: &Registry, prefix: &str) -> std::process::Command {
    let mut cmd = m.ferry();
    cmd.arg("sync")
        .arg("--from-dir")
        .arg(from)
        .arg("--dest")
        .arg(format!("{}/{prefix}", registry.addr()))
        .arg("--dest-tls-verify=false");
    cmd
}

/// The data offset and size of tar entry `name` in `tar` (read as plain ustar).
fn tar_entry(tar: &[u8], name: &str) -> (usize, usize) {
    let field = |bytes: &[u8]| {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = &tar[at..at + 512];
        let prefix = field(&header[345..500]);
        let base = field(&header[0..100]);
        let full = if prefix.is_empty() {
            base
        } else {
            format!("{prefix}/{base}")
        };
        let size = usize::from_str_radix(field(&header[124..136]).trim(), 8).unwrap();
        if full == name {
            return (at + 512, size);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("no entry {name} in the tar");
}

/// The tar entry and digest of the first layer of the first platform of the Docker list
/// `list` in the layout `layout` (under `dir`, as `rel`).
fn a_layer(dir: &Path, rel: &str, list: &str) -> (String, String) {
    let blob = |digest: &str| -> serde_json::Value {
        let path = dir.join(rel).join("blobs/sha256").join(&digest[7..]);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let child = blob(list)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let layer = blob(&child)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (format!("{rel}/blobs/sha256/{}", &layer[7..]), layer)
}

/// The round trip: what the connected side wrote (a directory, and a tar of it) lands in an
/// empty registry with the source registry gone, every digest upstream's (the Docker list's
/// platform manifests too); a rerun skips all; `plan`, `show-images` and `show-raw-images`
/// list what a bundle holds. Each layout's entries record their source.
#[test]
fn a_bundle_carries_a_corpus_across_the_air_gap() {
    let c = connected_side();
    let m = &c.m;
    let index = std::fs::read_to_string(c.dir.join("docker.io/library/nginx/index.json")).unwrap();
    assert!(
        index.contains(r#""io.ferry.source.reference":"docker.io/library/nginx:1.25""#),
        "{index}"
    );

    let raw = run(
        m.ferry()
            .args(["show-raw-images", "--from-dir"])
            .arg(&c.tar),
        0,
    );
    let expected: String = c
        .images
        .iter()
        .map(|(_, source, digest)| format!("{source}@{digest}\n"))
        .collect();
    assert_eq!(stdout_of(&raw), expected);
    let prefix = format!("{}/third", m.dest.addr());
    let shown = run(
        m.ferry()
            .args(["show-images", "--from-dir"])
            .arg(&c.dir)
            .args(["--dest", &prefix]),
        0,
    );
    // Targets keep the pin of their source, as for any `NAME:TAG@DIGEST` line; the tag is
    // what is written.
    let expected: String = c
        .images
        .iter()
        .map(|(_, source, digest)| format!("{prefix}/{source}@{digest}\n"))
        .collect();
    assert_eq!(stdout_of(&shown), expected);
    let planned = run(
        m.ferry().args(["plan", "--from-dir"]).arg(&c.tar).args([
            "--dest",
            &prefix,
            "--dest-tls-verify=false",
        ]),
        0,
    );
    let planned = stdout_of(&planned);
    assert!(planned.contains("3 entries: 3 new"), "{planned}");

    // The tar, into the empty destination registry.
    let out = run(&mut from_dir(m, &c.tar, &m.dest, "third"), 0);
    assert!(!stderr_of(&out).contains("warning"), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("3 images: 3 synced, 0 skipped, 0 failed"),
        "{}\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    for (_, source, digest) in &c.images {
        let at = format!("third/{source}");
        assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(digest), "{at}");
    }
    for platform in &c.redis_platforms {
        let at = format!("third/docker.io/library/redis@{platform}");
        assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(platform), "{at}");
    }
    let again = run(&mut from_dir(m, &c.tar, &m.dest, "third"), 0);
    assert!(
        stdout_of(&again).contains("3 images: 0 synced, 3 skipped, 0 failed"),
        "{}",
        stdout_of(&again)
    );
    let planned = run(
        m.ferry().args(["plan", "--from-dir"]).arg(&c.tar).args([
            "--dest",
            &prefix,
            "--dest-tls-verify=false",
        ]),
        0,
    );
    assert!(
        stdout_of(&planned).contains("3 entries: 0 new, 0 changed, 3 current"),
        "{}",
        stdout_of(&planned)
    );

    // The directory, into another empty registry.
    let other = Registry::start_plain();
    let out = run(&mut from_dir(m, &c.dir, &other, "site"), 0);
    assert!(
        stdout_of(&out).contains("3 images: 3 synced"),
        "{}",
        stdout_of(&out)
    );
    for (_, source, digest) in &c.images {
        let at = format!("site/{source}");
        assert_eq!(remote_digest(&other, &at).as_ref(), Some(digest), "{at}");
    }
}

/// One flipped byte in a layer of the Docker list inside the tar: that image fails naming the
/// blob and the entry, and nothing of it is tagged; the other two land (exit 1). A tar cut
/// short is refused before anything is copied (exit 2), naming the entry cut.
#[test]
fn a_damaged_bundle_lands_what_is_whole_and_refuses_the_rest() {
    let c = connected_side();
    let m = &c.m;
    let whole = std::fs::read(&c.tar).unwrap();
    let (entry, digest) = a_layer(&c.dir, "docker.io/library/redis", &c.images[2].2);
    let (at, size) = tar_entry(&whole, &entry);
    let mut flipped = whole.clone();
    flipped[at + size / 2] ^= 0x01;
    let damaged = m.scratch.path().join("damaged.tar");
    std::fs::write(&damaged, &flipped).unwrap();

    let report = m.scratch.path().join("damaged.json");
    let out = run(
        from_dir(m, &damaged, &m.dest, "third")
            .arg("--report")
            .arg(&report),
        1,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("3 images: 2 synced, 0 skipped, 1 failed"),
        "{stdout}"
    );
    let report = crate::common::mirror::report(&report);
    let failed: Vec<_> = crate::common::mirror::images(&report)
        .iter()
        .filter(|image| image["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    let message = failed[0]["error"]["message"].as_str().unwrap();
    assert!(
        failed[0]["target"]
            .as_str()
            .unwrap()
            .contains("/third/docker.io/library/redis:7@")
            && message.contains(&format!("blob {digest} of docker.io/library/redis in "))
            && message.contains(&format!("damaged.tar:{entry} hashes to sha256:"))
            && message.contains("digest mismatch"),
        "{message}"
    );
    assert!(
        tags(&m.dest, "third/docker.io/library/redis").is_empty(),
        "nothing of the damaged image is tagged"
    );
    for (_, source, digest) in c.images.iter().filter(|(n, _, _)| *n != "redis:7") {
        let at = format!("third/{source}");
        assert_eq!(remote_digest(&m.dest, &at).as_ref(), Some(digest), "{at}");
    }

    // Cut in the middle of a blob: refused whole, naming the entry, nothing copied.
    let cut = m.scratch.path().join("cut.tar");
    std::fs::write(&cut, &whole[..at + size / 2]).unwrap();
    let empty = Registry::start_plain();
    let out = run(&mut from_dir(m, &cut, &empty, "site"), 2);
    let said = stderr_of(&out);
    assert!(
        said.contains(&format!("cut short: entry \"{entry}\" holds ")),
        "{said}"
    );
    assert!(catalog(&empty).is_empty(), "{:?}", catalog(&empty));
}

/// A layout written without the source annotations (an older ferry, another tool) goes to
/// the name its path under DIR says, and ferry says so.
#[test]
fn a_layout_without_annotations_goes_to_the_name_its_path_says() {
    let c = connected_side();
    let m = &c.m;
    let index_path = c.dir.join("docker.io/library/busybox/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    for entry in index["manifests"].as_array_mut().unwrap() {
        let annotations = entry["annotations"].as_object_mut().unwrap();
        annotations.retain(|key, _| !key.starts_with("io.ferry."));
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let out = run(&mut from_dir(m, &c.dir, &m.dest, "old"), 0);
    assert!(
        stdout_of(&out).contains("3 images: 3 synced"),
        "{}",
        stdout_of(&out)
    );
    let said = stderr_of(&out);
    assert!(
        said.contains(&format!(
            "ferry: {}: its images carry no io.ferry.source.reference annotation",
            index_path.display()
        )) && said.contains("they go to the name its path under "),
        "{said}"
    );
    let busybox = &c.images[0].2;
    assert_eq!(
        remote_digest(&m.dest, "old/docker.io/library/busybox:1").as_ref(),
        Some(busybox)
    );
}

/// skopeo and crane do not read bundles: named with `--from-dir`, they are refused before
/// anything runs (exit 2), naming the native engine.
#[test]
fn from_dir_with_skopeo_or_crane_is_refused_naming_native() {
    let dir = TempDir::new("ferry-bundle-engines");
    for engine in ["skopeo", "crane"] {
        let out = run(
            ferry()
                .current_dir(dir.path())
                .args(["sync", "--from-dir", "bundle", "--dest", "h.example/x"])
                .args(["--engine", engine]),
            2,
        );
        let said = stderr_of(&out);
        assert!(
            said.contains("--from-dir is copied by ferry's native engine only (--engine native")
                && said.contains(engine),
            "{said}"
        );
    }
}

#[test]
fn a_bundle_goes_to_several_destinations_in_one_run() {
    let c = connected_side();
    let m = &c.m;
    let first = Registry::start_plain();
    let second = Registry::start_plain();
    let out = run(
        from_dir(m, &c.tar, &first, "a")
            .arg("--dest")
            .arg(format!("{}/b", second.addr())),
        0,
    );
    assert!(
        stdout_of(&out).contains("6 images: 6 synced, 0 skipped, 0 failed"),
        "{}\n{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    for (_, source, digest) in &c.images {
        for (registry, prefix) in [(&first, "a"), (&second, "b")] {
            let at = remote_digest(registry, &format!("{prefix}/{source}"));
            assert_eq!(at.as_ref(), Some(digest), "{prefix}/{source}");
        }
    }
}
