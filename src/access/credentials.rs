//! Where one side's credentials come from, and the credentials found there.
//!
//! Credentials come from the same places skopeo reads, in the same order: credentials given to
//! ferry (per host, or for a whole side: `--*-creds`, an input's registry section, an accounts
//! file), an explicit auth file (which then is the only file), else `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`, and Docker's
//! `config.json` (`$DOCKER_CONFIG`), including `credHelpers`/`credsStore` helpers and Docker
//! Hub's key (see [`crate::docker_hub`]). The same files are what skopeo's private auth file
//! merges ([`CredentialSources::skopeo_auth_file`]).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::docker_hub;
use crate::secret::{Credentials, Secret};

/// Where one side's credentials come from.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// Credentials for specific registry hosts (accounts files, skopeo YAML); they win.
    pub per_host: HashMap<String, Credentials>,
    /// Credentials for every registry on this side (`--src-creds` / `--dest-creds`).
    pub side: Option<Credentials>,
    /// An explicit auth file (`--src-authfile`, `--dest-authfile`, `--authfile`).
    pub authfile: Option<PathBuf>,
    /// What credential helpers answered during this run.
    pub helper_answers: HelperAnswers,
}

/// Credential helper answers by (helper, host), kept for the run and shared by clones. Every
/// repository's first challenge looks its credentials up, and a helper may be slow (a cloud
/// login): it runs once per host, not once per repository.
#[derive(Clone, Default)]
pub struct HelperAnswers(Arc<Mutex<HashMap<HelperQuestion, HelperAnswer>>>);

/// Credentials or none, or why the helper failed.
type HelperAnswer = Result<Option<Credentials>, String>;

/// (helper, host)
type HelperQuestion = (String, String);

impl std::fmt::Debug for HelperAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HelperAnswers")
    }
}

impl HelperAnswers {
    /// The helper's answer for `host`: asked once, then remembered, a failure too (a helper
    /// that hangs or fails would only do so again, once per repository). Held while the
    /// helper runs, so parallel lookups for one host wait for its answer.
    fn get(&self, helper: &str, host: &str) -> Result<Option<Credentials>, CredentialsError> {
        let mut answers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (helper.to_owned(), host.to_owned());
        let answer = answers
            .entry(key)
            .or_insert_with(|| run_helper(helper, host));
        answer.clone().map_err(|reason| CredentialsError::Helper {
            helper: helper.to_owned(),
            host: host.to_owned(),
            reason,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read auth file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Only where: serde's message may quote a value of the file, and this one holds secrets.
    #[error("invalid auth file {}: not the expected JSON at line {line}, column {column}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("invalid \"auth\" entry for {key} in {}", path.display())]
    Entry { key: String, path: PathBuf },
    #[error("credential helper docker-credential-{helper} failed for {host}: {reason}")]
    Helper {
        helper: String,
        host: String,
        reason: String,
    },
    /// ferry's own private copy of the credentials (an engine's auth file) cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CredentialsError {
    /// Whether the user's configuration is at fault: a credentials file that cannot be read,
    /// or is not what it should be. Not a credential helper that failed, nor ferry failing to
    /// write its own files.
    pub fn is_configuration(&self) -> bool {
        match self {
            CredentialsError::Read { .. }
            | CredentialsError::Parse { .. }
            | CredentialsError::Entry { .. } => true,
            CredentialsError::Helper { .. } | CredentialsError::Write { .. } => false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

impl CredentialSources {
    /// Credentials for `name` (`domain/path`, e.g. `docker.io/library/nginx`), if any.
    pub fn lookup(&self, name: &str) -> Result<Option<Credentials>, CredentialsError> {
        self.lookup_with(name, true)
    }

    /// Credentials for `name` on a host that registries.conf redirected another registry's
    /// name to: those held for that host only, never the ones given for a whole side, which
    /// are meant for the registries named. (skopeo does the same, and so does not send
    /// credentials meant for one registry to another host.)
    pub fn lookup_redirected(&self, name: &str) -> Result<Option<Credentials>, CredentialsError> {
        self.lookup_with(name, false)
    }

    fn lookup_with(
        &self,
        name: &str,
        with_side: bool,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let host = name.split('/').next().unwrap_or(name);
        if let Some(creds) = self.per_host.get(host) {
            return Ok(Some(creds.clone()));
        }
        if let Some(creds) = self.side.as_ref().filter(|_| with_side) {
            return Ok(Some(creds.clone()));
        }
        let files = match &self.authfile {
            Some(path) => vec![path.clone()],
            None => default_auth_files(),
        };
        for path in files {
            if let Some(creds) = lookup_in_file(&path, name, &self.helper_answers)? {
                return Ok(Some(creds));
            }
        }
        Ok(None)
    }
}

impl CredentialSources {
    /// The credentials ferry itself holds for each of `hosts` (given per host or per side).
    fn held_for<'a>(
        &'a self,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'a str, &'a Credentials)> {
        hosts
            .into_iter()
            .filter_map(|host| {
                self.per_host
                    .get(host)
                    .or(self.side.as_ref())
                    .map(|c| (host, c))
            })
            .collect()
    }

    /// Whether ferry holds credentials for any of `hosts`, i.e. whether a run hands skopeo
    /// an auth file of its own for them.
    pub fn holds_any<'a>(&'a self, hosts: impl IntoIterator<Item = &'a str>) -> bool {
        !self.held_for(hosts).is_empty()
    }

    /// An auth file for skopeo holding everything this side's lookups would find: the user's
    /// auth files (`auths`, `credHelpers`, `credsStore`; the earlier file wins, as in lookups)
    /// with ferry's credentials for `hosts` on top. `None` when ferry holds no credentials
    /// for any of them, so skopeo keeps reading the user's files itself.
    pub fn skopeo_auth_file<'a>(
        &'a self,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Vec<u8>>, CredentialsError> {
        let ours = self.held_for(hosts);
        if ours.is_empty() {
            return Ok(None);
        }
        let files = match &self.authfile {
            Some(path) => vec![path.clone()],
            None => default_auth_files(),
        };
        let mut auths = serde_json::Map::new();
        let mut helpers = serde_json::Map::new();
        let mut store = None;
        for path in files.iter().rev() {
            let Some(value) = read_json(path)? else {
                continue;
            };
            for (key, entry) in value
                .get("auths")
                .and_then(|a| a.as_object())
                .into_iter()
                .flatten()
            {
                auths.insert(key.clone(), entry.clone());
            }
            for (key, helper) in value
                .get("credHelpers")
                .and_then(|a| a.as_object())
                .into_iter()
                .flatten()
            {
                helpers.insert(key.clone(), helper.clone());
            }
            if let Some(found) = value.get("credsStore") {
                store = Some(found.clone());
            }
        }
        for (host, creds) in ours {
            let pair = format!("{}:{}", creds.username, creds.password.expose());
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            // Any other spelling of this host in the user's files would compete with ours.
            auths.retain(|key, _| normalize_key(key) != host);
            helpers.retain(|key, _| normalize_key(key) != host);
            auths.insert(host.to_owned(), serde_json::json!({ "auth": token }));
        }
        let mut file = serde_json::json!({ "auths": auths });
        if !helpers.is_empty() {
            file["credHelpers"] = serde_json::Value::Object(helpers);
        }
        if let Some(store) = store {
            file["credsStore"] = store;
        }
        Ok(Some(
            serde_json::to_vec_pretty(&file).expect("auth JSON always serializes"),
        ))
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| parse_error(path, &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_error(path: &Path, error: &serde_json::Error) -> CredentialsError {
    CredentialsError::Parse {
        path: path.to_owned(),
        line: error.line(),
        column: error.column(),
    }
}

fn default_auth_files() -> Vec<PathBuf> {
    let env = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    match env("XDG_CONFIG_HOME") {
        Some(config) => files.push(config.join("containers/auth.json")),
        None => files.extend(
            home.as_ref()
                .map(|h| h.join(".config/containers/auth.json")),
        ),
    }
    match env("DOCKER_CONFIG") {
        Some(dir) => files.push(dir.join("config.json")),
        None => files.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
    }
    files
}

fn lookup_in_file(
    path: &Path,
    name: &str,
    helpers: &HelperAnswers,
) -> Result<Option<Credentials>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let file: AuthFile = serde_json::from_str(&text).map_err(|e| parse_error(path, &e))?;
    // Keys are read with Docker Hub's names folded into docker.io, so names are too.
    let folded = docker_hub::fold_name(name);
    let name = folded.as_str();
    let host = name.split('/').next().unwrap_or(name);
    let entries: HashMap<String, &AuthEntry> = file
        .auths
        .iter()
        .map(|(key, entry)| (normalize_key(key), entry))
        .collect();
    // The most specific key wins: `host/ns/repo`, then `host/ns`, then `host`.
    let mut candidate = name;
    loop {
        if let Some(entry) = entries.get(candidate) {
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                return decode_auth(auth)
                    .map(Some)
                    .ok_or_else(|| CredentialsError::Entry {
                        key: candidate.to_owned(),
                        path: path.to_owned(),
                    });
            }
        }
        match candidate.rfind('/') {
            Some(at) => candidate = &candidate[..at],
            None => break,
        }
    }
    let helper = file
        .cred_helpers
        .iter()
        .find(|(key, _)| normalize_key(key) == host)
        .map(|(_, helper)| helper.clone())
        .or(file.creds_store);
    match helper {
        Some(helper) => helpers.get(&helper, host),
        None => Ok(None),
    }
}

/// Auth file keys may be URLs (`https://index.docker.io/v1/`) or Docker Hub aliases.
fn normalize_key(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    docker_hub::fold_name(key)
}

fn decode_auth(auth: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    Credentials::parse_user_pass(&String::from_utf8(bytes).ok()?)
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// How long a credential helper may take (a cloud login, say) before it counts as failed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `docker-credential-HELPER get` with the server on stdin, as docker does; the error is
/// why it failed (never its output, which may hold the secret).
fn run_helper(helper: &str, host: &str) -> Result<Option<Credentials>, String> {
    let server = docker_hub::helper_server(host);
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    // Read on a thread, so the deadline also covers a pipe that something the helper left
    // behind keeps open.
    let (sender, answer) = std::sync::mpsc::channel();
    if let Some(mut pipe) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut stdout = Vec::new();
            let read = pipe.read_to_end(&mut stdout).map(|_| stdout);
            let _ = sender.send(read);
        });
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let timed_out = || format!("no answer in {}s", HELPER_TIMEOUT.as_secs());
    let stdout = answer.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = match stdout {
        Ok(read) => read.map_err(|e| e.to_string())?,
        Err(_) => return Err(timed_out()),
    };
    if !status.success() {
        // Helpers answer "credentials not found in native keychain" when there are none.
        if String::from_utf8_lossy(&stdout).contains("not found") {
            return Ok(None);
        }
        return Err(format!("exit status {status}"));
    }
    let reply: HelperReply = serde_json::from_slice(&stdout).map_err(|e| {
        // Not serde's words: they may quote the reply, secret and all.
        format!(
            "unexpected reply (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok(Some(Credentials {
        username: reply.username,
        password: Secret::new(reply.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn auth_file_keys_match_most_specific_first_and_docker_hub_aliases() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let file = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": { "auth": b64("hub:hubpw") },
                "quay.io": { "auth": b64("quay:quaypw") },
                "quay.io/team": { "auth": b64("team:teampw") },
                "harbor.example:8443": { "auth": b64("harbor:harborpw") }
            }
        });
        let path = dir
            .write_private("auth.json", file.to_string().as_bytes())
            .unwrap();
        let sources = CredentialSources {
            authfile: Some(path),
            ..CredentialSources::default()
        };
        let user = |name: &str| sources.lookup(name).unwrap().map(|c| c.username);
        assert_eq!(user("docker.io/library/nginx").as_deref(), Some("hub"));
        assert_eq!(
            user("registry-1.docker.io/bitnami/redis").as_deref(),
            Some("hub")
        );
        assert_eq!(
            user("quay.io/prometheus/node-exporter").as_deref(),
            Some("quay")
        );
        assert_eq!(user("quay.io/team/app").as_deref(), Some("team"));
        assert_eq!(
            user("harbor.example:8443/third/x").as_deref(),
            Some("harbor")
        );
        assert_eq!(user("ghcr.io/a/b"), None);
    }

    #[test]
    fn skopeo_auth_files_keep_the_users_entries_under_ours() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let file = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": { "auth": b64("hub:hubpw") },
                "quay.io": { "auth": b64("old:oldpw") }
            },
            "credHelpers": { "gcr.io": "gcloud" }
        });
        let path = dir
            .write_private("auth.json", file.to_string().as_bytes())
            .unwrap();
        let mut sources = CredentialSources {
            authfile: Some(path),
            ..CredentialSources::default()
        };
        assert_eq!(
            sources.skopeo_auth_file(["quay.io"]).unwrap(),
            None,
            "nothing of ours: no file"
        );
        sources.per_host.insert(
            "quay.io".into(),
            Credentials::parse_user_pass("new:newpw").unwrap(),
        );
        let written = sources
            .skopeo_auth_file(["quay.io", "docker.io"])
            .unwrap()
            .unwrap();
        let merged = dir.write_private("merged.json", &written).unwrap();
        let reread = CredentialSources {
            authfile: Some(merged),
            ..CredentialSources::default()
        };
        let user = |name: &str| reread.lookup(name).unwrap().map(|c| c.username);
        assert_eq!(user("quay.io/a/b").as_deref(), Some("new"));
        assert_eq!(user("docker.io/library/nginx").as_deref(), Some("hub"));
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(value["credHelpers"]["gcr.io"], "gcloud");
    }

    #[test]
    fn a_malformed_auth_file_is_named_without_quoting_it() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let secret = b64("robot:s3cret-pw");
        // An entry that is a bare string instead of {"auth": …}.
        let text = format!("{{\n  \"auths\": {{\n    \"quay.io\": \"{secret}\"\n  }}\n}}\n");
        let path = dir.write_private("auth.json", text.as_bytes()).unwrap();
        let sources = CredentialSources {
            authfile: Some(path.clone()),
            ..CredentialSources::default()
        };
        let message = sources.lookup("quay.io/a/b").unwrap_err().to_string();
        assert!(!message.contains(&secret), "{message}");
        assert!(
            message.starts_with(&format!("invalid auth file {}:", path.display())),
            "{message}"
        );
        assert!(message.ends_with("at line 3, column 37"), "{message}");
    }

    #[test]
    fn given_credentials_win_over_files() {
        let mut sources = CredentialSources {
            side: Credentials::parse_user_pass("side:pw"),
            authfile: Some("/nonexistent/auth.json".into()),
            ..CredentialSources::default()
        };
        sources.per_host.insert(
            "quay.io".into(),
            Credentials::parse_user_pass("q:pw").unwrap(),
        );
        assert_eq!(
            sources.lookup("quay.io/a/b").unwrap().unwrap().username,
            "q"
        );
        assert_eq!(
            sources.lookup("ghcr.io/a/b").unwrap().unwrap().username,
            "side"
        );
    }
}
