//! ferry's native registry client against Docker Hub-style token auth: the source registry sits
//! behind a `TokenProxy` that wants a Bearer token for each repository, issued for Basic
//! credentials. docker.io is redirected to the proxy by registries.conf, as a Hub mirror would be.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;

use crate::common::token_proxy::TokenProxy;
use crate::common::*;

const USER: &str = "hub-reader";
const PASSWORD: &str = "t0ken-Pa55";

/// A plain source registry behind the token proxy, an empty plain destination, and a
/// registries.conf sending docker.io to the proxy.
struct Hub {
    scratch: TempDir,
    source: Registry,
    dest: Registry,
    proxy: TokenProxy,
    conf: PathBuf,
}

impl Hub {
    fn new() -> Hub {
        let scratch = TempDir::new("ferry-token");
        let source = Registry::start_plain();
        let dest = Registry::start_plain();
        let proxy = TokenProxy::start(&source.addr(), USER, PASSWORD);
        let conf = registries_conf(scratch.path(), &[("docker.io", &proxy.addr())]);
        Hub {
            scratch,
            source,
            dest,
            proxy,
            conf,
        }
    }

    /// Pushes to the source registry directly (not through the proxy); returns the digest.
    fn push(&self, repo_and_tag: &str, seed: &str) -> String {
        push_new_image(&self.source, self.scratch.path(), repo_and_tag, seed).digest
    }

    fn prefix(&self) -> String {
        format!("{}/third", self.dest.addr())
    }

    /// `ferry plan` of `list_text` with source credentials `creds` (`user:password`) for the
    /// proxy, in an auth file as for any registry that registries.conf redirects to; returns
    /// the JSON report.
    fn plan(&self, list_text: &str, creds: &str) -> serde_json::Value {
        let auth_file = self.scratch.path().join("auth.json");
        let auth = base64::engine::general_purpose::STANDARD.encode(creds);
        let auths = serde_json::json!({ "auths": { self.proxy.addr(): { "auth": auth } } });
        std::fs::write(&auth_file, auths.to_string()).unwrap();
        let auth_file = auth_file.display().to_string();
        self.plan_with(list_text, &["--src-authfile", &auth_file])
    }

    /// `ferry plan` of `list_text` with `access` arguments; returns the JSON report.
    fn plan_with(&self, list_text: &str, access: &[&str]) -> serde_json::Value {
        let list = self.scratch.path().join("source-images.list");
        std::fs::write(&list, list_text).unwrap();
        let report = self.scratch.path().join("plan.json");
        // HOME and DOCKER_CONFIG point at the scratch dir: no auth file of the user running
        // the tests may answer a challenge in place of the credentials given here.
        let mut cmd = ferry();
        cmd.current_dir(self.scratch.path())
            .env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .env("HOME", self.scratch.path())
            .env("DOCKER_CONFIG", self.scratch.path())
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("FERRY_DEST")
            .env_remove("FERRY_SRC_CREDS")
            .env_remove("FERRY_DEST_CREDS");
        cmd.arg("plan")
            .arg(&list)
            .arg("--dest")
            .arg(self.prefix())
            .arg("--dest-tls-verify=false")
            .args(access)
            .arg("--report")
            .arg(&report);
        let out = run(&mut cmd, 0);
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report ({e})\n{}", stdout_of(&out)));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(value["entries"].is_array(), "{value:#}");
        value
    }

    /// What the proxy saw, for failure messages.
    fn counts(&self) -> String {
        let p = &self.proxy;
        format!(
            "proxy: {} token requests, {} registry requests, {} answered 401:\n{}",
            p.token_requests(),
            p.registry_requests(),
            p.unauthorized(),
            p.log()
        )
    }
}

fn entries(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["entries"].as_array().unwrap()
}

fn sources(report: &serde_json::Value) -> Vec<&str> {
    entries(report)
        .iter()
        .map(|e| e["source"].as_str().expect("source is a string"))
        .collect()
}

#[test]
fn plan_uses_bearer_tokens_and_caches_them() {
    let hub = Hub::new();
    let nginx = hub.push("library/nginx:1.25", "nginx-1.25");
    let nginx_next = hub.push("library/nginx:1.26", "nginx-1.26");
    let redis = hub.push("library/redis:7", "redis-7");

    let report = hub.plan(
        "nginx:1.25\nnginx:1.26\nredis:7\n",
        &format!("{USER}:{PASSWORD}"),
    );

    assert_eq!(
        sources(&report),
        [
            "docker.io/library/nginx:1.25",
            "docker.io/library/nginx:1.26",
            "docker.io/library/redis:7"
        ],
        "{report:#}"
    );
    for (entry, digest) in entries(&report).iter().zip([&nginx, &nginx_next, &redis]) {
        assert_eq!(entry["state"], "new", "{entry:#}\n{}", hub.counts());
        assert_eq!(entry["source_digest"], digest.as_str(), "{entry:#}");
    }
    // One token per repository: nginx's second tag reuses the first one's.
    assert_eq!(hub.proxy.token_requests(), 2, "{}", hub.counts());
    assert!(hub.proxy.unauthorized() >= 2, "{}", hub.counts());
}

#[test]
fn wrong_source_credentials_are_unauthorized() {
    let hub = Hub::new();
    hub.push("library/nginx:1.25", "nginx-1.25");
    hub.push("library/redis:7", "redis-7");
    hub.push("library/busybox:1", "busybox-1");

    let report = hub.plan(
        "nginx:1.25\nredis:7\nbusybox:1\n",
        &format!("{USER}:not-the-password"),
    );

    assert_eq!(entries(&report).len(), 3, "{report:#}");
    for entry in entries(&report) {
        assert_eq!(entry["state"], "unknown", "{entry:#}");
        assert_eq!(entry["error"]["kind"], "unauthorized", "{entry:#}");
        assert!(entry["source_digest"].is_null(), "{entry:#}");
    }
    // The wrong password went to the token endpoint once, not once per repository (the
    // lookups run in parallel), and nothing reached the registry behind the proxy.
    assert_eq!(hub.proxy.token_requests(), 1, "{}", hub.counts());
    assert_eq!(
        hub.proxy.unauthorized(),
        hub.proxy.registry_requests(),
        "{}",
        hub.counts()
    );
}

#[test]
fn whole_repository_is_listed_through_the_token_flow() {
    let hub = Hub::new();
    let nginx = hub.push("library/nginx:1.25", "nginx-1.25");
    let nginx_next = hub.push("library/nginx:1.26", "nginx-1.26");
    hub.push("library/redis:7", "redis-7");

    let report = hub.plan("nginx\n", &format!("{USER}:{PASSWORD}"));

    assert_eq!(
        sources(&report),
        [
            "docker.io/library/nginx:1.25",
            "docker.io/library/nginx:1.26"
        ],
        "{report:#}"
    );
    for (entry, digest) in entries(&report).iter().zip([&nginx, &nginx_next]) {
        assert_eq!(entry["state"], "new", "{entry:#}\n{}", hub.counts());
        assert_eq!(entry["source_digest"], digest.as_str(), "{entry:#}");
    }
    // The tag listing fetched nginx's token; both manifest lookups reused it.
    assert_eq!(hub.proxy.token_requests(), 1, "{}", hub.counts());
}

/// `--src-creds` are for the registries the list names. docker.io is redirected to the proxy,
/// another host: like skopeo, ferry does not send it those credentials (the token endpoint
/// only ever sees anonymous requests, and refuses them), while an auth file entry for the
/// proxy's own address is used (the other tests).
#[test]
fn credentials_for_a_whole_side_do_not_follow_a_redirect() {
    let hub = Hub::new();
    hub.push("library/nginx:1.25", "nginx-1.25");
    let creds = format!("{USER}:{PASSWORD}");
    let report = hub.plan_with("nginx:1.25\n", &["--src-creds", &creds]);
    let entry = &entries(&report)[0];
    assert_eq!(entry["state"], "unknown", "{entry:#}\n{}", hub.counts());
    assert_eq!(entry["error"]["kind"], "unauthorized", "{entry:#}");
    assert!(hub.proxy.token_requests() >= 1, "{}", hub.counts());
    assert_eq!(
        hub.proxy.granted_tokens(),
        0,
        "the side's credentials reached the redirected host\n{}",
        hub.counts()
    );
}

/// The proxy itself, without ferry: challenge, token, scope binding, forwarding.
#[test]
fn token_proxy_behaves_like_docker_hub() {
    let hub = Hub::new();
    let digest = hub.push("library/nginx:1.25", "nginx-1.25");
    let base = format!("http://{}", hub.proxy.addr());
    let curl = |args: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--noproxy", "*", "--max-time", "10"]);
        stdout_of(&run(cmd.args(args), 0))
    };
    let manifest = format!("{base}/v2/library/nginx/manifests/1.25");

    let challenged = curl(&[&manifest]);
    assert!(challenged.starts_with("HTTP/1.1 401"), "{challenged}");
    let challenge = format!(
        "Bearer realm=\"{base}/token\",service=\"ferry-test\",\
         scope=\"repository:library/nginx:pull\""
    );
    assert!(challenged.contains(&challenge), "{challenged}");
    assert!(challenged.contains(r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#));

    let token_url =
        |repo: &str| format!("{base}/token?service=ferry-test&scope=repository%3A{repo}%3Apull");
    let refused = curl(&["-u", &format!("{USER}:wrong"), &token_url("library/nginx")]);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let user = format!("{USER}:{PASSWORD}");
    let granted = curl(&["-u", &user, &token_url("library/nginx")]);
    assert!(granted.starts_with("HTTP/1.1 200"), "{granted}");
    let body = granted.split("\r\n\r\n").nth(1).unwrap();
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    let token = token["token"].as_str().unwrap();
    let bearer = format!("Authorization: Bearer {token}");

    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let head = curl(&["-I", "-H", &bearer, "-H", accept, &manifest]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("docker-content-digest: {digest}")),
        "{head}"
    );
    let other_repo = format!("{base}/v2/library/redis/tags/list");
    let wrong_scope = curl(&["-H", &bearer, &other_repo]);
    assert!(wrong_scope.starts_with("HTTP/1.1 401"), "{wrong_scope}");
    assert!(wrong_scope.contains("repository:library/redis:pull"));

    assert_eq!(hub.proxy.token_requests(), 2, "{}", hub.counts());
    assert_eq!(hub.proxy.registry_requests(), 3, "{}", hub.counts());
    assert_eq!(hub.proxy.unauthorized(), 2, "{}", hub.counts());
}
