//! What the native engine reads in a manifest: its type (OCI or Docker, index or image), the
//! manifests an index names, the blobs an image needs. Anything it cannot copy exactly (schema
//! 1, an unknown type, a foreign layer, a digest that is not sha256) is refused with the
//! reason, never converted. Pure.

use serde::Deserialize;

use crate::reference::check_sha256_digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
/// Layers a registry may refuse to store and whose manifests point elsewhere for them.
const FOREIGN_LAYERS: [&str; 4] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// A content descriptor: what a manifest says of a blob or another manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub urls: Vec<String>,
}

/// A manifest read as ferry copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The media type it is written with (what the registry and the body say).
    pub media_type: String,
    /// The manifests an index names (empty for an image).
    pub children: Vec<Descriptor>,
    /// The config and layers of an image (empty for an index).
    pub blobs: Vec<Descriptor>,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
}

/// Reads `bytes`, served with `content_type`. The type is the body's `mediaType`, else the
/// `Content-Type`, else (OCI leaves `mediaType` optional) what the body's shape says.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest ({e})"))?;
    let served = content_type.filter(|t| !t.is_empty() && *t != "application/json");
    if raw.schema_version == Some(1)
        || raw
            .media_type
            .as_deref()
            .or(served)
            .is_some_and(|t| DOCKER_SCHEMA1.contains(&t))
    {
        return Err(
            "a Docker schema 1 manifest: ferry copies schema 2 and OCI images only, \
                    byte for byte, and will not convert it (skopeo without \
                    --preserve-digests can, changing its digest)"
                .to_owned(),
        );
    }
    let media_type = match (raw.media_type.as_deref(), served) {
        (Some(body), _) => body.to_owned(),
        (None, Some(served)) => served.to_owned(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) if raw.config.is_some() => OCI_MANIFEST.to_owned(),
        (None, None) => return Err("a manifest of no known type".to_owned()),
    };
    let manifest = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => Manifest {
            children: raw
                .manifests
                .ok_or_else(|| format!("a {media_type} without manifests"))?,
            blobs: Vec::new(),
            media_type,
        },
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .ok_or_else(|| format!("a {media_type} without a config"))?;
            let mut blobs = vec![config];
            blobs.extend(raw.layers.unwrap_or_default());
            Manifest {
                children: Vec::new(),
                blobs,
                media_type,
            }
        }
        other => {
            return Err(format!(
                "a manifest of type {other}, which ferry does not copy"
            ))
        }
    };
    for descriptor in manifest.children.iter().chain(&manifest.blobs) {
        check_sha256_digest(&descriptor.digest)?;
        if FOREIGN_LAYERS.contains(&descriptor.media_type.as_str()) || !descriptor.urls.is_empty() {
            return Err(format!(
                "layer {} is a foreign (non-distributable) layer ({}): ferry does not copy \
                 layers a registry may not hold",
                descriptor.digest, descriptor.media_type
            ));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn descriptor(media_type: &str, c: char, extra: &str) -> String {
        format!(
            r#"{{"mediaType":"{media_type}","digest":"{}","size":7{extra}}}"#,
            digest(c)
        )
    }

    #[test]
    fn images_and_indexes_of_both_families_are_read_as_they_are() {
        let layer = descriptor("application/vnd.oci.image.layer.v1.tar", 'b', "");
        let config = descriptor("application/vnd.oci.image.config.v1+json", 'a', "");
        let oci = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[{layer}]}}"#
        );
        let read = parse(
            oci.as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json"),
        )
        .unwrap();
        assert_eq!(read.media_type, OCI_MANIFEST);
        assert_eq!(
            read.blobs
                .iter()
                .map(|d| d.digest.clone())
                .collect::<Vec<_>>(),
            [digest('a'), digest('b')]
        );
        assert!(!read.is_index());
        // OCI lets the body leave mediaType out: the Content-Type, else the shape, tells.
        let bare = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[]}}"#);
        assert_eq!(
            parse(bare.as_bytes(), Some(DOCKER_MANIFEST))
                .unwrap()
                .media_type,
            DOCKER_MANIFEST
        );
        assert_eq!(
            parse(bare.as_bytes(), None).unwrap().media_type,
            OCI_MANIFEST
        );
        let child = descriptor(
            DOCKER_MANIFEST,
            'c',
            r#","platform":{"architecture":"arm64","os":"linux"}"#,
        );
        let list =
            format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{child}]}}"#);
        let read = parse(list.as_bytes(), Some("application/json")).unwrap();
        assert!(read.is_index());
        assert_eq!(read.media_type, DOCKER_LIST);
        assert_eq!(read.children[0].digest, digest('c'));
        assert_eq!(read.children[0].media_type, DOCKER_MANIFEST);
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{child}]}}"#);
        assert_eq!(parse(index.as_bytes(), None).unwrap().media_type, OCI_INDEX);
    }

    #[test]
    fn what_cannot_be_copied_exactly_is_refused_with_the_reason() {
        let config = descriptor("application/vnd.oci.image.config.v1+json", 'a', "");
        let foreign = descriptor(FOREIGN_LAYERS[0], 'b', "");
        let with_urls = descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            'b',
            r#","urls":["https://example.com/layer"]"#,
        );
        let image = |layer: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{config},"layers":[{layer}]}}"#
            )
        };
        let bad_digest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:../../etc","size":1}]}"#;
        let table: [(String, Option<&str>, &str); 6] = [
            (r#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#.into(), None, "schema 1"),
            ("{}".into(), Some("application/vnd.docker.distribution.manifest.v1+prettyjws"), "schema 1"),
            (image(&foreign), None, "foreign"),
            (image(&with_urls), None, "foreign"),
            (bad_digest.into(), None, "not a sha256 digest"),
            (r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#.into(), None, "which ferry does not copy"),
        ];
        for (body, content_type, reason) in table {
            let error = parse(body.as_bytes(), content_type).unwrap_err();
            assert!(error.contains(reason), "{body}: {error}");
        }
        assert!(parse(b"<html>", None)
            .unwrap_err()
            .starts_with("not a manifest"));
    }
}
