//! skopeo's `sync --src yaml` file: one section per registry, naming repositories with their
//! tags (`images`), a tag regex (`images-by-tag-regex`) or a SemVer range (`images-by-semver`),
//! plus the registry's `credentials`, `tls-verify` and `cert-dir`, and ferry's own
//! `signatures` (whether its images take their signatures and other artifacts along).
//!
//! The file is read into a [`yaml_serde::Value`] and checked by hand rather than through
//! derived structs, because serde stops at the first problem and this reader reports them all.
//! `Value` keeps no positions, so [`Outline`] finds lines by scanning the text for the keys;
//! that is exact for the usual block layout and falls back to the enclosing key otherwise.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use yaml_serde::Value;

use super::namespace::{Namespace, NamespaceEntry};
use super::{registry_host, sort_by_line, without_position};
use super::{Entry, HostSettings, InputError};
use crate::filter::{FilterSpec, TagFilter};
use crate::model::Origin;
use crate::reference::ImageRef;
use crate::secret::{Credentials, Secret};
use crate::words::last_line;

const IMAGES: &str = "images";
const BY_TAG_REGEX: &str = "images-by-tag-regex";
const BY_SEMVER: &str = "images-by-semver";
const CREDENTIALS: &str = "credentials";
const TLS_VERIFY: &str = "tls-verify";
const CERT_DIR: &str = "cert-dir";
/// ferry's own key: whether the registry's images take their signatures, attestations, SBOMs
/// and referrers along (as `--signatures` does for all).
const SIGNATURES: &str = "signatures";
const REGISTRY_KEYS: &str =
    "images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir, signatures";

/// Parses one skopeo sync file. Entries come registry by registry, and within a registry
/// `images`, then `images-by-tag-regex`, then `images-by-semver`, each in file order; errors
/// are ordered by line.
#[cfg(test)]
pub fn parse_skopeo_yaml(
    file: &str,
    text: &str,
) -> (Vec<Entry>, Vec<HostSettings>, Vec<InputError>) {
    let (entries, namespaces, hosts, mut errors) = read_skopeo_yaml(file, text);
    for namespace in namespaces {
        let reason = "a namespace is not taken here";
        errors.push(InputError::line(namespace.origin, reason));
    }
    (entries, hosts, errors)
}

/// As [`parse_skopeo_yaml`], with the namespaces too: a repository key `ns/*` (the
/// repositories directly under `REGISTRY/ns`), `ns/**` (every depth) or `*` (the whole
/// registry), in any of the three lists: `images` with `[]` (every tag) or the tags to take
/// of each repository, `images-by-tag-regex` and `images-by-semver` with their filter.
pub fn read_skopeo_yaml(
    file: &str,
    text: &str,
) -> (
    Vec<Entry>,
    Vec<NamespaceEntry>,
    Vec<HostSettings>,
    Vec<InputError>,
) {
    let mut reader = Reader {
        file,
        outline: Outline::scan(text),
        // Only used to recover scalars as written, so a file it cannot read just goes without.
        verbatim: yaml_serde::from_str(text).unwrap_or_default(),
        entries: Vec::new(),
        namespaces: Vec::new(),
        hosts: Vec::new(),
        errors: Vec::new(),
        signatures: None,
    };
    match yaml_serde::from_str::<Value>(text) {
        Ok(mut document) => match document.apply_merge() {
            Ok(()) => reader.document(&document),
            Err(error) => reader.yaml_error(&error),
        },
        Err(error) => reader.yaml_error(&error),
    }
    let Reader {
        entries,
        namespaces,
        hosts,
        mut errors,
        ..
    } = reader;
    sort_by_line(&mut errors);
    (entries, namespaces, hosts, errors)
}

struct Reader<'a> {
    file: &'a str,
    outline: Outline<'a>,
    verbatim: Verbatim,
    entries: Vec<Entry>,
    namespaces: Vec<NamespaceEntry>,
    hosts: Vec<HostSettings>,
    errors: Vec<InputError>,
    /// The `signatures` key of the registry being read.
    signatures: Option<bool>,
}

impl Reader<'_> {
    fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.file.into(),
            line,
        }
    }

    fn error(&mut self, line: usize, reason: impl Into<String>) {
        let origin = self.origin(line);
        self.errors.push(InputError::line(origin, reason));
    }

    fn yaml_error(&mut self, error: &yaml_serde::Error) {
        let (line, reason) = match error.location() {
            Some(at) => {
                let reason = without_position(&error.to_string(), at.line(), at.column());
                let line = self.outline.duplicate_line(at.line(), &reason);
                (line.unwrap_or(at.line()), reason)
            }
            // Errors without a place concern the whole file (e.g. several documents).
            None => (1, error.to_string()),
        };
        self.error(line, format!("invalid YAML: {reason}"));
    }

    fn document(&mut self, document: &Value) {
        match document {
            // An empty file names no images, like an empty list file.
            Value::Null => {}
            Value::Mapping(registries) => {
                for (key, section) in registries {
                    self.registry(key, section);
                }
            }
            other => {
                let reason = format!(
                    "expected a mapping from registry to its images, found {}",
                    kind(other)
                );
                self.error(1, reason);
            }
        }
    }

    fn registry(&mut self, key: &Value, section: &Value) {
        let Some(name) = key_name(key) else {
            let reason = format!("a registry name must be a string, found {}", kind(key));
            self.error(1, reason);
            return;
        };
        let line = self.outline.line_of(&[&name]);
        let host = match registry_host(&name) {
            Ok(host) => Some(host),
            Err(reason) => {
                self.error(line, format!("invalid registry {name:?}: {reason}"));
                None
            }
        };
        let keys = match section {
            // skopeo skips a registry that lists no images; so does ferry.
            Value::Null => return,
            Value::Mapping(keys) => keys,
            other => {
                let reason = format!(
                    "registry {name} must be a mapping with {REGISTRY_KEYS}, found {}",
                    kind(other)
                );
                self.error(line, reason);
                return;
            }
        };
        let mut settings = Settings::default();
        let mut lists = Vec::new();
        let mut signatures = None;
        for (key, value) in keys {
            let Some(key) = key_name(key) else {
                let reason = format!("keys of registry {name} must be strings");
                self.error(line, reason);
                continue;
            };
            match key.as_str() {
                IMAGES => lists.push((IMAGES, value)),
                BY_TAG_REGEX => lists.push((BY_TAG_REGEX, value)),
                BY_SEMVER => lists.push((BY_SEMVER, value)),
                SIGNATURES => signatures = self.signatures_key(&name, value),
                _ => self.setting(&name, &key, value, &mut settings),
            }
        }
        self.signatures = signatures;
        let Some(host) = host else { return };
        // skopeo's order, whatever the order in the file.
        lists.sort_by_key(|&(list, _)| {
            [IMAGES, BY_TAG_REGEX, BY_SEMVER]
                .iter()
                .position(|&l| l == list)
        });
        for (list, value) in lists {
            self.list(&name, list, value);
        }
        if settings != Settings::default() {
            self.hosts.push(HostSettings {
                origin: self.origin(line),
                host,
                credentials: settings.credentials,
                tls_verify: settings.tls_verify,
                cert_dir: settings.cert_dir,
            });
        }
    }

    /// `signatures: true|false`: whether the registry's images take their artifacts along.
    fn signatures_key(&mut self, registry: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(value) => Some(*value),
            other => {
                let line = self.outline.line_of(&[registry, SIGNATURES]);
                let reason = format!(
                    "signatures of registry {registry} must be true or false, found {}",
                    kind(other)
                );
                self.error(line, reason);
                None
            }
        }
    }

    /// A registry key other than the three image lists: a host setting, or a mistake.
    fn setting(&mut self, registry: &str, key: &str, value: &Value, settings: &mut Settings) {
        let line = self.outline.line_of(&[registry, key]);
        match (key, value) {
            (CREDENTIALS, _) => settings.credentials = self.credentials(registry, value),
            (TLS_VERIFY, Value::Bool(verify)) => settings.tls_verify = Some(*verify),
            (CERT_DIR, Value::String(dir)) if !dir.is_empty() => {
                settings.cert_dir = Some(PathBuf::from(dir));
            }
            (TLS_VERIFY, other) => {
                let reason = format!(
                    "tls-verify of registry {registry} must be true or false, found {}",
                    kind(other)
                );
                self.error(line, reason);
            }
            (CERT_DIR, other) => {
                let reason = format!(
                    "cert-dir of registry {registry} must be a directory path, found {}",
                    kind(other)
                );
                self.error(line, reason);
            }
            (unknown, _) => {
                let reason = format!(
                    "unknown key {unknown:?} in registry {registry} (expected {REGISTRY_KEYS})"
                );
                self.error(line, reason);
            }
        }
    }

    /// One of `images`, `images-by-tag-regex` or `images-by-semver`: a mapping from repository
    /// to its tags, regex or range.
    fn list(&mut self, registry: &str, list: &str, value: &Value) {
        let repos = match value {
            Value::Null => return,
            Value::Mapping(repos) => repos,
            other => {
                let line = self.outline.line_of(&[registry, list]);
                let reason = format!(
                    "{list} of registry {registry} must be a mapping from repository to {}, found {}",
                    if list == IMAGES { "tags" } else { "a string" },
                    kind(other)
                );
                self.error(line, reason);
                return;
            }
        };
        for (key, value) in repos {
            let Some(repo) = key_name(key) else {
                let line = self.outline.line_of(&[registry, list]);
                let reason = format!("repository names in {list} of {registry} must be strings");
                self.error(line, reason);
                continue;
            };
            let line = self.outline.line_of(&[registry, list, &repo]);
            match Namespace::parse(&format!("{registry}/{repo}")) {
                Ok(Some(namespace)) => {
                    self.namespace(registry, list, &repo, namespace, value, line);
                    continue;
                }
                Ok(None) => {}
                Err(reason) => {
                    let reason = format!("invalid namespace \"{registry}/{repo}\": {reason}");
                    self.error(line, reason);
                    continue;
                }
            }
            let Some(repository) = self.repository(registry, &repo, line) else {
                continue;
            };
            match list {
                IMAGES => self.tags(registry, &repo, &repository, value, line),
                _ => self.filtered(registry, list, &repo, repository, value, line),
            }
        }
    }

    /// A namespace key (`ns/*`, `ns/**`, `*`) of one of the three lists: in `images`, every
    /// tag (`[]`) or the tags listed, of each repository; in the others, their filter.
    fn namespace(
        &mut self,
        registry: &str,
        list: &str,
        repo: &str,
        namespace: Namespace,
        value: &Value,
        line: usize,
    ) {
        let filter = if list == IMAGES {
            let items: &[Value] = match value {
                Value::Null => &[],
                Value::Sequence(items) => items,
                other => {
                    let reason = format!(
                        "tags of {registry}/{repo} must be a list (empty for every tag), found {}",
                        kind(other)
                    );
                    self.error(line, reason);
                    return;
                }
            };
            let mut tags = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let verbatim = self.verbatim.tag(registry, repo, index);
                match scalar_text(item, verbatim) {
                    Ok(tag) if ImageRef::parse(&format!("x.example/x:{tag}")).is_ok() => {
                        tags.push(regex::escape(&tag));
                    }
                    Ok(tag) => {
                        let reason = format!(
                            "{tag:?} is no tag: a namespace ({registry}/{repo}) takes tags, \
                             never digests"
                        );
                        self.error(line, reason);
                        return;
                    }
                    Err(found) => {
                        let reason =
                            format!("a tag of {registry}/{repo} must be a string, {found}");
                        self.error(line, reason);
                        return;
                    }
                }
            }
            (!tags.is_empty()).then(|| FilterSpec {
                include: Some(tags.join("|")),
                ..FilterSpec::default()
            })
        } else {
            let before = self.entries.len();
            let placeholder = ImageRef::parse("x.example/x").expect("a valid name");
            self.filtered(registry, list, repo, placeholder, value, line);
            if self.entries.len() == before {
                return;
            }
            self.entries.pop().and_then(|entry| entry.filter)
        };
        let origin = self.origin(line);
        self.namespaces.push(NamespaceEntry {
            origin,
            namespace,
            explicit_target: None,
            filter,
            can_name_target: false,
            signatures: self.signatures,
        });
    }

    /// `R/X`, which must name a repository: the tags come from the list.
    fn repository(&mut self, registry: &str, repo: &str, line: usize) -> Option<ImageRef> {
        let name = format!("{registry}/{repo}");
        match ImageRef::parse(&name) {
            Ok(repository) if repository.is_whole_repository() => Some(repository),
            Ok(_) => {
                let reason = format!("{name:?} must name a repository, without a tag or digest");
                self.error(line, reason);
                None
            }
            Err(error) => {
                self.error(line, format!("invalid image reference {name:?}: {error}"));
                None
            }
        }
    }

    /// An `images` entry: every tag when the list is empty, else one entry per tag or digest.
    fn tags(
        &mut self,
        registry: &str,
        repo: &str,
        repository: &ImageRef,
        value: &Value,
        line: usize,
    ) {
        let items: &[Value] = match value {
            // `busybox:` with nothing after it is an empty list to skopeo too: every tag.
            Value::Null => &[],
            Value::Sequence(items) => items,
            other => {
                let reason = format!(
                    "tags of {registry}/{repo} must be a list (empty for every tag), found {}",
                    kind(other)
                );
                self.error(line, reason);
                return;
            }
        };
        if items.is_empty() {
            self.push(line, repository.clone(), None);
            return;
        }
        let lines = self.outline.item_lines(line, items.len());
        for (index, item) in items.iter().enumerate() {
            let item_line = lines.as_ref().map_or(line, |lines| lines[index]);
            let verbatim = self.verbatim.tag(registry, repo, index);
            let tag = match scalar_text(item, verbatim) {
                Ok(tag) => tag,
                Err(found) => {
                    let reason = format!("a tag of {registry}/{repo} must be a string, {found}");
                    self.error(item_line, reason);
                    continue;
                }
            };
            // Tags cannot contain ':', digests always do (`sha256:…`).
            let (reference, shown) = if tag.contains(':') {
                (
                    repository.with_digest(&tag),
                    format!("{registry}/{repo}@{tag}"),
                )
            } else {
                (
                    repository.with_tag(&tag),
                    format!("{registry}/{repo}:{tag}"),
                )
            };
            match reference {
                Ok(reference) => self.push(item_line, reference, None),
                Err(error) => {
                    let reason = format!("invalid image reference {shown:?}: {error}");
                    self.error(item_line, reason);
                }
            }
        }
    }

    /// An `images-by-tag-regex` or `images-by-semver` entry: the whole repository, filtered.
    fn filtered(
        &mut self,
        registry: &str,
        list: &str,
        repo: &str,
        repository: ImageRef,
        value: &Value,
        line: usize,
    ) {
        let what = if list == BY_TAG_REGEX {
            "tag regex"
        } else {
            "semver range"
        };
        let verbatim = self.verbatim.filter(registry, list, repo);
        let pattern = match scalar_text(value, verbatim) {
            Ok(pattern) => pattern,
            Err(found) => {
                let reason = format!("the {what} of {registry}/{repo} must be a string, {found}");
                self.error(line, reason);
                return;
            }
        };
        let (checked, spec) = if list == BY_TAG_REGEX {
            let checked = FilterSpec {
                include: Some(pattern.clone()),
                ..FilterSpec::default()
            };
            // skopeo finds the regex anywhere in the tag; ferry's include filter must match the
            // whole tag, so `.*` on both sides keeps skopeo's meaning.
            let spec = FilterSpec {
                include: Some(format!(".*(?:{pattern}).*")),
                ..FilterSpec::default()
            };
            (checked, spec)
        } else {
            let spec = FilterSpec {
                semver: Some(pattern.clone()),
                ..FilterSpec::default()
            };
            (spec.clone(), spec)
        };
        // The pattern as written is checked first so that the message shows what the user typed.
        let valid = TagFilter::new(&checked).and_then(|_| TagFilter::new(&spec));
        match valid {
            Ok(_) => self.push(line, repository, Some(spec)),
            Err(error) => {
                let cause = std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), |cause| last_line(&cause.to_string()));
                let reason = format!("invalid {what} {pattern:?} for {registry}/{repo}: {cause}");
                self.error(line, reason);
            }
        }
    }

    fn credentials(&mut self, registry: &str, value: &Value) -> Option<Credentials> {
        let line = self.outline.line_of(&[registry, CREDENTIALS]);
        let fields = match value {
            // No credentials, as skopeo reads an empty section.
            Value::Null => return None,
            Value::Mapping(fields) => fields,
            other => {
                let reason = format!(
                    "credentials of registry {registry} must be a mapping with username and \
                     password, found {}",
                    kind(other)
                );
                self.error(line, reason);
                return None;
            }
        };
        let mut values: [(&str, Option<String>); 2] = [("username", None), ("password", None)];
        let mut valid = true;
        for (key, value) in fields {
            let key = key_name(key).unwrap_or_else(|| format!("{key:?}"));
            let key_line = self.outline.line_of(&[registry, CREDENTIALS, &key]);
            let Some(slot) = values.iter_mut().find(|(field, _)| *field == key) else {
                let reason = format!(
                    "unknown key {key:?} in credentials of registry {registry} \
                     (expected username, password)"
                );
                self.error(key_line, reason);
                continue;
            };
            let problem = match scalar_text(value, self.verbatim.credential(registry, &key)) {
                Ok(text) if text.is_empty() => Some("must not be empty".to_owned()),
                Ok(text) => {
                    slot.1 = Some(text);
                    None
                }
                Err(found) => Some(format!("must be a string, {found}")),
            };
            if let Some(problem) = problem {
                // Present but unusable: reported here, and not again as missing.
                slot.1 = Some(String::new());
                valid = false;
                let reason = format!("credentials of registry {registry}: {key} {problem}");
                self.error(key_line, reason);
            }
        }
        let missing: Vec<&str> = values
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(field, _)| *field)
            .collect();
        if !missing.is_empty() {
            let reason = format!(
                "credentials of registry {registry}: missing {}",
                missing.join(" and ")
            );
            self.error(line, reason);
            return None;
        }
        let [(_, Some(username)), (_, Some(password))] = values else {
            return None;
        };
        valid.then(|| Credentials {
            username,
            password: Secret::new(password),
        })
    }

    fn push(&mut self, line: usize, source: ImageRef, filter: Option<FilterSpec>) {
        let origin = self.origin(line);
        self.entries.push(Entry {
            origin,
            source,
            explicit_target: None,
            filter,
            can_name_target: false,
            signatures: self.signatures,
        });
    }
}

/// The host settings of one registry section, before the host is known to be valid.
#[derive(Default, PartialEq)]
struct Settings {
    credentials: Option<Credentials>,
    tls_verify: Option<bool>,
    cert_dir: Option<PathBuf>,
}

/// The scalars that skopeo reads as strings, exactly as written. YAML resolves an unquoted
/// `1.10` to the float 1.1 in a [`Value`], while skopeo's decoder hands the text `1.10` to a
/// string field; deserializing into `String` does the same here, so `alpine: [3.10]` means tag
/// `3.10`. Whatever this second reading cannot take (a file with errors, merge keys) is left
/// out, and a number without its text is then reported instead of guessed.
#[derive(Default, Deserialize)]
struct Verbatim(HashMap<String, Option<VerbatimRegistry>>);

#[derive(Default, Deserialize)]
struct VerbatimRegistry {
    images: Option<HashMap<String, Option<Vec<String>>>>,
    #[serde(rename = "images-by-tag-regex")]
    by_tag_regex: Option<HashMap<String, String>>,
    #[serde(rename = "images-by-semver")]
    by_semver: Option<HashMap<String, String>>,
    credentials: Option<HashMap<String, String>>,
}

impl Verbatim {
    fn registry(&self, registry: &str) -> Option<&VerbatimRegistry> {
        self.0.get(registry)?.as_ref()
    }

    fn tag(&self, registry: &str, repo: &str, index: usize) -> Option<&str> {
        let images = self.registry(registry)?.images.as_ref()?;
        Some(images.get(repo)?.as_ref()?.get(index)?.as_str())
    }

    fn filter(&self, registry: &str, list: &str, repo: &str) -> Option<&str> {
        let registry = self.registry(registry)?;
        let patterns = if list == BY_TAG_REGEX {
            registry.by_tag_regex.as_ref()
        } else {
            registry.by_semver.as_ref()
        };
        Some(patterns?.get(repo)?.as_str())
    }

    fn credential(&self, registry: &str, key: &str) -> Option<&str> {
        let credentials = self.registry(registry)?.credentials.as_ref()?;
        Some(credentials.get(key)?.as_str())
    }
}

/// A scalar as the text skopeo would see; `Err` says what was found instead.
fn scalar_text(value: &Value, verbatim: Option<&str>) -> Result<String, String> {
    match (value, verbatim) {
        (Value::String(text), _) => Ok(text.clone()),
        (Value::Number(_) | Value::Bool(_), Some(text)) => Ok(text.to_owned()),
        (Value::Number(number), None) => Err(format!(
            "found the number {number}; quote it so it is read exactly as written"
        )),
        (other, _) => Err(format!("found {}", kind(other))),
    }
}

/// A mapping key as text. Numbers and booleans are keys as written to skopeo too.
fn key_name(key: &Value) -> Option<String> {
    match key {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Where the keys of a YAML file are: every line of the form `INDENT KEY:`, in file order.
/// Finding `[registry, list, repo]` walks down the indentation like the parser does.
struct Outline<'a> {
    lines: Vec<&'a str>,
    keys: Vec<KeyLine>,
}

struct KeyLine {
    indent: usize,
    key: String,
    line: usize,
}

impl<'a> Outline<'a> {
    fn scan(text: &'a str) -> Outline<'a> {
        let lines: Vec<&str> = text.lines().collect();
        let keys = lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| {
                let (indent, key) = key_of(line)?;
                Some(KeyLine {
                    indent,
                    key,
                    line: index + 1,
                })
            })
            .collect();
        Outline { lines, keys }
    }

    /// The line of the deepest key of `path` that can be found, so a key in an unusual layout
    /// (a flow mapping on one line) is reported at its nearest findable parent.
    fn line_of(&self, path: &[&str]) -> usize {
        let (mut from, mut to) = (0, self.keys.len());
        let mut line = 1;
        for name in path {
            // The children of a block mapping share the indentation of its first child.
            let Some(indent) = self.keys.get(from).filter(|_| from < to).map(|k| k.indent) else {
                break;
            };
            let Some(at) =
                (from..to).find(|&i| self.keys[i].indent == indent && self.keys[i].key == *name)
            else {
                break;
            };
            line = self.keys[at].line;
            from = at + 1;
            to = (from..to)
                .find(|&i| self.keys[i].indent <= indent)
                .unwrap_or(to);
        }
        line
    }

    /// yaml_serde places a duplicate key at the start of its mapping; this finds the second
    /// occurrence among that mapping's keys, which is the line to fix.
    fn duplicate_line(&self, mapping_line: usize, message: &str) -> Option<usize> {
        let (_, quoted) = message.split_once("duplicate entry with key ")?;
        let name: String = yaml_serde::from_str(quoted).ok()?;
        let first = self.keys.iter().position(|k| k.line == mapping_line)?;
        let indent = self.keys[first].indent;
        self.keys[first..]
            .iter()
            .take_while(|k| k.indent >= indent)
            .filter(|k| k.indent == indent && k.key == name)
            .nth(1)
            .map(|k| k.line)
    }

    /// The lines of a block list's `- item`s right below the key on `key_line`, if there are
    /// exactly `count` of them; `None` for a flow list (`[a, b]`) or anything unusual.
    fn item_lines(&self, key_line: usize, count: usize) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        for (index, line) in self.lines.iter().enumerate().skip(key_line) {
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if content == "-" || content.starts_with("- ") {
                found.push(index + 1);
            } else {
                break;
            }
        }
        (found.len() == count).then_some(found)
    }
}

/// `(indent, key)` of a line that starts a mapping entry: `  key:`, `  key: value`,
/// `  "quoted key": value`. Comments, list items and document markers are not keys.
fn key_of(line: &str) -> Option<(usize, String)> {
    let content = line.trim_start_matches(' ');
    let indent = line.len() - content.len();
    if content.is_empty() || content.starts_with(['#', '-', '[', '{']) {
        return None;
    }
    let (key, rest) = match content.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &content[1..];
            let end = inner.find(quote)?;
            (inner[..end].to_owned(), &inner[end + 1..])
        }
        _ => {
            // A plain key ends at the first ':' followed by a space or the end of the line, so
            // `localhost:5000:` is the key `localhost:5000`.
            let colon = content.match_indices(':').map(|(at, _)| at).find(|&at| {
                content[at + 1..].is_empty() || content[at + 1..].starts_with([' ', '\t'])
            })?;
            (content[..colon].trim_end().to_owned(), &content[colon..])
        }
    };
    let after = rest.trim_start().strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some((indent, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Each entry as `line source filter`, the filter as `include=…` or `semver=…`.
    fn shown(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|entry| {
                assert_eq!(&*entry.origin.file, "sync.yaml");
                assert_eq!(entry.explicit_target, None);
                let filter = match &entry.filter {
                    None => String::new(),
                    Some(spec) => {
                        let mut shown = String::new();
                        if let Some(include) = &spec.include {
                            shown += &format!(" include={include}");
                        }
                        if let Some(range) = &spec.semver {
                            shown += &format!(" semver={range}");
                        }
                        shown
                    }
                };
                format!("{} {}{filter}", entry.origin.line, entry.source)
            })
            .collect()
    }

    fn messages(errors: &[InputError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn namespaces_are_keys_ending_in_stars() {
        let text = r#"registry.k8s.io:
  images:
    "*": []
    "sig-storage/**": ["v1.0", "v2.0"]
  images-by-semver:
    "kube/*": ">= 1.29"
  images-by-tag-regex:
    "x/**": "^v1"
quay.io:
  images:
    "ns/*": ["sha256:0123"]
    "a*b": []
"#;
        let (entries, namespaces, _, errors) = read_skopeo_yaml("sync.yaml", text);
        assert!(entries.is_empty(), "{entries:?}");
        let shown: Vec<String> = namespaces
            .iter()
            .map(|n| {
                let filter = n.filter.as_ref().map(|f| format!("{:?}", f.as_flags()));
                format!(
                    "{} {} {}",
                    n.origin.line,
                    n.namespace,
                    filter.unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "3 registry.k8s.io/* ",
                r#"4 registry.k8s.io/sig-storage/** ["--tags", "v1\\.0|v2\\.0"]"#,
                r#"8 registry.k8s.io/x/** ["--tags", ".*(?:^v1).*"]"#,
                r#"6 registry.k8s.io/kube/* ["--semver", ">= 1.29"]"#,
            ]
        );
        assert_eq!(
            messages(&errors),
            [
                "sync.yaml:11: \"sha256:0123\" is no tag: a namespace (quay.io/ns/*) takes tags, never digests",
                "sync.yaml:12: invalid namespace \"quay.io/a*b\": '*' only ends a namespace line: REGISTRY[/PATH]/* for the repositories directly under it, /** for every depth",
            ]
        );
        let (_, _, errors) = parse_skopeo_yaml("sync.yaml", "quay.io:\n  images:\n    \"*\": []\n");
        assert_eq!(
            messages(&errors),
            ["sync.yaml:3: a namespace is not taken here"]
        );
    }

    #[test]
    fn a_realistic_file_gives_entries_in_order_and_host_settings() {
        let text = format!(
            r#"# mirrored nightly
registry.example.com:
  images:
    busybox: []                 # every tag
    redis: ["1.0", "2.0"]
    app: ["{DIGEST}"]
  images-by-tag-regex:
    nginx: ^1\.13\.[12]-alpine-perl$
  images-by-semver:
    alpine: ">= 3.12.0"
  credentials:
    username: john
    password: this is a secret
  tls-verify: false
  cert-dir: /home/john/certs
quay.io:
  images-by-semver:
    coreos/flannel: ^0.24
  images:
    coreos/etcd:
      - latest
      - 3.5.10
'index.docker.io':
  images:
    library/nginx: [1.25, 1.10]
    bitnami/redis:
  tls-verify: true
"localhost:5000":
  images: {{team/app: [v1]}}
"#
        );
        let (entries, hosts, errors) = parse_skopeo_yaml("sync.yaml", &text);
        assert!(errors.is_empty(), "{:#?}", messages(&errors));
        assert_eq!(
            shown(&entries),
            [
                "4 registry.example.com/busybox".to_owned(),
                "5 registry.example.com/redis:1.0".to_owned(),
                "5 registry.example.com/redis:2.0".to_owned(),
                format!("6 registry.example.com/app@{DIGEST}"),
                r"8 registry.example.com/nginx include=.*(?:^1\.13\.[12]-alpine-perl$).*"
                    .to_owned(),
                "10 registry.example.com/alpine semver=>= 3.12.0".to_owned(),
                // `images` comes before `images-by-semver` whatever the order in the file.
                "21 quay.io/coreos/etcd:latest".to_owned(),
                // An unquoted 3.5.10 is a string anyway; an unquoted 1.10 is read as written.
                "22 quay.io/coreos/etcd:3.5.10".to_owned(),
                "18 quay.io/coreos/flannel semver=^0.24".to_owned(),
                "25 docker.io/library/nginx:1.25".to_owned(),
                "25 docker.io/library/nginx:1.10".to_owned(),
                "26 docker.io/bitnami/redis".to_owned(),
                // A flow mapping on one line: its keys are on the registry's line.
                "29 localhost:5000/team/app:v1".to_owned(),
            ]
        );
        let registry = &hosts[0];
        assert_eq!(registry.origin.to_string(), "sync.yaml:2");
        assert_eq!(registry.host, "registry.example.com");
        let credentials = registry.credentials.as_ref().unwrap();
        assert_eq!(credentials.username, "john");
        assert_eq!(credentials.password.expose(), "this is a secret");
        assert_eq!(registry.tls_verify, Some(false));
        assert_eq!(registry.cert_dir, Some(PathBuf::from("/home/john/certs")));
        let hub = HostSettings {
            origin: Origin {
                file: "sync.yaml".into(),
                line: 23,
            },
            host: "docker.io".to_owned(),
            credentials: None,
            tls_verify: Some(true),
            cert_dir: None,
        };
        // quay.io and localhost:5000 set nothing, so they have no settings.
        assert_eq!(hosts[1..], [hub]);
    }

    #[test]
    fn a_registry_may_say_whether_its_images_signatures_go_along() {
        let text = "quay.io:\n  signatures: true\n  images:\n    a/b: [\"1\"]\n  \
                    images-by-tag-regex:\n    a/c: x\nghcr.io:\n  images:\n    d/e: [\"2\"]\n\
                    gcr.io:\n  signatures: sure\n  images:\n    f/g: [\"3\"]\n";
        let (entries, hosts, errors) = parse_skopeo_yaml("s.yaml", text);
        let said: Vec<(String, Option<bool>)> = entries
            .iter()
            .map(|e| (e.source.to_string(), e.signatures))
            .collect();
        assert_eq!(
            said,
            [
                ("quay.io/a/b:1".to_owned(), Some(true)),
                ("quay.io/a/c".to_owned(), Some(true)),
                ("ghcr.io/d/e:2".to_owned(), None),
                ("gcr.io/f/g:3".to_owned(), None),
            ]
        );
        // Not a setting of how the registry is reached.
        assert!(hosts.is_empty(), "{hosts:?}");
        assert_eq!(
            messages(&errors),
            ["s.yaml:11: signatures of registry gcr.io must be true or false, found a string"]
        );
    }

    #[test]
    fn regex_matches_anywhere_like_skopeo() {
        let (entries, _, errors) = parse_skopeo_yaml(
            "s.yaml",
            "quay.io:\n  images-by-tag-regex:\n    a/b: alpine\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let filter = TagFilter::new(entries[0].filter.as_ref().unwrap()).unwrap();
        let tags: Vec<String> = ["3.19-alpine", "alpine", "bookworm"]
            .map(String::from)
            .to_vec();
        assert_eq!(filter.select(&tags).kept, ["3.19-alpine", "alpine"]);
    }

    #[test]
    fn empty_files_and_registries_name_nothing() {
        for text in ["", "# nothing yet\n", "quay.io:\n", "quay.io:\n  images:\n"] {
            let (entries, hosts, errors) = parse_skopeo_yaml("s.yaml", text);
            assert!(
                entries.is_empty() && hosts.is_empty() && errors.is_empty(),
                "{text:?}"
            );
        }
    }

    /// File → every message, in line order.
    #[rustfmt::skip]
    const BAD: &[(&str, &[&str])] = &[
        (
            "quay.io:\n  images:\n    a: [x]\n  image:\n    b: []\n  tls-verify: \"no\"\n  cert-dir: [x]\n",
            &[
                "s.yaml:4: unknown key \"image\" in registry quay.io (expected images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir, signatures)",
                "s.yaml:6: tls-verify of registry quay.io must be true or false, found a string",
                "s.yaml:7: cert-dir of registry quay.io must be a directory path, found a list",
            ],
        ),
        (
            "quay.io:\n  images:\n    Bad/Name: []\n    ok: [\"bad tag!\", \"md5:abc\", {a: 1}]\n    ok2:\n      - v1\n      - [v2]\n    ok3: latest\n",
            &[
                "s.yaml:3: invalid image reference \"quay.io/Bad/Name\": repository name must be lowercase",
                "s.yaml:4: invalid image reference \"quay.io/ok:bad tag!\": invalid tag \"bad tag!\"",
                "s.yaml:4: invalid image reference \"quay.io/ok@md5:abc\": unsupported digest algorithm \"md5\"",
                "s.yaml:4: a tag of quay.io/ok must be a string, found a mapping",
                "s.yaml:7: a tag of quay.io/ok2 must be a string, found a list",
                "s.yaml:8: tags of quay.io/ok3 must be a list (empty for every tag), found a string",
            ],
        ),
        (
            "quay.io:\n  images-by-tag-regex:\n    a: ^1\\.(2\n    b: [x]\n  images-by-semver:\n    c: \"> 1.2 < 2\"\n    d: nope\n  images: [a]\n",
            &[
                "s.yaml:3: invalid tag regex \"^1\\\\.(2\" for quay.io/a: unclosed group",
                "s.yaml:4: the tag regex of quay.io/b must be a string, found a list",
                "s.yaml:6: invalid semver range \"> 1.2 < 2\" for quay.io/c: expected comma after minor version number, found '<'",
                "s.yaml:7: invalid semver range \"nope\" for quay.io/d: unexpected character 'n' while parsing major version number",
                "s.yaml:8: images of registry quay.io must be a mapping from repository to tags, found a list",
            ],
        ),
        (
            "myregistry:\n  images:\n    a: []\nquay.io:\n  credentials:\n    username: me\n    token: t\nghcr.io:\n  credentials:\n    username: \"\"\n    password: [p]\nexample.com: [a]\n",
            &[
                "s.yaml:1: invalid registry \"myregistry\": \"myregistry\" is not a registry host (a host has a '.' or a ':port', or is localhost)",
                "s.yaml:5: credentials of registry quay.io: missing password",
                "s.yaml:7: unknown key \"token\" in credentials of registry quay.io (expected username, password)",
                "s.yaml:10: credentials of registry ghcr.io: username must not be empty",
                "s.yaml:11: credentials of registry ghcr.io: password must be a string, found a list",
                "s.yaml:12: registry example.com must be a mapping with images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir, signatures, found a list",
            ],
        ),
        (
            "quay.io:\n  images:\n    a: [x\n  tls-verify: true\n",
            &["s.yaml:4: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 3 column 8"],
        ),
        (
            // yaml_serde says line 3 (where the mapping starts); the second `a` is the line to fix.
            "quay.io:\n  images:\n    a: []\n    b: []\n    a: [x]\n",
            &["s.yaml:5: invalid YAML: quay.io.images: duplicate entry with key \"a\""],
        ),
        ("- quay.io/a\n", &["s.yaml:1: expected a mapping from registry to its images, found a list"]),
    ];

    #[test]
    fn every_problem_is_reported_with_its_line() {
        for (text, expected) in BAD {
            let (_, _, errors) = parse_skopeo_yaml("s.yaml", text);
            assert_eq!(messages(&errors), *expected, "file:\n{text}");
        }
    }

    #[test]
    fn good_parts_of_a_bad_file_still_come_through() {
        let text = "quay.io:\n  images:\n    a: [\"bad tag!\", v1]\n  tls-verify: false\n";
        let (entries, hosts, errors) = parse_skopeo_yaml("s.yaml", text);
        assert_eq!(errors.len(), 1);
        assert_eq!(shown_sources(&entries), ["quay.io/a:v1"]);
        assert_eq!(hosts[0].tls_verify, Some(false));
    }

    fn shown_sources(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.source.to_string()).collect()
    }

    #[test]
    fn numbers_without_their_text_are_not_guessed() {
        // A merge key defeats the verbatim reading; the float 3.10 must not become tag 3.1.
        let text = "quay.io:\n  images: &common\n    a: [\"3.9\"]\nghcr.io:\n  images:\n    <<: *common\n    b: [3.10]\n";
        let (entries, _, errors) = parse_skopeo_yaml("s.yaml", text);
        assert_eq!(
            messages(&errors),
            ["s.yaml:7: a tag of ghcr.io/b must be a string, found the number 3.1; quote it so it is read exactly as written"]
        );
        assert_eq!(shown_sources(&entries), ["quay.io/a:3.9", "ghcr.io/a:3.9"]);
    }

    #[test]
    fn outline_finds_keys_by_path() {
        let text =
            "a:\n  x: 1\nb:\n  # c: comment\n  images:\n    x: []\n    \"q:r\": []\n  x: 2\n";
        let outline = Outline::scan(text);
        assert_eq!(outline.line_of(&["a", "x"]), 2);
        assert_eq!(outline.line_of(&["b", "x"]), 8);
        assert_eq!(outline.line_of(&["b", "images", "x"]), 6);
        assert_eq!(outline.line_of(&["b", "images", "q:r"]), 7);
        // Not found: the deepest parent that was.
        assert_eq!(outline.line_of(&["b", "images", "y"]), 5);
        assert_eq!(outline.line_of(&["zzz"]), 1);
    }
}
