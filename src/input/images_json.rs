//! ImagePorter's two files: `images.json`, an array of `{"source": …, "target": …}` pairs, each
//! an image with its explicit target (and ferry's own optional `"signatures": true|false`: whether
//! its signatures and other artifacts go along), and `accounts.json`, an array of
//! `{"username": …, "password": …, "registry": …}` logins.
//!
//! Both are read into [`serde_json::Value`] and checked by hand, so that every bad element is
//! reported, not only the first. `Value` keeps no positions, so [`outline`] scans the text for
//! where each element and each of its keys starts.

use serde_json::{Map, Value};

use super::{registry_host, sort_by_line, without_position};
use super::{Entry, HostSettings, InputError};
use crate::model::Origin;
use crate::reference::ImageRef;
use crate::secret::{Credentials, Secret};

const IMAGE_KEYS: &[&str] = &["source", "target"];
/// Keys an element of `images.json` may have beyond [`IMAGE_KEYS`]: ferry's own.
const IMAGE_OPTIONAL_KEYS: &[&str] = &["signatures"];
const ACCOUNT_KEYS: &[&str] = &["username", "password", "registry"];

/// Parses one `images.json`: one entry per element, with its target as the explicit target.
pub fn parse_images_json(file: &str, text: &str) -> (Vec<Entry>, Vec<InputError>) {
    let mut entries = Vec::new();
    let errors = read_array(file, text, IMAGE_KEYS, IMAGE_OPTIONAL_KEYS, |object| {
        let source = object.reference("source", "image");
        let target = object.target("target");
        let signatures = object.optional_bool("signatures");
        if let (Some(source), Some(target), Ok(signatures)) = (source, target, signatures) {
            entries.push(Entry {
                origin: object.origin_of("source"),
                source,
                explicit_target: Some(target),
                filter: None,
                can_name_target: true,
                signatures,
            });
        }
    });
    (entries, errors)
}

/// Parses one `accounts.json`: credentials per registry host.
pub fn parse_accounts_json(file: &str, text: &str) -> (Vec<HostSettings>, Vec<InputError>) {
    let mut hosts = Vec::new();
    let errors = read_array(file, text, ACCOUNT_KEYS, &[], |object| {
        let username = object.non_empty("username");
        let password = object.non_empty("password");
        let host = object.host("registry");
        if let (Some(username), Some(password), Some(host)) = (username, password, host) {
            hosts.push(HostSettings {
                origin: object.origin_of("registry"),
                host,
                credentials: Some(Credentials {
                    username,
                    password: Secret::new(password),
                }),
                tls_verify: None,
                cert_dir: None,
            });
        }
    });
    (hosts, errors)
}

/// Parses `text` as an array of objects with exactly `keys`, checks what is common to both
/// files (syntax, shape, unknown, duplicate and missing keys) and hands each object to `read`.
/// Returns every error, ordered by line.
fn read_array(
    file: &str,
    text: &str,
    keys: &[&'static str],
    optional: &[&'static str],
    mut read: impl FnMut(&mut Object<'_>),
) -> Vec<InputError> {
    let origin = |line| Origin {
        file: file.into(),
        line,
    };
    let mut errors = Vec::new();
    let shape = keys
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let elements = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(elements)) => elements,
        Ok(other) => {
            let reason = format!(
                "expected an array of {{{shape}}} objects, found {}",
                kind(&other)
            );
            return vec![InputError::line(origin(first_token_line(text)), reason)];
        }
        Err(error) => {
            let reason = without_position(&error.to_string(), error.line(), error.column());
            // serde_json counts lines from 1, but says 0 for errors not tied to a place.
            let line = error.line().max(1);
            return vec![InputError::line(
                origin(line),
                format!("invalid JSON: {reason}"),
            )];
        }
    };
    let outline = outline(text);
    for (index, element) in elements.iter().enumerate() {
        // The outline finds one start per element of valid JSON; the fallback is defensive.
        let lines = outline.get(index).cloned().unwrap_or(ElementLines {
            line: 1,
            keys: Vec::new(),
        });
        let Value::Object(fields) = element else {
            let reason = format!("expected an object with {shape}, found {}", kind(element));
            errors.push(InputError::line(origin(lines.line), reason));
            continue;
        };
        let mut object = Object {
            file,
            fields,
            lines: &lines,
            errors: &mut errors,
        };
        let allowed: Vec<&str> = keys.iter().chain(optional).copied().collect();
        object.check_keys(&allowed);
        read(&mut object);
    }
    sort_by_line(&mut errors);
    errors
}

/// One element, with the lines of its keys, collecting errors as its fields are read.
struct Object<'a> {
    file: &'a str,
    fields: &'a Map<String, Value>,
    lines: &'a ElementLines,
    errors: &'a mut Vec<InputError>,
}

impl Object<'_> {
    /// Where `key` is written, or where the element starts when it is missing.
    fn origin_of(&self, key: &str) -> Origin {
        let line = self
            .lines
            .keys
            .iter()
            .find(|(name, _)| name == key)
            .map_or(self.lines.line, |&(_, line)| line);
        Origin {
            file: self.file.into(),
            line,
        }
    }

    fn error(&mut self, origin: Origin, reason: String) {
        self.errors.push(InputError::line(origin, reason));
    }

    fn check_keys(&mut self, allowed: &[&str]) {
        let expected = allowed.join(", ");
        let mut seen: Vec<&str> = Vec::new();
        for (name, line) in &self.lines.keys {
            let origin = Origin {
                file: self.file.into(),
                line: *line,
            };
            if !allowed.contains(&name.as_str()) {
                self.error(
                    origin,
                    format!("unknown key {name:?} (expected {expected})"),
                );
            } else if seen.contains(&name.as_str()) {
                // serde_json keeps the last silently; which one was meant is anyone's guess.
                self.error(origin, format!("duplicate key {name:?}"));
            } else {
                seen.push(name);
            }
        }
        // Defensive: a key the outline failed to place is still reported, at the element.
        for name in self.fields.keys() {
            let seen_in_text = self.lines.keys.iter().any(|(key, _)| key == name);
            if !seen_in_text && !allowed.contains(&name.as_str()) {
                let origin = self.origin_of(name);
                self.error(
                    origin,
                    format!("unknown key {name:?} (expected {expected})"),
                );
            }
        }
    }

    /// The string under `key`; a missing key or another type is reported.
    fn string(&mut self, key: &str) -> Option<&str> {
        let fields = self.fields;
        match fields.get(key) {
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                let reason = format!("{key:?} must be a string, found {}", kind(other));
                self.error(self.origin_of(key), reason);
                None
            }
            None => {
                self.error(self.origin_of(key), format!("missing key {key:?}"));
                None
            }
        }
    }

    /// The boolean under `key`, `None` when there is none; another type is reported (`Err`).
    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, ()> {
        let fields = self.fields;
        match fields.get(key) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(other) => {
                let reason = format!("{key:?} must be true or false, found {}", kind(other));
                self.error(self.origin_of(key), reason);
                Err(())
            }
        }
    }

    fn non_empty(&mut self, key: &str) -> Option<String> {
        let text = self.string(key)?.to_owned();
        if text.is_empty() {
            self.error(self.origin_of(key), format!("{key:?} must not be empty"));
            return None;
        }
        Some(text)
    }

    /// `what` names the reference in messages, as the list reader does ("image", "target").
    fn reference(&mut self, key: &str, what: &str) -> Option<ImageRef> {
        let text = self.string(key)?.to_owned();
        match ImageRef::parse(&text) {
            Ok(reference) => Some(reference),
            Err(error) => {
                let reason = format!("invalid {what} reference {text:?}: {error}");
                self.error(self.origin_of(key), reason);
                None
            }
        }
    }

    fn target(&mut self, key: &str) -> Option<super::TargetSpec> {
        let text = self.string(key)?.to_owned();
        match super::TargetSpec::parse(&text) {
            Ok(target) => Some(target),
            Err(error) => {
                let reason = format!("invalid target reference {text:?}: {error}");
                self.error(self.origin_of(key), reason);
                None
            }
        }
    }

    fn host(&mut self, key: &str) -> Option<String> {
        let name = self.string(key)?.to_owned();
        let host = if name.contains('/') && !name.contains("://") {
            // A login is for a whole registry (ImagePorter runs `crane auth login HOST`).
            Err("a registry is a host (e.g. harbor.example), without a path".to_owned())
        } else {
            registry_host(&name)
        };
        match host {
            Ok(host) => Some(host),
            Err(reason) => {
                let reason = format!("invalid registry {name:?}: {reason}");
                self.error(self.origin_of(key), reason);
                None
            }
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where one element of the top-level array starts, and its keys (as written) with their lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ElementLines {
    line: usize,
    keys: Vec<(String, usize)>,
}

/// Finds the elements of a top-level JSON array and their keys by tracking strings and
/// nesting. Meant for text that serde_json accepted: it does not validate anything.
fn outline(text: &str) -> Vec<ElementLines> {
    let mut elements: Vec<ElementLines> = Vec::new();
    let mut depth = 0usize;
    let mut line = 1;
    // Inside the top-level array: whether the current element has started (reset by ',').
    let mut element_started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if depth == 1 && c == ',' {
            element_started = false;
            continue;
        }
        if depth == 1 && !element_started && c != ']' {
            element_started = true;
            elements.push(ElementLines {
                line,
                keys: Vec::new(),
            });
        }
        match c {
            '"' => {
                let start = line;
                let mut string = String::new();
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    string.push(c);
                }
                while let Some(&next) = chars.peek().filter(|c| c.is_whitespace()) {
                    if next == '\n' {
                        line += 1;
                    }
                    chars.next();
                }
                // A string followed by ':' directly inside an element is one of its keys.
                if depth == 2 && chars.peek() == Some(&':') {
                    if let Some(element) = elements.last_mut() {
                        // Compared with serde_json's decoded keys, so escapes are decoded too.
                        let key = serde_json::from_str(&format!("\"{string}\"")).unwrap_or(string);
                        element.keys.push((key, start));
                    }
                }
            }
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    elements
}

/// The line of the first thing in the file, where a wrong top-level value starts.
fn first_token_line(text: &str) -> usize {
    let leading = text.len() - text.trim_start().len();
    1 + text[..leading].matches('\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: &[InputError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn images_json_gives_one_entry_per_element_with_its_target() {
        let text = r#"[
    {
        "source": "hello-world:latest",
        "target": "registry.cn-hangzhou.aliyuncs.com/blazesnow/hello-world:latest"
    },
    {"source": "quay.io/coreos/etcd:v3.5.10", "target": "harbor.example/base/etcd:v3.5.10"},
    {
        "target": "harbor.example/base/busybox",
        "source": "index.docker.io/library/busybox"
    }
]
"#;
        let (entries, errors) = parse_images_json("images.json", text);
        assert!(errors.is_empty(), "{:#?}", messages(&errors));
        let shown: Vec<String> = entries
            .iter()
            .map(|entry| {
                assert_eq!(entry.filter, None);
                let target = entry.explicit_target.as_ref().unwrap();
                format!("{} {} -> {target}", entry.origin, entry.source)
            })
            .collect();
        assert_eq!(
            shown,
            [
                "images.json:3 docker.io/library/hello-world:latest -> \
                 registry.cn-hangzhou.aliyuncs.com/blazesnow/hello-world:latest",
                "images.json:6 quay.io/coreos/etcd:v3.5.10 -> harbor.example/base/etcd:v3.5.10",
                "images.json:9 docker.io/library/busybox -> harbor.example/base/busybox",
            ]
        );
    }

    #[test]
    fn an_element_may_say_whether_its_signatures_go_along() {
        let text = r#"[
    {"source": "nginx:1.25", "target": "h.example/n:1.25", "signatures": true},
    {"source": "nginx:1.26", "target": "h.example/n:1.26", "signatures": false},
    {"source": "nginx:1.27", "target": "h.example/n:1.27"},
    {"source": "nginx:1.28", "target": "h.example/n:1.28", "signatures": "yes"}
]"#;
        let (entries, errors) = parse_images_json("i.json", text);
        let said: Vec<Option<bool>> = entries.iter().map(|e| e.signatures).collect();
        assert_eq!(said, [Some(true), Some(false), None]);
        assert_eq!(
            messages(&errors),
            ["i.json:5: \"signatures\" must be true or false, found a string"]
        );
    }

    #[test]
    fn an_empty_array_names_nothing() {
        let (entries, errors) = parse_images_json("images.json", " [ ]\n");
        assert!(entries.is_empty() && errors.is_empty());
    }

    /// File → every message, in line order.
    #[rustfmt::skip]
    const BAD_IMAGES: &[(&str, &[&str])] = &[
        (
            "[\n  {\"source\": \"nginx:1.25\", \"tag\": \"x\",\n   \"target\": \"h.example/n:1\"},\n  {\"source\": \"Nginx\"},\n  \"redis:7\",\n  {\"source\": 7, \"target\": \"h.example/r:bad tag!\"},\n  {\"source\": \"a\", \"source\": \"b\", \"target\": \"h.example/a\"}\n]\n",
            &[
                "i.json:2: unknown key \"tag\" (expected source, target, signatures)",
                "i.json:4: invalid image reference \"Nginx\": repository name must be lowercase",
                "i.json:4: missing key \"target\"",
                "i.json:5: expected an object with \"source\", \"target\", found a string",
                "i.json:6: \"source\" must be a string, found a number",
                "i.json:6: invalid target reference \"h.example/r:bad tag!\": reference must not contain whitespace",
                "i.json:7: duplicate key \"source\"",
            ],
        ),
        ("[\n  {\"source\": \"a\",}\n]\n", &["i.json:2: invalid JSON: trailing comma"]),
        ("\n\n{\"source\": \"a\"}\n", &["i.json:3: expected an array of {\"source\", \"target\"} objects, found an object"]),
        ("", &["i.json:1: invalid JSON: EOF while parsing a value"]),
    ];

    #[test]
    fn every_bad_image_element_is_reported_with_its_line() {
        for (text, expected) in BAD_IMAGES {
            let (_, errors) = parse_images_json("i.json", text);
            assert_eq!(messages(&errors), *expected, "file:\n{text}");
        }
    }

    #[test]
    fn accounts_json_gives_credentials_per_normalized_host() {
        let text = r#"[
    {
        "username": "blazesnow",
        "password": "PASSWORD",
        "registry": "registry.cn-hangzhou.aliyuncs.com"
    },
    {"username": "robot$ci", "password": "p:w", "registry": "index.docker.io"}
]"#;
        let (hosts, errors) = parse_accounts_json("accounts.json", text);
        assert!(errors.is_empty(), "{:#?}", messages(&errors));
        let shown: Vec<String> = hosts
            .iter()
            .map(|host| {
                assert_eq!((host.tls_verify, &host.cert_dir), (None, &None));
                let credentials = host.credentials.as_ref().unwrap();
                let password = credentials.password.expose();
                format!(
                    "{} {} {}/{password}",
                    host.origin, host.host, credentials.username
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "accounts.json:5 registry.cn-hangzhou.aliyuncs.com blazesnow/PASSWORD",
                "accounts.json:7 docker.io robot$ci/p:w",
            ]
        );
    }

    #[rustfmt::skip]
    const BAD_ACCOUNTS: &[(&str, &[&str])] = &[
        (
            "[\n  {\"username\": \"u\", \"password\": \"p\", \"registry\": \"https://h.example\"},\n  {\"username\": \"\", \"password\": \"p\",\n   \"registry\": \"h.example/team\", \"email\": \"e\"},\n  {\"password\": 1, \"registry\": \"myregistry\"}\n]",
            &[
                "a.json:2: invalid registry \"https://h.example\": a registry is a host name (e.g. harbor.example), not a URL",
                "a.json:3: \"username\" must not be empty",
                "a.json:4: unknown key \"email\" (expected username, password, registry)",
                "a.json:4: invalid registry \"h.example/team\": a registry is a host (e.g. harbor.example), without a path",
                "a.json:5: missing key \"username\"",
                "a.json:5: \"password\" must be a string, found a number",
                "a.json:5: invalid registry \"myregistry\": \"myregistry\" is not a registry host (a host has a '.' or a ':port', or is localhost)",
            ],
        ),
    ];

    #[test]
    fn every_bad_account_is_reported_with_its_line() {
        for (text, expected) in BAD_ACCOUNTS {
            let (_, errors) = parse_accounts_json("a.json", text);
            assert_eq!(messages(&errors), *expected, "file:\n{text}");
        }
    }

    #[test]
    fn outline_tracks_strings_and_nesting() {
        let text =
            "[\n {\"a\": \"x,]}\\\"\", \"\\u0062\": {\"c\": 1}},\n [\"d\"],\n\n 3, {\n\"e\"\n : null}\n]";
        let lines: Vec<ElementLines> = outline(text);
        let keys = |element: &ElementLines| element.keys.clone();
        assert_eq!(
            lines.iter().map(|e| e.line).collect::<Vec<_>>(),
            [2, 3, 5, 5]
        );
        assert_eq!(keys(&lines[0]), [("a".to_owned(), 2), ("b".to_owned(), 2)]);
        assert!(lines[1].keys.is_empty() && lines[2].keys.is_empty());
        assert_eq!(keys(&lines[3]), [("e".to_owned(), 6)]);
    }
}
