//! The deployables: the Dockerfile, the Kubernetes manifests in deploy/kubernetes/, the GitHub
//! Action (action.yml) and its example workflow. There is no Docker engine, cluster or Actions
//! runner here, so each file is read for what it is (the YAML parsed with yaml_serde, the
//! Dockerfile as its instructions) and checked for the fields ferry relies on; and what can run
//! here does: the CronJob's command line, once per completion index as the kubelet would start
//! it, through the real ferry (as a dry run), and the action's and the merge job's scripts
//! through bash with the real ferry. Each checker returns the problems it finds, so that it is
//! also shown broken copies of the files and must name what broke.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;
use yaml_serde::Value;

use crate::common::*;

const DOCKERFILE: &str = "Dockerfile";
const KUBERNETES: &str = "deploy/kubernetes";
const ACTION: &str = "action.yml";
const WORKFLOW: &str = ".github/workflows/mirror-example.yml";

// ---------------------------------------------------------------------------------------------
// Reading

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    let file = repo_path(path);
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

/// Every YAML document of `text` (`---` separates them), empty ones left out.
fn documents(name: &str, text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml(name: &str, text: &str) -> Value {
    let mut docs = documents(name, text);
    assert_eq!(docs.len(), 1, "{name}: expected one YAML document");
    docs.remove(0)
}

/// The YAML files of deploy/kubernetes/ as (path, text), by name.
fn kubernetes_files() -> Vec<(String, String)> {
    let dir = repo_path(KUBERNETES);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    let mut files: Vec<(String, String)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .map(|path| {
            let name = format!(
                "{KUBERNETES}/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            let text = read(&name);
            (name, text)
        })
        .collect();
    files.sort();
    files
}

fn manifests(files: &[(String, String)]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|(name, text)| documents(name, text))
        .collect()
}

/// `text` with its one occurrence of `from` replaced by `to`.
fn mutated(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the mutation needs exactly one {from:?} in the file"
    );
    text.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------------------------
// YAML values

/// A scalar as written: strings as they are, numbers and booleans in their YAML spelling, ""
/// for anything else.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map_or(&[], Vec::as_slice)
}

fn entries(value: &Value) -> Vec<(String, &Value)> {
    value
        .as_mapping()
        .map(|m| m.iter().map(|(k, v)| (text(k), v)).collect())
        .unwrap_or_default()
}

/// An expression or command with its blanks taken out, so that `${{ inputs.x }}` and
/// `${{inputs.x}}` compare equal.
fn squeezed(s: &str) -> String {
    s.split_whitespace().collect()
}

/// The one manifest of `kind`.
fn the<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value, String> {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|doc| doc["kind"].as_str() == Some(kind))
        .collect();
    match found[..] {
        [one] => Ok(one),
        _ => Err(format!(
            "expected one {kind} in {KUBERNETES}, found {}",
            found.len()
        )),
    }
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|doc| {
        doc["kind"].as_str() == Some(kind) && doc["metadata"]["name"].as_str() == Some(name)
    })
}

// ---------------------------------------------------------------------------------------------
// Pods

/// ferry's container in a pod spec.
fn ferry_container(pod: &Value) -> Option<&Value> {
    seq(&pod["containers"])
        .iter()
        .find(|c| c["name"].as_str() == Some("ferry"))
}

/// The arguments ferry gets (the image's entrypoint is ferry, so a `command` must be just that).
fn ferry_args(what: &str, container: &Value, problems: &mut Vec<String>) -> Vec<String> {
    let command: Vec<String> = seq(&container["command"]).iter().map(text).collect();
    if !command.is_empty() && command != ["ferry"] {
        problems.push(format!(
            "{what}: command {command:?} is not the image's entrypoint [\"ferry\"]"
        ));
    }
    seq(&container["args"]).iter().map(text).collect()
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
fn option<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            arg.strip_prefix(flag)?.strip_prefix('=')
        }
    })
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    seq(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str())
}

/// The volume mount that holds `path`, and the rest of `path` inside it.
fn mount_of<'a>(container: &'a Value, path: &str) -> Option<(&'a Value, String)> {
    seq(&container["volumeMounts"])
        .iter()
        .filter_map(|mount| {
            let at = mount["mountPath"].as_str()?.trim_end_matches('/');
            let rest = path.strip_prefix(at)?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| (mount, rest.trim_start_matches('/').to_owned()))
        })
        .max_by_key(|(mount, _)| mount["mountPath"].as_str().map_or(0, str::len))
}

fn volume<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    seq(&pod["volumes"])
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
}

/// The key of an item list (`items: [{key, path}]`) that lands at `path`, or `path` itself when
/// the volume has every key.
fn item_key(source: &Value, path: &str) -> Option<String> {
    match source["items"].as_sequence() {
        None => Some(path.to_owned()),
        Some(items) => items
            .iter()
            .find(|item| item["path"].as_str() == Some(path))
            .map(|item| text(&item["key"])),
    }
}

/// What a pod template must give ferry: the list it reads from the ConfigMap, the Docker config
/// from a dockerconfigjson Secret where DOCKER_CONFIG points, a non-root user, a read-only root
/// with /tmp writable.
fn pod_problems(what: &str, pod: &Value, docs: &[Value], problems: &mut Vec<String>) {
    let Some(container) = ferry_container(pod) else {
        problems.push(format!("{what}: no container named ferry"));
        return;
    };
    let args = ferry_args(what, container, problems);

    // The list: the first argument after the command.
    match args.get(1) {
        None => problems.push(format!("{what}: no list in the arguments {args:?}")),
        Some(list) => match mount_of(container, list) {
            None => problems.push(format!("{what}: the list {list} is on no volume")),
            Some((mount, rest)) => {
                if mount.get("subPath").is_some() {
                    problems.push(format!(
                        "{what}: the list's volume is mounted with subPath, so edits to the \
                         ConfigMap never reach ferry"
                    ));
                }
                let source = volume(pod, &text(&mount["name"])).map(|v| &v["configMap"]);
                let config_map = source
                    .and_then(|s| s["name"].as_str())
                    .and_then(|name| named(docs, "ConfigMap", name));
                let key = source.and_then(|s| item_key(s, &rest));
                match (config_map, key) {
                    (Some(config_map), Some(key)) if config_map["data"].get(&key).is_some() => {}
                    (Some(config_map), key) => problems.push(format!(
                        "{what}: ferry reads {list}, but ConfigMap {} has no key {:?}",
                        text(&config_map["metadata"]["name"]),
                        key.unwrap_or(rest)
                    )),
                    (None, _) => problems.push(format!(
                        "{what}: the list {list} is not from a ConfigMap of {KUBERNETES}"
                    )),
                }
            }
        },
    }

    // The credentials: a kubernetes.io/dockerconfigjson Secret (key .dockerconfigjson) as
    // config.json right where DOCKER_CONFIG points.
    match env_value(container, "DOCKER_CONFIG") {
        None => problems.push(format!("{what}: DOCKER_CONFIG is not set")),
        Some(dir) => match mount_of(container, dir) {
            Some((mount, rest)) if rest.is_empty() => {
                let secret = volume(pod, &text(&mount["name"])).map(|v| &v["secret"]);
                let key = secret.and_then(|s| item_key(s, "config.json"));
                if secret.is_none_or(|s| s["secretName"].as_str().is_none()) {
                    problems.push(format!("{what}: DOCKER_CONFIG={dir} is not a Secret"));
                } else if key.as_deref() != Some(".dockerconfigjson") {
                    problems.push(format!(
                        "{what}: {dir}/config.json is not the Secret's .dockerconfigjson"
                    ));
                }
            }
            _ => problems.push(format!(
                "{what}: DOCKER_CONFIG={dir} is not where a volume is mounted"
            )),
        },
    }

    // Not root, on a read-only root file system with a writable /tmp (ferry's private
    // directory, skopeo's temporary files).
    let context = |key: &str| {
        let own = &container["securityContext"][key];
        if own.is_null() {
            pod["securityContext"][key].clone()
        } else {
            own.clone()
        }
    };
    if context("runAsNonRoot").as_bool() != Some(true) {
        problems.push(format!("{what}: runAsNonRoot is not true"));
    }
    if context("runAsUser").as_u64() == Some(0) {
        problems.push(format!("{what}: runAsUser is 0"));
    }
    if container["securityContext"]["readOnlyRootFilesystem"].as_bool() != Some(true) {
        problems.push(format!("{what}: readOnlyRootFilesystem is not true"));
    }
    let tmp = mount_of(container, "/tmp")
        .filter(|(_, rest)| rest.is_empty())
        .and_then(|(mount, _)| volume(pod, &text(&mount["name"])));
    if tmp.is_none_or(|v| v.get("emptyDir").is_none()) {
        problems.push(format!("{what}: /tmp is no emptyDir"));
    }
}

// ---------------------------------------------------------------------------------------------
// Checkers: each returns the problems it finds, empty when the files are right.

/// The sync CronJob: N shards as an Indexed Job, each pod's index reaching `--shard N`.
fn cronjob_problems(docs: &[Value]) -> Vec<String> {
    let cronjob = match the(docs, "CronJob") {
        Ok(cronjob) => cronjob,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    let what = "CronJob";
    if cronjob["spec"]["concurrencyPolicy"].as_str() != Some("Forbid") {
        problems.push(format!(
            "{what}: concurrencyPolicy is not Forbid, so a slow run overlaps the next"
        ));
    }
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    if job["completionMode"].as_str() != Some("Indexed") {
        problems.push(format!(
            "{what}: completionMode is not Indexed, so no pod gets JOB_COMPLETION_INDEX"
        ));
    }
    let completions = job["completions"].as_u64();
    let parallelism = job["parallelism"].as_u64();
    if completions.is_none() || completions != parallelism {
        problems.push(format!(
            "{what}: completions ({}) and parallelism ({}) differ: each shard needs a pod \
             running at once",
            text(&job["completions"]),
            text(&job["parallelism"])
        ));
    }
    if job["backoffLimit"].as_u64().is_none() {
        problems.push(format!("{what}: no backoffLimit"));
    }
    let pod = &job["template"]["spec"];
    if let Some(container) = ferry_container(pod) {
        let args = ferry_args(what, container, &mut problems);
        if args.first().map(String::as_str) != Some("sync") {
            problems.push(format!("{what}: ferry runs {args:?}, not sync"));
        }
        match option(&args, "--shard") {
            None => problems.push(format!("{what}: no --shard")),
            Some(shard) if shard.contains('/') => problems.push(format!(
                "{what}: --shard {shard} names K, so every pod runs the same shard; \
                 give N alone and K comes from JOB_COMPLETION_INDEX"
            )),
            Some(shard) if shard.parse::<u64>().ok() != completions => problems.push(format!(
                "{what}: --shard {shard} but {} completions: shards would be left out or \
                 pods fail",
                text(&job["completions"])
            )),
            Some(_) => {}
        }
        if let Some(var) = option(&args, "--shard-index-env") {
            if var != "JOB_COMPLETION_INDEX" {
                problems.push(format!(
                    "{what}: --shard-index-env {var}: Kubernetes sets JOB_COMPLETION_INDEX"
                ));
            }
        }
        if !option(&args, "--report").is_some_and(|r| r.contains("$(JOB_COMPLETION_INDEX)")) {
            problems.push(format!(
                "{what}: the --report name does not carry $(JOB_COMPLETION_INDEX)"
            ));
        }
        if option(&args, "--progress") != Some("plain") {
            problems.push(format!("{what}: no --progress plain"));
        }
    }
    pod_problems(what, pod, docs, &mut problems);
    problems
}

/// The port a probe or Service names, as a container port number.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    port.as_u64().or_else(|| {
        seq(&container["ports"])
            .iter()
            .find(|p| p["name"].as_str() == port.as_str())
            .and_then(|p| p["containerPort"].as_u64())
    })
}

/// The serve Deployment and its Service: probes and scrape annotations on the --listen port.
fn serve_problems(docs: &[Value]) -> Vec<String> {
    let deployment = match the(docs, "Deployment") {
        Ok(deployment) => deployment,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    let what = "Deployment";
    if deployment["spec"]["replicas"].as_u64() != Some(1) {
        problems.push(format!("{what}: not one replica: each would sync the list"));
    }
    if deployment["spec"]["strategy"]["type"].as_str() != Some("Recreate") {
        problems.push(format!(
            "{what}: a rolling update runs two servers at once: use Recreate"
        ));
    }
    let template = &deployment["spec"]["template"];
    let pod = &template["spec"];
    pod_problems(what, pod, docs, &mut problems);
    let Some(container) = ferry_container(pod) else {
        return problems;
    };
    let args = ferry_args(what, container, &mut problems);
    if args.first().map(String::as_str) != Some("serve") {
        problems.push(format!("{what}: ferry runs {args:?}, not serve"));
    }
    if option(&args, "--every").is_none() && option(&args, "--cron").is_none() {
        problems.push(format!("{what}: neither --every nor --cron"));
    }
    let listen = option(&args, "--listen").and_then(|addr| {
        let (host, port) = addr.rsplit_once(':')?;
        Some((host.to_owned(), port.parse::<u64>().ok()?))
    });
    let Some((host, port)) = listen else {
        problems.push(format!("{what}: no --listen HOST:PORT"));
        return problems;
    };
    if ["127.0.0.1", "localhost", "[::1]"].contains(&host.as_str()) {
        problems.push(format!(
            "{what}: --listen {host}:{port} is loopback only: the kubelet's probes and \
             Prometheus cannot reach it"
        ));
    }
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        if get["path"].as_str() != Some(path) {
            problems.push(format!("{what}: {probe} does not ask {path}"));
        }
        if container_port(container, &get["port"]) != Some(port) {
            problems.push(format!(
                "{what}: {probe} asks another port than --listen's {port}"
            ));
        }
    }

    let service = match the(docs, "Service") {
        Ok(service) => service,
        Err(problem) => {
            problems.push(problem);
            return problems;
        }
    };
    let labels = &template["metadata"]["labels"];
    let selector = entries(&service["spec"]["selector"]);
    if selector.is_empty() || selector.iter().any(|(k, v)| labels[k.as_str()] != **v) {
        problems.push("Service: its selector does not pick the serve pods".to_owned());
    }
    let reaches = seq(&service["spec"]["ports"]).iter().any(|p| {
        let target = if p["targetPort"].is_null() {
            &p["port"]
        } else {
            &p["targetPort"]
        };
        container_port(container, target) == Some(port)
    });
    if !reaches {
        problems.push(format!("Service: no port leads to --listen's {port}"));
    }
    let annotations = &service["metadata"]["annotations"];
    let port_text = port.to_string();
    for (key, want) in [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", port_text.as_str()),
        ("prometheus.io/path", "/metrics"),
    ] {
        // Annotations are strings: an unquoted true or 9090 is refused by the API server.
        if annotations[key].as_str() != Some(want) {
            problems.push(format!(
                "Service: annotation {key} is not the string {want:?}"
            ));
        }
    }
    problems
}

/// The sample alerts: the mirror fell behind, the last run's inputs were invalid.
fn alert_problems(docs: &[Value]) -> Vec<String> {
    let rule = match the(docs, "PrometheusRule") {
        Ok(rule) => rule,
        Err(problem) => return vec![problem],
    };
    let rules: Vec<&Value> = seq(&rule["spec"]["groups"])
        .iter()
        .flat_map(|group| seq(&group["rules"]))
        .collect();
    let mut problems = Vec::new();
    let exprs: Vec<String> = rules.iter().map(|r| squeezed(&text(&r["expr"]))).collect();
    let any = |part: &str| exprs.iter().any(|e| e.contains(part));
    // 0 is "no success yet", not a success in 1970.
    if !any("time()-(ferry_last_success_timestamp_seconds>0)>2*3600")
        && !any("time()-(ferry_last_success_timestamp_seconds>0)>7200")
    {
        problems.push(
            "PrometheusRule: no alert when the last success (after a first one) is over 2h old"
                .to_owned(),
        );
    }
    if !any("ferry_last_success_timestamp_seconds==0") {
        problems.push("PrometheusRule: no alert for a server that never succeeded".to_owned());
    }
    if !any("absent(ferry_last_success_timestamp_seconds)") {
        problems.push("PrometheusRule: no alert when no ferry is scraped".to_owned());
    }
    if !any("ferry_inputs_valid==0") {
        problems.push("PrometheusRule: no alert on a run with invalid inputs".to_owned());
    }
    for rule in rules {
        if text(&rule["alert"]).is_empty() || text(&rule["annotations"]["summary"]).is_empty() {
            problems.push(format!(
                "PrometheusRule: rule {:?} lacks an alert name or a summary",
                text(&rule["expr"])
            ));
        }
    }
    problems
}

fn kubernetes_problems(files: &[(String, String)]) -> Vec<String> {
    let docs = manifests(files);
    let mut problems = cronjob_problems(&docs);
    problems.extend(serve_problems(&docs));
    problems.extend(alert_problems(&docs));
    problems
}

/// One Dockerfile instruction: its keyword (upper case) and the rest, continuation lines joined.
struct Instruction {
    keyword: String,
    rest: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comments (and parser directives) are dropped, also inside a continued instruction.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let line = std::mem::take(&mut pending);
                let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
                found.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    rest: squeezed_spaces(rest),
                });
            }
        }
    }
    found
}

/// Runs of blanks as one space.
fn squeezed_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Stage {
    image: String,
    name: Option<String>,
    body: Vec<Instruction>,
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .rest
                .split(' ')
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words[..] {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_owned()),
                _ => None,
            };
            stages.push(Stage {
                image: words.first().unwrap_or(&"").to_string(),
                name,
                body: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(instruction);
        }
    }
    stages
}

fn dockerfile_problems(text: &str) -> Vec<String> {
    let stages = stages(text);
    let mut problems = Vec::new();
    let runs = |stage: &Stage| -> Vec<String> {
        stage
            .body
            .iter()
            .filter(|i| i.keyword == "RUN")
            .map(|i| i.rest.clone())
            .collect()
    };
    let stage_of = |image: &str| {
        stages[..stages.len().saturating_sub(1)]
            .iter()
            .find(|s| s.image == image)
    };
    let Some(runtime) = stages.last().filter(|_| stages.len() >= 3) else {
        return vec![format!(
            "Dockerfile: {} stages, not a Rust builder, a Go builder and a runtime",
            stages.len()
        )];
    };

    let rust = stage_of("rust:1-bookworm");
    match rust {
        None => problems.push("Dockerfile: no rust:1-bookworm builder stage".to_owned()),
        Some(stage) => {
            if !runs(stage)
                .iter()
                .any(|r| r.contains("cargo build --release --locked"))
            {
                problems.push(
                    "Dockerfile: the Rust stage does not cargo build --release --locked".to_owned(),
                );
            }
            if !runs(stage)
                .iter()
                .any(|r| r.contains("ferry manpage --dir /usr/local/share/man/man1"))
            {
                problems.push("Dockerfile: the Rust stage writes no man pages".to_owned());
            }
        }
    }
    let go = stage_of("golang:1.22-bookworm");
    match go {
        None => problems.push("Dockerfile: no golang:1.22-bookworm stage for crane".to_owned()),
        Some(stage) => {
            let installs = runs(stage).iter().any(|r| {
                r.contains("go install")
                    && r.contains("github.com/google/go-containerregistry/cmd/crane@v0.20.2")
            });
            if !installs {
                problems
                    .push("Dockerfile: the Go stage does not go install crane@v0.20.2".to_owned());
            }
            if !stage.body.iter().any(|i| i.rest.contains("CGO_ENABLED=0")) {
                problems.push("Dockerfile: crane is not built with CGO_ENABLED=0".to_owned());
            }
        }
    }

    if runtime.image != "debian:bookworm-slim" {
        problems.push(format!(
            "Dockerfile: the runtime is {}, not debian:bookworm-slim",
            runtime.image
        ));
    }
    let apt = runs(runtime)
        .into_iter()
        .find(|r| r.contains("apt-get install"));
    match apt {
        None => problems.push("Dockerfile: the runtime installs nothing with apt-get".to_owned()),
        Some(apt) => {
            let words: Vec<&str> = apt.split(' ').collect();
            for package in ["skopeo", "ca-certificates"] {
                if !words.contains(&package) {
                    problems.push(format!(
                        "Dockerfile: the runtime does not install {package}"
                    ));
                }
            }
            if !words.contains(&"--no-install-recommends") {
                problems.push("Dockerfile: apt-get installs recommends".to_owned());
            }
            if !apt.contains("rm -rf /var/lib/apt/lists/*") {
                problems.push("Dockerfile: the apt lists stay in the image".to_owned());
            }
        }
    }
    let copies_from = |stage: Option<&Stage>, binary: &str| {
        let Some(name) = stage.and_then(|s| s.name.as_deref()) else {
            return false;
        };
        runtime.body.iter().any(|i| {
            i.keyword == "COPY"
                && i.rest.contains(&format!("--from={name} "))
                && i.rest.contains(binary)
        })
    };
    if !copies_from(rust, "ferry") {
        problems.push("Dockerfile: ferry is not copied into the runtime".to_owned());
    }
    if !copies_from(rust, "/usr/local/share/man/man1") {
        problems.push("Dockerfile: the man pages are not copied into the runtime".to_owned());
    }
    if !copies_from(go, "crane") {
        problems.push("Dockerfile: crane is not copied into the runtime".to_owned());
    }

    // USER, numeric (what runAsNonRoot can verify) and not root, set before the ENTRYPOINT.
    let position = |keyword: &str| runtime.body.iter().rposition(|i| i.keyword == keyword);
    let user = position("USER").map(|at| &runtime.body[at].rest);
    let uid = user.and_then(|u| u.split(':').next()?.parse::<u64>().ok());
    match uid {
        None => problems.push(format!(
            "Dockerfile: USER {user:?} is no numeric uid, which runAsNonRoot cannot verify"
        )),
        Some(0) => problems.push("Dockerfile: USER is root".to_owned()),
        Some(uid) => {
            let creates = runs(runtime)
                .iter()
                .any(|r| r.contains(&format!("--uid {uid}")) && r.contains("/home/ferry"));
            if !creates {
                problems.push(format!(
                    "Dockerfile: no user {uid} with home /home/ferry is created"
                ));
            }
        }
    }
    if position("USER") > position("ENTRYPOINT") {
        problems.push("Dockerfile: USER comes after the ENTRYPOINT".to_owned());
    }
    let exec_form = |keyword: &str| {
        position(keyword)
            .and_then(|at| serde_json::from_str::<Vec<String>>(&runtime.body[at].rest).ok())
    };
    if exec_form("ENTRYPOINT").as_deref() != Some(&["ferry".to_owned()][..]) {
        problems.push("Dockerfile: ENTRYPOINT is not the exec form [\"ferry\"]".to_owned());
    }
    if exec_form("CMD").as_deref() != Some(&["--help".to_owned()][..]) {
        problems.push("Dockerfile: CMD is not [\"--help\"]".to_owned());
    }
    if position("WORKDIR").map(|at| runtime.body[at].rest.as_str()) != Some("/work") {
        problems.push("Dockerfile: WORKDIR is not /work".to_owned());
    }
    problems
}

/// Every `docker run` that mounts a directory over `/work` must run as the directory's owner:
/// a bind mount keeps its owner on the host, so the image's user cannot write into it.
fn docker_run_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut command = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if command.is_empty() && !line.starts_with("docker run ") {
            continue;
        }
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if line.ends_with('\\') {
            continue;
        }
        let whole = squeezed_spaces(&std::mem::take(&mut command));
        if whole.contains(":/work") && !whole.contains("--user \"$(id -u):$(id -g)\"") {
            problems.push(format!(
                "{name}: `{whole}` mounts a directory over /work without --user \
                 \"$(id -u):$(id -g)\": the image's user cannot write into it"
            ));
        }
    }
    problems
}

fn dockerignore_problems(text: &str) -> Vec<String> {
    let patterns: BTreeSet<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .collect();
    ["target", ".git"]
        .iter()
        .filter(|p| !patterns.contains(*p))
        .map(|p| format!(".dockerignore: {p}/ is sent to the build"))
        .collect()
}

/// action.yml: its inputs, and every input reaching the scripts through the environment, the
/// password as FERRY_DEST_PASSWORD.
fn action_problems(action: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let inputs = &action["inputs"];
    for (name, default) in [
        ("list", Some("source-images.list")),
        ("dest", None),
        ("username", None),
        ("password", None),
        ("engine", Some("skopeo")),
        ("shard", None),
        ("report", None),
        ("catalog", Some("")),
    ] {
        let input = &inputs[name];
        if input.as_mapping().is_none() {
            problems.push(format!("{ACTION}: no input {name}"));
        } else if default.is_some_and(|d| input["default"].as_str() != Some(d)) {
            problems.push(format!(
                "{ACTION}: input {name} does not default to {default:?}"
            ));
        }
    }
    if inputs["dest"]["required"].as_bool() != Some(true) {
        problems.push(format!("{ACTION}: input dest is not required"));
    }
    for output in ["report", "catalog"] {
        if text(&action["outputs"][output]["value"]).is_empty() {
            problems.push(format!("{ACTION}: no output {output}"));
        }
    }
    if action["runs"]["using"].as_str() != Some("composite") {
        problems.push(format!("{ACTION}: not a composite action"));
    }
    let steps = seq(&action["runs"]["steps"]);
    for step in steps {
        let run = text(&step["run"]);
        if let Some(line) = run.lines().find(|l| l.contains("${{")) {
            problems.push(format!(
                "{ACTION}: step {:?} pastes an expression into its script instead of reading \
                 it from env: {}",
                text(&step["name"]),
                line.trim()
            ));
        }
    }
    let catalog_written = steps.iter().any(|step| {
        squeezed(&text(&step["env"]["ACTION_CATALOG"])) == "${{inputs.catalog}}"
            && text(&step["run"]).contains("ferry report catalog")
    });
    if !catalog_written {
        problems.push(format!(
            "{ACTION}: no step writes the catalog that input catalog names (ACTION_CATALOG)"
        ));
    }
    for (var, input) in [
        ("FERRY_DEST_USERNAME", "username"),
        ("FERRY_DEST_PASSWORD", "password"),
    ] {
        let passed = steps.iter().any(|step| {
            squeezed(&text(&step["env"][var])) == format!("${{{{inputs.{input}}}}}")
                && text(&step["run"]).contains("ferry ")
        });
        if !passed {
            problems.push(format!(
                "{ACTION}: no step running ferry gets input {input} as {var}"
            ));
        }
    }
    let scripts: Vec<String> = steps.iter().map(|s| text(&s["run"])).collect();
    // A tagged version is compiled once and then restored, not compiled in every job.
    let cache = steps
        .iter()
        .find(|s| text(&s["uses"]).starts_with("actions/cache@"));
    match cache {
        None => problems.push(format!("{ACTION}: install: git is not cached")),
        Some(cache) => {
            if !squeezed(&text(&cache["with"]["key"])).contains("${{inputs.version}}") {
                problems.push(format!(
                    "{ACTION}: the cache of install: git is not keyed on the version"
                ));
            }
            let id = text(&cache["id"]);
            let consulted = steps.iter().any(|step| {
                entries(&step["env"]).iter().any(|(_, v)| {
                    squeezed(&text(v)) == format!("${{{{steps.{id}.outputs.cache-hit}}}}")
                }) && text(&step["run"]).contains("cargo install")
            });
            if id.is_empty() || !consulted {
                problems.push(format!(
                    "{ACTION}: the install step compiles ferry whether the cache had it or not"
                ));
            }
        }
    }
    if !scripts.iter().any(|s| s.contains("cargo install --locked")) {
        problems.push(format!(
            "{ACTION}: ferry is not installed with cargo install --locked"
        ));
    }
    if !scripts
        .iter()
        .any(|s| s.contains("apt-get install") && s.contains("skopeo"))
    {
        problems.push(format!("{ACTION}: skopeo is not installed with apt-get"));
    }
    problems
}

/// The example workflow: a matrix of N shards, each running the action on its shard and
/// uploading its report, and a job that merges them; guarded so that it does not run in a
/// repository that has not configured it.
fn workflow_problems(workflow: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let on = &workflow["on"];
    for trigger in ["workflow_dispatch", "schedule"] {
        if on.get(trigger).is_none() {
            problems.push(format!("{WORKFLOW}: not triggered by {trigger}"));
        }
    }
    let jobs = entries(&workflow["jobs"]);
    for (name, job) in &jobs {
        for step in seq(&job["steps"]) {
            let run = text(&step["run"]);
            if run.contains("${{") {
                problems.push(format!(
                    "{WORKFLOW}: job {name} pastes an expression into a script: {run:?}"
                ));
            }
        }
    }
    let Some((mirror, job)) = jobs
        .iter()
        .find(|(_, job)| !job["strategy"]["matrix"]["shard"].is_null())
    else {
        problems.push(format!("{WORKFLOW}: no job with a matrix of shards"));
        return problems;
    };
    let shards: Vec<Option<u64>> = seq(&job["strategy"]["matrix"]["shard"])
        .iter()
        .map(Value::as_u64)
        .collect();
    let n = shards.len() as u64;
    if n < 2 || shards != (0..n).map(Some).collect::<Vec<_>>() {
        problems.push(format!(
            "{WORKFLOW}: the matrix's shards {shards:?} are not 0..N-1 for N >= 2"
        ));
    }
    if !squeezed(&text(&job["if"])).contains("vars.FERRY_DEST!=''") {
        problems.push(format!(
            "{WORKFLOW}: job {mirror} runs in any repository, configured or not \
             (guard it with vars.FERRY_DEST != '')"
        ));
    }
    if job["strategy"]["fail-fast"].as_bool() != Some(false) {
        problems.push(format!(
            "{WORKFLOW}: one failing shard cancels the others (fail-fast)"
        ));
    }
    let steps = seq(&job["steps"]);
    let uses = |step: &Value, prefix: &str| text(&step["uses"]).starts_with(prefix);
    let needs_of = |job: &Value| -> Vec<String> {
        match &job["needs"] {
            Value::Sequence(needs) => needs.iter().map(text).collect(),
            other => vec![text(other)],
        }
    };
    // ferry built once, in a job the shards need, cached, and handed over as an artifact.
    let compiles = |job: &Value| {
        seq(&job["steps"])
            .iter()
            .any(|s| text(&s["run"]).contains("cargo install"))
    };
    let build = needs_of(job).into_iter().find_map(|need| {
        jobs.iter()
            .find(|(name, job)| *name == need && compiles(job))
    });
    let binary = match build {
        None => {
            problems.push(format!(
                "{WORKFLOW}: no job builds ferry once for the shards (every shard compiles it)"
            ));
            String::new()
        }
        Some((name, build)) => {
            let build_steps = seq(&build["steps"]);
            if !build_steps.iter().any(|s| {
                uses(s, "actions/cache@") && text(&s["with"]["key"]).contains("hashFiles(")
            }) {
                problems.push(format!(
                    "{WORKFLOW}: job {name} compiles ferry every night: its build is not cached \
                     under a hash of the sources"
                ));
            }
            build_steps
                .iter()
                .find(|s| uses(s, "actions/upload-artifact@"))
                .map(|s| text(&s["with"]["name"]))
                .unwrap_or_else(|| {
                    problems.push(format!("{WORKFLOW}: job {name} uploads no ferry"));
                    String::new()
                })
        }
    };
    // A job that runs the build's ferry: it downloads the artifact and compiles nothing.
    let runs_the_build = |name: &str, job: &Value| {
        let mut problems = Vec::new();
        if compiles(job) {
            problems.push(format!("{WORKFLOW}: job {name} compiles ferry again"));
        }
        let downloads = seq(&job["steps"])
            .iter()
            .any(|s| uses(s, "actions/download-artifact@") && text(&s["with"]["name"]) == binary);
        if !binary.is_empty() && !downloads {
            problems.push(format!(
                "{WORKFLOW}: job {name} does not download the build's ferry ({binary})"
            ));
        }
        problems
    };
    problems.extend(runs_the_build(mirror, job));
    let action = steps.iter().find(|s| {
        let used = text(&s["uses"]);
        used == "./" || used.contains("/ferry@")
    });
    let Some(action) = action else {
        problems.push(format!(
            "{WORKFLOW}: job {mirror} does not use the ferry action"
        ));
        return problems;
    };
    let with = &action["with"];
    if text(&with["install"]) != "none" {
        problems.push(format!(
            "{WORKFLOW}: every shard compiles ferry (the action's install is {:?}, not none)",
            text(&with["install"])
        ));
    }
    if squeezed(&text(&with["shard"])) != format!("${{{{matrix.shard}}}}/{n}") {
        problems.push(format!(
            "{WORKFLOW}: the action's shard is {:?}, not the matrix's shard of {n}",
            text(&with["shard"])
        ));
    }
    if !squeezed(&text(&with["password"])).starts_with("${{secrets.") {
        problems.push(format!("{WORKFLOW}: the password is not a secret"));
    }
    let report = squeezed(&text(&with["report"]));
    let upload = steps.iter().find(|s| uses(s, "actions/upload-artifact@"));
    let artifact = match upload {
        None => {
            problems.push(format!("{WORKFLOW}: job {mirror} uploads no report"));
            String::new()
        }
        Some(upload) => {
            if report.is_empty() || squeezed(&text(&upload["with"]["path"])) != report {
                problems.push(format!(
                    "{WORKFLOW}: the uploaded path is not the action's report"
                ));
            }
            if !squeezed(&text(&upload["if"])).contains("always()") {
                problems.push(format!(
                    "{WORKFLOW}: a shard that failed an image uploads no report (if: always())"
                ));
            }
            let name = squeezed(&text(&upload["with"]["name"]));
            if !name.contains("${{matrix.shard}}") {
                problems.push(format!(
                    "{WORKFLOW}: the shards' artifacts share the name {name}"
                ));
            }
            name.split("${{").next().unwrap_or("").to_owned()
        }
    };

    let merge = jobs.iter().find(|(_, job)| {
        seq(&job["steps"])
            .iter()
            .any(|s| text(&s["run"]).contains("ferry report merge"))
    });
    let Some((merge, job)) = merge else {
        problems.push(format!("{WORKFLOW}: no job runs ferry report merge"));
        return problems;
    };
    problems.extend(runs_the_build(merge, job));
    if !needs_of(job).contains(mirror) {
        problems.push(format!("{WORKFLOW}: job {merge} does not need {mirror}"));
    }
    if !squeezed(&text(&job["if"])).contains("always()") {
        problems.push(format!(
            "{WORKFLOW}: job {merge} is skipped when a shard failed (if: always())"
        ));
    }
    let steps = seq(&job["steps"]);
    let downloads_reports = steps.iter().any(|d| {
        uses(d, "actions/download-artifact@")
            && text(&d["with"]["pattern"]) == format!("{artifact}*")
            && d["with"]["merge-multiple"].as_bool() == Some(true)
    });
    if !downloads_reports {
        problems.push(format!(
            "{WORKFLOW}: job {merge} does not download every {artifact}* artifact into one \
             directory"
        ));
    }
    if steps.iter().any(|s| {
        text(&s["run"]).contains("ferry report merge")
            && s["continue-on-error"].as_bool() == Some(true)
    }) {
        problems.push(format!(
            "{WORKFLOW}: a failed merge does not fail the workflow"
        ));
    }
    // The catalog of the merged report, committed: the job checks the repository out and may
    // push, and a step writes the catalog, adds it and pushes.
    let commits_catalog = steps.iter().any(|s| {
        let run = text(&s["run"]);
        run.contains("ferry report catalog report.json")
            && run.contains("git add")
            && run.contains("git push")
            && squeezed(&text(&s["if"])).contains("always()")
    });
    if !commits_catalog {
        problems.push(format!(
            "{WORKFLOW}: job {merge} does not commit the catalog of the merged report (a step \
             with if: always() running ferry report catalog report.json, git add, git push)"
        ));
    }
    if !steps.iter().any(|s| uses(s, "actions/checkout@")) {
        problems.push(format!(
            "{WORKFLOW}: job {merge} has no checkout to commit the catalog to"
        ));
    }
    if text(&job["permissions"]["contents"]) != "write" {
        problems.push(format!(
            "{WORKFLOW}: job {merge} cannot push the catalog (permissions: contents: write)"
        ));
    }
    if text(&job["env"]["SHARDS"]) != n.to_string() {
        problems.push(format!(
            "{WORKFLOW}: job {merge} expects {:?} reports, the matrix has {n} shards",
            text(&job["env"]["SHARDS"])
        ));
    }
    problems
}

/// The problems of the file at `path` (one of the deployables), read as `text`.
fn problems_of(path: &str, text: &str) -> Vec<String> {
    match path {
        DOCKERFILE => {
            let mut problems = dockerfile_problems(text);
            problems.extend(docker_run_problems(path, text));
            problems
        }
        ACTION => action_problems(&yaml(path, text)),
        WORKFLOW => workflow_problems(&yaml(path, text)),
        _ if path.starts_with(KUBERNETES) => {
            let files: Vec<(String, String)> = kubernetes_files()
                .into_iter()
                .map(|(name, old)| {
                    let new = if name == path { text.to_owned() } else { old };
                    (name, new)
                })
                .collect();
            kubernetes_problems(&files)
        }
        _ => panic!("no checker for {path}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The files as they are

#[test]
fn the_deployables_have_what_ferry_relies_on() {
    let mut problems = dockerfile_problems(&read(DOCKERFILE));
    problems.extend(docker_run_problems(DOCKERFILE, &read(DOCKERFILE)));
    problems.extend(docker_run_problems("README.md", &read("README.md")));
    problems.extend(dockerignore_problems(&read(".dockerignore")));
    problems.extend(kubernetes_problems(&kubernetes_files()));
    problems.extend(action_problems(&yaml(ACTION, &read(ACTION))));
    problems.extend(workflow_problems(&yaml(WORKFLOW, &read(WORKFLOW))));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checkers_name_what_a_broken_copy_breaks() {
    let cronjob = "deploy/kubernetes/cronjob.yaml";
    let serve = "deploy/kubernetes/serve.yaml";
    let cases = [
        (
            DOCKERFILE,
            "ENTRYPOINT [\"ferry\"]",
            "ENTRYPOINT ferry",
            "exec form",
        ),
        (DOCKERFILE, "USER 10001:10001", "USER ferry", "numeric"),
        (
            DOCKERFILE,
            "#   docker run --rm --user \"$(id -u):$(id -g)\" -v",
            "#   docker run --rm -v",
            "without --user",
        ),
        (DOCKERFILE, "USER 10001:10001", "USER 0", "root"),
        (DOCKERFILE, "      skopeo \\\n", "", "install skopeo"),
        (
            DOCKERFILE,
            "COPY --from=build /usr/local/share/man/man1",
            "COPY --from=crane /usr/local/share/man/man1",
            "man pages are not copied",
        ),
        (
            DOCKERFILE,
            "COPY --from=crane",
            "COPY --from=build",
            "crane is not copied",
        ),
        (
            cronjob,
            "completionMode: Indexed",
            "completionMode: NonIndexed",
            "Indexed",
        ),
        (cronjob, "parallelism: 3", "parallelism: 2", "parallelism"),
        (cronjob, "- \"3\"", "- \"4\"", "--shard 4 but"),
        (cronjob, "- \"3\"", "- \"1/3\"", "names K"),
        (
            cronjob,
            "  value: /home/ferry/.docker",
            "  value: /root/.docker",
            "DOCKER_CONFIG",
        ),
        (
            cronjob,
            "- key: .dockerconfigjson",
            "- key: config.json",
            ".dockerconfigjson",
        ),
        (
            cronjob,
            "- /config/source-images.list",
            "- /config/images.list",
            "no key",
        ),
        (
            cronjob,
            "runAsNonRoot: true",
            "runAsNonRoot: false",
            "runAsNonRoot",
        ),
        (
            serve,
            "path: /readyz",
            "path: /healthz",
            "readinessProbe does not ask /readyz",
        ),
        (serve, "- 0.0.0.0:9090", "- 0.0.0.0:8080", "another port"),
        (
            serve,
            "prometheus.io/port: \"9090\"",
            "prometheus.io/port: 9090",
            "prometheus.io/port",
        ),
        (
            serve,
            "mountPath: /config\n",
            concat!("mountPath: /config\n", "              subPath: x\n"),
            "subPath",
        ),
        (
            "deploy/kubernetes/prometheus-rule.yaml",
            "> 2 * 3600",
            "> 24 * 3600",
            "over 2h old",
        ),
        (
            "deploy/kubernetes/prometheus-rule.yaml",
            "(ferry_last_success_timestamp_seconds > 0)",
            "ferry_last_success_timestamp_seconds",
            "over 2h old",
        ),
        (
            "deploy/kubernetes/prometheus-rule.yaml",
            "expr: ferry_last_success_timestamp_seconds == 0",
            "expr: ferry_last_success_timestamp_seconds < 0",
            "never succeeded",
        ),
        (
            ACTION,
            "key: ferry-git-${{ inputs.version }}-",
            "key: ferry-git-",
            "not keyed on the version",
        ),
        (
            ACTION,
            "ACTION_CACHED: ${{ steps.cache.outputs.cache-hit }}",
            "ACTION_CACHED: 'false'",
            "whether the cache had it or not",
        ),
        (
            WORKFLOW,
            "          install: none\n",
            "",
            "every shard compiles ferry",
        ),
        (
            WORKFLOW,
            "    needs: build\n",
            "",
            "no job builds ferry once",
        ),
        (
            WORKFLOW,
            "      - id: cache\n        uses: actions/cache@v4",
            "      - id: cache\n        uses: actions/checkout@v4",
            "not cached",
        ),
        (
            ACTION,
            "ferry \"${args[@]}\"",
            "ferry \"${args[@]}\" --dest-creds \"${{ inputs.username }}:${{ inputs.password }}\"",
            "pastes an expression",
        ),
        (
            ACTION,
            "FERRY_DEST_PASSWORD: ${{ inputs.password }}",
            "FERRY_DEST_PASSWORD: ''",
            "input password as FERRY_DEST_PASSWORD",
        ),
        (
            WORKFLOW,
            "shard: [0, 1, 2]",
            "shard: [0, 1]",
            "expects \"3\" reports",
        ),
        (
            WORKFLOW,
            "shard: [0, 1, 2]",
            "shard: [1, 2, 3]",
            "not 0..N-1",
        ),
        (
            WORKFLOW,
            "needs: build\n    if: vars.FERRY_DEST != ''",
            "needs: build\n    if: true",
            "runs in any repository",
        ),
        (
            WORKFLOW,
            "which.\n      - if: always()",
            "which.\n      - if: success()",
            "no report",
        ),
        (
            WORKFLOW,
            "      contents: write\n",
            "      contents: read\n",
            "cannot push the catalog",
        ),
        (
            WORKFLOW,
            "          git push",
            "          true",
            "does not commit the catalog",
        ),
        (
            ACTION,
            "ACTION_CATALOG: ${{ inputs.catalog }}",
            "ACTION_CATALOG: ''",
            "no step writes the catalog",
        ),
    ];
    for (path, from, to, expected) in cases {
        let text = read(path);
        assert!(
            problems_of(path, &text).is_empty(),
            "{path} as it is has problems"
        );
        let problems = problems_of(path, &mutated(&text, from, to));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{path} with {from:?} changed to {to:?}: expected a problem with {expected:?}, \
             got {problems:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What can run here

/// Expands `$(NAME)` as the kubelet does in a container's args and env, for the names in `env`.
fn kubelet_expand(value: &str, env: &[(String, String)]) -> String {
    env.iter().fold(value.to_owned(), |value, (name, v)| {
        value.replace(&format!("$({name})"), v)
    })
}

/// ferry's arguments and environment as the kubelet starts the pod `pod` with `injected` (what
/// the Job controller adds), its volumes made under `root`: a ConfigMap's keys as files, a
/// Secret's items as files of an empty Docker config, emptyDirs empty. Paths under a mount are
/// moved under `root`.
fn start_pod(
    pod: &Value,
    docs: &[Value],
    root: &Path,
    injected: &[(&str, String)],
) -> (Vec<String>, Vec<(String, String)>) {
    let container = ferry_container(pod).expect("a ferry container");
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for mount in seq(&container["volumeMounts"]) {
        let name = text(&mount["name"]);
        let host = root.join(&name);
        fs::create_dir_all(&host).unwrap();
        let volume = volume(pod, &name).unwrap_or_else(|| panic!("no volume {name}"));
        let write = |path: &str, content: &str| fs::write(host.join(path), content).unwrap();
        if let Some(config_map) = volume["configMap"]["name"].as_str() {
            let config_map = named(docs, "ConfigMap", config_map).expect("the ConfigMap");
            for (key, value) in entries(&config_map["data"]) {
                if let Some(path) = match volume["configMap"]["items"].as_sequence() {
                    None => Some(key.clone()),
                    Some(items) => items
                        .iter()
                        .find(|i| text(&i["key"]) == key)
                        .map(|i| text(&i["path"])),
                } {
                    write(&path, &text(value));
                }
            }
        } else if volume.get("secret").is_some() {
            for item in seq(&volume["secret"]["items"]) {
                write(&text(&item["path"]), r#"{"auths":{}}"#);
            }
        }
        mounts.push((text(&mount["mountPath"]), host));
    }
    let moved = |value: String| {
        for (at, host) in &mounts {
            if let Some(rest) = value.strip_prefix(at.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    return format!("{}{rest}", host.display());
                }
            }
        }
        value
    };
    let mut env: Vec<(String, String)> = injected
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for var in seq(&container["env"]) {
        let value = kubelet_expand(&text(&var["value"]), &env);
        env.push((text(&var["name"]), value));
    }
    let args = seq(&container["args"])
        .iter()
        .map(|arg| moved(kubelet_expand(&text(arg), &env)))
        .collect();
    let env = env.into_iter().map(|(k, v)| (k, moved(v))).collect();
    (args, env)
}

/// The targets a dry run of `ferry sync` lists (`# FILE:LINE -> TARGET`).
fn dry_run_targets(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| Some(line.strip_prefix("# ")?.split_once(" -> ")?.1.to_owned()))
        .collect()
}

#[test]
fn each_cronjob_pod_mirrors_its_shard_and_together_they_cover_the_list() {
    let docs = manifests(&kubernetes_files());
    let job = &the(&docs, "CronJob").unwrap()["spec"]["jobTemplate"]["spec"];
    let completions = job["completions"].as_u64().expect("completions");
    let pod = &job["template"]["spec"];
    let dir = TempDir::new("deploy-cronjob");
    let path = std::env::var("PATH").unwrap_or_default();

    let mut copied = Vec::new();
    let mut reports = BTreeSet::new();
    let mut first = None;
    for index in 0..completions {
        let root = dir.path().join(format!("pod-{index}"));
        let injected = [("JOB_COMPLETION_INDEX", index.to_string())];
        let (args, env) = start_pod(pod, &docs, &root, &injected);
        let mut cmd = ferry();
        cmd.args(&args)
            .arg("--dry-run")
            .env_clear()
            .env("PATH", &path)
            .envs(env);
        let out = run(&mut cmd, 0);
        copied.extend(dry_run_targets(&stdout_of(&out)));
        let report = option(&args, "--report").expect("--report");
        reports.insert(Path::new(report).file_name().unwrap().to_owned());
        first.get_or_insert(args);
    }
    assert_eq!(
        reports.len() as u64,
        completions,
        "the pods' reports share names: {reports:?}"
    );

    // Together the shards are the list, each entry once.
    let args = first.unwrap();
    let mut listing = ferry();
    listing
        .args(["show-images", &args[1], "--dest"])
        .arg(option(&args, "--dest").unwrap())
        .env_clear();
    let mut all: Vec<String> = stdout_of(&run(&mut listing, 0))
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!all.is_empty(), "the ConfigMap's list is empty");
    copied.sort();
    all.sort();
    assert_eq!(
        copied, all,
        "the shards' entries are not the list's, once each"
    );
}

/// The inputs of `action`, as a workflow's `with:` gives them over its defaults.
fn action_inputs(action: &Value, with: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries(&action["inputs"])
        .into_iter()
        .map(|(name, input)| {
            let given = with
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string());
            let value = given.unwrap_or_else(|| text(&input["default"]));
            (name, value)
        })
        .collect()
}

/// A step's `env:` as the runner sets it, `${{ inputs.NAME }}` evaluated, and a step's output
/// (`${{ steps.ID.outputs.NAME }}`) empty, as when that step did not run (the only expressions
/// the action's env uses).
fn step_env(step: &Value, inputs: &BTreeMap<String, String>) -> Vec<(String, String)> {
    entries(&step["env"])
        .into_iter()
        .map(|(name, value)| {
            let value = text(value);
            let squeezed = squeezed(&value);
            let value = match squeezed
                .strip_prefix("${{inputs.")
                .and_then(|rest| rest.strip_suffix("}}"))
            {
                Some(input) => inputs[input].clone(),
                None if squeezed.starts_with("${{steps.") => String::new(),
                None => {
                    assert!(!value.contains("${{"), "unsupported expression {value}");
                    value
                }
            };
            (name, value)
        })
        .collect()
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step {name:?}"))
}

/// `script` as a `shell: bash` step runs it, in `workspace`, with only `env` (and PATH, HOME).
fn bash_step(script: &str, dir: &Path, workspace: &Path, env: &[(String, String)]) -> Command {
    let file = dir.join("step.sh");
    fs::write(&file, script).unwrap();
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .current_dir(workspace)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_PATH", dir.join("path"))
        .env("GITHUB_ACTION_PATH", repo_path(""))
        .envs(env.iter().cloned());
    cmd
}

/// A `ferry` first on PATH that records its arguments and the credentials it was given, then
/// runs the real ferry as a dry run.
fn recording_ferry(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let stub = bin.join("ferry");
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$@\" > {argv}\n\
         printf '%s\\n' \"${{FERRY_DEST_USERNAME-(unset)}}\" \\\n\
         \"${{FERRY_DEST_PASSWORD-(unset)}}\" > {creds}\n\
         exec {real} \"$@\" --dry-run\n",
        argv = shell_quote(&dir.join("argv").to_string_lossy()),
        creds = shell_quote(&dir.join("creds").to_string_lossy()),
        real = shell_quote(env!("CARGO_BIN_EXE_ferry")),
    );
    fs::write(&stub, script).unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_action_runs_ferry_on_its_shard_with_the_password_in_the_environment_only() {
    let action = yaml(ACTION, &read(ACTION));
    let steps = seq(&action["runs"]["steps"]);
    let mirror = step(steps, "Mirror");
    let password = "s3cret-Never-In-Argv";
    let cases = [
        (
            vec![
                ("dest", "harbor.example/third"),
                ("username", "robot"),
                ("password", password),
                ("shard", "1/3"),
                ("report", "shard-1.json"),
                ("args", "-j 8"),
            ],
            ("robot", password),
        ),
        // Empty credentials are none: ferry would refuse a user without a password.
        (
            vec![("dest", "harbor.example/third")],
            ("(unset)", "(unset)"),
        ),
    ];
    for (with, (user, pass)) in cases {
        let dir = TempDir::new("deploy-action");
        let workspace = dir.path().join("workspace");
        fs::create_dir(&workspace).unwrap();
        fs::copy(
            repo_path("source-images.list"),
            workspace.join("source-images.list"),
        )
        .unwrap();
        recording_ferry(dir.path());
        let inputs = action_inputs(&action, &with);
        let env = step_env(mirror, &inputs);
        let script = text(&mirror["run"]);
        let out = run(&mut bash_step(&script, dir.path(), &workspace, &env), 0);

        let argv: Vec<String> = fs::read_to_string(dir.path().join("argv"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(argv[..2], ["sync", inputs["list"].as_str()], "{argv:?}");
        assert_eq!(option(&argv, "--dest"), Some(inputs["dest"].as_str()));
        assert_eq!(option(&argv, "--report"), Some(inputs["report"].as_str()));
        let shard = Some(inputs["shard"].as_str()).filter(|s| !s.is_empty());
        assert_eq!(option(&argv, "--shard"), shard, "{argv:?}");
        assert_eq!(
            option(&argv, "-j"),
            with.contains(&("args", "-j 8")).then_some("8")
        );
        assert!(
            !argv.iter().any(|a| a.contains(password)),
            "the password is in ferry's argv: {argv:?}"
        );
        let output = stdout_of(&out) + &stderr_of(&out);
        assert!(
            !output.contains(password),
            "the password is in the log: {output}"
        );
        let creds = fs::read_to_string(dir.path().join("creds")).unwrap();
        assert_eq!(creds, format!("{user}\n{pass}\n"));
        let outputs = fs::read_to_string(dir.path().join("output")).unwrap();
        assert!(
            outputs
                .lines()
                .any(|l| l == format!("report={}", inputs["report"])),
            "output report not set: {outputs:?}"
        );
    }
}

/// With input catalog, the Mirror step writes the catalog of the run's report, also when the
/// sync failed images (exit 1, kept), and none when the sync ran nothing (exit 2).
#[test]
fn the_action_writes_the_catalog_of_its_run_also_when_images_failed() {
    let action = yaml(ACTION, &read(ACTION));
    let mirror = step(seq(&action["runs"]["steps"]), "Mirror");
    for code in [1, 2] {
        let dir = TempDir::new("deploy-action-catalog");
        let workspace = dir.path().join("workspace");
        fs::create_dir_all(&workspace).unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        let fixture = dir.path().join("fixture.json");
        let report = sync_report("harbor.example/third", (0, 1), &["synced", "failed"]);
        fs::write(&fixture, report.to_string()).unwrap();
        // A sync that writes its report (when it runs at all) and exits `code`; the real
        // ferry for everything else.
        let stub = format!(
            "#!/bin/sh\n\
             if [ \"$1\" = sync ]; then\n\
               while [ $# -gt 0 ]; do\n\
                 if [ \"$1\" = --report ] && [ {code} -ne 2 ]; then cp {fixture} \"$2\"; fi\n\
                 shift\n\
               done\n\
               exit {code}\n\
             fi\n\
             exec {real} \"$@\"\n",
            fixture = shell_quote(&fixture.to_string_lossy()),
            real = shell_quote(env!("CARGO_BIN_EXE_ferry")),
        );
        let ferry = dir.path().join("bin/ferry");
        fs::write(&ferry, stub).unwrap();
        fs::set_permissions(&ferry, fs::Permissions::from_mode(0o755)).unwrap();
        let inputs = action_inputs(
            &action,
            &[("dest", "harbor.example/third"), ("catalog", "CATALOG.md")],
        );
        let env = step_env(mirror, &inputs);
        run(
            &mut bash_step(&text(&mirror["run"]), dir.path(), &workspace, &env),
            code,
        );
        let outputs = fs::read_to_string(dir.path().join("output")).unwrap();
        let catalog = fs::read_to_string(workspace.join("CATALOG.md")).ok();
        if code == 2 {
            assert_eq!(catalog, None, "a catalog of a run that ran nothing");
            assert!(!outputs.contains("catalog="), "{outputs}");
            continue;
        }
        let catalog = catalog.expect("the catalog is written");
        assert!(
            catalog
                .starts_with("# Mirror catalog\n\n**1 registry, 1 repository, 1 tag, 1 failed**"),
            "{catalog}"
        );
        assert!(
            outputs.lines().any(|l| l == "catalog=CATALOG.md"),
            "{outputs}"
        );
    }
}

/// The merge job's last step commits the merged report's catalog and pushes it, once: an
/// unchanged catalog is no commit.
#[test]
fn the_merge_job_commits_the_catalog_when_it_changed() {
    let workflow = yaml(WORKFLOW, &read(WORKFLOW));
    let jobs = entries(&workflow["jobs"]);
    let commit = jobs
        .iter()
        .flat_map(|(_, job)| seq(&job["steps"]).iter())
        .find(|s| text(&s["name"]) == "Commit the catalog")
        .expect("a step that commits the catalog");
    let script = text(&commit["run"]);
    let dir = TempDir::new("deploy-catalog-commit");
    let remote = dir.path().join("remote.git");
    let workspace = dir.path().join("workspace");
    fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferry"), dir.path().join("bin/ferry")).unwrap();
    let git = |args: &[&str], at: &Path| {
        let out = run(
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(at)
                .env("HOME", dir.path()),
            0,
        );
        stdout_of(&out)
    };
    git(&["init", "--quiet", "--bare", "remote.git"], dir.path());
    git(&["clone", "--quiet", "remote.git", "workspace"], dir.path());
    fs::write(workspace.join("README.md"), "mirror\n").unwrap();
    git(&["add", "README.md"], &workspace);
    git(&["commit", "--quiet", "-m", "start"], &workspace);
    git(&["push", "--quiet", "origin", "HEAD"], &workspace);
    let report = sync_report("harbor.example/third", (0, 1), &["synced", "skipped"]);
    fs::write(workspace.join("report.json"), report.to_string()).unwrap();
    let env = [("GITHUB_RUN_ID".to_owned(), "42".to_owned())];
    run(&mut bash_step(&script, dir.path(), &workspace, &env), 0);
    let expected = stdout_of(&run(
        ferry()
            .args(["report", "catalog"])
            .arg(workspace.join("report.json")),
        0,
    ));
    assert_eq!(git(&["show", "HEAD:CATALOG.md"], &remote), expected);
    assert_eq!(
        git(&["log", "--format=%s"], &remote),
        "Mirror catalog of run 42\nstart\n"
    );
    // The same catalog again: nothing to commit.
    let out = run(&mut bash_step(&script, dir.path(), &workspace, &env), 0);
    assert!(stdout_of(&out).contains("the catalog is unchanged"));
    assert_eq!(git(&["log", "--format=%s"], &remote).lines().count(), 2);
}

#[test]
fn the_action_install_step_accepts_none_and_refuses_an_unknown_method() {
    let action = yaml(ACTION, &read(ACTION));
    let install = step(
        seq(&action["runs"]["steps"]),
        "Install ferry and its engine",
    );
    let script = text(&install["run"]);
    for (method, code) in [("none", 0), ("nonsense", 1)] {
        let dir = TempDir::new("deploy-install");
        recording_ferry(dir.path());
        let env = step_env(install, &action_inputs(&action, &[("install", method)]));
        let out = run(&mut bash_step(&script, dir.path(), dir.path(), &env), code);
        if code != 0 {
            assert!(
                stdout_of(&out).contains("::error::install must be"),
                "{}",
                stdout_of(&out)
            );
        }
    }
}

/// With `install: git` and a version, ferry is compiled when the cache lacks it, and only then.
#[test]
fn the_action_compiles_a_tagged_ferry_only_when_the_cache_lacks_it() {
    let action = yaml(ACTION, &read(ACTION));
    let install = step(
        seq(&action["runs"]["steps"]),
        "Install ferry and its engine",
    );
    let script = text(&install["run"]);
    let with = [
        ("install", "git"),
        ("version", "v0.1.0"),
        ("engine", "native"),
    ];
    for (cache_hit, compiled) in [("true", false), ("false", true), ("", true)] {
        let dir = TempDir::new("deploy-install-cache");
        recording_ferry(dir.path());
        let cargo = dir.path().join("bin/cargo");
        let log = dir.path().join("cargo-argv");
        let stub = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n",
            shell_quote(&log.to_string_lossy())
        );
        fs::write(&cargo, stub).unwrap();
        fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
        let mut env = step_env(install, &action_inputs(&action, &with));
        // What actions/cache says, as the runner would evaluate the step's output.
        env.retain(|(k, _)| k != "ACTION_CACHED");
        env.push(("ACTION_CACHED".to_owned(), cache_hit.to_owned()));
        run(&mut bash_step(&script, dir.path(), dir.path(), &env), 0);
        let argv = fs::read_to_string(&log).ok();
        assert_eq!(
            argv.is_some(),
            compiled,
            "cache-hit {cache_hit:?}: {argv:?}"
        );
        if let Some(argv) = argv {
            let argv: Vec<&str> = argv.lines().collect();
            assert_eq!(argv[..2], ["install", "--locked"], "{argv:?}");
            assert_eq!(option_str(&argv, "--tag"), Some("v0.1.0"), "{argv:?}");
        }
    }
}

fn option_str<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| *a == flag)?;
    args.get(at + 1).copied()
}

/// A sync report of shard `k` of `n`, as ferry writes one (command, shard, list fingerprint).
fn sync_report(destination: &str, (k, n): (usize, usize), statuses: &[&str]) -> serde_json::Value {
    let images: Vec<serde_json::Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let source = format!("docker.io/library/app{k}-{i}:1");
            let target = format!("{destination}/{source}");
            serde_json::json!({
                "source": source,
                "target": target,
                "list_line": format!("{source} {target}"),
                "origin": format!("source-images.list:{i}"),
                "status": status,
            })
        })
        .collect();
    serde_json::json!({
        "ferry_version": "0.1.0",
        "command": "sync",
        "shard": { "index": k, "count": n },
        "fingerprint": format!("sha256:{}", "0".repeat(64)),
        "destination": destination,
        "images": images,
        "summary": { "total": statuses.len(), "duration_ms": 10, "interrupted": false },
    })
}

#[test]
fn the_merge_job_fails_the_workflow_when_a_shard_failed_an_image_or_left_no_report() {
    let workflow = yaml(WORKFLOW, &read(WORKFLOW));
    let jobs = entries(&workflow["jobs"]);
    let (_, merge) = jobs
        .iter()
        .find(|(_, job)| {
            seq(&job["steps"])
                .iter()
                .any(|s| text(&s["run"]).contains("ferry report merge"))
        })
        .expect("a merge job");
    let script = seq(&merge["steps"])
        .iter()
        .map(|s| text(&s["run"]))
        .find(|run| run.contains("ferry report merge"))
        .unwrap();
    let env: Vec<(String, String)> = entries(&merge["env"])
        .into_iter()
        .map(|(k, v)| (k, text(v)))
        .collect();
    let shards: usize = env
        .iter()
        .find(|(k, _)| k == "SHARDS")
        .and_then(|(_, v)| v.parse().ok())
        .expect("SHARDS");

    let all_good = vec![vec!["synced", "skipped"]; shards];
    let mut one_failed = all_good.clone();
    one_failed[shards - 1] = vec!["synced", "failed"];
    let one_missing = all_good[1..].to_vec();
    for (reports, code, says) in [
        (all_good, 0, "merged"),
        (one_failed, 1, "1 failed"),
        (one_missing, 1, "::error::"),
    ] {
        let dir = TempDir::new("deploy-merge");
        let workspace = dir.path().join("workspace");
        fs::create_dir_all(workspace.join("reports")).unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferry"), dir.path().join("bin/ferry"))
            .unwrap();
        for (k, statuses) in reports.iter().enumerate() {
            let report = sync_report("harbor.example/third", (k, shards), statuses);
            let file = workspace.join(format!("reports/shard-{k}.json"));
            fs::write(file, report.to_string()).unwrap();
        }
        let out = run(&mut bash_step(&script, dir.path(), &workspace, &env), code);
        let output = stdout_of(&out) + &stderr_of(&out);
        assert!(output.contains(says), "expected {says:?} in: {output}");
        if reports.len() < shards {
            // ferry names the shard that left no report, as the step does.
            let missing = format!("shard {}/{shards} is missing", shards - 1);
            assert!(
                output.contains(&missing),
                "expected {missing:?} in: {output}"
            );
        }
        // The merged report is written in every case, for the upload after it.
        let merged: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(workspace.join("report.json")).unwrap())
                .unwrap();
        let total = reports.iter().map(Vec::len).sum::<usize>() as u64;
        assert_eq!(merged["summary"]["total"].as_u64(), Some(total));
    }
}

// ---------------------------------------------------------------------------------------------
// Checked by the real tools: the Kubernetes API's schemas (kubernetes-validate), SchemaStore's
// schemas of actions and workflows (check-jsonschema), promtool, and a running Prometheus.

/// The oldest Kubernetes release the manifests support; every release from it to the newest
/// the pinned kubernetes-validate ships is checked.
const OLDEST_KUBERNETES_MINOR: u32 = 29;
const RULES: &str = "deploy/kubernetes/prometheus-rule.yaml";
const RULE_TESTS: &str = "tests/prometheus/alerts.test.yaml";

/// A validator the tests run: on PATH (scripts/test puts target/ferry-test-venv/bin, where it
/// installs the pinned kubernetes-validate and check-jsonschema, first on it), else in that
/// directory. Missing, the test says that it was skipped and passes; with
/// `FERRY_REQUIRE_VALIDATORS=1` (as .ci/run sets it) it fails.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let venv = repo_path("target/ferry-test-venv/bin");
    let found = std::env::split_paths(&path)
        .chain([venv])
        .map(|dir| dir.join(name))
        .find(|file| file.metadata().is_ok_and(|m| m.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("FERRY_REQUIRE_VALIDATORS").as_deref() != Ok("1"),
            "FERRY_REQUIRE_VALIDATORS=1 but {name} was not found: scripts/test installs it"
        );
        eprintln!(
            "SKIPPED: {name} not found (scripts/test installs it): {}",
            std::thread::current().name().unwrap_or("a validator test")
        );
    }
    found
}

/// The Kubernetes minor versions to check: the oldest supported to the newest the installed
/// kubernetes-validate knows (its default, per its --help).
fn kubernetes_versions(validate: &Path) -> Vec<String> {
    let help = stdout_of(&run(Command::new(validate).arg("--help"), 0));
    let help = squeezed_spaces(&help);
    let newest = help
        .split("Defaults to ")
        .nth(1)
        .and_then(|rest| rest.split('.').nth(1))
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no default version in kubernetes-validate --help: {help}"));
    assert!(
        newest >= 35,
        "kubernetes-validate knows only up to 1.{newest}"
    );
    (OLDEST_KUBERNETES_MINOR..=newest)
        .map(|minor| format!("1.{minor}"))
        .collect()
}

/// The problems `kubernetes-validate --strict` finds in `files` for each of `versions`; also a
/// problem: a resource of Kubernetes' own (not a custom resource) it did not report as passed.
fn kubernetes_validate_problems(
    validate: &Path,
    versions: &[String],
    files: &[PathBuf],
) -> Vec<String> {
    let mut problems = Vec::new();
    for version in versions {
        let out = Command::new(validate)
            .args(["--strict", "--kubernetes-version", version])
            .args(files)
            .output()
            .expect("kubernetes-validate runs");
        let output = stdout_of(&out) + &stderr_of(&out);
        if !out.status.success() {
            problems.push(format!(
                "kubernetes-validate --strict -k {version} exits {:?}:\n{output}",
                out.status.code()
            ));
        }
        for file in files {
            let name = file.display().to_string();
            let content = fs::read_to_string(file).unwrap();
            for doc in documents(&name, &content) {
                let kind = text(&doc["kind"]);
                if kind == "PrometheusRule" {
                    continue; // a custom resource: promtool checks its rules
                }
                let passed = format!(
                    "passed for resource {}/{} against version {version}",
                    kind.to_lowercase(),
                    text(&doc["metadata"]["name"])
                );
                if !output.contains(&passed) {
                    problems.push(format!("{name}: not \"{passed}\":\n{output}"));
                }
            }
        }
    }
    problems
}

fn kubernetes_paths() -> Vec<PathBuf> {
    kubernetes_files()
        .into_iter()
        .map(|(name, _)| repo_path(&name))
        .collect()
}

#[test]
fn every_manifest_is_valid_on_every_supported_kubernetes_version() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let versions = kubernetes_versions(&validate);
    let problems = kubernetes_validate_problems(&validate, &versions, &kubernetes_paths());
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The CronJob as it was: its DisruptionTarget condition without a status is refused by
    // the schemas of 1.29 to 1.34.
    let dir = TempDir::new("deploy-kubernetes-validate");
    let cronjob = dir.path().join("cronjob.yaml");
    let text = read("deploy/kubernetes/cronjob.yaml");
    let status = "\n                # Required by the API schema of Kubernetes 1.34 and older.\n                status: \"True\"";
    fs::write(&cronjob, mutated(&text, status, "")).unwrap();
    let problems = kubernetes_validate_problems(&validate, &versions[..1], &[cronjob]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("onPodConditions.0: 'status' is a required property")),
        "{problems:#?}"
    );
}

/// `check-jsonschema --builtin-schema SCHEMA FILE`'s exit code and output.
fn check_jsonschema(check: &Path, schema: &str, file: &Path) -> (i32, String) {
    let out = Command::new(check)
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("check-jsonschema runs");
    let output = stdout_of(&out) + &stderr_of(&out);
    (out.status.code().unwrap_or(-1), output)
}

#[test]
fn the_action_and_the_workflows_match_schemastores_schemas() {
    let Some(check) = tool("check-jsonschema") else {
        return;
    };
    let mut files = vec![("vendor.github-actions", repo_path(ACTION))];
    let workflows = fs::read_dir(repo_path(".github/workflows")).unwrap();
    for entry in workflows {
        let path = entry.unwrap().path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            files.push(("vendor.github-workflows", path));
        }
    }
    assert!(files.len() >= 2, "no workflow in .github/workflows");
    for (schema, file) in &files {
        let (code, output) = check_jsonschema(&check, schema, file);
        assert_eq!(code, 0, "{} against {schema}:\n{output}", file.display());
    }

    // A misspelt key is caught in each.
    let dir = TempDir::new("deploy-check-jsonschema");
    for (path, schema, from, to) in [
        (
            ACTION,
            "vendor.github-actions",
            "  using: composite",
            "  usin: composite",
        ),
        (
            WORKFLOW,
            "vendor.github-workflows",
            "    runs-on: ubuntu-latest\n    strategy:",
            "    run-on: ubuntu-latest\n    strategy:",
        ),
    ] {
        let file = dir.path().join(Path::new(path).file_name().unwrap());
        fs::write(&file, mutated(&read(path), from, to)).unwrap();
        let (code, output) = check_jsonschema(&check, schema, &file);
        assert_eq!(code, 1, "{path} with {to:?} passed {schema}:\n{output}");
    }
}

/// The rule groups of the PrometheusRule, as a plain rule file (JSON, which Prometheus reads as
/// YAML), with every `for:` replaced by `for_` when one is given.
fn rule_file(for_: Option<&str>) -> String {
    let text = read(RULES);
    let docs = documents(RULES, &text);
    let rule = the(&docs, "PrometheusRule").unwrap();
    let mut groups = serde_json::to_value(&rule["spec"]).unwrap();
    if let Some(for_) = for_ {
        for group in groups["groups"].as_array_mut().unwrap() {
            for rule in group["rules"].as_array_mut().unwrap() {
                if rule.get("for").is_some() {
                    rule["for"] = serde_json::json!(for_);
                }
            }
        }
    }
    serde_json::to_string_pretty(&groups).unwrap()
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dir = TempDir::new("deploy-promtool");
    let rules = dir.path().join("ferry-rules.json");
    fs::write(&rules, rule_file(None)).unwrap();
    let out = run(
        Command::new(&promtool).args(["check", "rules"]).arg(&rules),
        0,
    );
    assert!(
        stdout_of(&out).contains("SUCCESS: 4 rules found"),
        "{}",
        stdout_of(&out)
    );
    let tests = dir.path().join("alerts.test.yaml");
    fs::copy(repo_path(RULE_TESTS), &tests).unwrap();
    run(
        Command::new(&promtool)
            .args(["test", "rules", "alerts.test.yaml"])
            .current_dir(dir.path()),
        0,
    );

    // The unit tests catch an alert that fires before the first success, and one that never
    // fires for a server that never succeeded.
    for (from, to) in [
        (
            "(ferry_last_success_timestamp_seconds > 0)",
            "ferry_last_success_timestamp_seconds",
        ),
        (
            "expr: ferry_last_success_timestamp_seconds == 0",
            "expr: absent(ferry_last_success_timestamp_seconds)",
        ),
    ] {
        let broken = mutated(&read(RULES), from, to);
        let docs = documents(RULES, &broken);
        let spec = &the(&docs, "PrometheusRule").unwrap()["spec"];
        fs::write(&rules, serde_json::to_string(spec).unwrap()).unwrap();
        let out = run(
            Command::new(&promtool)
                .args(["test", "rules", "alerts.test.yaml"])
                .current_dir(dir.path()),
            1,
        );
        let output = stdout_of(&out) + &stderr_of(&out);
        assert!(output.contains("FAILED"), "{from:?} -> {to:?}: {output}");
    }
    // And check rules refuses an expression that does not parse.
    fs::write(
        &rules,
        mutated(
            &rule_file(None),
            "ferry_inputs_valid == 0",
            "ferry_inputs_valid ==",
        ),
    )
    .unwrap();
    run(
        Command::new(&promtool).args(["check", "rules"]).arg(&rules),
        1,
    );
}

// A real Prometheus scraping a real `ferry serve`.

/// Kills a process the test started when the test ends, also when it fails.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on `addr` as HTTP/1.0 (so that the answer is neither chunked nor kept open):
/// the status and the body, `None` when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The alerts Prometheus at `addr` has, as (name, state) pairs.
fn prometheus_alerts(addr: &str) -> Vec<(String, String)> {
    let Some((200, body)) = http_get(addr, "/api/v1/alerts") else {
        return Vec::new();
    };
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    answer["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|alert| {
            (
                alert["labels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                alert["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Starts `ferry serve` of `list` on `m`, every second; returns it and its address.
fn start_serve(m: &crate::common::mirror::Mirror, list: &Path, log: &Path) -> (Process, String) {
    let mut cmd = m.ferry();
    cmd.arg("serve")
        .arg(list)
        .arg("--dest")
        .arg(m.prefix())
        .args([
            "--dest-tls-verify=false",
            "--every",
            "1s",
            "--progress",
            "none",
        ])
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(log).unwrap());
    let server = Process(cmd.spawn().expect("ferry serve starts"));
    let mut addr = None;
    wait_until(std::time::Duration::from_secs(10), "serve listens", || {
        let log = fs::read_to_string(log).unwrap_or_default();
        addr = log
            .lines()
            .find_map(|line| Some(line.split_once("on http://")?.1.trim().to_owned()));
        addr.is_some()
    });
    (server, addr.unwrap())
}

/// Starts Prometheus with `config` (scraping and evaluating every second) on a free port;
/// returns it and its address once it is ready.
fn start_prometheus(prometheus: &Path, dir: &Path, config: &Path) -> (Process, String) {
    for attempt in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = dir.join(format!("prometheus-{attempt}.log"));
        let mut server = Process(
            Command::new(prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("prometheus starts"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if server.0.try_wait().unwrap().is_some() {
                break; // the port was taken meanwhile: another one
            }
            if http_get(&addr, "/-/ready").is_some_and(|(status, _)| status == 200) {
                return (server, addr);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!(
            "prometheus did not start on {addr}:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    panic!("prometheus did not start");
}

/// The shipped alerts, in a real Prometheus that scrapes a real `ferry serve` (with `for:`
/// shortened to 2s, and everything every second): runs that fail their image fire
/// FerryMirrorNeverSucceeded (and not FerryMirrorBehind), a broken list FerryInputsInvalid.
#[test]
fn a_real_prometheus_fires_the_alerts_when_ferrys_runs_fail() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let m = crate::common::mirror::Mirror::new(false);
    // An image the source does not have: every run fails it (not-found, not retried).
    let list = m.write("images.list", "library/missing:1\n");
    let dir = TempDir::new("deploy-prometheus");
    let serve_log = dir.path().join("serve.log");
    let (_serve, ferry) = start_serve(&m, &list, &serve_log);

    fs::write(dir.path().join("ferry-rules.json"), rule_file(Some("2s"))).unwrap();
    let config = dir.path().join("prometheus.json");
    let scrape = serde_json::json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["ferry-rules.json"],
        "scrape_configs": [
            {"job_name": "ferry", "static_configs": [{"targets": [ferry]}]}
        ],
    });
    fs::write(&config, scrape.to_string()).unwrap();
    let (_prometheus, addr) = start_prometheus(&prometheus, dir.path(), &config);

    let firing = |name: &str, alerts: &[(String, String)]| {
        alerts
            .iter()
            .any(|(n, state)| n == name && state == "firing")
    };
    let started = std::time::Instant::now();
    let mut alerts = Vec::new();
    let limit = std::time::Duration::from_secs(60);
    while !firing("FerryMirrorNeverSucceeded", &alerts) {
        assert!(
            started.elapsed() < limit,
            "FerryMirrorNeverSucceeded did not fire: alerts {alerts:?}\nferry: {}",
            fs::read_to_string(&serve_log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        alerts = prometheus_alerts(&addr);
    }
    let fired = started.elapsed();
    let names: Vec<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains(&"FerryMirrorBehind") && !names.contains(&"FerryMirrorAbsent"),
        "{alerts:?}"
    );
    // Prometheus saw the failed runs themselves.
    let (_, query) = http_get(
        &addr,
        "/api/v1/query?query=ferry_runs_total%7Bresult%3D%22images-failed%22%7D",
    )
    .unwrap();
    assert!(query.contains("\"ferry_runs_total\""), "{query}");

    // A broken list: its run is invalid-input.
    fs::write(&list, "Not A Reference\n").unwrap();
    wait_until(limit, "FerryInputsInvalid fires", || {
        firing("FerryInputsInvalid", &prometheus_alerts(&addr))
    });
    eprintln!(
        "FerryMirrorNeverSucceeded fired {fired:?} after Prometheus started, \
         FerryInputsInvalid {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// The image's user, as far as this machine allows (no Docker engine): ferry run as the
// Dockerfile's USER and as the `--user` the docs give, in a directory owned by someone else,
// as a bind mount of the host user's directory is.

/// The Dockerfile's `USER uid:gid`.
fn image_user() -> (u32, u32) {
    let text = read(DOCKERFILE);
    let runtime = stages(&text).pop().expect("a runtime stage");
    let user = runtime
        .body
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .map(|i| i.rest.clone())
        .expect("a USER");
    let (uid, gid) = user.split_once(':').unwrap_or((&user, &user));
    (uid.parse().unwrap(), gid.parse().unwrap())
}

/// `ferry sync images.list --dest-dir mirror` of `m`, in `work`, as `uid:gid` (by `setpriv`,
/// with no other groups), its HOME `home`.
fn sync_as(
    m: &crate::common::mirror::Mirror,
    work: &Path,
    home: &Path,
    user: (u32, u32),
) -> std::process::Output {
    let ferry = m.ferry();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        &user.0.to_string(),
        "--regid",
        &user.1.to_string(),
    ])
    .args(["--clear-groups", "--"])
    .arg(ferry.get_program())
    .args([
        "sync",
        "images.list",
        "--dest-dir",
        "mirror",
        "--progress",
        "none",
    ])
    .current_dir(work)
    .env("HOME", home)
    .stdin(std::process::Stdio::null());
    for (key, value) in ferry.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.output().expect("setpriv runs")
}

#[test]
fn a_mounted_directory_is_written_by_the_documented_user_and_not_by_the_images() {
    // setpriv needs to be root; CI is.
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout_of(&o).trim() == "0")
    {
        eprintln!("SKIPPED: not root, so ferry cannot be run as other users here");
        return;
    }
    let m = crate::common::mirror::Mirror::new(false);
    m.push("library/nginx:1", "nginx-1");
    let dir = TempDir::new("deploy-user");
    let chown = |path: &Path, (uid, gid): (u32, u32)| {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    };
    // The host user's directory (mode 755, as a home directory's work tree usually is).
    let host_user = (4242, 4242);
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(work.join("images.list"), "nginx:1\n").unwrap();
    chown(&work, host_user);
    // The image's HOME: the image's user's, not writable by another.
    let image = image_user();
    let home = dir.path().join("home-ferry");
    fs::create_dir(&home).unwrap();
    chown(&home, image);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();

    // As the image's user: it reads the list but cannot write the mirror, and says so.
    let out = sync_as(&m, &work, &home, image);
    let stderr = stderr_of(&out) + &stdout_of(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ermission denied"), "{stderr}");
    let index = work.join("mirror/docker.io/library/nginx/index.json");
    assert!(!index.exists());

    // As the directory's owner (`--user "$(id -u):$(id -g)"`): the mirror is written, with a
    // HOME it cannot write.
    let out = sync_as(&m, &work, &home, host_user);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&index).unwrap());
    assert_eq!(owner, host_user.0, "the mirror belongs to the host user");
}
