//! A private scratch directory for one run: the temporary auth files that carry credentials to
//! skopeo (so they never appear on its command line) and the digest files skopeo writes back.
//! The directory is 0700, every file 0600, and all of it is removed when the value is dropped,
//! which happens on every exit path of a run, including errors and signals. Only a `kill -9`
//! skips that; the next run removes what such a run left (see [`remove_stale`]).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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

/// Removes the scratch directories, under the system temporary directory, of ferry processes
/// that no longer exist (killed with SIGKILL, which no cleanup survives), with the credentials
/// in them; returns those removed. Only directories named as [`ScratchDir::create`] names them
/// and owned by this user; a process that still exists keeps its directory.
pub fn remove_stale() -> Vec<PathBuf> {
    remove_stale_in(&std::env::temp_dir())
}

fn remove_stale_in(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    // SAFETY: geteuid has no preconditions.
    let user = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(owner_pid) else {
            continue;
        };
        // Not followed if a link: only a directory of our own.
        let ours = fs::symlink_metadata(entry.path())
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == user);
        if ours && process_gone(pid) && fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The pid in a scratch directory's name, `ferry-<pid>-<hex nanos>-<counter>`.
fn owner_pid(name: &str) -> Option<libc::pid_t> {
    let mut parts = name.strip_prefix("ferry-")?.split('-');
    let (pid, nanos, counter) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, radix| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if parts.next().is_some() || !digits(nanos, 16) || !digits(counter, 10) || !digits(pid, 10) {
        return None;
    }
    pid.parse::<libc::pid_t>().ok().filter(|&pid| pid > 0)
}

/// Whether no process `pid` exists (as opposed to one we may not signal).
fn process_gone(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists; `pid` is positive.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
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

    #[test]
    fn scratch_names_give_their_pid() {
        let own = ScratchDir::create().unwrap();
        let name = own.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(owner_pid(name), Some(std::process::id() as libc::pid_t));
        let table = [
            ("ferry-123-0badf00d-7", Some(123)),
            ("ferry-sync-123-4-5", None),
            ("ferry-registry-12-3-4", None),
            ("ferry-123-xyz-7", None),
            ("ferry-123-0badf00d", None),
            ("ferry-123-0badf00d-7-8", None),
            ("ferry-0-0badf00d-7", None),
            ("ferry--0badf00d-7", None),
            ("ferry-99999999999-0-1", None),
        ];
        for (name, pid) in table {
            assert_eq!(owner_pid(name), pid, "{name}");
        }
    }

    #[test]
    fn only_the_directories_of_gone_processes_are_removed() {
        let base = ScratchDir::create().unwrap();
        // A pid that existed a moment ago and is gone now.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let own = std::process::id();
        let dir = |name: String| {
            let path = base.path().join(name);
            fs::create_dir(&path).unwrap();
            fs::write(path.join("src-auth.json"), b"{}").unwrap();
            path
        };
        let stale = dir(format!("ferry-{gone}-0000abcd-0"));
        let live = dir(format!("ferry-{own}-0000abcd-1"));
        let parent = dir("ferry-1-0000abcd-2".to_owned());
        let unrelated = dir(format!("ferry-sync-{gone}-3-4"));
        assert_eq!(remove_stale_in(base.path()), std::slice::from_ref(&stale));
        assert!(!stale.exists());
        for kept in [live, parent, unrelated] {
            assert!(kept.exists(), "{}", kept.display());
        }
    }
}
