//! Container image references: parsing, validation and normalization.
//!
//! Image lists are written by people (`nginx:1.25`, `quay.io/org/app@sha256:…`), but skopeo
//! and registries only accept names that follow the docker/distribution reference grammar,
//! and the same image can be spelled several ways (`nginx`, `index.docker.io/library/nginx`).
//! [`ImageRef::parse`] reads a reference exactly as distribution's `ParseNormalizedNamed`
//! does (docker's rules; skopeo's copy of them differs in refusing uppercase hosts), rejects
//! what it would reject with a reason a person can act on, and normalizes Docker Hub
//! spellings to one canonical form (`docker.io/library/nginx`) so that equal images compare
//! equal (Docker Hub's names are [`crate::docker_hub`]'s). [`RepoPrefix`] is the destination side: a registry host plus optional path under
//! which source images are mirrored, as `skopeo --scoped` does.
//!
//! The parser is written by hand rather than with regular expressions so that every failure
//! can name the piece that is wrong and why.

use std::fmt;
use std::str::FromStr;

use crate::docker_hub::{self, OFFICIAL_NAMESPACE};

/// Registries reject longer `domain/path` names.
const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;

/// Why a reference or destination prefix was rejected. Messages are fragments that name the
/// offending piece; callers add the whole input and where it came from (file and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference must not be empty")]
    Empty,
    #[error("reference must not contain whitespace")]
    ContainsWhitespace { input: String },
    #[error(
        "a 64-character hex string is an image ID, not a repository name \
         (to pin an image, write NAME@sha256:…)"
    )]
    ImageId { input: String },
    #[error("missing repository name before ':' or '@'")]
    MissingName { input: String },
    #[error("missing repository path after registry host {domain:?}")]
    MissingPath { domain: String },
    #[error("invalid registry host {domain:?}: {reason}")]
    InvalidDomain {
        domain: String,
        reason: &'static str,
    },
    #[error("repository path {path:?} has an empty component")]
    EmptyPathComponent { path: String },
    #[error("repository name must be lowercase")]
    UppercaseName { path: String },
    /// A lone `Registry.Example.com:5000` is a Docker Hub repository with a tag, so the
    /// person most likely meant a registry and forgot the repository.
    #[error(
        "repository name must be lowercase (with no '/', {name:?} is a Docker Hub repository, \
         not a registry host)"
    )]
    UppercaseLoneName { name: String },
    #[error("invalid repository path component {component:?}: {reason}")]
    InvalidPathComponent {
        component: String,
        reason: &'static str,
    },
    #[error("repository name must not be longer than 255 characters")]
    NameTooLong { name: String },
    #[error("tag after ':' must not be empty")]
    EmptyTag,
    #[error("invalid tag {tag:?}")]
    InvalidTag { tag: String },
    #[error("digest after '@' must not be empty")]
    EmptyDigest,
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        digest: String,
        reason: &'static str,
    },
    #[error("unsupported digest algorithm {algorithm:?}")]
    UnsupportedDigestAlgorithm { algorithm: String },
    #[error("{algorithm} digest must have {expected} hex characters")]
    DigestLength {
        algorithm: String,
        expected: usize,
        digest: String,
    },
    #[error(
        "remove \"{scheme}\": a reference has no scheme{}",
        write_instead(rest)
    )]
    SchemeInReference { scheme: String, rest: String },
    #[error(
        "remove \"{scheme}\": a destination is HOST[/PATH]{}",
        if scheme == "http://" { "; for plain HTTP use --dest-tls-verify=false" } else { "" }
    )]
    SchemeInPrefix { scheme: String },
    #[error("destination prefix must not have a tag or digest")]
    PrefixHasTagOrDigest { prefix: String },
    #[error("destination prefix must start with a registry host (e.g. harbor.example/mirror)")]
    PrefixWithoutRegistry { prefix: String },
    /// Callers add what the user can do instead, which depends on the input's format.
    #[error(
        "scoped name would contain {domain:?}, which is not a valid repository path component \
         (skopeo --scoped cannot create it either)"
    )]
    ScopedDomainNotPathComponent { domain: String },
}

/// A validated, normalized image reference: `domain/path[:tag][@digest]`.
///
/// Held as its text and where its parts end: one allocation, a few words inline (a run holds
/// one per image on each side, and a list can name a hundred thousand).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `domain/path[:tag][@digest]`, as shown.
    text: Box<str>,
    /// Where the domain ends (the `/` before the path).
    domain_end: u16,
    /// Where the path ends (the `:` before the tag, the `@` before the digest, or the end).
    path_end: u16,
    /// Where the tag ends (`path_end` when there is none).
    tag_end: u16,
}

/// Ordered by domain, path, tag and digest, in that order.
impl Ord for ImageRef {
    fn cmp(&self, other: &ImageRef) -> std::cmp::Ordering {
        fn parts(r: &ImageRef) -> (&str, &str, Option<&str>, Option<&str>) {
            (
                r.domain_part(),
                r.path_part(),
                r.tag_part(),
                r.digest_part(),
            )
        }
        parts(self).cmp(&parts(other))
    }
}

impl PartialOrd for ImageRef {
    fn partial_cmp(&self, other: &ImageRef) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ImageRef {
    /// The reference of parts already validated (names no longer than
    /// [`MAX_NAME_LENGTH`], tags and digests their grammar's length).
    fn from_parts(domain: &str, path: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        let mut text = String::with_capacity(
            domain.len()
                + 1
                + path.len()
                + tag.map_or(0, |t| t.len() + 1)
                + digest.map_or(0, |d| d.len() + 1),
        );
        text.push_str(domain);
        let domain_end = text.len();
        text.push('/');
        text.push_str(path);
        let path_end = text.len();
        if let Some(tag) = tag {
            text.push(':');
            text.push_str(tag);
        }
        let tag_end = text.len();
        if let Some(digest) = digest {
            text.push('@');
            text.push_str(digest);
        }
        let at = |end: usize| u16::try_from(end).expect("a reference is far shorter than 64 KiB");
        ImageRef {
            domain_end: at(domain_end),
            path_end: at(path_end),
            tag_end: at(tag_end),
            text: text.into_boxed_str(),
        }
    }

    fn domain_part(&self) -> &str {
        &self.text[..usize::from(self.domain_end)]
    }

    fn path_part(&self) -> &str {
        &self.text[usize::from(self.domain_end) + 1..usize::from(self.path_end)]
    }

    fn tag_part(&self) -> Option<&str> {
        (self.tag_end > self.path_end)
            .then(|| &self.text[usize::from(self.path_end) + 1..usize::from(self.tag_end)])
    }

    fn digest_part(&self) -> Option<&str> {
        (self.text.len() > usize::from(self.tag_end))
            .then(|| &self.text[usize::from(self.tag_end) + 1..])
    }

    /// Parses, validates and normalizes a reference such as `nginx:1.25`.
    ///
    /// # Errors
    /// When `input` breaks the reference grammar; the error names the offending piece.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        reject_empty_or_whitespace(input)?;
        if let Some((scheme, rest)) = split_scheme(input) {
            return Err(ReferenceError::SchemeInReference {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            });
        }
        // distribution refuses these so that a name can never be mistaken for an image ID.
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ReferenceError::ImageId {
                input: input.to_owned(),
            });
        }
        let (domain, remainder) = split_domain(input);
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
            None => (remainder, None),
        };
        let (path, tag) = split_tag(name_and_tag);
        let domain = match domain {
            Some(written) if path.is_empty() => {
                return Err(ReferenceError::MissingPath {
                    domain: written.to_owned(),
                });
            }
            Some(written) => checked_domain(written)?,
            None if path.is_empty() => {
                return Err(ReferenceError::MissingName {
                    input: input.to_owned(),
                });
            }
            None => {
                if !input.contains('/') {
                    lone_name_check(name_and_tag, path)?;
                }
                docker_hub::DOMAIN
            }
        };
        validate_path(path)?;
        let tag = tag.map(validate_tag).transpose()?;
        let digest = digest.map(validate_digest).transpose()?;

        let path = if domain == docker_hub::DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_owned()
        };
        check_name_length(domain, &path)?;
        Ok(ImageRef::from_parts(domain, &path, tag, digest))
    }

    #[must_use]
    pub fn domain(&self) -> &str {
        self.domain_part()
    }

    #[must_use]
    pub fn path(&self) -> &str {
        self.path_part()
    }

    /// `domain/path`, without tag or digest.
    #[must_use]
    pub fn repository(&self) -> String {
        self.text[..usize::from(self.path_end)].to_owned()
    }

    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.tag_part()
    }

    #[must_use]
    pub fn digest(&self) -> Option<&str> {
        self.digest_part()
    }

    /// True when the reference names a repository rather than one image in it.
    #[must_use]
    pub fn is_whole_repository(&self) -> bool {
        usize::from(self.path_end) == self.text.len()
    }

    /// The same repository at `tag`; the digest is dropped because it pinned the old tag.
    ///
    /// # Errors
    /// When `tag` is not a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        let tag = validate_tag(tag)?;
        Ok(ImageRef::from_parts(
            self.domain(),
            self.path(),
            Some(tag),
            None,
        ))
    }

    /// The same repository pinned to `digest`; the tag is kept for readability.
    ///
    /// # Errors
    /// When `digest` is malformed or uses an algorithm other than sha256, sha384 or sha512.
    pub fn with_digest(&self, digest: &str) -> Result<ImageRef, ReferenceError> {
        let digest = validate_digest(digest)?;
        Ok(ImageRef::from_parts(
            self.domain(),
            self.path(),
            self.tag(),
            Some(digest),
        ))
    }

    #[must_use]
    pub fn without_digest(&self) -> ImageRef {
        ImageRef::from_parts(self.domain(), self.path(), self.tag(), None)
    }

    #[must_use]
    pub fn without_tag(&self) -> ImageRef {
        ImageRef::from_parts(self.domain(), self.path(), None, self.digest())
    }
}

/// Whether `input` (a reference as written) starts with a registry host, by distribution's
/// rule: a first component before a `/` with a `.`, a `:` or an uppercase letter, or
/// `localhost`. `mynginx:1` and `team/app` name none, and `ImageRef::parse` would put them on
/// Docker Hub.
#[must_use]
pub fn names_registry(input: &str) -> bool {
    split_domain(input).0.is_some()
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(input)
    }
}

/// A destination prefix such as `harbor.example/third` or `localhost:5000` (registry host +
/// optional path, no tag/digest).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPrefix {
    domain: String,
    path: String,
}

impl RepoPrefix {
    /// Parses a prefix; one trailing `/` is tolerated and dropped.
    ///
    /// # Errors
    /// When `input` has no registry host, has a tag or digest, or breaks the name grammar.
    pub fn parse(input: &str) -> Result<RepoPrefix, ReferenceError> {
        reject_empty_or_whitespace(input)?;
        if let Some((scheme, _)) = split_scheme(input) {
            return Err(ReferenceError::SchemeInPrefix {
                scheme: scheme.to_owned(),
            });
        }
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        let (domain, path) = match trimmed.split_once('/') {
            Some((domain, path)) => (domain, Some(path)),
            None => (trimmed, None),
        };
        if input.contains('@') || path.is_some_and(|path| path.contains(':')) {
            return Err(ReferenceError::PrefixHasTagOrDigest {
                prefix: input.to_owned(),
            });
        }
        // Unlike an image, a prefix has no Docker Hub default: `third` is almost surely a
        // forgotten host, and mirroring into docker.io by accident would be costly. For the
        // same reason uppercase letters alone (`Third`) do not make a host here.
        if !has_host_marks(domain) {
            return Err(ReferenceError::PrefixWithoutRegistry {
                prefix: input.to_owned(),
            });
        }
        validate_domain(domain)?;
        if let Some(path) = path {
            validate_path(path)?;
        }
        let domain = docker_hub::normalize_domain(domain);
        let path = path.unwrap_or_default();
        check_name_length(domain, path)?;
        Ok(RepoPrefix {
            domain: domain.to_owned(),
            path: path.to_owned(),
        })
    }

    #[cfg(test)]
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path under the registry host; empty when the prefix is a bare host.
    #[cfg(test)]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The scoped target `PREFIX/<source domain>/<source path>[:tag][@digest]`, validated as
    /// a full reference.
    ///
    /// # Errors
    /// When the source host cannot be a path component (a port, brackets or uppercase
    /// letters) or the result is longer than a registry accepts.
    pub fn scoped(&self, source: &ImageRef) -> Result<ImageRef, ReferenceError> {
        // The source host becomes a path component, so a port or uppercase letter in it
        // makes a name no registry accepts.
        if path_component_problem(source.domain()).is_some() {
            return Err(ReferenceError::ScopedDomainNotPathComponent {
                domain: source.domain().to_owned(),
            });
        }
        let path = [self.path.as_str(), source.domain(), source.path()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        check_name_length(&self.domain, &path)?;
        Ok(ImageRef::from_parts(
            &self.domain,
            &path,
            source.tag(),
            source.digest(),
        ))
    }
}

impl fmt::Display for RepoPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.domain)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

fn reject_empty_or_whitespace(input: &str) -> Result<(), ReferenceError> {
    if input.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if input.contains(char::is_whitespace) {
        return Err(ReferenceError::ContainsWhitespace {
            input: input.to_owned(),
        });
    }
    Ok(())
}

/// `docker://nginx` → (`docker://`, `nginx`): a URL scheme or a skopeo transport, which people
/// paste from skopeo commands and browsers. Without this check the scheme's `:` would be read
/// as a port or a tag, and the error would be about that.
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let at = input.find("://")?;
    let scheme = &input[..at];
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then(|| input.split_at(at + 3))
}

/// " (write REST)", or nothing when nothing follows the scheme.
fn write_instead(rest: &str) -> String {
    if rest.is_empty() {
        String::new()
    } else {
        format!(" (write {rest})")
    }
}

/// Whether a first component names a registry host by its form alone: a `.` (a domain or an
/// IPv4 address), a `:` (a port, or an IPv6 literal), or `localhost`.
fn has_host_marks(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

/// distribution's rule: a first component is a registry host if it could not be a Docker Hub
/// namespace, so uppercase letters (which no repository path may have) make one too:
/// `Docker/docker` is repository `docker` on host `Docker`.
fn looks_like_domain(component: &str) -> bool {
    has_host_marks(component) || component.contains(|c: char| c.is_ascii_uppercase())
}

/// Splits `[domain/]rest` into the registry host, if any, and the rest. Only a component
/// before a `/` can be a host: a lone `quay.io:5000` is Docker Hub's `library/quay.io` at tag
/// `5000`, exactly as distribution reads it.
fn split_domain(input: &str) -> (Option<&str>, &str) {
    match input.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
        _ => (None, input),
    }
}

/// Splits `path[:tag]`: the tag follows the last `:` after the last `/`.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last_component = name.rfind('/').map_or(0, |slash| slash + 1);
    match name[last_component..].rfind(':') {
        Some(colon) => {
            let colon = last_component + colon;
            (&name[..colon], Some(&name[colon + 1..]))
        }
        None => (name, None),
    }
}

/// Validates a first component read as a registry host and normalizes it.
fn checked_domain(domain: &str) -> Result<&str, ReferenceError> {
    if let Err(error) = validate_domain(domain) {
        // Only its uppercase letters made it a host, and lowercased it would be a fine
        // namespace: the mistake is the case (distribution says so too).
        if !has_host_marks(domain) && path_component_problem(&domain.to_ascii_lowercase()).is_none()
        {
            return Err(ReferenceError::UppercaseName {
                path: domain.to_owned(),
            });
        }
        return Err(error);
    }
    Ok(docker_hub::normalize_domain(domain))
}

/// Refuses a reference without a `/` that is most likely a registry host typed without its
/// repository, saying so: an IPv6 literal, or a host name with uppercase letters, which the
/// Docker Hub repository it is read as may not have.
fn lone_name_check(name_and_tag: &str, path: &str) -> Result<(), ReferenceError> {
    // An IPv6 literal can only be a host.
    if name_and_tag.starts_with('[') {
        validate_domain(name_and_tag)?;
        return Err(ReferenceError::MissingPath {
            domain: name_and_tag.to_owned(),
        });
    }
    let host_like = path.contains('.') || path.eq_ignore_ascii_case("localhost");
    if host_like && path.contains(|c: char| c.is_ascii_uppercase()) {
        return Err(ReferenceError::UppercaseLoneName {
            name: path.to_owned(),
        });
    }
    Ok(())
}

/// Host names (any case), IPv4 addresses or bracketed IPv6 literals, with an optional port.
fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    let (host, port) = if let Some(bracketed) = domain.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("IPv6 address is missing its ']'"))?;
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(invalid("IPv6 address may only contain hex digits and ':'"));
        }
        if after.is_empty() {
            (None, None)
        } else {
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| invalid("expected ':port' after ']'"))?;
            (None, Some(port))
        }
    } else {
        match domain.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid(
                    "an IPv6 address must be in brackets (e.g. [fc00::1]:5000)",
                ));
            }
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    for component in host.into_iter().flat_map(|host| host.split('.')) {
        if component.is_empty() {
            return Err(invalid("empty host component"));
        }
        if !component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(
                "host may only contain letters, digits, '-' and '.'",
            ));
        }
        if component.starts_with('-') || component.ends_with('-') {
            return Err(invalid("host components must not start or end with '-'"));
        }
    }
    if port.is_some_and(|port| port.is_empty() || !port.chars().all(|c| c.is_ascii_digit())) {
        return Err(invalid("port must be decimal digits"));
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), ReferenceError> {
    if path.split('/').any(str::is_empty) {
        return Err(ReferenceError::EmptyPathComponent {
            path: path.to_owned(),
        });
    }
    // Checked before the grammar so the most common mistake gets docker's familiar message.
    if path.contains(|c: char| c.is_ascii_uppercase()) {
        return Err(ReferenceError::UppercaseName {
            path: path.to_owned(),
        });
    }
    for component in path.split('/') {
        if let Some(reason) = path_component_problem(component) {
            return Err(ReferenceError::InvalidPathComponent {
                component: component.to_owned(),
                reason,
            });
        }
    }
    Ok(())
}

/// Why `component` does not match `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`, if it does not.
fn path_component_problem(component: &str) -> Option<&'static str> {
    let is_alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !component
        .chars()
        .all(|c| is_alphanumeric(c) || matches!(c, '.' | '_' | '-'))
    {
        return Some("only a-z, 0-9, '.', '_' and '-' are allowed");
    }
    if !component.starts_with(is_alphanumeric) || !component.ends_with(is_alphanumeric) {
        return Some("must start and end with a lowercase letter or digit");
    }
    let separators_allowed = component
        .split(is_alphanumeric)
        .filter(|separator| !separator.is_empty())
        .all(|separator| {
            matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-')
        });
    if !separators_allowed {
        return Some("separators must be '.', '_', '__' or dashes");
    }
    None
}

fn validate_tag(tag: &str) -> Result<&str, ReferenceError> {
    if tag.is_empty() {
        return Err(ReferenceError::EmptyTag);
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = tag.len() <= TAG_MAX_LEN
        && tag.starts_with(is_word)
        && tag.chars().all(|c| is_word(c) || c == '.' || c == '-');
    if valid {
        Ok(tag)
    } else {
        Err(ReferenceError::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

fn validate_digest(digest: &str) -> Result<&str, ReferenceError> {
    if digest.is_empty() {
        return Err(ReferenceError::EmptyDigest);
    }
    let invalid = |reason| ReferenceError::InvalidDigest {
        digest: digest.to_owned(),
        reason,
    };
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid("expected <algorithm>:<hex>, e.g. sha256:…"))?;
    // What both distribution's grammar and go-digest's allow: lowercase letters and digits,
    // each part starting with a letter.
    let algorithm_valid = algorithm.split(['.', '+', '_', '-']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if !algorithm_valid {
        return Err(invalid(
            "algorithm must be lowercase letters and digits joined by '.', '+', '_' or '-', \
             each part starting with a letter",
        ));
    }
    // The algorithms go-digest registers; anything else could not be verified.
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ReferenceError::UnsupportedDigestAlgorithm {
                algorithm: algorithm.to_owned(),
            });
        }
    };
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("only hex characters may follow the algorithm"));
    }
    if hex.contains(|c: char| c.is_ascii_uppercase()) {
        return Err(invalid("hex characters must be lowercase"));
    }
    if hex.len() != expected {
        return Err(ReferenceError::DigestLength {
            algorithm: algorithm.to_owned(),
            expected,
            digest: digest.to_owned(),
        });
    }
    Ok(digest)
}

/// A `sha256:` digest of 64 lowercase hex digits: the only algorithm ferry verifies, and safe
/// in a URL path or as a file name. Every digest a registry sends (in a manifest or in a
/// `Docker-Content-Digest` header) passes this before ferry uses it.
pub fn check_sha256_digest(digest: &str) -> Result<(), String> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        // Shortened and escaped: the text came from a registry.
        let shown: String = digest.chars().take(80).collect();
        Err(format!(
            "digest {shown:?} is not a sha256 digest, which ferry cannot verify"
        ))
    }
}

fn check_name_length(domain: &str, path: &str) -> Result<(), ReferenceError> {
    let name = if path.is_empty() {
        domain.to_owned()
    } else {
        format!("{domain}/{path}")
    };
    if name.len() > NAME_MAX_LEN {
        return Err(ReferenceError::NameTooLong { name });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! hex64 {
        () => {
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        };
    }
    const SHA256: &str = concat!("sha256:", hex64!());
    const SHA512: &str = concat!("sha512:", hex64!(), hex64!());

    /// Input → canonical display string.
    #[rustfmt::skip]
    const GOOD: &[(&str, &str)] = &[
        ("nginx",                                   "docker.io/library/nginx"),
        ("nginx:1.25",                              "docker.io/library/nginx:1.25"),
        ("nginx:latest",                            "docker.io/library/nginx:latest"),
        ("index.docker.io/library/nginx:1.25",      "docker.io/library/nginx:1.25"),
        // Only this exact spelling of Docker Hub's old name folds, as in distribution.
        ("registry-1.docker.io/bitnami/redis",      "registry-1.docker.io/bitnami/redis"),
        ("docker.io/nginx",                         "docker.io/library/nginx"),
        ("INDEX.Docker.IO/nginx",                   "INDEX.Docker.IO/nginx"),
        ("docker.io/library/nginx",                 "docker.io/library/nginx"),
        ("bitnami/redis:7.2",                       "docker.io/bitnami/redis:7.2"),
        ("k8s.gcr.io/pause:3.6",                    "k8s.gcr.io/pause:3.6"),
        ("localhost/foo",                           "localhost/foo"),
        ("localhost:5000/a/b:t",                    "localhost:5000/a/b:t"),
        ("[::1]:5000/foo:bar",                      "[::1]:5000/foo:bar"),
        ("[fe80::1]/foo",                           "[fe80::1]/foo"),
        ("10.0.0.1:5000/app",                       "10.0.0.1:5000/app"),
        ("quay.io/prometheus/node-exporter:v1.7.0", "quay.io/prometheus/node-exporter:v1.7.0"),
        ("quay.io/foo",                             "quay.io/foo"),
        ("ghcr.io/a__b/c-d--e.f:1",                 "ghcr.io/a__b/c-d--e.f:1"),
        ("Registry.Example.com:443/team/app:v2",    "Registry.Example.com:443/team/app:v2"),
        ("gcr.io/a/b/c/d:_tag",                     "gcr.io/a/b/c/d:_tag"),
        ("foo:A_B.c-D",                             "docker.io/library/foo:A_B.c-D"),
        ("a/b_c/d.e/f-g",                           "docker.io/a/b_c/d.e/f-g"),
        ("registry.example/x:5000",                 "registry.example/x:5000"),
        ("a1/2b",                                   "docker.io/a1/2b"),
        // Only a component before a '/' can be a host: a lone one is a Docker Hub repository.
        ("docker.io",                               "docker.io/library/docker.io"),
        ("localhost",                               "docker.io/library/localhost"),
        ("localhost:5000",                          "docker.io/library/localhost:5000"),
        ("quay.io:443",                             "docker.io/library/quay.io:443"),
        // Uppercase letters make a first component a host (they cannot be a namespace).
        ("Foo/bar",                                 "Foo/bar"),
        ("Docker/docker:1",                         "Docker/docker:1"),
        // Only the whole name is an image ID.
        (concat!(hex64!(), ":1"),                   concat!("docker.io/library/", hex64!(), ":1")),
        (concat!("a/", hex64!()),                   concat!("docker.io/a/", hex64!())),
        (concat!("nginx@sha256:", hex64!()),        concat!("docker.io/library/nginx@sha256:", hex64!())),
        (concat!("nginx:1.25@sha256:", hex64!()),   concat!("docker.io/library/nginx:1.25@sha256:", hex64!())),
        (concat!("quay.io/a/b@", "sha512:", hex64!(), hex64!()),
                                                    concat!("quay.io/a/b@sha512:", hex64!(), hex64!())),
        (concat!("quay.io/a/b:1@", "sha384:", hex64!(), "0123456789abcdef0123456789abcdef"),
                                                    concat!("quay.io/a/b:1@sha384:", hex64!(), "0123456789abcdef0123456789abcdef")),
    ];

    /// Input → error message.
    #[rustfmt::skip]
    const BAD: &[(&str, &str)] = &[
        ("",                        "reference must not be empty"),
        (" nginx",                  "reference must not contain whitespace"),
        ("nginx\t",                 "reference must not contain whitespace"),
        ("nginx :1.25",             "reference must not contain whitespace"),
        ("Nginx:1.25",              "repository name must be lowercase"),
        ("docker.io/Library/nginx", "repository name must be lowercase"),
        ("Foo_Bar/x",               "repository name must be lowercase"),
        ("Registry.Example.com",    r#"repository name must be lowercase (with no '/', "Registry.Example.com" is a Docker Hub repository, not a registry host)"#),
        ("Quay.io:5000",            r#"repository name must be lowercase (with no '/', "Quay.io" is a Docker Hub repository, not a registry host)"#),
        ("LocalHost:5000@sha256:0", r#"repository name must be lowercase (with no '/', "LocalHost" is a Docker Hub repository, not a registry host)"#),
        (hex64!(),                  "a 64-character hex string is an image ID, not a repository name (to pin an image, write NAME@sha256:…)"),
        ("[::1]",                   r#"missing repository path after registry host "[::1]""#),
        ("[::1]:5000@sha256:0",     r#"missing repository path after registry host "[::1]:5000""#),
        ("[::1]:x",                 r#"invalid registry host "[::1]:x": port must be decimal digits"#),
        ("a//b",                    r#"repository path "a//b" has an empty component"#),
        ("nginx/",                  r#"repository path "nginx/" has an empty component"#),
        ("docker.io/",              r#"missing repository path after registry host "docker.io""#),
        ("index.docker.io/",        r#"missing repository path after registry host "index.docker.io""#),
        ("localhost:5000/",         r#"missing repository path after registry host "localhost:5000""#),
        ("quay.io/:1",              r#"missing repository path after registry host "quay.io""#),
        (":1.25",                   "missing repository name before ':' or '@'"),
        ("nginx:",                  "tag after ':' must not be empty"),
        ("nginx@",                  "digest after '@' must not be empty"),
        ("nginx:-bad",              r#"invalid tag "-bad""#),
        ("nginx:bad!tag",           r#"invalid tag "bad!tag""#),
        ("nginx@sha256:abc",        "sha256 digest must have 64 hex characters"),
        (concat!("nginx@sha512:", hex64!()),
                                    "sha512 digest must have 128 hex characters"),
        (concat!("nginx@sha384:", hex64!()),
                                    "sha384 digest must have 96 hex characters"),
        ("nginx@md5:abc",           r#"unsupported digest algorithm "md5""#),
        ("nginx@sha256+b64:abc",    r#"unsupported digest algorithm "sha256+b64""#),
        ("nginx@sha256:ABC",        r#"invalid digest "sha256:ABC": hex characters must be lowercase"#),
        ("nginx@sha256:xyz",        r#"invalid digest "sha256:xyz": only hex characters may follow the algorithm"#),
        ("nginx@sha256",            r#"invalid digest "sha256": expected <algorithm>:<hex>, e.g. sha256:…"#),
        ("nginx@SHA256:abc",        r#"invalid digest "SHA256:abc": algorithm must be lowercase letters and digits joined by '.', '+', '_' or '-', each part starting with a letter"#),
        ("nginx@sha256.1x:abc",     r#"invalid digest "sha256.1x:abc": algorithm must be lowercase letters and digits joined by '.', '+', '_' or '-', each part starting with a letter"#),
        ("nginx@sha256-:abc",       r#"invalid digest "sha256-:abc": algorithm must be lowercase letters and digits joined by '.', '+', '_' or '-', each part starting with a letter"#),
        ("a/b..c",                  r#"invalid repository path component "b..c": separators must be '.', '_', '__' or dashes"#),
        ("a___b",                   r#"invalid repository path component "a___b": separators must be '.', '_', '__' or dashes"#),
        ("a-/b",                    r#"invalid repository path component "a-": must start and end with a lowercase letter or digit"#),
        ("_a",                      r#"invalid repository path component "_a": must start and end with a lowercase letter or digit"#),
        ("a/b:c/d",                 r#"invalid repository path component "b:c": only a-z, 0-9, '.', '_' and '-' are allowed"#),
        // distribution's regexp would read this as a path without a host (which no registry
        // serves): a deliberate difference.
        ("exa_mple.com/foo",        r#"invalid registry host "exa_mple.com": host may only contain letters, digits, '-' and '.'"#),
        ("Foo-/x",                  r#"invalid registry host "Foo-": host components must not start or end with '-'"#),
        ("fc00::1/x",               r#"invalid registry host "fc00::1": an IPv6 address must be in brackets (e.g. [fc00::1]:5000)"#),
        ("-bad.io/foo",             r#"invalid registry host "-bad.io": host components must not start or end with '-'"#),
        ("a..io/foo",               r#"invalid registry host "a..io": empty host component"#),
        ("host.io:http/foo",        r#"invalid registry host "host.io:http": port must be decimal digits"#),
        ("host.io:/foo",            r#"invalid registry host "host.io:": port must be decimal digits"#),
        ("[::1/foo",                r#"invalid registry host "[::1": IPv6 address is missing its ']'"#),
        ("[::g]:5000/foo",          r#"invalid registry host "[::g]:5000": IPv6 address may only contain hex digits and ':'"#),
        ("docker://nginx",          r#"remove "docker://": a reference has no scheme (write nginx)"#),
        ("docker://quay.io/a/b:1",  r#"remove "docker://": a reference has no scheme (write quay.io/a/b:1)"#),
        ("https://ghcr.io/o/r",     r#"remove "https://": a reference has no scheme (write ghcr.io/o/r)"#),
        ("http://127.0.0.1:5000/x", r#"remove "http://": a reference has no scheme (write 127.0.0.1:5000/x)"#),
        ("docker://",               r#"remove "docker://": a reference has no scheme"#),
        ("://nginx",                r#"invalid registry host ":": empty host component"#),
    ];

    /// Expected normalized parts: (domain, path, tag, digest).
    type Parts = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );

    macro_rules! f64hex {
        () => {
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        };
    }

    /// distribution's own test inputs (github.com/distribution/reference `reference_test.go`
    /// and `normalize_test.go`), each with what `ParseNormalizedNamed` makes of it, or ferry's
    /// reason where distribution refuses it too. Tests there that call `Parse`, `WithName` or
    /// `ParseAnyReference` are taken through `ParseNormalizedNamed` here, as ferry reads every
    /// reference that way: single names gain `docker.io/library/`. Repeated inputs are listed
    /// once; the two built with `strings.Repeat` are in `distribution_length_cases`.
    #[rustfmt::skip]
    const DISTRIBUTION: &[(&str, Result<Parts, &str>)] = &[
        // reference_test.go, TestReferenceParse
        ("test_com",                        Ok(("docker.io", "library/test_com", None, None))),
        ("test.com:tag",                    Ok(("docker.io", "library/test.com", Some("tag"), None))),
        ("test.com:5000",                   Ok(("docker.io", "library/test.com", Some("5000"), None))),
        ("test.com/repo:tag",               Ok(("test.com", "repo", Some("tag"), None))),
        ("test:5000/repo",                  Ok(("test:5000", "repo", None, None))),
        ("test:5000/repo:tag",              Ok(("test:5000", "repo", Some("tag"), None))),
        (concat!("test:5000/repo@sha256:", f64hex!()),
                                            Ok(("test:5000", "repo", None, Some(concat!("sha256:", f64hex!()))))),
        (concat!("test:5000/repo:tag@sha256:", f64hex!()),
                                            Ok(("test:5000", "repo", Some("tag"), Some(concat!("sha256:", f64hex!()))))),
        ("",                                Err("reference must not be empty")),
        (":justtag",                        Err("missing repository name before ':' or '@'")),
        (concat!("@sha256:", f64hex!()),    Err("missing repository name before ':' or '@'")),
        ("repo@sha256:ffffffffffffffffffffffffffffffffff",
                                            Err("sha256 digest must have 64 hex characters")),
        (concat!("validname@invaliddigest:", f64hex!()),
                                            Err(r#"unsupported digest algorithm "invaliddigest""#)),
        ("Uppercase:tag",                   Err("repository name must be lowercase")),
        // Commented out there ("FIXME"): ParseNormalizedNamed reads "Uppercase" as a host.
        ("Uppercase/lowercase:tag",         Ok(("Uppercase", "lowercase", Some("tag"), None))),
        ("test:5000/Uppercase/lowercase:tag",
                                            Err("repository name must be lowercase")),
        ("lowercase:Uppercase",             Ok(("docker.io", "library/lowercase", Some("Uppercase"), None))),
        ("aa/asdf$$^/aa",                   Err(r#"invalid repository path component "asdf$$^": only a-z, 0-9, '.', '_' and '-' are allowed"#)),
        ("sub-dom1.foo.com/bar/baz/quux",   Ok(("sub-dom1.foo.com", "bar/baz/quux", None, None))),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag",
                                            Ok(("sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag"), None))),
        ("b.gcr.io/test.example.com/my-app:test.example.com",
                                            Ok(("b.gcr.io", "test.example.com/my-app", Some("test.example.com"), None))),
        ("xn--n3h.com/myimage:xn--n3h.com", Ok(("xn--n3h.com", "myimage", Some("xn--n3h.com"), None))),
        (concat!("xn--7o8h.com/myimage:xn--7o8h.com@sha512:", f64hex!(), f64hex!()),
                                            Ok(("xn--7o8h.com", "myimage", Some("xn--7o8h.com"), Some(concat!("sha512:", f64hex!(), f64hex!()))))),
        ("foo_bar.com:8080",                Ok(("docker.io", "library/foo_bar.com", Some("8080"), None))),
        ("foo/foo_bar.com:8080",            Ok(("docker.io", "foo/foo_bar.com", Some("8080"), None))),
        ("192.168.1.1",                     Ok(("docker.io", "library/192.168.1.1", None, None))),
        ("192.168.1.1:tag",                 Ok(("docker.io", "library/192.168.1.1", Some("tag"), None))),
        ("192.168.1.1:5000",                Ok(("docker.io", "library/192.168.1.1", Some("5000"), None))),
        ("192.168.1.1/repo",                Ok(("192.168.1.1", "repo", None, None))),
        ("192.168.1.1:5000/repo",           Ok(("192.168.1.1:5000", "repo", None, None))),
        ("192.168.1.1:5000/repo:5050",      Ok(("192.168.1.1:5000", "repo", Some("5050"), None))),
        ("[2001:db8::1]",                   Err(r#"missing repository path after registry host "[2001:db8::1]""#)),
        ("[2001:db8::1]:5000",              Err(r#"missing repository path after registry host "[2001:db8::1]:5000""#)),
        ("[2001:db8::1]:tag",               Err(r#"invalid registry host "[2001:db8::1]:tag": port must be decimal digits"#)),
        ("[2001:db8::1]/repo",              Ok(("[2001:db8::1]", "repo", None, None))),
        ("[2001:db8:1:2:3:4:5:6]/repo:tag", Ok(("[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None))),
        ("[2001:db8::1]:5000/repo",         Ok(("[2001:db8::1]:5000", "repo", None, None))),
        ("[2001:db8::1]:5000/repo:tag",     Ok(("[2001:db8::1]:5000", "repo", Some("tag"), None))),
        (concat!("[2001:db8::1]:5000/repo@sha256:", f64hex!()),
                                            Ok(("[2001:db8::1]:5000", "repo", None, Some(concat!("sha256:", f64hex!()))))),
        (concat!("[2001:db8::1]:5000/repo:tag@sha256:", f64hex!()),
                                            Ok(("[2001:db8::1]:5000", "repo", Some("tag"), Some(concat!("sha256:", f64hex!()))))),
        ("[2001:db8::]:5000/repo",          Ok(("[2001:db8::]:5000", "repo", None, None))),
        ("[::1]:5000/repo",                 Ok(("[::1]:5000", "repo", None, None))),
        ("[fe80::1%eth0]:5000/repo",        Err(r#"invalid registry host "[fe80::1%eth0]:5000": IPv6 address may only contain hex digits and ':'"#)),
        ("[fe80::1%@invalidzone]:5000/repo",
                                            Err(r#"invalid registry host "[fe80::1%@invalidzone]:5000": IPv6 address may only contain hex digits and ':'"#)),
        // reference_test.go, TestDomainAndPath, TestParseNamed and TestSerialization
        ("test.com/foo",                    Ok(("test.com", "foo", None, None))),
        ("test_com/foo",                    Ok(("docker.io", "test_com/foo", None, None))),
        ("test:8080/foo",                   Ok(("test:8080", "foo", None, None))),
        ("test.com:8080/foo",               Ok(("test.com:8080", "foo", None, None))),
        ("test-com:8080/foo",               Ok(("test-com:8080", "foo", None, None))),
        ("xn--n3h.com:18080/foo",           Ok(("xn--n3h.com:18080", "foo", None, None))),
        ("test.com",                        Ok(("docker.io", "library/test.com", None, None))),
        ("foo",                             Ok(("docker.io", "library/foo", None, None))),
        ("library/foo",                     Ok(("docker.io", "library/foo", None, None))),
        ("docker.io/library/foo",           Ok(("docker.io", "library/foo", None, None))),
        ("docker.io/foo",                   Ok(("docker.io", "library/foo", None, None))),
        ("example.com:8000/named",          Ok(("example.com:8000", "named", None, None))),
        ("example.com:8000/named:tagged",   Ok(("example.com:8000", "named", Some("tagged"), None))),
        ("other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
                                            Ok(("other.com", "named", None, Some("sha256:1234567890098765432112345667890098765432112345667890098765432112")))),
        // normalize_test.go, TestValidateReferenceName
        ("docker/docker",                   Ok(("docker.io", "docker/docker", None, None))),
        ("library/debian",                  Ok(("docker.io", "library/debian", None, None))),
        ("debian",                          Ok(("docker.io", "library/debian", None, None))),
        ("docker.io/docker/docker",         Ok(("docker.io", "docker/docker", None, None))),
        ("docker.io/library/debian",        Ok(("docker.io", "library/debian", None, None))),
        ("docker.io/debian",                Ok(("docker.io", "library/debian", None, None))),
        ("index.docker.io/docker/docker",   Ok(("docker.io", "docker/docker", None, None))),
        ("index.docker.io/library/debian",  Ok(("docker.io", "library/debian", None, None))),
        ("index.docker.io/debian",          Ok(("docker.io", "library/debian", None, None))),
        ("127.0.0.1:5000/docker/docker",    Ok(("127.0.0.1:5000", "docker/docker", None, None))),
        ("127.0.0.1:5000/library/debian",   Ok(("127.0.0.1:5000", "library/debian", None, None))),
        ("127.0.0.1:5000/debian",           Ok(("127.0.0.1:5000", "debian", None, None))),
        ("192.168.0.1",                     Ok(("docker.io", "library/192.168.0.1", None, None))),
        ("192.168.0.1:80",                  Ok(("docker.io", "library/192.168.0.1", Some("80"), None))),
        ("192.168.0.1:8/debian",            Ok(("192.168.0.1:8", "debian", None, None))),
        ("192.168.0.2:25000/debian",        Ok(("192.168.0.2:25000", "debian", None, None))),
        ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                                            Ok(("docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", None, None))),
        ("[fc00::1]:5000/docker",           Ok(("[fc00::1]:5000", "docker", None, None))),
        ("[fc00::1]:5000/docker/docker",    Ok(("[fc00::1]:5000", "docker/docker", None, None))),
        ("[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                                            Ok(("[fc00:1:2:3:4:5:6:7]:5000", "library/debian", None, None))),
        ("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                                            Ok(("docker.io", "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", None, None))),
        ("Docker/docker",                   Ok(("Docker", "docker", None, None))),
        ("DOCKER/docker",                   Ok(("DOCKER", "docker", None, None))),
        ("https://github.com/docker/docker",
                                            Err(r#"remove "https://": a reference has no scheme (write github.com/docker/docker)"#)),
        ("docker/Docker",                   Err("repository name must be lowercase")),
        ("-docker",                         Err(r#"invalid repository path component "-docker": must start and end with a lowercase letter or digit"#)),
        ("-docker/docker",                  Err(r#"invalid repository path component "-docker": must start and end with a lowercase letter or digit"#)),
        ("-docker.io/docker/docker",        Err(r#"invalid registry host "-docker.io": host components must not start or end with '-'"#)),
        ("docker///docker",                 Err(r#"repository path "docker///docker" has an empty component"#)),
        ("docker.io/docker/Docker",         Err("repository name must be lowercase")),
        ("docker.io/docker///docker",       Err(r#"repository path "docker///docker" has an empty component"#)),
        ("[fc00::1]",                       Err(r#"missing repository path after registry host "[fc00::1]""#)),
        ("[fc00::1]:5000",                  Err(r#"missing repository path after registry host "[fc00::1]:5000""#)),
        ("fc00::1:5000/debian",             Err(r#"invalid registry host "fc00::1:5000": an IPv6 address must be in brackets (e.g. [fc00::1]:5000)"#)),
        ("[fe80::1%eth0]:5000/debian",      Err(r#"invalid registry host "[fe80::1%eth0]:5000": IPv6 address may only contain hex digits and ':'"#)),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian",
                                            Err(r#"invalid registry host "[2001:db8:3:4::192.0.2.33]:5000": IPv6 address may only contain hex digits and ':'"#)),
        ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                                            Err("a 64-character hex string is an image ID, not a repository name (to pin an image, write NAME@sha256:…)")),
        // normalize_test.go, TestValidateRemoteName
        ("docker-rules/docker",             Ok(("docker.io", "docker-rules/docker", None, None))),
        ("docker---rules/docker",           Ok(("docker.io", "docker---rules/docker", None, None))),
        ("doc/docker",                      Ok(("docker.io", "doc/docker", None, None))),
        ("d/docker",                        Ok(("docker.io", "d/docker", None, None))),
        ("jess/t",                          Ok(("docker.io", "jess/t", None, None))),
        ("dock__er/docker",                 Ok(("docker.io", "dock__er/docker", None, None))),
        ("docker-/docker",                  Err(r#"invalid repository path component "docker-": must start and end with a lowercase letter or digit"#)),
        ("-docker-/docker",                 Err(r#"invalid repository path component "-docker-": must start and end with a lowercase letter or digit"#)),
        ("____/____",                       Err(r#"invalid repository path component "____": must start and end with a lowercase letter or digit"#)),
        ("_docker/_docker",                 Err(r#"invalid repository path component "_docker": must start and end with a lowercase letter or digit"#)),
        ("dock..er/docker",                 Err(r#"invalid registry host "dock..er": empty host component"#)),
        ("dock_.er/docker",                 Err(r#"invalid registry host "dock_.er": host may only contain letters, digits, '-' and '.'"#)),
        ("dock-.er/docker",                 Err(r#"invalid registry host "dock-.er": host components must not start or end with '-'"#)),
        ("docker/",                         Err(r#"repository path "docker/" has an empty component"#)),
        ("this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
                                            Err("repository name must not be longer than 255 characters")),
        // normalize_test.go, TestParseRepositoryInfo (familiar, full and ambiguous names)
        ("fooo/bar",                        Ok(("docker.io", "fooo/bar", None, None))),
        ("docker.io/fooo/bar",              Ok(("docker.io", "fooo/bar", None, None))),
        ("index.docker.io/fooo/bar",        Ok(("docker.io", "fooo/bar", None, None))),
        ("ubuntu",                          Ok(("docker.io", "library/ubuntu", None, None))),
        ("docker.io/library/ubuntu",        Ok(("docker.io", "library/ubuntu", None, None))),
        ("library/ubuntu",                  Ok(("docker.io", "library/ubuntu", None, None))),
        ("nonlibrary/ubuntu",               Ok(("docker.io", "nonlibrary/ubuntu", None, None))),
        ("docker.io/nonlibrary/ubuntu",     Ok(("docker.io", "nonlibrary/ubuntu", None, None))),
        ("other/library",                   Ok(("docker.io", "other/library", None, None))),
        ("docker.io/other/library",         Ok(("docker.io", "other/library", None, None))),
        ("127.0.0.1:8000/private/moonbase", Ok(("127.0.0.1:8000", "private/moonbase", None, None))),
        ("127.0.0.1:8000/privatebase",      Ok(("127.0.0.1:8000", "privatebase", None, None))),
        ("example.com/private/moonbase",    Ok(("example.com", "private/moonbase", None, None))),
        ("example.com/privatebase",         Ok(("example.com", "privatebase", None, None))),
        ("example.com:8000/private/moonbase",
                                            Ok(("example.com:8000", "private/moonbase", None, None))),
        ("example.com:8000/privatebasee",   Ok(("example.com:8000", "privatebasee", None, None))),
        ("ubuntu-12.04-base",               Ok(("docker.io", "library/ubuntu-12.04-base", None, None))),
        ("docker.io/library/ubuntu-12.04-base",
                                            Ok(("docker.io", "library/ubuntu-12.04-base", None, None))),
        ("index.docker.io/library/ubuntu-12.04-base",
                                            Ok(("docker.io", "library/ubuntu-12.04-base", None, None))),
        ("library/foo/bar",                 Ok(("docker.io", "library/foo/bar", None, None))),
        ("docker.io/library/foo/bar",       Ok(("docker.io", "library/foo/bar", None, None))),
        ("store/foo/bar",                   Ok(("docker.io", "store/foo/bar", None, None))),
        ("docker.io/store/foo/bar",         Ok(("docker.io", "store/foo/bar", None, None))),
        ("Foo/bar",                         Ok(("Foo", "bar", None, None))),
        ("FOO/bar",                         Ok(("FOO", "bar", None, None))),
        // normalize_test.go, TestParseReferenceWithTagAndDigest and TestInvalidReferenceComponents
        ("busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa",
                                            Ok(("docker.io", "library/busybox", Some("latest"), Some("sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa")))),
        ("-foo",                            Err(r#"invalid repository path component "-foo": must start and end with a lowercase letter or digit"#)),
        // normalize_test.go, TestParseAnyReference (the names; the bare hex ID and the bare
        // digest are image IDs only to ParseAnyReference) and TestNormalizedSplitHostname
        ("redis",                           Ok(("docker.io", "library/redis", None, None))),
        ("redis:latest",                    Ok(("docker.io", "library/redis", Some("latest"), None))),
        ("docker.io/library/redis:latest",  Ok(("docker.io", "library/redis", Some("latest"), None))),
        ("redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Ok(("docker.io", "library/redis", None, Some("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c")))),
        ("docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Ok(("docker.io", "library/redis", None, Some("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c")))),
        ("dmcgowan/myapp",                  Ok(("docker.io", "dmcgowan/myapp", None, None))),
        ("dmcgowan/myapp:latest",           Ok(("docker.io", "dmcgowan/myapp", Some("latest"), None))),
        ("docker.io/mcgowan/myapp:latest",  Ok(("docker.io", "mcgowan/myapp", Some("latest"), None))),
        ("dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Ok(("docker.io", "dmcgowan/myapp", None, Some("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c")))),
        ("docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Ok(("docker.io", "dmcgowan/myapp", None, Some("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c")))),
        ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Err("a 64-character hex string is an image ID, not a repository name (to pin an image, write NAME@sha256:…)")),
        ("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
                                            Ok(("docker.io", "library/sha256", Some("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"), None))),
        ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                                            Ok(("docker.io", "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", None, None))),
        ("dbcc1",                           Ok(("docker.io", "library/dbcc1", None, None))),
        ("docker/migrator",                 Ok(("docker.io", "docker/migrator", None, None))),
        ("xn--n3h.com/foo",                 Ok(("xn--n3h.com", "foo", None, None))),
        // Not from distribution's tables: where ferry deliberately differs. A first component
        // with a '.' that is no host name but is a path component is, to distribution's
        // regexp, the start of a path without a host (Domain "", Path "x_y.example/app"),
        // which no registry can serve (skopeo then connects to an empty host name).
        ("x_y.example/app",                 Err(r#"invalid registry host "x_y.example": host may only contain letters, digits, '-' and '.'"#)),
    ];

    #[test]
    fn parse_reads_distribution_test_inputs_as_parse_normalized_named_does() {
        for (input, expected) in DISTRIBUTION {
            let result = ImageRef::parse(input);
            let parts = result
                .as_ref()
                .map(|r| (r.domain(), r.path(), r.tag(), r.digest()));
            assert_eq!(
                parts.map_err(ToString::to_string),
                expected.map_err(str::to_owned),
                "input {input:?}"
            );
            if let (Ok(reference), Ok((domain, path, tag, digest))) = (&result, expected) {
                let tag = tag.map(|tag| format!(":{tag}")).unwrap_or_default();
                let digest = digest
                    .map(|digest| format!("@{digest}"))
                    .unwrap_or_default();
                assert_eq!(
                    reference.to_string(),
                    format!("{domain}/{path}{tag}{digest}")
                );
                assert_eq!(
                    ImageRef::parse(&reference.to_string()).as_ref(),
                    Ok(reference)
                );
            }
        }
    }

    /// reference_test.go, TestReferenceParse: the two inputs built with `strings.Repeat`.
    #[test]
    fn distribution_length_cases() {
        let too_long = Err("repository name must not be longer than 255 characters".to_owned());
        let path_of_257 = format!("{}a:tag", "a/".repeat(128));
        assert_eq!(shown(ImageRef::parse(&path_of_257)), too_long);
        // A deliberate difference: distribution/reference now limits only the path (255
        // here), but skopeo's copy of the grammar (containers/image), like distribution
        // before, limits the whole normalized name, "docker.io/" included, and would refuse
        // it; so does ferry.
        let path_of_255 = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        assert_eq!(shown(ImageRef::parse(&path_of_255)), too_long);
    }

    /// Display on success, the error message on failure: what a person would see.
    fn shown<T: fmt::Display>(result: Result<T, ReferenceError>) -> Result<String, String> {
        result
            .map(|ok| ok.to_string())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn parse_accepts_and_normalizes_good_references() {
        for (input, expected) in GOOD {
            let expected = Ok(expected.to_string());
            assert_eq!(shown(ImageRef::parse(input)), expected, "input {input:?}");
        }
    }

    #[test]
    fn parse_rejects_bad_references_with_a_reason() {
        for (input, expected) in BAD {
            let expected = Err(expected.to_string());
            assert_eq!(shown(ImageRef::parse(input)), expected, "input {input:?}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for (input, _) in GOOD {
            let reference = ImageRef::parse(input).unwrap();
            let reparsed: ImageRef = reference.to_string().parse().unwrap();
            assert_eq!(reparsed, reference, "input {input:?}");
        }
    }

    #[test]
    fn length_limits() {
        let tag_at_limit = "t".repeat(TAG_MAX_LEN);
        assert!(ImageRef::parse(&format!("nginx:{tag_at_limit}")).is_ok());
        let long_tag = format!("{tag_at_limit}x");
        let error = ReferenceError::InvalidTag {
            tag: long_tag.clone(),
        };
        assert_eq!(ImageRef::parse(&format!("nginx:{long_tag}")), Err(error));

        let too_long = Err("repository name must not be longer than 255 characters".to_owned());
        // The limit applies after normalization, and "docker.io/library/" is 18 characters.
        let at_limit = "a".repeat(NAME_MAX_LEN - 18);
        assert!(ImageRef::parse(&at_limit).is_ok());
        assert_eq!(shown(ImageRef::parse(&format!("{at_limit}b"))), too_long);

        // "harbor.example/m/" + "quay.io/" is 25 characters.
        let prefix = RepoPrefix::parse("harbor.example/m").unwrap();
        let fits = ImageRef::parse(&format!("quay.io/{}", "a".repeat(230))).unwrap();
        assert!(prefix.scoped(&fits).is_ok());
        let one_more = ImageRef::parse(&format!("quay.io/{}", "a".repeat(231))).unwrap();
        assert_eq!(shown(prefix.scoped(&one_more)), too_long);
    }

    #[test]
    fn accessors() {
        let reference = ImageRef::parse(&format!("nginx:1.25@{SHA256}")).unwrap();
        assert_eq!(reference.domain(), "docker.io");
        assert_eq!(reference.path(), "library/nginx");
        assert_eq!(reference.repository(), "docker.io/library/nginx");
        assert_eq!(reference.tag(), Some("1.25"));
        assert_eq!(reference.digest(), Some(SHA256));
        assert!(!reference.is_whole_repository());
        let untagged = reference.without_tag();
        assert_eq!(
            untagged.to_string(),
            format!("docker.io/library/nginx@{SHA256}")
        );
        assert_eq!(
            reference.without_digest().to_string(),
            "docker.io/library/nginx:1.25"
        );
        assert!(untagged.without_digest().is_whole_repository());
    }

    type Edit = fn(&ImageRef, &str) -> Result<ImageRef, ReferenceError>;

    /// Start → edit with argument → display or error message.
    #[rustfmt::skip]
    const EDITS: &[(&str, Edit, &str, Result<&str, &str>)] = &[
        (concat!("nginx:1.25@sha256:", hex64!()), ImageRef::with_tag, "1.26", Ok("docker.io/library/nginx:1.26")),
        ("quay.io/a/b", ImageRef::with_tag, "v1",       Ok("quay.io/a/b:v1")),
        ("nginx",       ImageRef::with_tag, "bad tag!", Err(r#"invalid tag "bad tag!""#)),
        ("nginx",       ImageRef::with_tag, "",         Err("tag after ':' must not be empty")),
        ("nginx:1.25",  ImageRef::with_digest, SHA256,  Ok(concat!("docker.io/library/nginx:1.25@sha256:", hex64!()))),
        (concat!("nginx@sha256:", hex64!()), ImageRef::with_digest, SHA512,
                                                        Ok(concat!("docker.io/library/nginx@sha512:", hex64!(), hex64!()))),
        ("nginx",       ImageRef::with_digest, "md5:abc", Err(r#"unsupported digest algorithm "md5""#)),
        ("nginx",       ImageRef::with_digest, "",      Err("digest after '@' must not be empty")),
        // reference_test.go, TestWithTag and TestWithDigest, and normalize_test.go,
        // TestInvalidReferenceComponents. Deliberately, ferry's with_digest checks the digest
        // as go-digest's Parse does (distribution's WithDigest only matches the pattern, so
        // it takes this 37-digit one), and with_tag drops a digest, which pinned the old tag.
        ("test.com/foo",      ImageRef::with_tag, "tag",  Ok("test.com/foo:tag")),
        ("foo",               ImageRef::with_tag, "tag2", Ok("docker.io/library/foo:tag2")),
        ("test.com:8000/foo", ImageRef::with_tag, "tag4", Ok("test.com:8000/foo:tag4")),
        ("test.com:8000/foo", ImageRef::with_tag, "TAG5", Ok("test.com:8000/foo:TAG5")),
        ("test.com/foo",      ImageRef::with_digest, "sha256:1234567890098765432112345667890098765",
                                                        Err("sha256 digest must have 64 hex characters")),
        ("busybox",           ImageRef::with_tag, "-foo", Err(r#"invalid tag "-foo""#)),
        ("busybox",           ImageRef::with_digest, "foo", Err(r#"invalid digest "foo": expected <algorithm>:<hex>, e.g. sha256:…"#)),
    ];

    #[test]
    fn with_tag_and_with_digest() {
        for (start, edit, argument, expected) in EDITS {
            let result = edit(&ImageRef::parse(start).unwrap(), argument);
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(shown(result), expected, "{start:?} with {argument:?}");
        }
    }

    type DomainAndPath = (&'static str, &'static str);

    /// Input → (domain, path) or error message.
    #[rustfmt::skip]
    const PREFIXES: &[(&str, Result<DomainAndPath, &str>)] = &[
        ("harbor.example/third",       Ok(("harbor.example", "third"))),
        ("harbor.example/third/",      Ok(("harbor.example", "third"))),
        ("harbor.example/a/b",         Ok(("harbor.example", "a/b"))),
        ("localhost:5000",             Ok(("localhost:5000", ""))),
        ("localhost:5000/",            Ok(("localhost:5000", ""))),
        ("localhost",                  Ok(("localhost", ""))),
        ("[::1]:5000/m",               Ok(("[::1]:5000", "m"))),
        // Docker Hub aliases fold, but a prefix never gains `library/`.
        ("index.docker.io/me",         Ok(("docker.io", "me"))),
        ("registry-1.docker.io/me",    Ok(("registry-1.docker.io", "me"))),
        ("",                           Err("reference must not be empty")),
        ("harbor.example/ third",      Err("reference must not contain whitespace")),
        ("third",                      Err("destination prefix must start with a registry host (e.g. harbor.example/mirror)")),
        ("third/x",                    Err("destination prefix must start with a registry host (e.g. harbor.example/mirror)")),
        // Uppercase letters make a host in a reference, not in a prefix.
        ("Third/x",                    Err("destination prefix must start with a registry host (e.g. harbor.example/mirror)")),
        ("harbor.example/third:v1",    Err("destination prefix must not have a tag or digest")),
        ("harbor.example/x@sha256:ab", Err("destination prefix must not have a tag or digest")),
        ("harbor.example/Third",       Err("repository name must be lowercase")),
        ("harbor.example//x",          Err(r#"repository path "/x" has an empty component"#)),
        ("harbor.example/x//",         Err(r#"repository path "x/" has an empty component"#)),
        ("harbor..example/x",          Err(r#"invalid registry host "harbor..example": empty host component"#)),
        ("http://127.0.0.1:5000/x",    Err(r#"remove "http://": a destination is HOST[/PATH]; for plain HTTP use --dest-tls-verify=false"#)),
        ("https://harbor.example/x",   Err(r#"remove "https://": a destination is HOST[/PATH]"#)),
        ("docker://harbor.example",    Err(r#"remove "docker://": a destination is HOST[/PATH]"#)),
    ];

    #[test]
    fn prefix_parse() {
        for (input, expected) in PREFIXES {
            let result = RepoPrefix::parse(input);
            let parts = result
                .as_ref()
                .map(|prefix| (prefix.domain(), prefix.path()));
            assert_eq!(
                parts.map_err(ToString::to_string),
                expected.map_err(str::to_owned),
                "input {input:?}"
            );
            if let Ok(prefix) = &result {
                assert_eq!(RepoPrefix::parse(&prefix.to_string()).as_ref(), Ok(prefix));
            }
        }
        let with_trailing_slash = RepoPrefix::parse("harbor.example/a/b/").unwrap();
        assert_eq!(with_trailing_slash.to_string(), "harbor.example/a/b");
        assert_eq!(
            RepoPrefix::parse("localhost:5000/").unwrap().to_string(),
            "localhost:5000"
        );
    }

    /// Prefix, source → scoped target or error message.
    #[rustfmt::skip]
    const SCOPED: &[(&str, &str, Result<&str, &str>)] = &[
        ("harbor.example/third", "nginx:1.25",        Ok("harbor.example/third/docker.io/library/nginx:1.25")),
        ("harbor.example/m/n",   "ghcr.io/o/r:1",     Ok("harbor.example/m/n/ghcr.io/o/r:1")),
        ("harbor.example/m",     "registry-1.docker.io/o/r:1",
                                                      Ok("harbor.example/m/registry-1.docker.io/o/r:1")),
        ("localhost:5000",       concat!("quay.io/a/b@sha256:", hex64!()),
                                                      Ok(concat!("localhost:5000/quay.io/a/b@sha256:", hex64!()))),
        ("harbor.example/m",     concat!("k8s.gcr.io/pause:3.6@sha256:", hex64!()),
                                                      Ok(concat!("harbor.example/m/k8s.gcr.io/pause:3.6@sha256:", hex64!()))),
        ("harbor.example/m",     "localhost:5000/foo:1",
            Err("scoped name would contain \"localhost:5000\", which is not a valid repository path component \
                 (skopeo --scoped cannot create it either)")),
        ("harbor.example",       "Registry.Example.com/x",
            Err("scoped name would contain \"Registry.Example.com\", which is not a valid repository path component \
                 (skopeo --scoped cannot create it either)")),
        ("harbor.example",       "[::1]:5000/x",
            Err("scoped name would contain \"[::1]:5000\", which is not a valid repository path component \
                 (skopeo --scoped cannot create it either)")),
    ];

    #[test]
    fn scoped_targets() {
        for (prefix, source, expected) in SCOPED {
            let prefix = RepoPrefix::parse(prefix).unwrap();
            let result = prefix.scoped(&ImageRef::parse(source).unwrap());
            if let Ok(target) = &result {
                assert_eq!(ImageRef::parse(&target.to_string()).as_ref(), Ok(target));
            }
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(shown(result), expected, "{source:?} under {prefix}");
        }
    }

    #[test]
    fn only_sha256_digests_pass_the_content_check() {
        assert!(check_sha256_digest(SHA256).is_ok());
        for bad in [
            "sha512:aa",
            "sha256:ABCDEF",
            SHA512,
            "sha256:../../../../x",
            &format!("sha256:{}", "g".repeat(64)),
            &SHA256[..70],
            &format!("{SHA256}/x"),
        ] {
            assert!(check_sha256_digest(bad).is_err(), "{bad}");
        }
        let long = format!("sha256:{}\x1b[2J", "a".repeat(200));
        let message = check_sha256_digest(&long).unwrap_err();
        assert!(
            message.len() < 150 && !message.contains('\x1b'),
            "{message}"
        );
    }

    #[test]
    fn parts_survive_every_change_and_order_by_part() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost:5000/team/app:1.0@{digest}")).unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "team/app", Some("1.0"))
        );
        assert_eq!(r.digest().map(str::len), Some(71));
        let bare = r.without_digest().without_tag();
        assert_eq!(bare.to_string(), "localhost:5000/team/app");
        assert!(bare.is_whole_repository() && bare.tag().is_none() && bare.digest().is_none());
        let tagged = bare.with_tag("2").unwrap();
        assert_eq!((tagged.tag(), tagged.digest()), (Some("2"), None));
        let pinned = bare.with_digest(r.digest().unwrap()).unwrap();
        assert_eq!((pinned.tag(), pinned.digest()), (None, r.digest()));
        assert_eq!(
            r.without_tag().to_string(),
            format!("localhost:5000/team/app@{}", r.digest().unwrap())
        );
        // By domain first: `a.b` before `a.b.c`, though `/` sorts after `.` in the text.
        let (short, long) = (
            ImageRef::parse("a.b/x").unwrap(),
            ImageRef::parse("a.b.c/x").unwrap(),
        );
        assert!(short < long);
        let (a, b) = (
            ImageRef::parse("localhost/x").unwrap(),
            ImageRef::parse("localhost.x/x").unwrap(),
        );
        assert!(a < b, "by domain, not by text");
    }
}
