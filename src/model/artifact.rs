//! What travels with an image under `--signatures`: which artifacts to copy (a [`Selection`]),
//! what one artifact is ([`ArtifactKind`]: one of cosign's tags, or an OCI 1.1 referrer), and
//! what became of it ([`ArtifactResult`], counted in [`ArtifactCounts`]).

use serde::{Deserialize, Serialize};

use super::ImageError;

/// The cosign tag suffixes, in the order they are looked up.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// What kind of artifact belongs to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// cosign's `sha256-<hex>.sig`.
    Signature,
    /// cosign's `sha256-<hex>.att`.
    Attestation,
    /// cosign's `sha256-<hex>.sbom`.
    Sbom,
    /// An OCI 1.1 referrer: a manifest whose `subject` is the image, known by its digest.
    Referrer,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Signature => "signature",
            ArtifactKind::Attestation => "attestation",
            ArtifactKind::Sbom => "sbom",
            ArtifactKind::Referrer => "referrer",
        }
    }

    /// The kind of cosign's tag with `suffix` (`sig`, `att`, `sbom`).
    pub fn of_suffix(suffix: &str) -> Option<ArtifactKind> {
        match suffix {
            "sig" => Some(ArtifactKind::Signature),
            "att" => Some(ArtifactKind::Attestation),
            "sbom" => Some(ArtifactKind::Sbom),
            _ => None,
        }
    }
}

/// What became of one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactState {
    /// Copied in this run.
    Copied,
    /// Already at the target with the source's digest: nothing done.
    Current,
    /// Could not be copied (see its error).
    Failed,
    /// A referrer that exists only by digest, which only the native engine copies.
    NeedsNative,
}

impl ArtifactState {
    pub const ALL: [ArtifactState; 4] = [
        ArtifactState::Copied,
        ArtifactState::Current,
        ArtifactState::Failed,
        ArtifactState::NeedsNative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactState::Copied => "copied",
            ArtifactState::Current => "current",
            ArtifactState::Failed => "failed",
            ArtifactState::NeedsNative => "needs-native",
        }
    }
}

/// One artifact of an image, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactResult {
    pub kind: ArtifactKind,
    /// The digest it belongs to: the image's own, or one of its platforms'.
    pub subject: String,
    /// cosign's tag (`sha256-<hex>.sig`); `None` for a referrer.
    pub tag: Option<String>,
    /// The artifact's own manifest digest (the same at the source and the target).
    pub digest: String,
    /// A referrer's `artifactType` (its config's media type when it names none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub state: ArtifactState,
    pub error: Option<ImageError>,
}

impl ArtifactResult {
    /// How reports name it: its tag, else its digest.
    pub fn name(&self) -> &str {
        self.tag.as_deref().unwrap_or(&self.digest)
    }
}

/// Artifacts by state, over an image or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArtifactCounts {
    pub copied: usize,
    pub current: usize,
    pub failed: usize,
    pub needs_native: usize,
}

impl ArtifactCounts {
    pub fn of<'a>(artifacts: impl IntoIterator<Item = &'a ArtifactResult>) -> ArtifactCounts {
        let mut counts = ArtifactCounts::default();
        counts.add(artifacts);
        counts
    }

    /// Counts `artifacts` in.
    pub fn add<'a>(&mut self, artifacts: impl IntoIterator<Item = &'a ArtifactResult>) {
        for artifact in artifacts {
            *self.slot(artifact.state) += 1;
        }
    }

    pub fn get(&self, state: ArtifactState) -> usize {
        match state {
            ArtifactState::Copied => self.copied,
            ArtifactState::Current => self.current,
            ArtifactState::Failed => self.failed,
            ArtifactState::NeedsNative => self.needs_native,
        }
    }

    fn slot(&mut self, state: ArtifactState) -> &mut usize {
        match state {
            ArtifactState::Copied => &mut self.copied,
            ArtifactState::Current => &mut self.current,
            ArtifactState::Failed => &mut self.failed,
            ArtifactState::NeedsNative => &mut self.needs_native,
        }
    }

    pub fn total(&self) -> usize {
        self.copied + self.current + self.failed + self.needs_native
    }
}

/// Which artifacts `--signatures` copies: cosign's tags by suffix, and the referrers (all of
/// them, or those of the named `artifactType`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// cosign tag suffixes (`sig`, `att`, `sbom`), in [`COSIGN_SUFFIXES`] order.
    pub suffixes: Vec<&'static str>,
    pub referrers: Referrers,
}

/// Which referrers a [`Selection`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referrers {
    None,
    All,
    /// Those whose `artifactType` is one of these.
    Types(Vec<String>),
}

impl Selection {
    /// Everything: `--signatures` without a value.
    pub fn all() -> Selection {
        Selection {
            suffixes: COSIGN_SUFFIXES.to_vec(),
            referrers: Referrers::All,
        }
    }

    /// Reads `--signatures=LIST`: a comma-separated list of cosign tag suffixes (`sig`, `att`,
    /// `sbom`), `referrers` (every referrer) and `artifactType`s (media types, `type/subtype`:
    /// the referrers of those types). Empty: everything.
    pub fn parse(list: &str) -> Result<Selection, String> {
        if list.trim().is_empty() {
            return Ok(Selection::all());
        }
        let mut suffixes = Vec::new();
        let mut all_referrers = false;
        let mut types: Vec<String> = Vec::new();
        for item in list.split(',').map(str::trim) {
            if let Some(suffix) = COSIGN_SUFFIXES.iter().find(|s| **s == item) {
                if !suffixes.contains(suffix) {
                    suffixes.push(*suffix);
                }
            } else if item == "referrers" {
                all_referrers = true;
            } else if is_media_type(item) {
                if !types.iter().any(|t| t == item) {
                    types.push(item.to_owned());
                }
            } else {
                return Err(format!(
                    "{item:?} is none of sig, att, sbom, referrers or an artifactType \
                     (a media type such as application/spdx+json)"
                ));
            }
        }
        suffixes.sort_by_key(|s| COSIGN_SUFFIXES.iter().position(|c| c == s));
        let referrers = match (all_referrers, types.is_empty()) {
            (true, _) => Referrers::All,
            (false, true) => Referrers::None,
            (false, false) => Referrers::Types(types),
        };
        Ok(Selection {
            suffixes,
            referrers,
        })
    }

    /// Whether a referrer of `artifact_type` is taken.
    pub fn takes_referrer(&self, artifact_type: Option<&str>) -> bool {
        match &self.referrers {
            Referrers::None => false,
            Referrers::All => true,
            Referrers::Types(types) => {
                artifact_type.is_some_and(|t| types.iter().any(|wanted| wanted == t))
            }
        }
    }

    /// The one `artifactType` a referrers listing can ask the registry to filter on, when the
    /// selection names exactly one.
    pub fn single_type(&self) -> Option<&str> {
        match &self.referrers {
            Referrers::Types(types) if types.len() == 1 => Some(&types[0]),
            _ => None,
        }
    }

    /// The selection as the flag that gives it (for a rerun's command).
    pub fn as_flag(&self) -> String {
        if *self == Selection::all() {
            return "--signatures".to_owned();
        }
        let mut items: Vec<String> = self.suffixes.iter().map(|s| (*s).to_owned()).collect();
        match &self.referrers {
            Referrers::None => {}
            Referrers::All => items.push("referrers".to_owned()),
            Referrers::Types(types) => items.extend(types.iter().cloned()),
        }
        format!("--signatures={}", items.join(","))
    }
}

/// A media type as RFC 6838 writes one: `type/subtype`, each of letters, digits and
/// `!#$&-^_.+`, starting with a letter or digit, at most 127 characters each.
pub fn is_media_type(text: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 127
            && p.starts_with(|c: char| c.is_ascii_alphanumeric())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    matches!(text.split_once('/'), Some((kind, sub)) if part(kind) && part(sub))
}

/// cosign's tag for the artifact of `digest` (a checked `sha256:` digest) with `suffix`:
/// `sha256-<hex>.<suffix>`; with no suffix, the OCI referrers tag schema's `sha256-<hex>`.
pub fn artifact_tag(digest: &str, suffix: Option<&str>) -> String {
    let tag = digest.replacen(':', "-", 1);
    match suffix {
        Some(suffix) => format!("{tag}.{suffix}"),
        None => tag,
    }
}

/// Whether `tag` is one of the tags artifacts live under (cosign's `sha256-<hex>.sig`, `.att`,
/// `.sbom`, or the referrers tag schema's `sha256-<hex>`): with `--signatures` such a tag
/// travels with its subject, not as an image of its own.
pub fn is_artifact_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let (hex, suffix) = match rest.split_once('.') {
        Some((hex, suffix)) => (hex, Some(suffix)),
        None => (rest, None),
    };
    hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && suffix.is_none_or(|s| COSIGN_SUFFIXES.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_reads_suffixes_referrers_and_artifact_types() {
        assert_eq!(Selection::parse("").unwrap(), Selection::all());
        let parsed = Selection::parse("sbom, sig,application/spdx+json,sig").unwrap();
        assert_eq!(parsed.suffixes, ["sig", "sbom"]);
        assert_eq!(
            parsed.referrers,
            Referrers::Types(vec!["application/spdx+json".to_owned()])
        );
        assert_eq!(parsed.single_type(), Some("application/spdx+json"));
        assert!(parsed.takes_referrer(Some("application/spdx+json")));
        assert!(!parsed.takes_referrer(Some("application/vnd.cyclonedx+json")));
        assert!(!parsed.takes_referrer(None));
        assert_eq!(
            parsed.as_flag(),
            "--signatures=sig,sbom,application/spdx+json"
        );
        let referrers = Selection::parse("referrers,application/x").unwrap();
        assert!(referrers.suffixes.is_empty());
        assert_eq!(referrers.referrers, Referrers::All);
        assert!(referrers.takes_referrer(None));
        let tags = Selection::parse("att").unwrap();
        assert_eq!(tags.referrers, Referrers::None);
        assert!(!tags.takes_referrer(Some("application/spdx+json")));
        assert_eq!(Selection::all().as_flag(), "--signatures");
        for bad in ["sigs", "application", "a/b/c", "/json", "x/ y", "sig,,att"] {
            let error = Selection::parse(bad).unwrap_err();
            assert!(
                error.contains("is none of sig, att, sbom"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn artifact_tags_are_named_by_their_subjects_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let sig = artifact_tag(&digest, Some("sig"));
        assert_eq!(sig, format!("sha256-{}.sig", "ab".repeat(32)));
        assert!(is_artifact_tag(&sig));
        assert!(is_artifact_tag(&artifact_tag(&digest, None)));
        assert!(is_artifact_tag(&artifact_tag(&digest, Some("sbom"))));
        for not in [
            "latest".to_owned(),
            "sha256-abc.sig".to_owned(),
            format!("sha256-{}.sigs", "ab".repeat(32)),
            format!("sha256-{}.sig", "AB".repeat(32)),
            format!("sha512-{}", "ab".repeat(64)),
        ] {
            assert!(!is_artifact_tag(&not), "{not}");
        }
    }

    #[test]
    fn counts_add_up_by_state() {
        let artifact = |state| ArtifactResult {
            kind: ArtifactKind::Signature,
            subject: "sha256:a".into(),
            tag: Some("t".into()),
            digest: "sha256:b".into(),
            artifact_type: None,
            state,
            error: None,
        };
        let list = [
            artifact(ArtifactState::Copied),
            artifact(ArtifactState::Copied),
            artifact(ArtifactState::NeedsNative),
        ];
        let counts = ArtifactCounts::of(&list);
        assert_eq!(counts.copied, 2);
        assert_eq!(counts.needs_native, 1);
        assert_eq!(counts.get(ArtifactState::Failed), 0);
        assert_eq!(counts.total(), 3);
        assert_eq!(list[0].name(), "t");
    }
}
