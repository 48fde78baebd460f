//! What belongs to an image under `--signatures`, and which of it a target already holds: the
//! lookups `sync` makes before it copies an image's artifacts and `verify` makes to check
//! them. Nothing here writes but [`write_fallback_index`], the referrers tag schema's index
//! at a destination without the referrers API.
//!
//! An image's artifacts are looked for under its own digest and, for an index, each of its
//! platforms' digests (the subjects): cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`, one
//! `HEAD` each), and its OCI 1.1 referrers (`GET /v2/<name>/referrers/<digest>`, or, where the
//! registry has no referrers API and answers 404, the index under the referrers tag schema's
//! `sha256-<hex>` tag). A registry found without the API is asked for the tag straight away
//! for the rest of the run. Every digest is checked before it is put in a URL, and every read
//! is bounded (4 MiB a manifest or listing, 1,000 referrers a subject, 1,000 platforms).

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::model::{
    artifact_tag, ArtifactKind, FailureKind, ImageError, Selection, Side, COSIGN_SUFFIXES,
};
use crate::reference::check_sha256_digest;
use crate::registry::api::{parse_referrers, Referrer};
use crate::registry::RegistryClient;

/// The most platforms (children of an index) whose artifacts are looked for.
pub const MAX_SUBJECTS: usize = 1_000;

/// The OCI image index's media type: what the referrers tag schema's tag holds.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One artifact found at the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: ArtifactKind,
    /// The digest it belongs to.
    pub subject: String,
    /// cosign's tag, for the tag-scheme artifacts.
    pub tag: Option<String>,
    /// Its manifest's digest.
    pub digest: String,
    pub artifact_type: Option<String>,
    /// A referrer's descriptor, as the source listed it.
    pub referrer: Option<Referrer>,
}

/// The referrers a registry lists for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub referrers: Vec<Referrer>,
    /// Whether they came from the referrers API (else from the referrers tag schema's index,
    /// which the registry has no API to keep).
    pub api: bool,
}

impl Listed {
    pub fn holds(&self, digest: &str) -> bool {
        self.referrers.iter().any(|r| r.digest == digest)
    }
}

/// The artifact lookups of one run: it remembers which registries have no referrers API.
#[derive(Default)]
pub struct Lookups {
    /// `(side, endpoint host)` of the registries that answered a referrers request with 404.
    no_api: Mutex<HashSet<(bool, String)>>,
}

impl Lookups {
    /// The subjects of the image `digest` of `name` on `side`: its own digest, then, for an
    /// index, each platform's (read from the manifest, whose bytes must hash to `digest`).
    pub async fn subjects(
        &self,
        client: &RegistryClient,
        side: Side,
        name: &str,
        digest: &str,
    ) -> Result<Vec<String>, ImageError> {
        check(digest, name)?;
        let what = format!("reading manifest {name}@{digest} for its artifacts");
        let raw = client
            .manifest(side, name, digest, &what)
            .await
            .map_err(|e| e.image_error(side))?
            .ok_or_else(|| {
                ImageError::new(
                    FailureKind::NotFound,
                    format!(
                        "manifest unknown: {name}@{digest} is not there to look for its artifacts"
                    ),
                )
                .on(side)
            })?;
        let hashed = format!("sha256:{:x}", Sha256::digest(&raw.bytes));
        if hashed != digest {
            return Err(ImageError::new(
                FailureKind::Other,
                format!("{what}: digest mismatch: it hashes to {hashed}"),
            ));
        }
        subjects_of(digest, &raw.bytes).map_err(|reason| {
            ImageError::new(FailureKind::Other, format!("{name}@{digest}: {reason}"))
        })
    }

    /// The artifacts of `subjects` in source repository `name` that `selection` takes:
    /// cosign's tags first, then the referrers, subject by subject.
    pub async fn at_source(
        &self,
        client: &RegistryClient,
        name: &str,
        subjects: &[String],
        selection: &Selection,
    ) -> Result<Vec<Found>, ImageError> {
        let side = Side::Source;
        let per_subject: Vec<_> = subjects
            .iter()
            .map(|subject| async move {
                // Collected first: a future over an iterator's closure would not be `Send` for
                // every lifetime.
                let tags: Vec<_> = COSIGN_SUFFIXES
                    .iter()
                    .filter(|s| selection.suffixes.contains(s))
                    .map(|suffix| async move {
                        let tag = artifact_tag(subject, Some(suffix));
                        let digest = client
                            .manifest_digest(side, name, &tag)
                            .await
                            .map_err(|e| e.image_error(side))?;
                        Ok::<_, ImageError>(digest.map(|digest| Found {
                            kind: ArtifactKind::of_suffix(suffix).expect("a cosign suffix"),
                            subject: subject.clone(),
                            tag: Some(tag),
                            digest,
                            artifact_type: None,
                            referrer: None,
                        }))
                    })
                    .collect();
                let listing = async {
                    match selection.referrers {
                        crate::model::Referrers::None => Ok(None),
                        _ => self
                            .listed(client, side, name, subject, selection.single_type())
                            .await
                            .map(Some),
                    }
                };
                let (tags, listed) = tokio::join!(futures_util::future::join_all(tags), listing);
                let mut found = Vec::new();
                for tag in tags {
                    found.extend(tag?);
                }
                if let Some(listed) = listed? {
                    for referrer in listed.referrers {
                        if !selection.takes_referrer(referrer.artifact_type.as_deref())
                            || found
                                .iter()
                                .any(|f| f.digest == referrer.digest && f.tag.is_none())
                        {
                            continue;
                        }
                        found.push(Found {
                            kind: ArtifactKind::Referrer,
                            subject: subject.clone(),
                            tag: None,
                            digest: referrer.digest.clone(),
                            artifact_type: referrer.artifact_type.clone(),
                            referrer: Some(referrer),
                        });
                    }
                }
                Ok::<_, ImageError>(found)
            })
            .collect();
        let mut found = Vec::new();
        for subject in futures_util::future::join_all(per_subject).await {
            found.extend(subject?);
        }
        Ok(found)
    }

    /// The referrers `name` on `side` lists for `subject`: from the referrers API (asked to
    /// filter on `artifact_type` when given), else, where the registry has none, from the
    /// index under the referrers tag schema's tag (none when there is no such tag, or it holds
    /// something else).
    pub async fn listed(
        &self,
        client: &RegistryClient,
        side: Side,
        name: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Listed, ImageError> {
        check(subject, name)?;
        let host = client.endpoint_host(side, name).unwrap_or_default();
        let key = (side == Side::Destination, host);
        let known_without = self.no_api.lock().expect("lock").contains(&key);
        if !known_without {
            let listing = client
                .referrers(side, name, subject, artifact_type)
                .await
                .map_err(|e| e.image_error(side))?;
            if let Some(listing) = listing {
                return Ok(Listed {
                    referrers: listing.referrers,
                    api: true,
                });
            }
            tracing::debug!(
                "{} has no referrers API; reading the referrers tag schema",
                key.1
            );
            self.no_api.lock().expect("lock").insert(key);
        }
        let tag = artifact_tag(subject, None);
        let what = format!("reading the referrers of {name}@{subject} (tag {tag})");
        let raw = client
            .manifest(side, name, &tag, &what)
            .await
            .map_err(|e| e.image_error(side))?;
        let referrers = match raw {
            Some(raw) if is_index(&raw.bytes, raw.content_type.as_deref()) => {
                parse_referrers(&raw.bytes, 0, &what).map_err(|e| e.image_error(side))?
            }
            Some(_) => {
                tracing::info!("{name}:{tag} holds no image index: taken as no referrers");
                Vec::new()
            }
            None => Vec::new(),
        };
        Ok(Listed {
            referrers,
            api: false,
        })
    }
}

/// What a target holds of one artifact of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// At the source's digest (a referrer: listed for its subject, and there).
    Present,
    Missing,
    /// A tag at another digest.
    Mismatch,
}

impl Held {
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Present => "present",
            Held::Missing => "missing",
            Held::Mismatch => "mismatch",
        }
    }
}

/// One artifact of a source image, and what its target holds of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub found: Found,
    pub held: Held,
    /// The digest the target's tag holds, for a mismatch.
    pub target_digest: Option<String>,
}

impl Lookups {
    /// Checks that the target of `source` (repository `source_name`) and `target_name`, whose
    /// image `digest` both hold, holds every artifact `selection` takes: a cosign tag at the
    /// source's digest, a referrer listed for its subject (by the referrers API, or the
    /// referrers tag schema's index) and there by digest.
    pub async fn check(
        &self,
        client: &RegistryClient,
        source_name: &str,
        target_name: &str,
        digest: &str,
        selection: &Selection,
    ) -> Result<Vec<Checked>, ImageError> {
        let side = Side::Destination;
        let subjects = self.subjects(client, side, target_name, digest).await?;
        let found = self
            .at_source(client, source_name, &subjects, selection)
            .await?;
        let mut checked = Vec::with_capacity(found.len());
        let mut listings: Vec<(String, Listed)> = Vec::new();
        for artifact in found {
            let at = match &artifact.tag {
                Some(tag) => tag.clone(),
                None => {
                    let listed = match listings.iter().find(|(s, _)| *s == artifact.subject) {
                        Some((_, listed)) => listed,
                        None => {
                            let listed = self
                                .listed(client, side, target_name, &artifact.subject, None)
                                .await?;
                            listings.push((artifact.subject.clone(), listed));
                            &listings.last().expect("just pushed").1
                        }
                    };
                    if !listed.holds(&artifact.digest) {
                        checked.push(Checked {
                            found: artifact,
                            held: Held::Missing,
                            target_digest: None,
                        });
                        continue;
                    }
                    artifact.digest.clone()
                }
            };
            let held = client
                .manifest_digest(side, target_name, &at)
                .await
                .map_err(|e| e.image_error(side))?;
            let state = match &held {
                Some(held) if *held == artifact.digest => Held::Present,
                Some(_) => Held::Mismatch,
                None => Held::Missing,
            };
            checked.push(Checked {
                found: artifact,
                held: state,
                target_digest: held.filter(|_| state == Held::Mismatch),
            });
        }
        Ok(checked)
    }
}

/// Writes the referrers tag schema's index for `subject` at destination `name`: `listed` (what
/// the tag held) with `added` appended, each descriptor once (OCI distribution spec, "Pushing
/// Manifests with Subject", for a registry without the referrers API).
pub async fn write_fallback_index(
    client: &RegistryClient,
    name: &str,
    subject: &str,
    listed: &[Referrer],
    added: &[&Referrer],
) -> Result<(), ImageError> {
    check(subject, name)?;
    let tag = artifact_tag(subject, None);
    let bytes = fallback_index(listed, added);
    let what = format!("writing the referrers index {name}:{tag}");
    client
        .put_manifest(name, &tag, OCI_INDEX, &bytes, &what)
        .await
        .map_err(|e| e.image_error(Side::Destination))?;
    Ok(())
}

/// The bytes of a referrers tag schema index: `listed`, then each of `added` not among them.
pub fn fallback_index(listed: &[Referrer], added: &[&Referrer]) -> Vec<u8> {
    let mut manifests: Vec<serde_json::Value> = Vec::new();
    let mut seen = HashSet::new();
    for referrer in listed.iter().chain(added.iter().copied()) {
        if seen.insert(referrer.digest.clone()) {
            manifests.push(referrer.raw.clone());
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).expect("an index always serializes")
}

/// The descriptor a referrers listing gives the manifest `digest` (`bytes`, served as
/// `served`), as the OCI distribution spec has a client write it into the referrers tag
/// schema's index: its media type, digest and size, its `artifactType` (its config's media
/// type when it names none, for an image manifest), and its annotations.
pub fn descriptor_of(digest: &str, bytes: &[u8], served: Option<&str>) -> Result<Referrer, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest ({e})"))?;
    let is_index = value["manifests"].is_array();
    let media_type = value["mediaType"]
        .as_str()
        .or(served.filter(|t| !t.is_empty() && *t != "application/json"))
        .unwrap_or(if is_index { OCI_INDEX } else { OCI_MANIFEST })
        .to_owned();
    let artifact_type = value["artifactType"]
        .as_str()
        .or_else(|| {
            (!is_index)
                .then(|| value["config"]["mediaType"].as_str())
                .flatten()
        })
        .map(str::to_owned);
    let mut raw = serde_json::json!({
        "mediaType": media_type,
        "digest": digest,
        "size": bytes.len(),
    });
    if let Some(artifact_type) = &artifact_type {
        raw["artifactType"] = serde_json::Value::from(artifact_type.clone());
    }
    if let Some(annotations) = value.get("annotations").filter(|a| a.is_object()) {
        raw["annotations"] = annotations.clone();
    }
    Ok(Referrer {
        media_type,
        digest: digest.to_owned(),
        size: bytes.len() as u64,
        artifact_type,
        raw,
    })
}

/// `digest` checked before it goes into a URL.
fn check(digest: &str, name: &str) -> Result<(), ImageError> {
    check_sha256_digest(digest).map_err(|reason| {
        ImageError::new(
            FailureKind::Other,
            format!("{name}: {reason}; its artifacts are not looked for"),
        )
    })
}

/// Whether `bytes` (served as `content_type`) is an image index.
fn is_index(bytes: &[u8], content_type: Option<&str>) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let media_type = value["mediaType"].as_str().or(content_type);
    value["manifests"].is_array()
        && media_type.is_none_or(|t| t == OCI_INDEX || t == "application/json")
}

/// The subjects of the manifest `digest` (`bytes`): the digest itself, then each platform's of
/// an index, each checked, at most [`MAX_SUBJECTS`] of them.
pub fn subjects_of(digest: &str, bytes: &[u8]) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest ({e})"))?;
    let mut subjects = vec![digest.to_owned()];
    let Some(children) = value["manifests"].as_array() else {
        return Ok(subjects);
    };
    if children.len() > MAX_SUBJECTS {
        return Err(format!(
            "its index names more than {MAX_SUBJECTS} manifests; ferry refuses such an image"
        ));
    }
    for child in children {
        let child = child["digest"].as_str().unwrap_or_default();
        check_sha256_digest(child)?;
        if !subjects.iter().any(|s| s == child) {
            subjects.push(child.to_owned());
        }
    }
    Ok(subjects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_index_has_its_own_and_its_platforms_digests_as_subjects() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":1}},{{"digest":"{}","size":1}},{{"digest":"{}","size":1}}]}}"#,
            digest('b'),
            digest('c'),
            digest('b')
        );
        assert_eq!(
            subjects_of(&digest('a'), index.as_bytes()).unwrap(),
            [digest('a'), digest('b'), digest('c')]
        );
        let image = r#"{"schemaVersion":2,"config":{"digest":"sha256:x","size":1},"layers":[]}"#;
        assert_eq!(
            subjects_of(&digest('a'), image.as_bytes()).unwrap(),
            [digest('a')]
        );
        let bad = r#"{"manifests":[{"digest":"sha256:../../x"}]}"#;
        assert!(subjects_of(&digest('a'), bad.as_bytes())
            .unwrap_err()
            .contains("not a sha256 digest"));
        let wide = format!(
            r#"{{"manifests":[{}]}}"#,
            vec![format!(r#"{{"digest":"{}"}}"#, digest('b')); MAX_SUBJECTS + 1].join(",")
        );
        assert!(subjects_of(&digest('a'), wide.as_bytes())
            .unwrap_err()
            .contains("more than 1000"));
    }

    #[test]
    fn a_fallback_index_appends_what_it_lacks_once() {
        let referrer = |c: char, artifact_type: &str| Referrer {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest(c),
            size: 3,
            artifact_type: Some(artifact_type.into()),
            raw: serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(c),
                "size": 3,
                "artifactType": artifact_type,
                "annotations": { "org.example": c.to_string() },
            }),
        };
        let listed = [referrer('a', "application/spdx+json")];
        let sbom = referrer('a', "application/spdx+json");
        let sig = referrer('b', "application/vnd.dev.cosign.artifact.sig.v1+json");
        let bytes = fallback_index(&listed, &[&sbom, &sig]);
        let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["schemaVersion"], 2);
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[1]["digest"], digest('b'));
        assert_eq!(manifests[1]["annotations"]["org.example"], "b");
        assert!(is_index(&bytes, None));
        assert!(!is_index(br#"{"schemaVersion":2,"config":{}}"#, None));
    }

    #[test]
    fn a_referrers_descriptor_comes_from_its_manifest() {
        let sbom = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"digest":"{}"}},"annotations":{{"org.example.kind":"sbom"}}}}"#,
            digest('e'),
            digest('a')
        );
        let read = descriptor_of(&digest('f'), sbom.as_bytes(), None).unwrap();
        assert_eq!(read.artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(read.size, sbom.len() as u64);
        assert_eq!(read.raw["annotations"]["org.example.kind"], "sbom");
        assert_eq!(read.raw["mediaType"], OCI_MANIFEST);
        // Without an artifactType, an image manifest's config media type stands for it.
        let sig = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","digest":"sha256:x","size":2},"layers":[]}"#;
        let read = descriptor_of(&digest('f'), sig.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(
            read.artifact_type.as_deref(),
            Some("application/vnd.dev.cosign.artifact.sig.v1+json")
        );
        assert!(read.raw.get("annotations").is_none());
    }
}
