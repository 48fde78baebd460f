//! The containers registries.conf, read the way skopeo reads it, so that ferry's own requests
//! and skopeo's copies always talk to the same endpoint. Only what changes *where* a name is
//! fetched from matters here: `[[registry]]` `prefix`, `location`, `insecure` and `blocked`.
//! Every other key that containers-registries.conf(5) defines (search registries, aliases,
//! mirrors, the version 1 tables) is allowed and ignored: this file belongs to the system, not
//! to ferry. A key it does not define is an error with its line, though: a typo such as
//! `locaton` would otherwise silently send every request to the real registry.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::docker_hub::api_host;

/// The keys containers-registries.conf(5) defines, per table.
const TOP_KEYS: &[&str] = &[
    "unqualified-search-registries",
    "short-name-mode",
    "credential-helpers",
    "additional-layer-store-auth-helper",
    "registry",
    "aliases",
    "registries",
];
const REGISTRY_KEYS: &[&str] = &[
    "prefix",
    "location",
    "insecure",
    "blocked",
    "mirror-by-digest-only",
    "mirror",
];
const MIRROR_KEYS: &[&str] = &["location", "insecure", "pull-from-mirror"];
/// Version 1: `[registries.search]`, `[registries.insecure]`, `[registries.block]`.
const V1_TABLES: &[&str] = &["search", "insecure", "block"];
const V1_KEYS: &[&str] = &["registries"];

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
    /// Every problem found, one `FILE:LINE: reason` per line.
    #[error("{}", problems.iter().map(|p| format!("{}:{}: {}", path.display(), p.line, p.reason)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("{name} is blocked by registries.conf")]
    Blocked { name: String },
}

/// What is wrong with registries.conf, and on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub reason: String,
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
        RegistriesConf::parse(&text).map_err(|problems| ConfError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Reads the text of a registries.conf: a TOML syntax error, every key the format does
    /// not define and every value of the wrong type are problems with their line.
    pub fn parse(text: &str) -> Result<RegistriesConf, Vec<Problem>> {
        let problem = |error: toml::de::Error| Problem {
            line: error.span().map_or(1, |span| line_at(text, span.start)),
            // toml's messages may run over several lines ("invalid string\nexpected ...").
            reason: error
                .message()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
        };
        let keys: Node = toml::from_str(text).map_err(|e| vec![problem(e)])?;
        let mut problems = Vec::new();
        check_keys(text, &keys, "at the top level", TOP_KEYS, &mut problems);
        for (key, value) in keys.entries() {
            match key.get_ref().as_str() {
                "registry" => {
                    for entry in value.items() {
                        check_keys(text, entry, "in [[registry]]", REGISTRY_KEYS, &mut problems);
                        for mirror in entry.get("mirror").map_or(&[][..], Node::items) {
                            let context = "in [[registry.mirror]]";
                            check_keys(text, mirror, context, MIRROR_KEYS, &mut problems);
                        }
                    }
                }
                "registries" => {
                    check_keys(text, value, "in [registries]", V1_TABLES, &mut problems);
                    for (table, keys) in value.entries() {
                        let context = format!("in [registries.{}]", table.get_ref());
                        check_keys(text, keys, &context, V1_KEYS, &mut problems);
                    }
                }
                _ => {}
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(problems);
        }
        let file: File = toml::from_str(text).map_err(|e| vec![problem(e)])?;
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

/// The keys whose values hold tables to check: `registry`, `mirror`, `registries` and its
/// version 1 tables. Only these are descended into; other values are skipped unread, which
/// also keeps TOML datetimes (read as a table with a private key) out of the way.
const NESTED_KEYS: &[&str] = &[
    "registry",
    "mirror",
    "registries",
    "search",
    "insecure",
    "block",
];

/// The keys of a TOML document and where each is written, for checking them against the
/// format before the values are read. Only the tables of [`NESTED_KEYS`] are kept.
#[derive(Debug, Default)]
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Node>),
    #[default]
    Other,
}

impl Node {
    /// A table's keys and values; nothing for anything else (its type is checked later).
    fn entries(&self) -> &[(Spanned<String>, Node)] {
        match self {
            Node::Table(entries) => entries,
            _ => &[],
        }
    }

    /// An array's elements; nothing for anything else.
    fn items(&self) -> &[Node] {
        match self {
            Node::Array(items) => items,
            _ => &[],
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, value)| value)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = if NESTED_KEYS.contains(&key.get_ref().as_str()) {
                        map.next_value::<Node>()?
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                        Node::Other
                    };
                    entries.push((key, value));
                }
                Ok(Node::Table(entries))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Other)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Other)
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

/// One problem per key of `node` (a table) that is not in `known`.
fn check_keys(text: &str, node: &Node, context: &str, known: &[&str], problems: &mut Vec<Problem>) {
    for (key, _) in node.entries() {
        if !known.contains(&key.get_ref().as_str()) {
            problems.push(Problem {
                line: line_at(text, key.span().start),
                reason: format!(
                    "unknown key {:?} {context} (known: {})",
                    key.get_ref(),
                    known.join(", ")
                ),
            });
        }
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
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

    /// Every key containers-registries.conf(5) defines, in versions 1 and 2.
    const EVERY_KEY: &str = r#"
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
credential-helpers = ["containers-auth.json"]
additional-layer-store-auth-helper = "helper"

[[registry]]
prefix = "docker.io"
location = "mirror.internal"
insecure = false
blocked = false
mirror-by-digest-only = false

[[registry.mirror]]
location = "m1.internal"
insecure = true
pull-from-mirror = "digest-only"

[aliases]
"busybox" = "docker.io/library/busybox"

[registries.search]
registries = ["docker.io"]

[registries.insecure]
registries = []

[registries.block]
registries = []
"#;

    fn problems(text: &str) -> Vec<String> {
        RegistriesConf::parse(text)
            .unwrap_err()
            .iter()
            .map(|p| format!("{}: {}", p.line, p.reason))
            .collect()
    }

    #[test]
    fn every_key_of_the_format_is_accepted() {
        let conf = RegistriesConf::parse(EVERY_KEY).unwrap();
        assert_eq!(
            conf.pull_endpoint("docker.io/library/nginx").unwrap(),
            endpoint("mirror.internal", "library/nginx", false)
        );
        assert!(RegistriesConf::parse(CONF).is_ok());
        assert!(RegistriesConf::parse("").is_ok());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let registry_keys = "prefix, location, insecure, blocked, mirror-by-digest-only, mirror";
        let table = [
            (
                "[[registry]]\nprefix = \"docker.io\"\nlocaton = \"127.0.0.1:5000\"\n",
                vec![format!(
                    "3: unknown key \"locaton\" in [[registry]] (known: {registry_keys})"
                )],
            ),
            (
                "unqualified-search-registry = []\n[[registry]]\nprefx = \"a.io\"\nblock = true\n",
                vec![
                    "1: unknown key \"unqualified-search-registry\" at the top level (known: \
                     unqualified-search-registries, short-name-mode, credential-helpers, \
                     additional-layer-store-auth-helper, registry, aliases, registries)"
                        .to_owned(),
                    format!("3: unknown key \"prefx\" in [[registry]] (known: {registry_keys})"),
                    format!("4: unknown key \"block\" in [[registry]] (known: {registry_keys})"),
                ],
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n\n[[registry.mirror]]\nlocation = \"b.io\"\ninsecur = true\n",
                vec!["6: unknown key \"insecur\" in [[registry.mirror]] (known: location, insecure, pull-from-mirror)".to_owned()],
            ),
            (
                "[registries.search]\nregistries = []\n[registries.insecur]\nregistries = []\n[registries.block]\nregistry = []\n",
                vec![
                    "3: unknown key \"insecur\" in [registries] (known: search, insecure, block)".to_owned(),
                    "6: unknown key \"registry\" in [registries.block] (known: registries)".to_owned(),
                ],
            ),
        ];
        for (text, expected) in table {
            assert_eq!(problems(text), expected, "{text}");
        }
    }

    #[test]
    fn syntax_and_type_errors_name_their_line() {
        let syntax = problems("[[registry]]\nprefix = \"a.io\"\nlocation = mirror.internal\n");
        assert_eq!(syntax.len(), 1);
        assert!(
            syntax[0].starts_with("3: ") && !syntax[0].contains('\n'),
            "{syntax:?}"
        );
        let wrong_type = problems("\n[[registry]]\nprefix = \"a.io\"\ninsecure = \"yes\"\n");
        assert_eq!(wrong_type.len(), 1);
        assert!(
            wrong_type[0].starts_with("4: ") && wrong_type[0].contains("bool"),
            "{wrong_type:?}"
        );
        let dates =
            problems("[aliases]\nwhen = 1979-05-27T07:32:00Z\n[[registry]]\nprefx = \"a.io\"\n");
        assert_eq!(dates.len(), 1, "{dates:?}");
        assert!(
            dates[0].starts_with("4: unknown key \"prefx\""),
            "{dates:?}"
        );
    }

    #[test]
    fn load_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("ferry-conf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("registries.conf");
        std::fs::write(&path, "[[registry]]\nlocaton = \"x.io\"\n").unwrap();
        let error = RegistriesConf::load(Some(&path)).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let expected = format!(
            "{}:2: unknown key \"locaton\" in [[registry]]",
            path.display()
        );
        assert!(error.starts_with(&expected), "{error}");
    }
}
