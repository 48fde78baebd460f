//! What the copies of one source to several destinations share (`--dest A --dest B`): each
//! manifest is read from the source once and kept in memory, each blob read once into a file
//! of the run's private directory (the spool) and uploaded from there to every destination
//! that lacks it, so a destination slower than another never holds the source's download up,
//! and memory holds no blob.
//!
//! A blob is spooled only while another copy of its source is still to come; the last copy
//! streams it straight through, as with one destination. What is kept for a source goes once
//! its last copy is over (see [`Shared::done`]), so the disk holds the blobs of the images in
//! flight, not the run's.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::blobs::SourceBlob;
use crate::model::{FailureKind, ImageError, Job};
use crate::registry::api::RawManifest;

/// Bytes read from a spooled blob at once.
const READ_CHUNK: u64 = 1 << 20;

/// The reads the copies of a run share, and what each source's copies still need.
pub struct Shared {
    /// The spool: a directory of the run's private directory, made when first needed.
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Copies not over yet, by source (the job's source as written).
    pending: HashMap<String, usize>,
    /// Manifests read, by (repository, tag or digest).
    manifests: HashMap<(String, String), Kept<ManifestCell>>,
    /// Blobs spooled, by digest.
    blobs: HashMap<String, Kept<BlobCell>>,
}

/// A manifest once read (`None`: the source does not have it).
type ManifestCell = tokio::sync::OnceCell<Option<RawManifest>>;
/// A blob's spool file once written whole, its digest checked.
type BlobCell = tokio::sync::OnceCell<PathBuf>;

/// Something read, and the sources whose copies may still read it.
struct Kept<T> {
    value: Arc<T>,
    readers: HashSet<String>,
}

impl<T: Default> Kept<T> {
    fn new() -> Kept<T> {
        Kept {
            value: Arc::default(),
            readers: HashSet::new(),
        }
    }
}

/// The key of a job's source.
pub fn source_of(job: &Job) -> String {
    job.source.to_string()
}

impl Shared {
    /// Shared reads spooling into `dir` (made when a blob is first spooled).
    pub fn new(dir: PathBuf) -> Shared {
        Shared {
            dir,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether manifest `reference` of `name` was read already, and is kept for the copies
    /// still to come.
    pub fn holds_manifest(&self, name: &str, reference: &str) -> bool {
        self.state()
            .manifests
            .get(&(name.to_owned(), reference.to_owned()))
            .is_some_and(|kept| kept.value.initialized())
    }

    /// The copies the run will make.
    pub fn planned(&self, jobs: &[&Job]) {
        let mut state = self.state();
        for job in jobs {
            *state.pending.entry(source_of(job)).or_default() += 1;
        }
    }

    /// The copy of `job` is over: once its source's last one is, what only they read goes
    /// (spool files removed; a reader that has one open still reads it whole).
    pub fn done(&self, job: &Job) {
        let source = source_of(job);
        let mut state = self.state();
        let Some(left) = state.pending.get_mut(&source) else {
            return;
        };
        *left = left.saturating_sub(1);
        if *left > 0 {
            return;
        }
        state.pending.remove(&source);
        state.manifests.retain(|_, kept| {
            kept.readers.remove(&source);
            !kept.readers.is_empty()
        });
        state.blobs.retain(|_, kept| {
            kept.readers.remove(&source);
            if !kept.readers.is_empty() {
                return true;
            }
            if let Some(path) = kept.value.get() {
                let _ = std::fs::remove_file(path);
            }
            false
        });
    }

    /// Manifest `reference` of repository `name` for a copy of `source`: as read by `read`,
    /// once for all the copies that ask (a failed read is the next asker's to try again).
    pub async fn manifest<E>(
        &self,
        source: &str,
        name: &str,
        reference: &str,
        read: impl Future<Output = Result<Option<RawManifest>, E>>,
    ) -> Result<Option<RawManifest>, E> {
        let cell = {
            let mut state = self.state();
            let kept = state
                .manifests
                .entry((name.to_owned(), reference.to_owned()))
                .or_insert_with(Kept::new);
            kept.readers.insert(source.to_owned());
            Arc::clone(&kept.value)
        };
        cell.get_or_try_init(|| read).await.cloned()
    }

    /// Whether a copy of `source` reads blob `digest` from the spool: when it is spooled (or
    /// being spooled) already, or another copy of `source` is still to come. `None` means
    /// streaming it from the source.
    pub fn spool(&self, source: &str, digest: &str) -> Option<Spool> {
        let mut state = self.state();
        let wanted_again = state.pending.get(source).is_some_and(|left| *left > 1);
        if !wanted_again && !state.blobs.contains_key(digest) {
            return None;
        }
        let kept = state
            .blobs
            .entry(digest.to_owned())
            .or_insert_with(Kept::new);
        kept.readers.insert(source.to_owned());
        let hex = digest.trim_start_matches("sha256:");
        Some(Spool {
            cell: Arc::clone(&kept.value),
            path: self.dir.join(format!("sha256-{hex}")),
        })
    }
}

/// One blob's place in the spool.
pub struct Spool {
    cell: Arc<BlobCell>,
    path: PathBuf,
}

impl Spool {
    /// The spooled blob, read for `what`; the first asker writes it whole from `source`
    /// (opened by `open`), its digest checked on the way, and the others wait for it.
    pub async fn open<'a, F>(
        &self,
        what: String,
        size: u64,
        open: F,
        moved: &'a (dyn Fn(u64) + Send + Sync),
    ) -> Result<Spooled<'a>, ImageError>
    where
        F: Future<Output = Result<SourceBlob<'a>, ImageError>>,
    {
        let path = self
            .cell
            .get_or_try_init(|| async {
                let mut source = open.await?;
                write_whole(&mut source, &self.path).await?;
                Ok::<_, ImageError>(self.path.clone())
            })
            .await?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| internal(format!("cannot read the spooled {what}: {e}")))?;
        Ok(Spooled {
            file,
            what,
            left: size,
            moved,
        })
    }
}

/// Writes the whole of `source` to `path`: into a temporary file first, renamed once the
/// digest checked out (the last bytes come only then), so the spool never holds a partial or
/// corrupt blob under its name.
async fn write_whole(source: &mut SourceBlob<'_>, path: &Path) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| internal(format!("cannot create the spool {}: {e}", dir.display())))?;
    let temporary = path.with_extension("part");
    let written = async {
        let cannot = |e: std::io::Error| {
            internal(format!(
                "cannot write the spool {}: {e}",
                temporary.display()
            ))
        };
        let mut file = tokio::fs::File::create(&temporary).await.map_err(cannot)?;
        while let Some(chunk) = source.take(u64::MAX).await? {
            file.write_all(&chunk).await.map_err(cannot)?;
        }
        file.flush().await.map_err(cannot)?;
        tokio::fs::rename(&temporary, path).await.map_err(cannot)
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// A blob read back from the spool, for one upload.
pub struct Spooled<'a> {
    file: tokio::fs::File,
    what: String,
    /// Bytes still to read.
    left: u64,
    /// Told of the bytes read (those that go up to this copy's destination).
    moved: &'a (dyn Fn(u64) + Send + Sync),
}

impl Spooled<'_> {
    pub fn what(&self) -> String {
        self.what.clone()
    }

    /// The next bytes, at most `max`; `None` once all are read.
    pub async fn take(&mut self, max: u64) -> Result<Option<Bytes>, ImageError> {
        if self.left == 0 {
            return Ok(None);
        }
        let length = max.min(READ_CHUNK).min(self.left).max(1);
        let mut buffer = vec![0; length as usize];
        let read = self
            .file
            .read(&mut buffer)
            .await
            .map_err(|e| internal(format!("cannot read the spooled {}: {e}", self.what)))?;
        if read == 0 {
            return Err(internal(format!(
                "the spooled {} ended {} bytes early",
                self.what, self.left
            )));
        }
        buffer.truncate(read);
        self.left -= read as u64;
        (self.moved)(read as u64);
        Ok(Some(Bytes::from(buffer)))
    }
}

fn internal(message: String) -> ImageError {
    ImageError::new(FailureKind::Internal, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Target};
    use crate::reference::ImageRef;

    fn job(source: &str, target: &str) -> Job {
        Job {
            origin: Origin {
                file: "l".into(),
                line: 1,
            },
            source: ImageRef::parse(source).unwrap(),
            target: Target::Registry(ImageRef::parse(target).unwrap()),
            explicit: false,
            filter: None,
            signatures: None,
        }
    }

    #[test]
    fn a_blob_is_spooled_while_another_copy_of_its_source_is_to_come_and_goes_after_the_last() {
        let scratch = crate::scratch::ScratchDir::create().unwrap();
        let shared = Shared::new(scratch.path().join("spool"));
        let (a, b) = (
            job("quay.io/x/y:1", "a.example/m/quay.io/x/y:1"),
            job("quay.io/x/y:1", "b.example/quay.io/x/y:1"),
        );
        let other = job("quay.io/x/z:1", "a.example/m/quay.io/x/z:1");
        shared.planned(&[&a, &b, &other]);
        let digest = format!("sha256:{}", "a".repeat(64));
        let source = source_of(&a);
        // Two copies of quay.io/x/y to come: spool; one of quay.io/x/z: stream.
        let spool = shared.spool(&source, &digest).expect("spooled");
        assert!(shared.spool(&source_of(&other), &"b".repeat(64)).is_none());
        // The blob being spooled, another source that shares it reads it there too.
        assert!(shared.spool(&source_of(&other), &digest).is_some());
        std::fs::create_dir_all(spool.path.parent().unwrap()).unwrap();
        std::fs::write(&spool.path, b"blob").unwrap();
        spool.cell.set(spool.path.clone()).unwrap();
        shared.done(&a);
        assert!(spool.path.exists(), "b's copy is still to come");
        shared.done(&b);
        assert!(spool.path.exists(), "quay.io/x/z's copy read it too");
        shared.done(&other);
        assert!(
            !spool.path.exists(),
            "gone after the last copy of each reader"
        );
        assert!(shared.state().blobs.is_empty());
        assert!(shared.state().pending.is_empty());
    }
}
