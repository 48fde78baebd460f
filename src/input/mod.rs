//! Readers for the image lists ferry takes as input. Every reader turns its file into
//! [`Entry`] values that remember where they came from, and reports *all* problems it finds
//! as `FILE:LINE: reason` rather than stopping at the first, so one run shows every typo.
//!
//! Three formats are read: ferry's own seed list, skopeo's `sync --src yaml` file and
//! ImagePorter's `images.json` / `accounts.json`. The last two also carry per-registry settings
//! (credentials, TLS), returned as [`HostSettings`] beside the entries.

pub mod bundle;
mod images_json;
mod list;
pub mod namespace;
mod skopeo_yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::filter::FilterSpec;
use crate::model::Origin;
use crate::reference::ImageRef;
use crate::secret::Credentials;

pub use images_json::{parse_accounts_json, parse_images_json};
#[cfg(test)]
pub use list::parse_list;
pub use list::read_list;
pub use namespace::NamespaceEntry;
#[cfg(test)]
pub use skopeo_yaml::parse_skopeo_yaml;
pub use skopeo_yaml::read_skopeo_yaml;

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    File(PathBuf),
    Stdin,
    /// A list published over HTTP(S), fetched at the start of the run.
    Url(String),
    /// The OCI layouts `--dest-dir` wrote, as a directory or a bundle tar (`--from-dir`).
    Bundle(PathBuf),
}

impl InputSource {
    /// `-` means standard input, anything else a file path.
    pub fn from_arg(arg: &str) -> InputSource {
        if arg == "-" {
            InputSource::Stdin
        } else if arg.starts_with("https://") || arg.starts_with("http://") {
            InputSource::Url(arg.to_owned())
        } else {
            InputSource::File(PathBuf::from(arg))
        }
    }
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSource::File(path) | InputSource::Bundle(path) => write!(f, "{}", path.display()),
            InputSource::Stdin => f.write_str("<stdin>"),
            InputSource::Url(url) => f.write_str(url),
        }
    }
}

/// One requested image: a normalized source and, when the input named one, an explicit target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub origin: Origin,
    pub source: ImageRef,
    pub explicit_target: Option<TargetSpec>,
    /// Tag filters of this entry (whole repositories only), on top of the command line's.
    pub filter: Option<FilterSpec>,
    /// Whether the entry's format can name an explicit target (a list's second column,
    /// images.json's `target`; skopeo's YAML cannot), so errors suggest only what can be written.
    pub can_name_target: bool,
    /// Whether the entry's artifacts travel with it (`signatures:` in a skopeo YAML registry
    /// section or an images.json element); `None` leaves it to `--signatures`.
    pub signatures: Option<bool>,
}

/// A target as an input wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A whole reference: its first component is a registry host.
    Full(ImageRef),
    /// A repository path (`mynginx:7.2.4`, `team/app`) without a registry host: it goes under
    /// the destination prefix, never to Docker Hub by default. Kept as written, validated.
    UnderDest(String),
}

impl TargetSpec {
    /// Parses a target column or field.
    pub fn parse(text: &str) -> Result<TargetSpec, crate::reference::ReferenceError> {
        let reference = ImageRef::parse(text)?;
        Ok(if crate::reference::names_registry(text) {
            TargetSpec::Full(reference)
        } else {
            TargetSpec::UnderDest(text.to_owned())
        })
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Full(reference) => write!(f, "{reference}"),
            TargetSpec::UnderDest(path) => f.write_str(path),
        }
    }
}

/// Settings an input file gives for one registry host (a skopeo YAML registry section, an
/// `accounts.json` element). Only what the file set is `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    pub origin: Origin,
    /// Normalized like [`ImageRef::domain`], so `index.docker.io` is `docker.io`.
    pub host: String,
    pub credentials: Option<Credentials>,
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
}

/// Which reader an input file needs, told by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    List,
    SkopeoYaml,
    ImagesJson,
}

impl InputFormat {
    /// `.yaml`/`.yml` is a skopeo sync file, `.json` an ImagePorter `images.json`, anything
    /// else (including `-` for stdin) a seed list.
    pub fn for_path(path: &str) -> InputFormat {
        let extension = Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("yaml" | "yml") => InputFormat::SkopeoYaml,
            Some("json") => InputFormat::ImagesJson,
            _ => InputFormat::List,
        }
    }

    /// Reads `text` (the contents of `file`) in this format, where namespace lines are not
    /// taken.
    #[cfg(test)]
    pub fn parse(self, file: &str, text: &str) -> (Vec<Entry>, Vec<HostSettings>, Vec<InputError>) {
        let (entries, namespaces, hosts, mut errors) = self.read(file, text);
        for namespace in namespaces {
            let reason = "a namespace line is not taken here";
            errors.push(InputError::line(namespace.origin, reason));
        }
        (entries, hosts, errors)
    }

    /// Reads `text` (the contents of `file`) in this format, namespace lines included (a list
    /// and skopeo's YAML can hold them; images.json cannot).
    pub fn read(
        self,
        file: &str,
        text: &str,
    ) -> (
        Vec<Entry>,
        Vec<NamespaceEntry>,
        Vec<HostSettings>,
        Vec<InputError>,
    ) {
        match self {
            InputFormat::List => {
                let (entries, namespaces, errors) = read_list(file, text);
                (entries, namespaces, Vec::new(), errors)
            }
            InputFormat::SkopeoYaml => read_skopeo_yaml(file, text),
            InputFormat::ImagesJson => {
                let (entries, errors) = parse_images_json(file, text);
                (entries, Vec::new(), Vec::new(), errors)
            }
        }
    }
}

/// The registry host that a skopeo YAML registry key or an `accounts.json` registry names,
/// normalized as image references are (`index.docker.io` → `docker.io`, while
/// `registry-1.docker.io` stays itself, as the domain of the images written with it does). A
/// trailing path (`quay.io/coreos`) is allowed here; callers that want a bare host check for
/// `/` themselves.
pub(crate) fn registry_host(name: &str) -> Result<String, String> {
    if name.contains("://") {
        return Err("a registry is a host name (e.g. harbor.example), not a URL".to_owned());
    }
    let first = name.split('/').next().unwrap_or(name);
    // Two path components, so Docker Hub's `library/` is never added: the host was read as a
    // host exactly when the path comes back unchanged.
    let probe = ImageRef::parse(&format!("{first}/x/y")).map_err(|e| e.to_string())?;
    // Uppercase letters alone make a reference's first component a host, but a registry's
    // name without a '.', a port or `localhost` is much more likely a mistake.
    let host_by_form = first.contains(['.', ':']) || first == "localhost";
    if probe.path() != "x/y" || !host_by_form {
        // `myregistry/busybox` means docker.io/myregistry/busybox to every image tool, which
        // is never what a key meant to be a registry wants.
        return Err(format!(
            "{first:?} is not a registry host (a host has a '.' or a ':port', or is localhost)"
        ));
    }
    Ok(probe.domain().to_owned())
}

/// Drops the ` at line L column C` that serde's messages carry, since `FILE:LINE:` says it.
pub(crate) fn without_position(message: &str, line: usize, column: usize) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

/// Orders a file's errors by line, so they read top to bottom whatever order the checks ran in.
pub(crate) fn sort_by_line(errors: &mut [InputError]) {
    errors.sort_by_key(|error| match error {
        InputError::Line { origin, .. } => origin.line,
        InputError::Read { .. } => 0,
    });
}

/// A problem with the input, always tied to the file (and line, where there is one).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {reason}")]
    Line { origin: Origin, reason: String },
}

impl InputError {
    pub fn line(origin: Origin, reason: impl Into<String>) -> InputError {
        InputError::Line {
            origin,
            reason: reason.into(),
        }
    }

    /// The problem said as a warning on its own line: `FILE:LINE: warning: REASON`. (A log
    /// line, which has its own `WARN`, takes the plain [`Display`](std::fmt::Display).)
    pub fn as_warning(&self) -> String {
        match self {
            InputError::Line { origin, reason } => format!("{origin}: warning: {reason}"),
            other => format!("warning: {other}"),
        }
    }
}

/// Reads every input in order. Returns all entries, or every error found across all inputs.
/// Everything the inputs asked for.
#[derive(Debug, Default)]
pub struct Inputs {
    pub entries: Vec<Entry>,
    /// Namespace lines (`registry.k8s.io/*`), expanded when planned.
    pub namespaces: Vec<NamespaceEntry>,
    /// Per-registry settings the inputs gave (skopeo YAML sections).
    pub hosts: Vec<HostSettings>,
    /// What is worth saying about the inputs, though it stops nothing.
    pub notes: Vec<String>,
}

/// How long a list URL may take to answer.
const URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads every input in order, each in `format` or else the format its name says. Returns
/// everything that could be read, and every error found across all inputs, so that one report
/// can hold every problem.
pub async fn read_all(
    inputs: &[InputSource],
    format: Option<InputFormat>,
) -> (Inputs, Vec<InputError>) {
    let mut read = Inputs::default();
    let mut errors = Vec::new();
    for input in inputs {
        let name = input.to_string();
        if let InputSource::Bundle(path) = input {
            match bundle::Bundle::open_shared(path) {
                Ok(opened) => {
                    read.entries.extend(opened.entries());
                    read.notes.extend(opened.named_by_path());
                }
                Err(mut bad) => errors.append(&mut bad),
            }
            continue;
        }
        let bytes = match input {
            InputSource::File(path) => std::fs::read(path),
            InputSource::Stdin => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
            }
            InputSource::Url(url) => fetch(url).await,
            InputSource::Bundle(_) => unreachable!("read above"),
        };
        let text = match bytes {
            Ok(bytes) => decode_text(&name, bytes),
            Err(source) => Err(InputError::Read {
                file: name.clone(),
                source,
            }),
        };
        let text = match text {
            Ok(text) => text,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let path = match input {
            InputSource::Url(url) => url.split(['?', '#']).next().unwrap_or(url),
            _ => &name,
        };
        let (mut entries, mut namespaces, mut hosts, mut bad) = format
            .unwrap_or_else(|| InputFormat::for_path(path))
            .read(&name, &text);
        read.entries.append(&mut entries);
        read.namespaces.append(&mut namespaces);
        read.hosts.append(&mut hosts);
        errors.append(&mut bad);
    }
    (read, errors)
}

/// An input file's bytes as text. A UTF-8 byte order mark, which some editors write first, is
/// dropped (else it would be part of line 1's first word). Text that is not UTF-8 is refused
/// with the first line that is not, so the user knows where to look.
pub fn decode_text(file: &str, mut bytes: Vec<u8>) -> Result<String, InputError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let origin = Origin {
            file: file.into(),
            line,
        };
        InputError::line(origin, "not valid UTF-8")
    })
}

async fn fetch(url: &str) -> std::io::Result<Vec<u8>> {
    let failed = |message: String| std::io::Error::other(message);
    let client = reqwest::Client::builder()
        .timeout(URL_TIMEOUT)
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_told_by_extension() {
        let cases = [
            ("sync.yaml", InputFormat::SkopeoYaml),
            ("conf/Sync.YML", InputFormat::SkopeoYaml),
            ("images.json", InputFormat::ImagesJson),
            ("source-images.list", InputFormat::List),
            ("images", InputFormat::List),
            ("-", InputFormat::List),
            ("dir.yaml/list", InputFormat::List),
        ];
        for (path, format) in cases {
            assert_eq!(InputFormat::for_path(path), format, "{path}");
        }
    }

    #[test]
    fn parse_dispatches_to_the_reader() {
        let cases = [
            (InputFormat::List, "nginx:1.25\n"),
            (
                InputFormat::SkopeoYaml,
                "docker.io:\n  images:\n    nginx: [\"1.25\"]\n",
            ),
            (
                InputFormat::ImagesJson,
                r#"[{"source": "nginx:1.25", "target": "h.example/nginx:1.25"}]"#,
            ),
        ];
        for (format, text) in cases {
            let (entries, hosts, errors) = format.parse("f", text);
            assert!(
                hosts.is_empty() && errors.is_empty(),
                "{format:?}: {errors:?}"
            );
            assert_eq!(entries.len(), 1, "{format:?}");
            assert_eq!(
                entries[0].source.to_string(),
                "docker.io/library/nginx:1.25"
            );
        }
    }

    #[test]
    fn text_loses_its_byte_order_mark_and_must_be_utf8() {
        let table: [(&[u8], Result<&str, &str>); 6] = [
            (b"nginx:1.25\n", Ok("nginx:1.25\n")),
            (b"\xEF\xBB\xBFnginx:1.25\n", Ok("nginx:1.25\n")),
            (b"\xEF\xBB\xBF", Ok("")),
            // Only a leading mark is one; elsewhere it is text, left for the reader to refuse.
            (b"a\n\xEF\xBB\xBFb", Ok("a\n\u{feff}b")),
            (b"\xFFnginx\n", Err("f:1: not valid UTF-8")),
            (b"nginx\n# caf\xE9\n\xFF\n", Err("f:2: not valid UTF-8")),
        ];
        for (bytes, expected) in table {
            let got = decode_text("f", bytes.to_vec()).map_err(|e| e.to_string());
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, expected, "{bytes:?}");
        }
    }

    #[test]
    fn registry_hosts_are_normalized_and_checked() {
        let cases = [
            ("quay.io", Ok("quay.io")),
            ("index.docker.io", Ok("docker.io")),
            // A name of its own, like the images written with it; its API host is Docker
            // Hub's, like docker.io's.
            ("registry-1.docker.io", Ok("registry-1.docker.io")),
            ("Library", Err("\"Library\" is not a registry host (a host has a '.' or a ':port', or is localhost)")),
            ("localhost", Ok("localhost")),
            ("localhost:5000", Ok("localhost:5000")),
            ("quay.io/coreos", Ok("quay.io")),
            ("library", Err("\"library\" is not a registry host (a host has a '.' or a ':port', or is localhost)")),
            ("https://quay.io", Err("a registry is a host name (e.g. harbor.example), not a URL")),
            ("exa_mple.com", Err("invalid registry host \"exa_mple.com\": host may only contain letters, digits, '-' and '.'")),
        ];
        for (name, expected) in cases {
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(registry_host(name), expected, "{name}");
        }
    }
}
