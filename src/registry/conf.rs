//! The containers registries.conf, read the way skopeo reads it, so that ferry's own requests
//! and skopeo's copies always talk to the same endpoint. Only what changes *where* a name is
//! fetched from matters here: `[[registry]]` `prefix`, `location`, `insecure` and `blocked`.
//! Other keys (search registries, aliases, mirrors) are allowed and ignored: this file
//! belongs to the system, not to ferry.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Docker Hub's API lives on another host than its name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, Default)]
pub struct RegistriesConf {
    registries: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct RegistryEntry {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    registry: Vec<RegistryEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read registries.conf {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid registries.conf {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{name} is blocked by registries.conf")]
    Blocked { name: String },
}

/// Where requests for one repository go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    /// The repository path on that host.
    pub repository: String,
    /// Plain HTTP and unverified TLS are allowed (registries.conf `insecure = true`).
    pub insecure: bool,
}

impl RegistriesConf {
    /// Reads `path`, or the system file when none is given and it exists.
    pub fn load(path: Option<&Path>) -> Result<RegistriesConf, ConfError> {
        let system = Path::new("/etc/containers/registries.conf");
        let path = match path {
            Some(path) => path,
            None if system.exists() => system,
            None => return Ok(RegistriesConf::default()),
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
            path: path.to_owned(),
            source,
        })?;
        RegistriesConf::parse(&text).map_err(|source| ConfError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<RegistriesConf, toml::de::Error> {
        let file: File = toml::from_str(text)?;
        let registries = file
            .registry
            .into_iter()
            .map(|mut entry| {
                if entry.prefix.is_empty() {
                    entry.prefix = entry.location.clone();
                }
                entry
            })
            .filter(|entry| !entry.prefix.is_empty())
            .collect();
        Ok(RegistriesConf { registries })
    }

    /// The endpoint a pull of `name` (`domain/path`) goes to: the longest matching prefix's
    /// `location` replaces that prefix.
    pub fn pull_endpoint(&self, name: &str) -> Result<Endpoint, ConfError> {
        match self.best_match(name) {
            Some(entry) if entry.blocked => Err(ConfError::Blocked {
                name: name.to_owned(),
            }),
            Some(entry) => {
                let rewritten = if entry.location.is_empty() || entry.prefix.starts_with("*.") {
                    name.to_owned()
                } else {
                    format!("{}{}", entry.location, &name[entry.prefix.len()..])
                };
                Ok(split(&rewritten, entry.insecure))
            }
            None => Ok(split(name, false)),
        }
    }

    /// The endpoint a push to `name` goes to: registries.conf never redirects pushes, but its
    /// `insecure` still applies.
    pub fn push_endpoint(&self, name: &str) -> Result<Endpoint, ConfError> {
        let insecure = self.best_match(name).is_some_and(|entry| entry.insecure);
        Ok(split(name, insecure))
    }

    /// The host that requests for registry `host` (as names write it: `docker.io`, `quay.io`)
    /// go to: where registries.conf sends the registry as a whole, else its API host. Limits
    /// the user keys by a registry's name apply there.
    pub fn host_for(&self, host: &str) -> String {
        self.pull_endpoint(&format!("{host}/_"))
            .map(|endpoint| endpoint.host)
            .unwrap_or_else(|_| api_host(host).to_owned())
    }

    fn best_match(&self, name: &str) -> Option<&RegistryEntry> {
        self.registries
            .iter()
            .filter(|entry| prefix_matches(&entry.prefix, name))
            .max_by_key(|entry| entry.prefix.len())
    }
}

/// `prefix` matches the name itself or any name below it; `*.example.com` matches hosts in
/// that domain.
fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or(name);
        return host.ends_with(&format!(".{domain}"));
    }
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The host serving a registry's API: Docker Hub's is not its name.
pub fn api_host(domain: &str) -> &str {
    if domain == "docker.io" {
        DOCKER_HUB_API
    } else {
        domain
    }
}

fn split(name: &str, insecure: bool) -> Endpoint {
    let (host, repository) = name.split_once('/').unwrap_or((name, ""));
    Endpoint {
        host: api_host(host).to_owned(),
        repository: repository.to_owned(),
        insecure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "quay.io"
location = "mirror.internal/quay"

[[registry]]
prefix = "quay.io/private"
blocked = true

[[registry]]
location = "harbor.internal"
insecure = true

[[registry.mirror]]
location = "ignored.example"

[aliases]
"busybox" = "docker.io/library/busybox"
"#;

    fn endpoint(host: &str, repository: &str, insecure: bool) -> Endpoint {
        Endpoint {
            host: host.into(),
            repository: repository.into(),
            insecure,
        }
    }

    #[test]
    fn pulls_follow_the_longest_matching_prefix() {
        let conf = RegistriesConf::parse(CONF).unwrap();
        let table = [
            (
                "docker.io/library/nginx",
                endpoint("127.0.0.1:5000", "library/nginx", true),
            ),
            (
                "quay.io/prometheus/node-exporter",
                endpoint("mirror.internal", "quay/prometheus/node-exporter", false),
            ),
            ("quay.ionot/x", endpoint("quay.ionot", "x", false)),
            ("ghcr.io/a/b", endpoint("ghcr.io", "a/b", false)),
            (
                "harbor.internal/x/y",
                endpoint("harbor.internal", "x/y", true),
            ),
        ];
        for (name, expected) in table {
            assert_eq!(conf.pull_endpoint(name).unwrap(), expected, "{name}");
        }
        assert!(matches!(
            conf.pull_endpoint("quay.io/private/x"),
            Err(ConfError::Blocked { .. })
        ));
    }

    #[test]
    fn docker_hub_without_redirect_uses_its_api_host() {
        let conf = RegistriesConf::default();
        assert_eq!(
            conf.pull_endpoint("docker.io/library/nginx").unwrap(),
            endpoint("registry-1.docker.io", "library/nginx", false)
        );
    }

    #[test]
    fn pushes_are_not_redirected_but_keep_insecure() {
        let conf = RegistriesConf::parse(CONF).unwrap();
        assert_eq!(
            conf.push_endpoint("harbor.internal/third/docker.io/library/nginx")
                .unwrap(),
            endpoint("harbor.internal", "third/docker.io/library/nginx", true)
        );
        assert_eq!(
            conf.push_endpoint("docker.io/me/app").unwrap(),
            endpoint("registry-1.docker.io", "me/app", true)
        );
    }

    #[test]
    fn wildcard_prefixes_match_subdomains() {
        let conf =
            RegistriesConf::parse("[[registry]]\nprefix = \"*.corp.example\"\ninsecure = true\n")
                .unwrap();
        assert!(conf.pull_endpoint("r.corp.example/a").unwrap().insecure);
        assert!(!conf.pull_endpoint("corp.example/a").unwrap().insecure);
    }
}
