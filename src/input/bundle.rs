//! Bundles: what `ferry sync --dest-dir DIR` wrote (one OCI layout per repository, at the
//! path its scoped name gives), read back as a source with `--from-dir DIR`, or the same
//! layouts packed into one tar (`--bundle FILE.tar`) and read from it in place.
//!
//! Every image a layout's `index.json` names becomes an entry `NAME:TAG@DIGEST`: NAME is the
//! source reference ferry recorded on the entry when it wrote it ([`SOURCE_REFERENCE`]), or,
//! for a layout written without it, the name the layout's path under DIR says (ferry's layout
//! path is the scoped name: `docker.io/library/nginx`, `localhost_5000/team/app` for
//! `localhost:5000/team/app`). Everything is checked before it is used: names and tags by
//! the reference grammar, digests as sha256 before they go into a path, sizes bounded, a tar's
//! headers by their checksums and every entry whole, every blob its manifest lists present at
//! its size. What cannot be checked without reading it all (a blob's sha256) is checked as the
//! blob is read for its copy ([`Bundle::locate`] says where its bytes are).

pub mod tar;

use std::collections::HashMap;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{Entry, InputError};
use crate::model::Origin;
use crate::reference::{check_sha256_digest, ImageRef};

/// The annotation on an `index.json` entry naming the source reference the image was copied
/// from (normalized, with its tag).
pub const SOURCE_REFERENCE: &str = "io.ferry.source.reference";
/// The annotation on an `index.json` entry naming the digest the source had when the image was
/// copied (upstream's index, also when `--platform` wrote a subset of it).
pub const SOURCE_DIGEST: &str = "io.ferry.source.digest";
/// The annotation that names an image in `index.json` (its tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The manifest of a bundle tar, its first entry.
pub const MANIFEST_NAME: &str = "ferry-bundle.json";
/// The largest `index.json` or manifest ferry reads from a bundle.
pub const MAX_SMALL_BYTES: u64 = 4 << 20;
/// Directories deep a layout may sit under DIR.
const MAX_DEPTH: usize = 16;
/// Layouts one bundle may hold.
const MAX_LAYOUTS: usize = 100_000;

/// One image a layout names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `NAME[:TAG]@DIGEST`.
    pub source: ImageRef,
    pub media_type: String,
    pub size: u64,
    /// Its place in `index.json`'s `manifests`, from 1.
    pub position: usize,
}

/// One OCI layout of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Its path under the bundle's root, `/`-separated.
    pub rel: String,
    pub images: Vec<Image>,
}

/// Where the layouts are.
#[derive(Debug, Clone)]
enum Store {
    Dir,
    /// A tar file: each entry's name, data offset and size.
    Tar(HashMap<String, (u64, u64)>),
}

/// A bundle, indexed: its layouts and where their files are.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The directory or tar file, as given.
    pub path: PathBuf,
    store: Store,
    pub layouts: Vec<Layout>,
    /// Repository names (`domain/path`) to the layouts holding their images.
    repositories: HashMap<String, Vec<usize>>,
}

/// Where one blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub offset: u64,
    pub size: u64,
    /// The file, or the tar and its entry, for messages.
    pub name: String,
}

impl Bundle {
    /// [`Bundle::open`], once per process for each path: the inputs' reading indexes it, and
    /// the engine that copies from it reads that index.
    pub fn open_shared(path: &Path) -> Result<Arc<Bundle>, Vec<InputError>> {
        static OPENED: Mutex<Vec<(PathBuf, Arc<Bundle>)>> = Mutex::new(Vec::new());
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bundle)) = opened.iter().find(|(p, _)| p == path) {
            return Ok(Arc::clone(bundle));
        }
        let bundle = Arc::new(Bundle::open(path)?);
        opened.push((path.to_owned(), Arc::clone(&bundle)));
        Ok(bundle)
    }

    /// Reads and checks the bundle at `path` (a directory of layouts, or a tar): every problem
    /// is an error naming its file (and entry).
    pub fn open(path: &Path) -> Result<Bundle, Vec<InputError>> {
        let shown = path.display().to_string();
        let read_error = |source: std::io::Error| {
            vec![InputError::Read {
                file: shown.as_str().into(),
                source,
            }]
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        let mut bundle = Bundle {
            path: path.to_owned(),
            store: Store::Dir,
            layouts: Vec::new(),
            repositories: HashMap::new(),
        };
        let mut errors = Vec::new();
        let (rels, manifest) = if meta.is_dir() {
            let mut rels = Vec::new();
            find_layouts(path, "", 0, &mut rels, &mut errors);
            (rels, None)
        } else {
            let mut file = std::fs::File::open(path).map_err(read_error)?;
            let index = tar::index(&mut file, meta.len()).map_err(|reason| {
                vec![InputError::line(
                    Origin {
                        file: shown.as_str().into(),
                        line: 0,
                    },
                    reason,
                )]
            })?;
            let mut rels: Vec<String> = index
                .names
                .iter()
                .filter_map(|name| name.strip_suffix("/index.json").map(str::to_owned))
                .collect();
            rels.extend(
                index
                    .names
                    .iter()
                    .filter(|n| *n == "index.json")
                    .map(|_| String::new()),
            );
            rels.sort();
            rels.dedup();
            bundle.store = Store::Tar(index.entries);
            (rels, Some(()))
        };
        if manifest.is_some() {
            if let Err(reason) = bundle.check_manifest() {
                errors.push(bundle.error(MANIFEST_NAME, 0, reason));
            }
        }
        if rels.is_empty() && errors.is_empty() {
            errors.push(InputError::line(
                Origin {
                    file: shown.as_str().into(),
                    line: 0,
                },
                "holds no OCI layout (no index.json): give the directory (or tar) that \
                 `ferry sync --dest-dir DIR` (or `--bundle FILE.tar`) wrote",
            ));
        }
        if rels.len() > MAX_LAYOUTS {
            errors.push(InputError::line(
                Origin {
                    file: shown.into(),
                    line: 0,
                },
                format!("holds more than {MAX_LAYOUTS} layouts, more than ferry reads"),
            ));
            return Err(errors);
        }
        for rel in rels {
            match bundle.read_layout(&rel) {
                Ok(layout) => {
                    let at = bundle.layouts.len();
                    for image in &layout.images {
                        let held = bundle
                            .repositories
                            .entry(image.source.repository())
                            .or_default();
                        if !held.contains(&at) {
                            held.push(at);
                        }
                    }
                    bundle.layouts.push(layout);
                }
                Err(mut bad) => errors.append(&mut bad),
            }
        }
        if errors.is_empty() {
            Ok(bundle)
        } else {
            Err(errors)
        }
    }

    /// The entries a run takes from the bundle: each image of each layout.
    pub fn entries(&self) -> Vec<Entry> {
        self.layouts
            .iter()
            .flat_map(|layout| {
                layout.images.iter().map(|image| Entry {
                    origin: self.origin(
                        &format!("{}index.json", prefix(&layout.rel)),
                        image.position,
                    ),
                    source: image.source.clone(),
                    explicit_target: None,
                    filter: None,
                    can_name_target: false,
                    signatures: None,
                })
            })
            .collect()
    }

    /// The bytes of blob `digest` (a checked sha256 digest) of repository `name`: the first
    /// layout holding that repository's images that has it.
    pub fn locate(&self, name: &str, digest: &str) -> Result<Located, String> {
        check_sha256_digest(digest)?;
        let hex = digest.trim_start_matches("sha256:");
        let layouts = self
            .repositories
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &at in layouts {
            let rel = format!("{}blobs/sha256/{hex}", prefix(&self.layouts[at].rel));
            if let Some(found) = self.file(&rel) {
                return Ok(found);
            }
        }
        Err(format!(
            "blob {digest} of {name} is not in {}: the bundle is incomplete",
            self.path.display()
        ))
    }

    /// Reads a small blob (a manifest) whole, checking its size against `max` first.
    pub fn read_small(&self, name: &str, digest: &str, max: u64) -> Result<Vec<u8>, String> {
        let located = self.locate(name, digest)?;
        if located.size > max {
            return Err(format!(
                "{} is {} bytes, more than the {max} ferry reads of a manifest",
                located.name, located.size
            ));
        }
        read_at(&located).map_err(|e| format!("cannot read {}: {e}", located.name))
    }

    /// Where the file `rel` of the bundle is, if it has it.
    fn file(&self, rel: &str) -> Option<Located> {
        match &self.store {
            Store::Dir => {
                let file = self.path.join(rel);
                let meta = std::fs::metadata(&file).ok().filter(|m| m.is_file())?;
                Some(Located {
                    name: file.display().to_string(),
                    file,
                    offset: 0,
                    size: meta.len(),
                })
            }
            Store::Tar(entries) => entries.get(rel).map(|&(offset, size)| Located {
                file: self.path.clone(),
                offset,
                size,
                name: format!("{}:{rel}", self.path.display()),
            }),
        }
    }

    fn origin(&self, rel: &str, line: usize) -> Origin {
        let file = match self.store {
            Store::Dir => self.path.join(rel).display().to_string(),
            Store::Tar(_) => format!("{}:{rel}", self.path.display()),
        };
        Origin {
            file: file.into(),
            line,
        }
    }

    fn error(&self, rel: &str, line: usize, reason: impl Into<String>) -> InputError {
        InputError::line(self.origin(rel, line), reason)
    }

    /// A tar's `ferry-bundle.json`: every blob it lists is there at its size (a bundle cut
    /// short, or with an entry dropped, is refused here, before anything is copied).
    fn check_manifest(&self) -> Result<(), String> {
        let Some(found) = self.file(MANIFEST_NAME) else {
            return Ok(());
        };
        if found.size > 64 << 20 {
            return Err("larger than 64 MiB, more than ferry reads".to_owned());
        }
        let bytes = read_at(&found).map_err(|e| format!("cannot read: {e}"))?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let blobs = value["blobs"]
            .as_array()
            .ok_or("no \"blobs\" list: not a ferry bundle manifest")?;
        for blob in blobs {
            let (Some(path), Some(size)) = (blob["path"].as_str(), blob["size"].as_u64()) else {
                return Err(format!("a blob without path or size: {blob}"));
            };
            match self.file(path) {
                None => {
                    return Err(format!(
                        "lists entry {path:?}, which the tar does not hold: the bundle is cut \
                         short or was changed; write it again"
                    ))
                }
                Some(held) if held.size != size => {
                    return Err(format!(
                        "lists entry {path:?} of {size} bytes, the tar holds {}",
                        held.size
                    ))
                }
                Some(_) => {}
            }
        }
        for image in value["images"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let (Some(layout), Some(digest)) = (image["layout"].as_str(), image["digest"].as_str())
            else {
                return Err(format!("an image without layout or digest: {image}"));
            };
            let index = format!("{}index.json", prefix(layout));
            let held = self
                .file(&index)
                .and_then(|f| read_at(&f).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["manifests"].as_array().cloned())
                .unwrap_or_default();
            let tag = image["tag"].as_str();
            let same = held.iter().any(|m| {
                m["digest"].as_str() == Some(digest)
                    && (tag.is_none() || m["annotations"][REF_NAME].as_str() == tag)
            });
            if !same {
                return Err(format!(
                    "lists {layout}:{} at {digest}, which {index} does not name: the bundle was \
                     changed",
                    tag.unwrap_or("-")
                ));
            }
        }
        Ok(())
    }

    /// One layout's images, each checked.
    fn read_layout(&self, rel: &str) -> Result<Layout, Vec<InputError>> {
        let index_rel = format!("{}index.json", prefix(rel));
        let one = |line, reason: String| vec![self.error(&index_rel, line, reason)];
        let found = self
            .file(&index_rel)
            .ok_or_else(|| one(0, "cannot be read".to_owned()))?;
        if found.size > MAX_SMALL_BYTES {
            return Err(one(
                0,
                format!(
                    "larger than {} MiB, more than ferry reads",
                    MAX_SMALL_BYTES >> 20
                ),
            ));
        }
        let bytes = read_at(&found).map_err(|e| one(0, format!("cannot read: {e}")))?;
        let index: Value =
            serde_json::from_slice(&bytes).map_err(|e| one(0, format!("not valid JSON: {e}")))?;
        let manifests = index["manifests"].as_array().ok_or_else(|| {
            one(
                0,
                "no \"manifests\" list: not an OCI image index".to_owned(),
            )
        })?;
        let by_path = name_of_path(rel);
        let mut images = Vec::new();
        let mut errors = Vec::new();
        for (at, entry) in manifests.iter().enumerate() {
            let position = at + 1;
            match self.image(entry, rel, &by_path, position) {
                Ok(image) => images.push(image),
                Err(reason) => errors.push(self.error(&index_rel, position, reason)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Layout {
            rel: rel.to_owned(),
            images,
        })
    }

    /// One `index.json` entry as an image, and whether its name came from the layout's path.
    fn image(
        &self,
        entry: &Value,
        rel: &str,
        by_path: &Result<ImageRef, String>,
        position: usize,
    ) -> Result<Image, String> {
        let digest = entry["digest"]
            .as_str()
            .ok_or("an entry without a digest")?;
        check_sha256_digest(digest)?;
        let media_type = entry["mediaType"]
            .as_str()
            .ok_or("an entry without a mediaType")?
            .to_owned();
        let size = entry["size"].as_u64().ok_or("an entry without a size")?;
        if size > MAX_SMALL_BYTES {
            return Err(format!(
                "names a manifest of {size} bytes, more than the {MAX_SMALL_BYTES} ferry reads"
            ));
        }
        let annotations = &entry["annotations"];
        let name = match annotations[SOURCE_REFERENCE].as_str() {
            Some(written) => ImageRef::parse(written)
                .map_err(|e| format!("{SOURCE_REFERENCE} {written:?}: {e}"))?
                .without_tag()
                .without_digest(),
            None => by_path.clone()?,
        };
        let source = match annotations[REF_NAME].as_str() {
            Some(tag) => name
                .with_tag(tag)
                .map_err(|e| format!("{REF_NAME} {tag:?}: {e}"))?,
            None => name,
        };
        let source = source.with_digest(digest).map_err(|e| e.to_string())?;
        let blob = format!(
            "{}blobs/sha256/{}",
            prefix(rel),
            digest.trim_start_matches("sha256:")
        );
        match self.file(&blob) {
            Some(held) if held.size == size => {}
            Some(held) => {
                return Err(format!(
                    "names manifest {digest} of {size} bytes, but {} is {} bytes",
                    held.name, held.size
                ))
            }
            None => {
                return Err(format!(
                    "names manifest {digest}, which the layout does not hold ({blob} is missing)"
                ))
            }
        }
        Ok(Image {
            source,
            media_type,
            size,
            position,
        })
    }

    /// The layouts whose images took their name from the layout's path (written without
    /// [`SOURCE_REFERENCE`]), for a note.
    pub fn named_by_path(&self) -> Vec<String> {
        let mut named = Vec::new();
        for layout in &self.layouts {
            let rel = format!("{}index.json", prefix(&layout.rel));
            let bytes = self.file(&rel).and_then(|f| read_at(&f).ok());
            let index: Value = bytes
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            let bare = index["manifests"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|e| e["annotations"][SOURCE_REFERENCE].is_null())
            });
            if bare {
                if let Some(image) = layout.images.first() {
                    named.push(format!(
                        "{}: its images carry no {SOURCE_REFERENCE} annotation (an older ferry \
                         or another tool wrote it): they go to the name its path under {} says, \
                         {}",
                        self.origin(&rel, 0).file,
                        self.path.display(),
                        image.source.repository()
                    ));
                }
            }
        }
        named
    }
}

/// `rel/` for a layout below the root, nothing for the root itself.
fn prefix(rel: &str) -> String {
    if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    }
}

/// The repository a layout's path under the bundle's root names: ferry writes
/// `DOMAIN/PATH`, a port's `:` as `_` (see `crate::mapping::oci_layout_for`).
pub fn name_of_path(rel: &str) -> Result<ImageRef, String> {
    let mut parts = rel.splitn(2, '/');
    let domain = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let domain = match domain.rsplit_once('_') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:{port}")
        }
        _ => domain.to_owned(),
    };
    let name = format!("{domain}/{path}");
    let parsed = ImageRef::parse(&name).map_err(|e| {
        format!(
            "the layout's path {rel:?} is no repository name ({e}), and its entries carry no \
             {SOURCE_REFERENCE} annotation to name one"
        )
    })?;
    if parsed.repository() != name || path.is_empty() {
        return Err(format!(
            "the layout's path {rel:?} is not a scoped repository name (DOMAIN/PATH, as \
             ferry writes layouts), and its entries carry no {SOURCE_REFERENCE} annotation"
        ));
    }
    Ok(parsed)
}

/// The directories under `dir` (at `rel`) holding an `index.json`: layouts. A layout's own
/// `blobs` are not searched.
fn find_layouts(
    dir: &Path,
    rel: &str,
    depth: usize,
    found: &mut Vec<String>,
    errors: &mut Vec<InputError>,
) {
    if dir.join("index.json").is_file() {
        found.push(rel.to_owned());
        return;
    }
    if depth > MAX_DEPTH || found.len() > MAX_LAYOUTS {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(InputError::Read {
                file: dir.display().to_string(),
                source,
            });
            return;
        }
    };
    let mut children: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    children.sort();
    for (name, path) in children {
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        find_layouts(&path, &rel, depth + 1, found, errors);
    }
}

/// Reads `located` whole.
fn read_at(located: &Located) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(&located.file)?;
    file.seek(std::io::SeekFrom::Start(located.offset))?;
    let mut bytes = Vec::with_capacity(usize::try_from(located.size).unwrap_or(0).min(1 << 20));
    file.take(located.size).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != located.size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} ends early", located.name),
        ));
    }
    Ok(bytes)
}

/// What a bundle tar was written with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub layouts: usize,
    pub images: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Writes the layouts `layouts` (directories under `root`) into the tar `out`: first
/// `ferry-bundle.json` (every blob's entry, digest and size, every image's layout, tag, source
/// and digest), then each layout's `oci-layout`, `index.json` and blobs. Each blob's sha256 is
/// checked as it is copied; the tar is written beside `out` and renamed into place whole.
/// Streams: memory stays bounded whatever the blobs weigh.
pub fn write(root: &Path, layouts: &[PathBuf], out: &Path) -> Result<Written, String> {
    let mut plan = Vec::new();
    let mut blobs_listed = Vec::new();
    let mut images_listed = Vec::new();
    for layout in layouts {
        let rel = layout
            .strip_prefix(root)
            .map_err(|_| format!("{} is not under {}", layout.display(), root.display()))?
            .to_str()
            .ok_or_else(|| format!("{} is not a UTF-8 path", layout.display()))?
            .trim_matches('/')
            .to_owned();
        let index_path = layout.join("index.json");
        let index_bytes = std::fs::read(&index_path)
            .map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
        let index: Value = serde_json::from_slice(&index_bytes)
            .map_err(|e| format!("{}: not valid JSON: {e}", index_path.display()))?;
        for entry in index["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            images_listed.push(json!({
                "layout": rel,
                "tag": entry["annotations"][REF_NAME],
                "source": entry["annotations"][SOURCE_REFERENCE],
                "digest": entry["digest"],
            }));
        }
        let blob_dir = layout.join("blobs/sha256");
        let mut blobs = Vec::new();
        let listing = std::fs::read_dir(&blob_dir)
            .map_err(|e| format!("cannot read {}: {e}", blob_dir.display()))?;
        for entry in listing {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", blob_dir.display()))?;
            let Some(hex) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_sha256_digest(&format!("sha256:{hex}")).is_err() {
                continue;
            }
            let size = entry
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?
                .len();
            blobs.push((hex, size));
        }
        blobs.sort();
        for (hex, size) in &blobs {
            blobs_listed.push(json!({
                "path": format!("{}blobs/sha256/{hex}", prefix(&rel)),
                "digest": format!("sha256:{hex}"),
                "size": size,
            }));
        }
        plan.push((rel, layout.clone(), index_bytes, blobs));
    }
    let manifest = json!({
        "ferryBundleVersion": 1,
        "images": images_listed,
        "blobs": blobs_listed,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("JSON always serializes");
    let temp = out.with_file_name(format!(
        ".{}.ferry-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("bundle"),
        std::process::id()
    ));
    let written = (|| {
        let file = std::fs::File::create(&temp)
            .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
        let mut tar = tar::Writer::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
        tar.file(MANIFEST_NAME, &manifest).map_err(failed)?;
        let mut counts = Written::default();
        for (rel, layout, index_bytes, blobs) in &plan {
            let layout_file = layout.join("oci-layout");
            let marker = std::fs::read(&layout_file)
                .unwrap_or_else(|_| br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
            tar.file(&format!("{}oci-layout", prefix(rel)), &marker)
                .map_err(failed)?;
            tar.file(&format!("{}index.json", prefix(rel)), index_bytes)
                .map_err(failed)?;
            for (hex, size) in blobs {
                let path = layout.join("blobs/sha256").join(hex);
                let source = std::fs::File::open(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let name = format!("{}blobs/sha256/{hex}", prefix(rel));
                let hashed = tar.stream(&name, *size, source).map_err(|e| {
                    format!("cannot copy {} into {}: {e}", path.display(), out.display())
                })?;
                if hashed != *hex {
                    return Err(format!(
                        "{} hashes to sha256:{hashed}, not its name: the layout is damaged; \
                         nothing was bundled",
                        path.display()
                    ));
                }
                counts.blobs += 1;
                counts.bytes += size;
            }
            counts.layouts += 1;
        }
        counts.images = images_listed.len();
        tar.finish().map_err(failed)?;
        std::fs::rename(&temp, out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(counts)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_path_is_its_scoped_name() {
        let name = |rel| name_of_path(rel).map(|r| r.repository());
        assert_eq!(
            name("docker.io/library/nginx").unwrap(),
            "docker.io/library/nginx"
        );
        assert_eq!(
            name("localhost_5000/team/app").unwrap(),
            "localhost:5000/team/app"
        );
        assert_eq!(name("quay.io/a_b/c").unwrap(), "quay.io/a_b/c");
        assert!(name("nginx").is_err());
        assert!(name("docker.io/Library/x").is_err());
        assert!(
            name("docker.io/nginx").is_err(),
            "Docker Hub's library/ is written out"
        );
    }

    /// A layout of one tag, `docker.io/library/x:1`, under `root`; its manifest's digest.
    fn layout(root: &Path) -> String {
        use sha2::{Digest as _, Sha256};
        let manifest = br#"{"schemaVersion":2}"#;
        let hex = format!("{:x}", Sha256::digest(manifest));
        let layout = root.join("docker.io/library/x");
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(layout.join("blobs/sha256").join(&hex), manifest).unwrap();
        let index = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": manifest.len(),
            "annotations": { REF_NAME: "1", SOURCE_REFERENCE: "docker.io/library/x:1" },
        }]});
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        format!("sha256:{hex}")
    }

    #[test]
    fn a_directory_and_its_tar_hold_the_same_entries_and_a_changed_tag_is_refused() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        let root = dir.path().join("bundle");
        let digest = layout(&root);
        let sources = |bundle: &Bundle| -> Vec<String> {
            bundle
                .entries()
                .iter()
                .map(|e| e.source.to_string())
                .collect()
        };
        let expected = [format!("docker.io/library/x:1@{digest}")];
        assert_eq!(sources(&Bundle::open(&root).unwrap()), expected);
        let tar = dir.path().join("b.tar");
        let written = write(&root, &[root.join("docker.io/library/x")], &tar).unwrap();
        assert_eq!((written.layouts, written.images, written.blobs), (1, 1, 1));
        let opened = Bundle::open(&tar).unwrap();
        assert_eq!(sources(&opened), expected);
        let located = opened.locate("docker.io/library/x", &digest).unwrap();
        assert_eq!(read_at(&located).unwrap(), br#"{"schemaVersion":2}"#);

        // The tag changed inside the tar (a header's checksum does not cover its data).
        let mut bytes = std::fs::read(&tar).unwrap();
        let key = br#"ref.name":"#;
        let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
        let quote = at + key.len();
        assert_eq!(&bytes[quote..quote + 3], br#""1""#);
        bytes[quote + 1] = b'2';
        std::fs::write(&tar, &bytes).unwrap();
        let errors = Bundle::open(&tar).unwrap_err();
        let said = errors[0].to_string();
        assert!(
            said.contains("ferry-bundle.json:0: lists docker.io/library/x:1 at sha256:")
                && said.contains("the bundle was changed"),
            "{said}"
        );
    }
}
