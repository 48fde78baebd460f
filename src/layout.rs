//! Tidying the local OCI layouts a sync writes. skopeo streams each blob into a temporary
//! `oci-put-blob*` file in the layout and renames it when complete; a copy stopped on the way
//! (timeout, signal, a crash of ferry) leaves the file behind, and a failed first copy leaves
//! a layout with `blobs/` but no `index.json`, which holds no image. ferry removes both after
//! each copy, and at the start of a run removes the temporary files an earlier run left.
//!
//! Two ferry processes may write one layout (two lists naming one repository, two shards of a
//! run given one `--dest-dir`): a job holds the layout's [`LayoutLock`] (an advisory `flock` on
//! the layout directory itself, so nothing is added to the layout) while it writes and tidies,
//! and the start-of-run tidying takes it without waiting, leaving a layout another process
//! holds alone. A temporary file seen under the lock is provably stale: every writer holds it.

use std::fs;
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The prefix of skopeo's temporary blob files in an OCI layout.
const TEMP_BLOB_PREFIX: &str = "oci-put-blob";

/// What skopeo puts in a layout; a directory holding anything else is not removed.
const LAYOUT_ENTRIES: [&str; 3] = ["blobs", "oci-layout", "index.json"];

/// Removes skopeo's temporary blob files from `layout`; returns how many there were. A
/// layout that does not exist has none.
pub fn remove_temp_blobs(layout: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(layout) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_BLOB_PREFIX));
        if is_temp && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The exclusive right to write one layout, across ferry processes, until dropped.
#[derive(Debug)]
pub struct LayoutLock {
    _directory: fs::File,
}

impl LayoutLock {
    /// Takes the lock of `layout` if no other process holds it, creating the directory (and
    /// its parents) first when `create`; `None` when another process holds it, or when the
    /// layout does not exist and is not to be created.
    pub fn try_acquire(layout: &Path, create: bool) -> io::Result<Option<LayoutLock>> {
        loop {
            if create {
                fs::create_dir_all(layout)?;
            }
            let directory = match fs::File::open(layout) {
                Ok(directory) => directory,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(e),
            };
            // SAFETY: flock on a descriptor this function owns; no memory is shared.
            let locked =
                unsafe { libc::flock(directory.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if locked != 0 {
                let error = io::Error::last_os_error();
                if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(None);
                }
                return Err(error);
            }
            // The holder before us may have removed the layout (a failed first copy) and
            // another process made it anew: a lock on the removed directory guards nothing.
            let held = directory.metadata()?;
            match fs::metadata(layout) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(LayoutLock {
                        _directory: directory,
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Ok(_) | Err(_) => continue,
            }
        }
    }
}

/// Removes the temporary blob files an earlier run left in `layout`, unless another ferry
/// process is writing it now (its files are not stale); returns how many went, or `None` when
/// the layout was left to the other process.
pub fn remove_stale_temp_blobs(layout: &Path) -> io::Result<Option<usize>> {
    match LayoutLock::try_acquire(layout, false)? {
        Some(_lock) => remove_temp_blobs(layout).map(Some),
        None if layout.exists() => Ok(None),
        None => Ok(Some(0)),
    }
}

/// A layout a job is about to write, with the directories up to `root` (not included) that do
/// not exist yet: the ones this job will have created.
#[derive(Debug)]
pub struct Tidy {
    layout: PathBuf,
    created: Vec<PathBuf>,
}

impl Tidy {
    /// Notes which of `layout` and its parents below `root` do not exist yet.
    pub fn before(layout: &Path, root: &Path) -> Tidy {
        let created = layout
            .ancestors()
            .take_while(|dir| *dir != root && !dir.as_os_str().is_empty())
            .take_while(|dir| !dir.exists())
            .map(Path::to_owned)
            .collect();
        Tidy {
            layout: layout.to_owned(),
            created,
        }
    }

    /// After the job: skopeo's temporary files go; a layout left without `index.json` goes
    /// too when it holds only what skopeo writes, and then the now empty directories this
    /// job created above it.
    pub fn after(&self) -> io::Result<()> {
        remove_temp_blobs(&self.layout)?;
        if self.layout.join("index.json").exists() || !self.only_skopeos()? {
            return Ok(());
        }
        match fs::remove_dir_all(&self.layout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Deepest first; one still holding another layout stays, and so do those above it.
        for dir in self.created.iter().filter(|dir| **dir != self.layout) {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
        Ok(())
    }

    fn only_skopeos(&self) -> io::Result<bool> {
        let entries = match fs::read_dir(&self.layout) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            if !LAYOUT_ENTRIES.iter().any(|known| name == *known) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    #[test]
    fn a_held_layout_is_neither_locked_again_nor_tidied() {
        let dir = ScratchDir::create().unwrap();
        let layout = dir.path().join("a/nginx");
        assert!(LayoutLock::try_acquire(&layout, false).unwrap().is_none());
        assert_eq!(remove_stale_temp_blobs(&layout).unwrap(), Some(0));
        let held = LayoutLock::try_acquire(&layout, true).unwrap().unwrap();
        touch(&layout.join("oci-put-blob-ferry-1-0"));
        assert!(LayoutLock::try_acquire(&layout, true).unwrap().is_none());
        assert_eq!(remove_stale_temp_blobs(&layout).unwrap(), None);
        assert!(layout.join("oci-put-blob-ferry-1-0").exists());
        drop(held);
        assert_eq!(remove_stale_temp_blobs(&layout).unwrap(), Some(1));
        // A layout removed under the lock and made anew is locked afresh, not through the
        // descriptor of the removed one.
        let held = LayoutLock::try_acquire(&layout, true).unwrap().unwrap();
        fs::remove_dir(&layout).unwrap();
        fs::create_dir(&layout).unwrap();
        assert!(LayoutLock::try_acquire(&layout, true).unwrap().is_some());
        drop(held);
    }

    #[test]
    fn temporary_blobs_go_and_nothing_else() {
        let dir = ScratchDir::create().unwrap();
        let layout = dir.path().join("nginx");
        assert_eq!(remove_temp_blobs(&layout).unwrap(), 0);
        for name in [
            "oci-put-blob123",
            "oci-put-blob9",
            "index.json",
            "oci-layout",
        ] {
            touch(&layout.join(name));
        }
        touch(&layout.join("blobs/sha256/aa"));
        assert_eq!(remove_temp_blobs(&layout).unwrap(), 2);
        let mut left: Vec<_> = fs::read_dir(&layout)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["blobs", "index.json", "oci-layout"]);
    }

    #[test]
    fn a_failed_first_copy_leaves_no_directory_below_the_root() {
        let dir = ScratchDir::create().unwrap();
        let root = dir.path().join("mirror");
        fs::create_dir(&root).unwrap();
        let nginx = root.join("docker.io/library/nginx");
        let redis = root.join("docker.io/library/redis");
        let (tidy_nginx, tidy_redis) = (Tidy::before(&nginx, &root), Tidy::before(&redis, &root));
        // Both failed; skopeo left its directories and a temporary blob.
        fs::create_dir_all(nginx.join("blobs")).unwrap();
        fs::create_dir_all(redis.join("blobs/sha256")).unwrap();
        touch(&redis.join("oci-put-blob77"));
        tidy_nginx.after().unwrap();
        assert!(!nginx.exists());
        assert!(redis.exists(), "another job's layout is not touched");
        tidy_redis.after().unwrap();
        assert!(!root.join("docker.io").exists());
        assert!(root.is_dir(), "the root stays");
    }

    #[test]
    fn a_layout_holding_an_image_or_anything_unknown_stays() {
        let dir = ScratchDir::create().unwrap();
        let root = dir.path().to_owned();
        let nginx = root.join("docker.io/library/nginx");
        let tidy = Tidy::before(&nginx, &root);
        touch(&nginx.join("index.json"));
        touch(&nginx.join("oci-put-blob1"));
        tidy.after().unwrap();
        assert!(nginx.join("index.json").exists());
        assert!(!nginx.join("oci-put-blob1").exists());

        let other = root.join("quay.io/x");
        let tidy = Tidy::before(&other, &root);
        touch(&other.join("notes.txt"));
        tidy.after().unwrap();
        assert!(other.join("notes.txt").exists());
    }

    #[test]
    fn directories_that_existed_before_stay() {
        let dir = ScratchDir::create().unwrap();
        let root = dir.path().join("mirror");
        let library = root.join("docker.io/library");
        fs::create_dir_all(&library).unwrap();
        let nginx = library.join("nginx");
        let tidy = Tidy::before(&nginx, &root);
        fs::create_dir_all(nginx.join("blobs")).unwrap();
        tidy.after().unwrap();
        assert!(!nginx.exists());
        assert!(library.is_dir());
    }
}
