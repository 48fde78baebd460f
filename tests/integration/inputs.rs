//! The other input formats end to end: skopeo's sync YAML (selection, per-registry
//! credentials and cert-dir), ImagePorter's images.json with accounts.json, and a list
//! fetched from a URL. Real registries and skopeo throughout.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use crate::common::mirror::*;
use crate::common::*;

fn set(tags: &[&str]) -> BTreeSet<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

fn dest_tags(m: &Mirror, repo: &str) -> BTreeSet<String> {
    tags(&m.dest, repo).into_iter().collect()
}

#[test]
fn a_skopeo_yaml_selects_tags_like_skopeo_and_lands_scoped() {
    let m = Mirror::new(false);
    for (repo, tags) in [
        ("library/nginx", &["1.25", "1.26", "1.27"][..]),
        ("library/redis", &["6", "7"][..]),
        ("library/app", &["1.2.0", "1.20.1", "2.0"][..]),
        ("library/tool", &["1.9", "2.1", "3.0"][..]),
    ] {
        for tag in tags {
            m.push(&format!("{repo}:{tag}"), &format!("{repo}-{tag}"));
        }
    }
    let yaml = m.write(
        "sync.yaml",
        "docker.io:\n\
         \x20 images:\n\
         \x20   library/nginx: [\"1.25\", \"1.26\"]\n\
         \x20   library/redis: []\n\
         \x20 images-by-tag-regex:\n\
         \x20   library/app: ^1\\.2\n\
         \x20 images-by-semver:\n\
         \x20   library/tool: \">=2.0, <3\"\n",
    );
    let out = run(&mut m.sync(&yaml), 0);
    assert!(
        stdout_of(&out).contains("7 images: 7 synced"),
        "{}",
        stdout_of(&out)
    );
    let p = "third/docker.io/library";
    assert_eq!(dest_tags(&m, &format!("{p}/nginx")), set(&["1.25", "1.26"]));
    assert_eq!(dest_tags(&m, &format!("{p}/redis")), set(&["6", "7"]));
    // skopeo's regex is unanchored at the end: 1.2.0 and 1.20.1 both match ^1\.2.
    assert_eq!(
        dest_tags(&m, &format!("{p}/app")),
        set(&["1.2.0", "1.20.1"])
    );
    assert_eq!(dest_tags(&m, &format!("{p}/tool")), set(&["2.1"]));
}

#[test]
fn a_skopeo_yaml_registry_section_brings_its_credentials_and_cert_dir() {
    let m = Mirror::new(false);
    let secure = Registry::start_secure(USER, PASSWORD);
    let digest = push_new_image(&secure, m.scratch.path(), "team/app:1.0", "app").digest;
    let yaml = m.write(
        "sync.yml",
        &format!(
            "{addr}:\n  images:\n    team/app: [\"1.0\"]\n  credentials:\n    username: {USER}\n    password: {PASSWORD}\n  cert-dir: {dir}\n  tls-verify: true\n",
            addr = secure.addr(),
            dir = secure.cert_dir().unwrap().display()
        ),
    );
    // Into the local OCI directory: a source with a port cannot be scoped in a registry.
    let out = run(m.ferry().arg("sync").arg(&yaml), 0);
    assert!(
        stdout_of(&out).contains("1 image: 1 synced"),
        "{}",
        stdout_of(&out)
    );
    let layout = m
        .scratch
        .path()
        .join("mirror")
        .join(secure.addr().replace(':', "_"))
        .join("team/app");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(index.contains(&digest), "{index}");
    for argv in m.invocations() {
        assert!(
            !argv.iter().any(|a| a.contains(PASSWORD)),
            "password in argv: {argv:?}"
        );
    }
    // A rerun finds it current through the same credentials: no skopeo.
    let before = m.invocations().len();
    let out = run(m.ferry().arg("sync").arg(&yaml), 0);
    assert!(stdout_of(&out).contains("1 skipped"), "{}", stdout_of(&out));
    assert_eq!(m.invocations().len(), before);
}

#[test]
fn images_json_with_accounts_json_copies_to_explicit_targets() {
    let m = Mirror::new(true);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let redis = m.push("library/redis:7", "redis");
    let d = m.dest.addr();
    let images = m.write(
        "images.json",
        &format!(
            "[\n  {{\"source\": \"nginx:1.25\", \"target\": \"{d}/base/nginx:1.25\"}},\n  {{\"source\": \"redis:7\", \"target\": \"{d}/base/cache\"}}\n]\n"
        ),
    );
    let accounts = m.write(
        "accounts.json",
        &format!(
            "[{{\"username\": \"{USER}\", \"password\": \"{PASSWORD}\", \"registry\": \"{d}\"}}]\n"
        ),
    );
    let mut cmd = m.ferry();
    cmd.arg("sync")
        .arg(&images)
        .arg("--accounts")
        .arg(&accounts);
    cmd.arg("--dest-cert-dir").arg(m.dest.cert_dir().unwrap());
    run(&mut cmd, 0);
    assert_eq!(remote_digest(&m.dest, "base/nginx:1.25"), Some(nginx));
    assert_eq!(remote_digest(&m.dest, "base/cache:7"), Some(redis));
    for argv in m.invocations() {
        assert!(
            !argv.iter().any(|a| a.contains(PASSWORD)),
            "password in argv: {argv:?}"
        );
    }
}

#[test]
fn bad_yaml_and_json_inputs_name_file_and_line_and_copy_nothing() {
    let m = Mirror::new(false);
    m.push("library/nginx:1.25", "nginx");
    let yaml = m.write(
        "sync.yaml",
        "docker.io:\n  images:\n    library/nginx: [\"1.25\"]\n  image:\n    x: []\n",
    );
    let json = m.write(
        "images.json",
        "[\n  {\"source\": \"nginx:1.25\", \"targets\": \"h.example/x\"}\n]\n",
    );
    let out = run(m.sync(&yaml).arg(&json), 2);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!("{}:4: unknown key \"image\"", yaml.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:2:", json.display())),
        "{stderr}"
    );
    assert!(m.invocations().is_empty());
    assert!(catalog(&m.dest).is_empty());
}

/// Serves `body` at any path (404 for paths containing "missing") until the test ends.
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]);
            let response = if head.lines().next().unwrap_or("").contains("missing") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_list_can_come_from_a_url() {
    let m = Mirror::new(false);
    let nginx = m.push("library/nginx:1.25", "nginx");
    let base = serve("# published list\nnginx:1.25\n");
    let url = format!("{base}/lists/images.txt");
    let out = run(m.ferry().arg("show-raw-images").arg(&url), 0);
    assert_eq!(stdout_of(&out), "docker.io/library/nginx:1.25\n");
    run(&mut m.sync(Path::new(&url)), 0);
    let target = format!("{}/docker.io/library/nginx:1.25", m.prefix());
    assert_eq!(m.target_digest(&target), Some(nginx));

    let missing = format!("{base}/missing.txt");
    let out = run(m.ferry().arg("show-raw-images").arg(&missing), 2);
    assert!(
        stderr_of(&out).contains(&format!("{missing}: cannot read: HTTP 404")),
        "{}",
        stderr_of(&out)
    );
}
