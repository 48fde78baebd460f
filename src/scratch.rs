//! A private scratch directory for one run: the temporary auth files that carry credentials to
//! skopeo (so they never appear on its command line) and the digest files skopeo writes back.
//! The directory is 0700, every file 0600, and all of it is removed when the value is dropped,
//! which happens on every exit path of a run, including errors and signals.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl ScratchDir {
    /// Creates a fresh private directory under the system temporary directory.
    pub fn create() -> io::Result<ScratchDir> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("ferry-{}-{nanos:08x}-{n}", std::process::id()));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not create a unique scratch directory",
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to a new file readable by the owner only and returns its path.
    pub fn write_private(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let path = self.path.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(contents)?;
        file.sync_all()?;
        Ok(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: nothing useful can be done about a failure while unwinding or exiting.
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_removed_on_drop() {
        let dir = ScratchDir::create().unwrap();
        let file = dir.write_private("auth.json", b"{}").unwrap();
        let dir_mode = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        let file_mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(file_mode, 0o600);
        let kept = dir.path().to_owned();
        drop(dir);
        assert!(!kept.exists());
    }
}
