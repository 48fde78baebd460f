//! Every result of a run, by its entry's place in the plan, held out of memory: each is written
//! as it ends (compact JSON, one after another) to a temporary file that has no name (removed
//! as soon as it is open, so nothing is left behind whatever ends the process), and read back
//! one at a time, in plan order, by what the run's end writes: the report, the failed list,
//! the destinations' counts, the metrics. A 100,000-tag run otherwise held ~40 MB of results
//! until its end. Where no temporary file can be made or written, the same bytes stay in
//! memory. What is read back is what reports show: an error's kind and message, not the
//! run's own notes on it (its side, host, whether it was worth a retry).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{ImageResult, Summary};

/// A run's results (see the module's text).
pub struct Results {
    /// Bytes `[0, in_file)` are in the file; `bytes` holds those after them (all of them
    /// without a file).
    file: Option<File>,
    in_file: u64,
    bytes: Vec<u8>,
    /// Where each entry's result is: its offset and length (0: not there).
    at: Vec<(u64, u32)>,
    /// The counts over the results so far (its duration and interruption are the run's).
    summary: Summary,
    /// Why results were lost (a file that could not be read back): every read says so.
    lost: Option<String>,
}

/// How many bytes wait in memory before they are written to the file.
const WRITE_AT: usize = 64 * 1024;

impl Default for Results {
    fn default() -> Results {
        Results::new()
    }
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results")
            .field("entries", &self.at.len())
            .field("in_file", &self.in_file)
            .field("in_memory", &self.bytes.len())
            .finish()
    }
}

impl Results {
    /// No results yet, to be kept in a temporary file under `$TMPDIR` (in memory when none
    /// can be made there).
    pub fn new() -> Results {
        let file = unnamed_file(std::env::temp_dir());
        if let Err(error) = &file {
            tracing::debug!("keeping the run's results in memory: no temporary file: {error}");
        }
        Results {
            file: file.ok(),
            in_file: 0,
            bytes: Vec::new(),
            at: Vec::new(),
            summary: Summary::default(),
            lost: None,
        }
    }

    /// `results` in this order (entries 0, 1, …).
    #[cfg(test)]
    pub fn of(results: impl IntoIterator<Item = ImageResult>) -> Results {
        let mut all = Results::new();
        for (index, result) in results.into_iter().enumerate() {
            all.put(index, &result);
        }
        all
    }

    /// Entry `index`'s result (a second one for an index replaces the first).
    pub fn put(&mut self, index: usize, result: &ImageResult) {
        let start = self.bytes.len();
        if let Err(error) = serde_json::to_writer(&mut self.bytes, result) {
            // Nothing a result holds fails to serialize; were it to, its entry reads as lost.
            self.bytes.truncate(start);
            self.lost = Some(format!("a result could not be kept: {error}"));
            return;
        }
        let length = (self.bytes.len() - start) as u32;
        let offset = self.in_file + start as u64;
        if self.at.len() <= index {
            self.at.resize(index + 1, (0, 0));
        }
        if self.at[index].1 == 0 {
            self.summary.add(result);
        }
        self.at[index] = (offset, length);
        if self.bytes.len() >= WRITE_AT {
            self.write_out();
        }
    }

    /// How many entries have a place (the highest index put, plus one).
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// The counts over every result put, for a run of `duration` (`interrupted` when a
    /// signal stopped it).
    pub fn summary(&self, duration: Duration, interrupted: bool) -> Summary {
        Summary {
            total: self.at.len(),
            duration_ms: duration.as_millis(),
            interrupted,
            ..self.summary
        }
    }

    /// Every entry's result in plan order; an error for one that cannot be read back (or
    /// that was never put).
    pub fn iter(&self) -> impl Iterator<Item = io::Result<ImageResult>> + '_ {
        (0..self.at.len()).map(|index| self.get(index))
    }

    /// Entry `index`'s result.
    pub fn get(&self, index: usize) -> io::Result<ImageResult> {
        if let Some(lost) = &self.lost {
            return Err(io::Error::other(lost.clone()));
        }
        let Some(&(offset, length)) = self.at.get(index).filter(|(_, length)| *length > 0) else {
            return Err(io::Error::other(format!("entry {index} has no result")));
        };
        let read;
        let bytes = if offset >= self.in_file {
            let start = (offset - self.in_file) as usize;
            &self.bytes[start..start + length as usize]
        } else {
            let file = self
                .file
                .as_ref()
                .ok_or_else(|| io::Error::other("no file"))?;
            let mut buffer = vec![0; length as usize];
            file.read_exact_at(&mut buffer, offset)?;
            read = buffer;
            &read
        };
        serde_json::from_slice(bytes).map_err(io::Error::other)
    }

    /// Writes the bytes held to the file; when that fails, reads what the file has back and
    /// goes on in memory.
    fn write_out(&mut self) {
        let Some(file) = &self.file else { return };
        match file.write_all_at(&self.bytes, self.in_file) {
            Ok(()) => {
                self.in_file += self.bytes.len() as u64;
                self.bytes.clear();
            }
            Err(error) => {
                tracing::warn!("keeping the run's results in memory: cannot write them: {error}");
                let mut all = vec![0; self.in_file as usize];
                if let Err(error) = file.read_exact_at(&mut all, 0) {
                    self.lost = Some(format!("the run's results could not be read back: {error}"));
                }
                all.append(&mut self.bytes);
                self.bytes = all;
                self.in_file = 0;
                self.file = None;
            }
        }
    }
}

/// A file in `dir` open to read and write, its name removed.
fn unnamed_file(dir: PathBuf) -> io::Result<File> {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        ".ferry-results-{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Counts, FailureKind, ImageError, ListLine, Origin, Status};

    fn result(n: usize, status: Status) -> ImageResult {
        ImageResult {
            origin: Origin {
                file: "list.txt".into(),
                line: n + 1,
            },
            source: format!("docker.io/library/app{n}:1"),
            target: format!("registry.example/mirror/app{n}:1"),
            line: ListLine::SourceAndTarget,
            status,
            digest: Some(format!("sha256:{:064x}", n)),
            counts: Counts {
                blobs_copied: n as u32,
                ..Counts::default()
            },
            attempts: 1,
            duration: Duration::from_millis(n as u64),
            error: (status == Status::Failed)
                .then(|| Box::new(ImageError::new(FailureKind::NotFound, format!("gone {n}")))),
            platform: None,
            artifacts: None,
        }
    }

    fn texts(results: &Results) -> Vec<String> {
        results
            .iter()
            .map(|r| format!("{:?}", r.unwrap()))
            .collect()
    }

    #[test]
    fn results_put_out_of_order_read_back_in_plan_order_through_the_file() {
        let all: Vec<ImageResult> = (0..2_000)
            .map(|n| result(n, [Status::Synced, Status::Skipped, Status::Failed][n % 3]))
            .collect();
        let mut results = Results::new();
        assert!(results.file.is_some(), "a temporary file can be made here");
        for index in (0..all.len()).rev() {
            results.put(index, &all[index]);
        }
        assert!(results.in_file > 0, "most of them went to the file");
        let expected: Vec<String> = all.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(texts(&results), expected);
        let summary = results.summary(Duration::from_secs(2), true);
        assert_eq!(
            summary,
            Summary::of(&all, Duration::from_secs(2), true),
            "the counts are the results'"
        );
    }

    #[test]
    fn without_a_file_the_results_stay_in_memory() {
        let mut results = Results::new();
        results.file = None;
        for n in 0..500 {
            results.put(n, &result(n, Status::Skipped));
        }
        assert_eq!(results.in_file, 0);
        assert_eq!(
            results.get(499).unwrap().source,
            "docker.io/library/app499:1"
        );
        assert_eq!(texts(&results).len(), 500);
    }

    #[test]
    fn an_entry_never_put_reads_as_an_error_not_as_another_result() {
        let mut results = Results::new();
        results.put(2, &result(2, Status::Synced));
        assert_eq!(results.len(), 3);
        let read: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();
        assert_eq!(read, [false, false, true]);
        assert!(results.get(7).is_err());
    }

    #[test]
    fn the_temporary_file_has_no_name_once_open() {
        let dir = std::env::temp_dir().join(format!("ferry-results-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = unnamed_file(dir.clone()).unwrap();
        file.write_all_at(b"kept", 0).unwrap();
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing is left behind"
        );
        let mut back = [0; 4];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back, b"kept");
        std::fs::remove_dir(&dir).unwrap();
    }
}
