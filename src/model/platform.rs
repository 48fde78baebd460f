//! Platform subsets (`--platform os/arch[/variant],…`): which platforms a run mirrors, which
//! children of an index they keep, the index of just those that is written in place of
//! upstream's, and what that index records of upstream (its digest and the platforms asked
//! for, in annotations), so that a plan compares upstream's digest with the one it recorded.
//! Pure: the plan and the native engine do the reading and writing.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Job, Target};
use crate::reference::check_sha256_digest;

/// The annotation on a written index naming the digest of upstream's index it was made from.
pub const UPSTREAM_DIGEST: &str = "io.ferry.upstream.digest";
/// The annotation on a written index naming the platforms it keeps, as `--platform` asked
/// (canonical: sorted, comma-separated).
pub const PLATFORMS: &str = "io.ferry.platforms";
/// The media type of every index ferry writes for a platform subset.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// buildx's annotations on an attestation manifest: its kind, and the image it attests.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION: &str = "attestation-manifest";
/// Platforms of a source named in a reason, at most.
const NAMED_AT_MOST: usize = 8;

/// One platform as `--platform` names it: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// `None` matches every variant of the architecture.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (lowercased; `x86_64` is `amd64`, `aarch64` is `arm64`, and
    /// `arm64/v8` is `arm64`, its only variant).
    pub fn parse(text: &str) -> Result<Platform, String> {
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(format!(
                "\"{text}\" is not os/arch or os/arch/variant (e.g. linux/arm64, linux/arm/v7)"
            ));
        }
        for part in &parts {
            let valid = !part.is_empty()
                && part.len() <= 32
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(format!(
                    "\"{text}\": \"{part}\" is not a platform part (letters, digits, '.', '_' \
                     and '-', at most 32)"
                ));
            }
        }
        Ok(Platform::normalized(
            parts[0],
            parts[1],
            parts.get(2).copied(),
        ))
    }

    fn normalized(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let architecture = match architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            "i386" => "386".to_owned(),
            other => other.to_owned(),
        };
        let variant = variant
            .map(str::to_ascii_lowercase)
            .filter(|v| !v.is_empty())
            .filter(|v| !(architecture == "arm64" && v == "v8"));
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// The platform a descriptor's `platform` object (or an image config, which has the same
    /// fields) names; `None` when it names no os and architecture.
    fn of(value: &Value) -> Option<Platform> {
        let field = |name: &str| value.get(name).and_then(Value::as_str);
        let (os, architecture) = (field("os")?, field("architecture")?);
        Some(Platform::normalized(os, architecture, field("variant")))
    }

    fn matches(&self, found: &Platform) -> bool {
        self.os == found.os
            && self.architecture == found.architecture
            && (self.variant.is_none() || self.variant == found.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// The platforms a run mirrors: never empty, each once, in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platforms(Vec<Platform>);

impl Platforms {
    /// Parses every `--platform` value, each `os/arch[/variant]` or a comma-separated list of
    /// them; `None` when none was given.
    pub fn parse(values: &[String]) -> Result<Option<Platforms>, String> {
        let mut platforms = Vec::new();
        for value in values {
            for item in value.split(',') {
                if item.trim().is_empty() {
                    return Err(format!(
                        "\"{value}\" has an empty item: write os/arch[/variant],…"
                    ));
                }
                platforms.push(Platform::parse(item)?);
            }
        }
        platforms.sort();
        platforms.dedup();
        Ok((!platforms.is_empty()).then_some(Platforms(platforms)))
    }

    /// `linux/amd64,linux/arm64`: what the written index records, and what `--platform` takes.
    pub fn label(&self) -> String {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        names.join(",")
    }

    /// Whether a descriptor's `platform` (or an image config) is one of these.
    pub fn matches(&self, platform: &Value) -> bool {
        Platform::of(platform).is_some_and(|found| self.0.iter().any(|p| p.matches(&found)))
    }

    /// The flags that ask for these platforms again (a rerun, a fingerprint).
    pub fn as_flags(&self) -> Vec<String> {
        vec!["--platform".to_owned(), self.label()]
    }
}

/// Whether the platform filter applies to `job`: to every job whose target has a name (a
/// tag). A job pinned by digest alone is written at upstream's digest, which only upstream's
/// whole image has, so it is copied whole.
pub fn applies_to(job: &Job) -> bool {
    match &job.target {
        Target::Registry(target) => target.tag().is_some(),
        Target::Oci { name, .. } => name.is_some(),
    }
}

/// What a platform filter did to one image, for the plan, the results and the reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PlatformFilter {
    /// The target holds (or was given) an index of just `platforms`, recording `upstream`,
    /// the digest of the index it was made from. Its own digest is another.
    Filtered { upstream: String, platforms: String },
    /// The source has none of the platforms asked for: nothing is copied.
    Skipped { reason: String },
}

/// What an index ferry wrote records of its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The digest of upstream's index (checked to be a sha256 digest).
    pub upstream: String,
    /// The platforms it keeps, as [`Platforms::label`] wrote them.
    pub platforms: String,
}

/// What a manifest (a target's, read back) records of its upstream: `None` for anything but
/// an index ferry wrote for a platform subset.
pub fn recorded(bytes: &[u8]) -> Option<Recorded> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    value.get("manifests")?;
    let annotations = value.get("annotations")?;
    let upstream = annotations.get(UPSTREAM_DIGEST)?.as_str()?;
    check_sha256_digest(upstream).ok()?;
    let platforms = annotations.get(PLATFORMS)?.as_str()?;
    Some(Recorded {
        upstream: upstream.to_owned(),
        platforms: platforms.to_owned(),
    })
}

/// What filtering an index for some platforms gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every child is kept: upstream's index is copied as it is, digest and all.
    Whole,
    /// None of its children is of a platform asked for: why, naming the ones it has.
    Nothing(String),
    /// An OCI index of the children kept (their places in upstream's `manifests`, in order),
    /// recording upstream's digest and the platforms.
    Subset { bytes: Vec<u8>, kept: Vec<usize> },
}

/// Filters the index `bytes` (upstream's, whose digest is `upstream`) for `platforms`: the
/// children of those platforms are kept, and so are the attestation manifests (buildx's
/// `unknown/unknown` children annotated `vnd.docker.reference.type: attestation-manifest`)
/// of a child kept; every other child is dropped. The index written in its place is an OCI
/// index whatever upstream's type: Docker's manifest list has no annotations, and registries
/// that check its schema refuse one that has them. Its children keep their own types and
/// digests.
pub fn filter_index(
    bytes: &[u8],
    upstream: &str,
    platforms: &Platforms,
) -> Result<Filtered, String> {
    let index: Value = serde_json::from_slice(bytes).map_err(|e| format!("not an index ({e})"))?;
    let children = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("an index without manifests")?;
    let platform_of = |child: &Value| child.get("platform").cloned().unwrap_or(Value::Null);
    let mut kept: Vec<usize> = Vec::new();
    let mut kept_digests = HashSet::new();
    for (at, child) in children.iter().enumerate() {
        if platforms.matches(&platform_of(child)) {
            kept.push(at);
            kept_digests.insert(child.get("digest").and_then(Value::as_str));
        }
    }
    if kept.is_empty() {
        return Ok(Filtered::Nothing(nothing_reason(children, platforms)));
    }
    for (at, child) in children.iter().enumerate() {
        let annotations = child.get("annotations");
        let annotation = |key| annotations.and_then(|a| a.get(key)).and_then(Value::as_str);
        if annotation(REFERENCE_TYPE) == Some(ATTESTATION)
            && kept_digests.contains(&annotation(REFERENCE_DIGEST))
            && !kept.contains(&at)
        {
            kept.push(at);
        }
    }
    kept.sort_unstable();
    if kept.len() == children.len() {
        return Ok(Filtered::Whole);
    }
    let mut annotations: BTreeMap<String, Value> = match index.get("annotations") {
        Some(Value::Object(own)) if is_oci(&index) => {
            own.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        _ => BTreeMap::new(),
    };
    annotations.insert(UPSTREAM_DIGEST.to_owned(), Value::from(upstream));
    annotations.insert(PLATFORMS.to_owned(), Value::from(platforms.label()));
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Written<'a> {
        schema_version: u32,
        media_type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        artifact_type: Option<&'a Value>,
        manifests: Vec<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<&'a Value>,
        annotations: BTreeMap<String, Value>,
    }
    let written = Written {
        schema_version: 2,
        media_type: OCI_INDEX,
        artifact_type: index.get("artifactType").filter(|_| is_oci(&index)),
        manifests: kept.iter().map(|&at| &children[at]).collect(),
        subject: index.get("subject").filter(|_| is_oci(&index)),
        annotations,
    };
    let bytes = serde_json::to_vec(&written).expect("JSON always serializes");
    Ok(Filtered::Subset { bytes, kept })
}

fn is_oci(index: &Value) -> bool {
    index.get("mediaType").and_then(Value::as_str) != Some(DOCKER_LIST)
}

/// Why no child of an index is kept: the platforms it has, and those asked for.
fn nothing_reason(children: &[Value], platforms: &Platforms) -> String {
    let mut named: Vec<String> = Vec::new();
    for child in children {
        let name = child.get("platform").map_or_else(
            || "no platform".to_owned(),
            |p| Platform::of(p).map_or_else(|| "no platform".to_owned(), |p| shown(&p)),
        );
        if !named.contains(&name) {
            named.push(name);
        }
    }
    let more = named.len().saturating_sub(NAMED_AT_MOST);
    named.truncate(NAMED_AT_MOST);
    let mut list = named.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    format!(
        "the source's index holds {list}, none of --platform {}",
        platforms.label()
    )
}

/// Why a single-platform image is not kept; `None` when it is. `config` is its config blob.
pub fn image_mismatch(config: &[u8], platforms: &Platforms) -> Option<String> {
    let value: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
    if platforms.matches(&value) {
        return None;
    }
    let is = Platform::of(&value).map_or_else(
        || "an image whose config names no platform".to_owned(),
        |p| format!("an image for {} only", shown(&p)),
    );
    Some(format!(
        "the source is {is}, not one of --platform {}",
        platforms.label()
    ))
}

/// A platform a registry named, as a reason shows it: each part at most 32 characters.
fn shown(platform: &Platform) -> String {
    let cut = |part: &str| part.chars().take(32).collect::<String>();
    let mut text = format!("{}/{}", cut(&platform.os), cut(&platform.architecture));
    if let Some(variant) = &platform.variant {
        text.push('/');
        text.push_str(&cut(variant));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn platforms(text: &str) -> Platforms {
        Platforms::parse(&[text.to_owned()]).unwrap().unwrap()
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn child(c: char, os: &str, arch: &str, variant: Option<&str>) -> Value {
        let mut platform = json!({ "os": os, "architecture": arch });
        if let Some(variant) = variant {
            platform["variant"] = json!(variant);
        }
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(c),
            "size": 100,
            "platform": platform,
        })
    }

    fn attestation(c: char, of: char) -> Value {
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(c),
            "size": 50,
            "platform": { "os": "unknown", "architecture": "unknown" },
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": digest(of),
            },
        })
    }

    #[test]
    fn platforms_parse_normalized_sorted_and_once() {
        let parsed = Platforms::parse(&[
            "linux/arm64, Linux/X86_64".to_owned(),
            "linux/arm/v7".to_owned(),
            "linux/aarch64/v8".to_owned(),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(parsed.label(), "linux/amd64,linux/arm/v7,linux/arm64");
        assert_eq!(parsed.as_flags(), ["--platform", &parsed.label()]);
        assert_eq!(Platforms::parse(&[]).unwrap(), None);
        for (bad, says) in [
            ("linux", "is not os/arch or os/arch/variant"),
            ("linux/arm/v7/x", "is not os/arch or os/arch/variant"),
            ("linux//v7", "\"\" is not a platform part"),
            ("linux/amd64,", "has an empty item"),
            ("linux/am d64", "\"am d64\" is not a platform part"),
        ] {
            let error = Platforms::parse(&[bad.to_owned()]).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn a_platform_without_a_variant_matches_every_variant() {
        let arm = platforms("linux/arm,linux/arm64");
        let on = |os: &str, arch: &str, variant: Option<&str>| {
            child('a', os, arch, variant)["platform"].clone()
        };
        assert!(arm.matches(&on("linux", "arm", Some("v6"))));
        assert!(arm.matches(&on("linux", "arm", Some("v7"))));
        assert!(arm.matches(&on("linux", "arm64", Some("v8"))));
        assert!(arm.matches(&on("linux", "aarch64", None)));
        assert!(!arm.matches(&on("linux", "amd64", None)));
        assert!(!arm.matches(&on("windows", "arm64", None)));
        assert!(!arm.matches(&Value::Null));
        let v7 = platforms("linux/arm/v7");
        assert!(v7.matches(&on("linux", "arm", Some("v7"))));
        assert!(!v7.matches(&on("linux", "arm", Some("v6"))));
        assert!(!v7.matches(&on("linux", "arm", None)));
        // arm64's only variant is v8, named or not.
        assert!(platforms("linux/arm64/v8").matches(&on("linux", "arm64", None)));
    }

    #[test]
    fn an_index_keeps_its_platforms_and_their_attestations() {
        let upstream = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                child('a', "linux", "amd64", None),
                child('b', "linux", "arm64", Some("v8")),
                child('c', "linux", "s390x", None),
                attestation('d', 'a'),
                attestation('e', 'b'),
            ],
            "annotations": { "org.opencontainers.image.version": "1.2" },
        });
        let bytes = serde_json::to_vec(&upstream).unwrap();
        let up = digest('f');
        let Filtered::Subset {
            bytes: written,
            kept,
        } = filter_index(&bytes, &up, &platforms("linux/arm64")).unwrap()
        else {
            panic!("a subset")
        };
        assert_eq!(kept, [1, 4]);
        let index: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(
            index["manifests"],
            json!([upstream["manifests"][1], upstream["manifests"][4]])
        );
        assert_eq!(
            index["annotations"],
            json!({
                "org.opencontainers.image.version": "1.2",
                UPSTREAM_DIGEST: up,
                PLATFORMS: "linux/arm64",
            })
        );
        assert_eq!(
            recorded(&written),
            Some(Recorded {
                upstream: up.clone(),
                platforms: "linux/arm64".to_owned()
            })
        );
        // The same input writes the same bytes: a rerun's index has the same digest.
        let again = filter_index(&bytes, &up, &platforms("linux/arm64")).unwrap();
        assert_eq!(
            again,
            Filtered::Subset {
                bytes: written,
                kept: vec![1, 4]
            }
        );
        // Every platform kept: upstream's index as it is.
        assert_eq!(
            filter_index(
                &bytes,
                &up,
                &platforms("linux/amd64,linux/arm64,linux/s390x")
            )
            .unwrap(),
            Filtered::Whole
        );
        assert_eq!(
            filter_index(&bytes, &up, &platforms("linux/ppc64le")).unwrap(),
            Filtered::Nothing(
                "the source's index holds linux/amd64, linux/arm64, linux/s390x, \
                 unknown/unknown, none of --platform linux/ppc64le"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_docker_list_becomes_an_oci_index_with_its_children_as_they_are() {
        let docker_child = |c: char, arch: &str| {
            json!({
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": digest(c),
                "size": 528,
                "platform": { "architecture": arch, "os": "linux" },
            })
        };
        let list = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [docker_child('a', "amd64"), docker_child('b', "arm64")],
        });
        let bytes = serde_json::to_vec(&list).unwrap();
        let Filtered::Subset {
            bytes: written,
            kept,
        } = filter_index(&bytes, &digest('f'), &platforms("linux/arm64")).unwrap()
        else {
            panic!("a subset")
        };
        assert_eq!(kept, [1]);
        let index: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["manifests"], json!([list["manifests"][1]]));
        assert_eq!(
            index["annotations"].as_object().unwrap().len(),
            2,
            "{index}"
        );
    }

    #[test]
    fn only_an_index_ferry_wrote_records_upstream() {
        let index = |annotations: Value| {
            serde_json::to_vec(
                &json!({ "schemaVersion": 2, "manifests": [], "annotations": annotations }),
            )
            .unwrap()
        };
        let good = index(json!({ UPSTREAM_DIGEST: digest('a'), PLATFORMS: "linux/arm64" }));
        assert_eq!(recorded(&good).unwrap().upstream, digest('a'));
        for bad in [
            index(json!({ UPSTREAM_DIGEST: "sha256:../../x", PLATFORMS: "linux/arm64" })),
            index(json!({ UPSTREAM_DIGEST: digest('a') })),
            index(json!({})),
            br#"{"schemaVersion":2,"config":{},"layers":[],"annotations":{}}"#.to_vec(),
            b"not json".to_vec(),
        ] {
            assert_eq!(recorded(&bad), None, "{}", String::from_utf8_lossy(&bad));
        }
    }

    #[test]
    fn a_single_image_is_kept_by_its_configs_platform() {
        let asked = platforms("linux/arm64");
        let config = |value: Value| serde_json::to_vec(&value).unwrap();
        assert_eq!(
            image_mismatch(
                &config(json!({"os": "linux", "architecture": "arm64"})),
                &asked
            ),
            None
        );
        assert_eq!(
            image_mismatch(
                &config(json!({"os": "linux", "architecture": "amd64"})),
                &asked
            )
            .unwrap(),
            "the source is an image for linux/amd64 only, not one of --platform linux/arm64"
        );
        assert_eq!(
            image_mismatch(b"{}", &asked).unwrap(),
            "the source is an image whose config names no platform, not one of --platform \
             linux/arm64"
        );
    }
}
