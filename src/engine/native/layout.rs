//! Local OCI image layouts as the native engine writes them: blobs (manifests too) under
//! `blobs/sha256/`, each written to a temporary file and renamed into place, and `index.json`
//! naming each image by its tag in an `org.opencontainers.image.ref.name` annotation, rewritten
//! whole and renamed, so a reader (skopeo, ferry's planner) never sees half of either. One
//! layout holds every tag of a repository; the scheduler lets one job at a time write it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// The annotation that names an image in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// A fresh temporary file name in `layout`, with skopeo's prefix, so that what an interrupted
/// copy leaves is removed like skopeo's leftovers (see `crate::layout`).
pub fn temp_path(layout: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    layout.join(format!("oci-put-blob-ferry-{}-{n}", std::process::id()))
}

/// The path of blob `digest` (a checked `sha256:` digest) in `layout`.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Whether `layout` holds blob `digest` whole (its size is the descriptor's).
pub fn has_blob(layout: &Path, digest: &str, size: u64) -> bool {
    std::fs::metadata(blob_path(layout, digest)).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Writes `bytes` (a manifest) as blob `digest`.
pub fn write_blob(layout: &Path, digest: &str, bytes: &[u8]) -> io::Result<()> {
    let path = blob_path(layout, digest);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(layout, &path, bytes)
}

/// Names the image `digest` (`media_type`, `size` bytes) in the layout's `index.json` as
/// `name`, or lists it unnamed (a digest pin), with the annotations `recorded` (where it came
/// from, for `--from-dir`); writes `oci-layout` when missing.
pub fn add_to_index(
    layout: &Path,
    media_type: &str,
    digest: &str,
    size: u64,
    name: Option<&str>,
    recorded: &[(&str, &str)],
) -> io::Result<()> {
    let marker = layout.join("oci-layout");
    if !marker.exists() {
        write_atomically(layout, &marker, OCI_LAYOUT.as_bytes())?;
    }
    let path = layout.join("index.json");
    let existing = match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid {}: {e}", path.display()),
            )
        })?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let index = updated_index(existing, media_type, digest, size, name, recorded);
    let bytes = serde_json::to_vec(&index).expect("JSON always serializes");
    write_atomically(layout, &path, &bytes)
}

/// `index` with the image added: one of the same name (or, unnamed, of the same digest and
/// without a name) is replaced, every other entry stays. Pure.
fn updated_index(
    index: Option<Value>,
    media_type: &str,
    digest: &str,
    size: u64,
    name: Option<&str>,
    recorded: &[(&str, &str)],
) -> Value {
    let mut index = index
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({ "schemaVersion": 2, "manifests": [] }));
    let mut entry = json!({ "mediaType": media_type, "digest": digest, "size": size });
    let mut annotations = serde_json::Map::new();
    if let Some(name) = name {
        annotations.insert(REF_NAME.to_owned(), json!(name));
    }
    for (key, value) in recorded {
        annotations.insert((*key).to_owned(), json!(value));
    }
    if !annotations.is_empty() {
        entry["annotations"] = Value::Object(annotations);
    }
    let mut manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    manifests.retain(|m| {
        let named = m["annotations"][REF_NAME].as_str();
        match name {
            Some(name) => named != Some(name),
            None => named.is_some() || m["digest"].as_str() != Some(digest),
        }
    });
    manifests.push(entry);
    index["manifests"] = Value::Array(manifests);
    index
}

fn write_atomically(layout: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(layout);
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(index: &Value) -> Vec<(String, String)> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["annotations"][REF_NAME]
                        .as_str()
                        .unwrap_or("-")
                        .to_owned(),
                    m["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_tag_replaces_its_old_image_and_keeps_the_others() {
        let first = updated_index(None, "m", "sha256:a", 1, Some("1.25"), &[]);
        assert_eq!(first["schemaVersion"], 2);
        let second = updated_index(Some(first), "m", "sha256:b", 1, Some("1.26"), &[]);
        let moved = updated_index(Some(second), "m", "sha256:c", 1, Some("1.25"), &[]);
        let pinned = updated_index(Some(moved), "m", "sha256:b", 1, None, &[]);
        let again = updated_index(Some(pinned), "m", "sha256:b", 1, None, &[]);
        let pair = |n: &str, d: &str| (n.to_owned(), d.to_owned());
        assert_eq!(
            names(&again),
            [
                pair("1.26", "sha256:b"),
                pair("1.25", "sha256:c"),
                pair("-", "sha256:b")
            ]
        );
        assert_eq!(again["manifests"][1]["mediaType"], "m");
    }

    #[test]
    fn files_land_whole_and_leave_no_temporary_file() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let layout = dir.path().join("nginx");
        std::fs::create_dir(&layout).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        write_blob(&layout, &digest, b"{}").unwrap();
        assert!(has_blob(&layout, &digest, 2));
        assert!(!has_blob(&layout, &digest, 3));
        let recorded = [(
            "io.ferry.source.reference",
            "docker.io/library/nginx:latest",
        )];
        add_to_index(&layout, "m", &digest, 2, Some("latest"), &recorded).unwrap();
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(names(&index), [("latest".to_owned(), digest.clone())]);
        assert_eq!(
            index["manifests"][0]["annotations"]["io.ferry.source.reference"],
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
            OCI_LAYOUT
        );
        assert_eq!(crate::layout::remove_temp_blobs(&layout).unwrap(), 0);
    }
}
