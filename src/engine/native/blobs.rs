//! Moving one blob: read from the source as a stream (a cut download resumes with `Range`),
//! its size and sha256 checked as the bytes pass, and written into a destination upload or a
//! layout file without ever holding the blob whole. The last bytes reach the destination only
//! once the digest checked out, so a corrupt blob is never committed. The [`Ledger`] makes a
//! blob wanted by several images of a run travel once per destination registry. A transfer
//! that moves no byte for `--stall-timeout` fails (see [`Watch`]), and the images waiting for
//! it fail with it rather than wait out their own timeouts one after the other.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::input::bundle::Located;
use crate::model::{FailureKind, ImageError, Side};
use crate::registry::{RegistryClient, STALL_TIMEOUT_FLAG};
use crate::words::format_duration;

/// Blobs up to this size go up in one `PUT`; larger ones in `PATCH` chunks of [`CHUNK`].
pub const MONOLITHIC_MAX: u64 = 16 << 20;
/// The chunk size of a chunked upload (unless the registry asks for larger ones).
pub const CHUNK: u64 = 16 << 20;
/// How often one download is resumed after a cut before the blob fails.
const MAX_RESUMES: u32 = 5;
/// Chunks in flight between the download and the upload: the only buffer a transfer holds.
const CHANNEL_DEPTH: usize = 8;

/// Which repositories of each destination registry hold each blob, as this run pushed or
/// found them; one lock per (registry, digest) makes the first image that wants a blob the
/// one that moves it, while the others wait and then mount it or find it there.
///
/// Past [`LEDGER_KEPT`] entries it forgets the blobs no image is moving or waiting for that
/// only one repository holds (each image's config, mostly): a long run's ledger grows with the
/// blobs its images share, not with its images. A blob forgotten and wanted again costs a
/// request, not a wrong answer.
#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_blob: HashMap<(String, String), Arc<LedgerEntry>>,
    /// The size at which the next sweep comes.
    sweep_at: usize,
}

/// The entries a ledger holds before it first forgets any (see [`Ledger`]).
const LEDGER_KEPT: usize = 4096;

impl Ledger {
    pub fn entry(&self, registry: &str, digest: &str) -> Arc<LedgerEntry> {
        let mut entries = self.entries.lock().expect("lock");
        if entries.by_blob.len() >= entries.sweep_at.max(LEDGER_KEPT) {
            entries.by_blob.retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || entry.holders.try_lock().map_or(true, |held| held.len() > 1)
            });
            // Twice what is left: sweeps cost the entries added between them, no more.
            entries.sweep_at = entries.by_blob.len() * 2;
        }
        Arc::clone(
            entries
                .by_blob
                .entry((registry.to_owned(), digest.to_owned()))
                .or_default(),
        )
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("lock").by_blob.len()
    }
}

/// One blob on one destination registry: the repositories (names as written) known to hold it,
/// behind the lock its mover holds, and the moves of it that got no answer.
#[derive(Default)]
pub struct LedgerEntry {
    pub holders: tokio::sync::Mutex<BTreeSet<String>>,
    /// How many moves failed for want of an answer, and the last one's error.
    unanswered: Mutex<(u64, Option<ImageError>)>,
}

impl LedgerEntry {
    /// The moves that failed for want of an answer so far: what an image notes before it
    /// waits for the lock.
    pub fn failures(&self) -> u64 {
        self.unanswered.lock().expect("lock").0
    }

    /// A move of the blob by the lock's holder failed with `error`. When that was a stall or a
    /// connection that broke (the registry, not the image), the images waiting for the lock
    /// meanwhile give up with it (see [`LedgerEntry::failed_since`]): each would otherwise
    /// try the same registry in turn and wait out its own timeout. Any other failure (one
    /// repository's access, say) leaves the next image to try for itself.
    pub fn failed(&self, error: &ImageError) {
        if matches!(error.kind, FailureKind::Timeout | FailureKind::Network) {
            let mut unanswered = self.unanswered.lock().expect("lock");
            unanswered.0 += 1;
            unanswered.1 = Some(error.clone());
        }
    }

    /// The failure that made the image waiting since `seen` (see [`LedgerEntry::failures`])
    /// give up, if one came meanwhile.
    pub fn failed_since(&self, seen: u64) -> Option<ImageError> {
        let unanswered = self.unanswered.lock().expect("lock");
        (unanswered.0 != seen)
            .then(|| unanswered.1.clone())
            .flatten()
    }
}

/// When bytes last moved into an upload: one that takes none, or gets no answer after its last,
/// for `--stall-timeout` has stalled. The clock starts at the first byte taken, so the wait
/// for a request's turn (the registry's pace, its slots) does not count.
#[derive(Clone)]
pub struct Watch {
    last: Arc<Mutex<Option<Instant>>>,
    limit: Duration,
}

impl Watch {
    pub fn new(limit: Duration) -> Watch {
        Watch {
            last: Arc::default(),
            limit,
        }
    }

    fn tick(&self) {
        *self.last.lock().expect("lock") = Some(Instant::now());
    }

    /// Returns once nothing moved for the limit.
    async fn stalled(&self) {
        loop {
            let last = *self.last.lock().expect("lock");
            let due = match last {
                Some(last) => last + self.limit,
                None => Instant::now() + self.limit,
            };
            if last.is_some() && Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }

    fn error(&self, what: &str) -> ImageError {
        ImageError::new(FailureKind::Timeout, format!(
                "{what}: the destination took no byte of it and gave no answer for {} ({STALL_TIMEOUT_FLAG})",
                format_duration(self.limit)
            ))
    }
}

/// One blob being read from the source.
pub struct SourceBlob<'a> {
    client: &'a RegistryClient,
    /// The source repository (`domain/path`).
    name: &'a str,
    digest: &'a str,
    size: u64,
    timeout: Duration,
    /// Nothing arriving for this long fails the blob (`--stall-timeout`).
    stall: Duration,
    response: Option<reqwest::Response>,
    /// Bytes read and hashed so far.
    received: u64,
    /// Bytes of a whole-blob answer to skip (the source ignored a `Range`).
    skip: u64,
    hasher: Sha256,
    pending: Option<Bytes>,
    resumes: u32,
    /// Told of every byte that arrives.
    moved: &'a (dyn Fn(u64) + Send + Sync),
    /// Bytes that arrived, counting those fetched twice.
    pub fetched: u64,
}

impl<'a> SourceBlob<'a> {
    /// Starts reading `digest` (of `size` bytes) from source `name`.
    pub async fn open(
        client: &'a RegistryClient,
        name: &'a str,
        digest: &'a str,
        size: u64,
        timeout: Duration,
        moved: &'a (dyn Fn(u64) + Send + Sync),
    ) -> Result<SourceBlob<'a>, ImageError> {
        let mut blob = SourceBlob {
            client,
            name,
            digest,
            size,
            timeout,
            stall: client.limits().stall_timeout,
            response: None,
            received: 0,
            skip: 0,
            hasher: Sha256::new(),
            pending: None,
            resumes: 0,
            moved,
            fetched: 0,
        };
        if size == 0 {
            blob.verify()?;
            return Ok(blob);
        }
        let response = client
            .blob(name, digest, 0, timeout, &blob.what())
            .await
            .map_err(|e| e.image_error(Side::Source))?;
        blob.response = Some(response);
        Ok(blob)
    }

    fn what(&self) -> String {
        format!("blob {} of {}", self.digest, self.name)
    }

    /// The next bytes of the blob, at most `max`; `None` once it is all read. The bytes that
    /// complete it come only after its size and digest checked out.
    pub async fn take(&mut self, max: u64) -> Result<Option<Bytes>, ImageError> {
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        let chunk = match self.pending.take() {
            Some(chunk) => chunk,
            None => match self.read().await? {
                Some(chunk) => chunk,
                None => return Ok(None),
            },
        };
        if chunk.len() > max {
            let mut chunk = chunk;
            let rest = chunk.split_off(max);
            self.pending = Some(rest);
            return Ok(Some(chunk));
        }
        Ok(Some(chunk))
    }

    /// The next chunk from the network, checked; resumes a cut download. One that delivers
    /// nothing for `--stall-timeout` fails: a source that stalls once would stall the next
    /// time too, each time for that long.
    async fn read(&mut self) -> Result<Option<Bytes>, ImageError> {
        loop {
            if self.received == self.size {
                return Ok(None);
            }
            let Some(response) = self.response.as_mut() else {
                self.resume().await?;
                continue;
            };
            let cut = match tokio::time::timeout(self.stall, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    self.fetched += chunk.len() as u64;
                    let mut chunk = chunk;
                    if self.skip > 0 {
                        let skipped = self.skip.min(chunk.len() as u64);
                        self.skip -= skipped;
                        chunk = chunk.split_off(skipped as usize);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    return self.accept(chunk).map(Some);
                }
                Ok(Ok(None)) => "the download ended early".to_owned(),
                Ok(Err(e)) => crate::registry::describe_transport(&e),
                Err(_) => {
                    return Err(ImageError::new(
                        FailureKind::Timeout,
                        format!(
                        "{}: no byte arrived for {} ({STALL_TIMEOUT_FLAG}) after {} of {} bytes",
                        self.what(),
                        format_duration(self.stall),
                        self.received,
                        self.size
                    ),
                    ))
                }
            };
            info!(
                "{}: cut after {} of {} bytes ({cut}); resuming",
                self.what(),
                self.received,
                self.size
            );
            self.response = None;
            self.resumes += 1;
            if self.resumes > MAX_RESUMES {
                let message = format!(
                    "{}: the download was cut {}, the last after {} of {} bytes: {cut}",
                    self.what(),
                    crate::words::count(self.resumes, "time", "times"),
                    self.received,
                    self.size
                );
                return Err(ImageError::reported(FailureKind::Network, message).on(Side::Source));
            }
        }
    }

    /// Asks for the rest of the blob: a `Range` from where the cut left it, or the whole
    /// blob again (skipping what arrived already) when the source does not do ranges.
    async fn resume(&mut self) -> Result<(), ImageError> {
        let response = self
            .client
            .blob(
                self.name,
                self.digest,
                self.received,
                self.timeout,
                &self.what(),
            )
            .await
            .map_err(|e| e.image_error(Side::Source))?;
        let resumed_at = (response.status() == reqwest::StatusCode::PARTIAL_CONTENT)
            .then(|| content_range_start(response.headers()))
            .flatten();
        match resumed_at {
            Some(start) if start == self.received => self.skip = 0,
            _ => {
                debug!(
                    "{}: the source sends the whole blob again; skipping {} bytes",
                    self.what(),
                    self.received
                );
                self.skip = self.received;
            }
        }
        self.response = Some(response);
        Ok(())
    }

    /// Hashes `chunk` and counts it; the chunk that completes the blob is checked first.
    fn accept(&mut self, chunk: Bytes) -> Result<Bytes, ImageError> {
        let length = chunk.len() as u64;
        if self.received + length > self.size {
            return Err(mismatch(format!(
                "{} is larger than the {} bytes its manifest says",
                self.what(),
                self.size
            )));
        }
        self.hasher.update(&chunk);
        self.received += length;
        (self.moved)(length);
        if self.received == self.size {
            self.verify()?;
        }
        Ok(chunk)
    }

    fn verify(&self) -> Result<(), ImageError> {
        let actual = format!("sha256:{:x}", self.hasher.clone().finalize());
        if actual == self.digest {
            Ok(())
        } else {
            Err(mismatch(format!(
                "{} hashes to {actual}: digest mismatch",
                self.what()
            )))
        }
    }
}

fn mismatch(message: String) -> ImageError {
    let message = if message.contains("digest mismatch") {
        message
    } else {
        format!("digest mismatch: {message}")
    };
    ImageError::new(FailureKind::Other, message)
}

/// The first byte of `Content-Range: bytes START-END/SIZE`.
fn content_range_start(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim();
    range.split('-').next()?.trim().parse().ok()
}

/// A blob as an upload reads it: streamed from the source, read back from the spool that
/// several destinations share (see [`super::shared`]), or read in place from a bundle.
pub enum Reader<'a> {
    Live(Box<SourceBlob<'a>>),
    Spooled(super::shared::Spooled<'a>),
    Bundled(Box<BundleBlob<'a>>),
}

impl Reader<'_> {
    /// The next bytes of the blob, at most `max`; `None` once it is all read.
    pub async fn take(&mut self, max: u64) -> Result<Option<Bytes>, ImageError> {
        match self {
            Reader::Live(source) => source.take(max).await,
            Reader::Spooled(spooled) => spooled.take(max).await,
            Reader::Bundled(bundled) => bundled.take(max).await,
        }
    }

    fn what(&self) -> String {
        match self {
            Reader::Live(source) => source.what(),
            Reader::Spooled(spooled) => spooled.what(),
            Reader::Bundled(bundled) => bundled.what(),
        }
    }
}

/// Bytes read from a bundle at once.
const BUNDLE_READ: u64 = 1 << 20;

/// One blob read in place from a bundle (a layout's file, or its entry in a tar), its size and
/// sha256 checked as the bytes pass: the bytes that complete it come only once it checked out.
pub struct BundleBlob<'a> {
    file: tokio::fs::File,
    located: Located,
    /// The repository it belongs to, for messages.
    name: &'a str,
    digest: &'a str,
    received: u64,
    hasher: Sha256,
    moved: &'a (dyn Fn(u64) + Send + Sync),
}

impl<'a> BundleBlob<'a> {
    /// Starts reading `digest` (of `size` bytes, as its manifest says), found at `located`.
    pub async fn open(
        located: Located,
        name: &'a str,
        digest: &'a str,
        size: u64,
        moved: &'a (dyn Fn(u64) + Send + Sync),
    ) -> Result<BundleBlob<'a>, ImageError> {
        use tokio::io::AsyncSeekExt as _;
        if located.size != size {
            return Err(mismatch(format!(
                "blob {digest} of {name}: {} is {} bytes, its manifest says {size}; the bundle \
                 is damaged",
                located.name, located.size
            )));
        }
        let cannot = |e: std::io::Error| {
            ImageError::new(
                FailureKind::Other,
                format!("cannot read {}: {e}", located.name),
            )
            .on(Side::Source)
        };
        let mut file = tokio::fs::File::open(&located.file).await.map_err(cannot)?;
        file.seek(std::io::SeekFrom::Start(located.offset))
            .await
            .map_err(cannot)?;
        let blob = BundleBlob {
            file,
            located,
            name,
            digest,
            received: 0,
            hasher: Sha256::new(),
            moved,
        };
        if size == 0 {
            blob.verify()?;
        }
        Ok(blob)
    }

    fn what(&self) -> String {
        format!(
            "blob {} of {} in {}",
            self.digest, self.name, self.located.name
        )
    }

    /// The next bytes, at most `max`; `None` once it is all read.
    pub async fn take(&mut self, max: u64) -> Result<Option<Bytes>, ImageError> {
        use tokio::io::AsyncReadExt as _;
        let left = self.located.size - self.received;
        if left == 0 {
            return Ok(None);
        }
        let want = max.clamp(1, BUNDLE_READ).min(left) as usize;
        let mut buffer = vec![0u8; want];
        let n = self.file.read(&mut buffer).await.map_err(|e| {
            ImageError::new(
                FailureKind::Other,
                format!("{}: cannot read: {e}", self.what()),
            )
        })?;
        if n == 0 {
            return Err(mismatch(format!(
                "{}: the file ends after {} of its {} bytes; the bundle is damaged",
                self.what(),
                self.received,
                self.located.size
            )));
        }
        buffer.truncate(n);
        self.hasher.update(&buffer);
        self.received += n as u64;
        (self.moved)(n as u64);
        if self.received == self.located.size {
            self.verify()?;
        }
        Ok(Some(Bytes::from(buffer)))
    }

    fn verify(&self) -> Result<(), ImageError> {
        let actual = format!("sha256:{:x}", self.hasher.clone().finalize());
        if actual == self.digest {
            return Ok(());
        }
        Err(mismatch(format!(
            "{} hashes to {actual}: digest mismatch; the bundle is damaged (nothing of this \
             image was tagged)",
            self.what()
        )))
    }
}

/// Why pumping bytes into an upload stopped early.
pub enum Pumped {
    /// The source failed (or the blob did not check out): the upload must not complete.
    Source(ImageError),
    /// The upload stopped taking bytes: its own answer says why.
    Closed,
}

/// A request body fed through a channel, and the end that feeds it; `watch` is told of each
/// chunk the request takes.
pub fn channel_body(watch: &Watch) -> (mpsc::Sender<Result<Bytes, std::io::Error>>, reqwest::Body) {
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let watch = watch.clone();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| {
        let watch = watch.clone();
        async move {
            let item = receiver.recv().await;
            watch.tick();
            item.map(|item| (item, receiver))
        }
    });
    (sender, reqwest::Body::wrap_stream(stream))
}

/// Feeds `length` bytes of `source` into `sender`. On a source failure the body ends with
/// an error, so the upload it feeds is aborted rather than completed.
pub async fn pump(
    source: &mut Reader<'_>,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    length: u64,
) -> Result<(), Pumped> {
    let mut sent = 0;
    while sent < length {
        let chunk = match source.take(length - sent).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                let error = ImageError::new(
                    FailureKind::Internal,
                    format!("{}: ended before {length} bytes", source.what()),
                );
                let _ = sender
                    .send(Err(std::io::Error::other("source ended")))
                    .await;
                return Err(Pumped::Source(error));
            }
            Err(error) => {
                let _ = sender
                    .send(Err(std::io::Error::other(error.message.clone())))
                    .await;
                return Err(Pumped::Source(error));
            }
        };
        sent += chunk.len() as u64;
        if sender.send(Ok(chunk)).await.is_err() {
            return Err(Pumped::Closed);
        }
    }
    Ok(())
}

/// Which end of a transfer failed.
#[derive(Debug)]
pub enum Failed {
    /// The source (or the blob itself: a digest mismatch).
    Source(ImageError),
    /// The destination's upload.
    Upload(ImageError),
}

impl Failed {
    pub fn into_error(self) -> ImageError {
        match self {
            Failed::Source(error) | Failed::Upload(error) => error,
        }
    }
}

/// Runs an upload and the pump feeding it: a source failure wins over the upload's own error
/// (which is only its consequence), and drops the upload at once; so does an upload that
/// `watch` finds stalled (`what` names it then).
pub async fn pumped<T>(
    upload: impl Future<Output = Result<T, crate::registry::RegistryError>>,
    pump: impl Future<Output = Result<(), Pumped>>,
    watch: &Watch,
    what: &str,
) -> Result<T, Failed> {
    tokio::pin!(upload);
    tokio::pin!(pump);
    let mut pumped = false;
    loop {
        tokio::select! {
            biased;
            done = &mut pump, if !pumped => match done {
                Err(Pumped::Source(error)) => return Err(Failed::Source(error)),
                Ok(()) | Err(Pumped::Closed) => pumped = true,
            },
            () = watch.stalled() => return Err(Failed::Upload(watch.error(what))),
            answer = &mut upload => {
                return match answer {
                    Ok(value) => Ok(value),
                    Err(error) if !pumped => {
                        // The body ended early: was it the source?
                        match tokio::time::timeout(Duration::from_secs(5), &mut pump).await {
                            Ok(Err(Pumped::Source(source))) => Err(Failed::Source(source)),
                            _ => Err(Failed::Upload(error.image_error(Side::Destination))),
                        }
                    }
                    Err(error) => Err(Failed::Upload(error.image_error(Side::Destination))),
                };
            }
        }
    }
}

/// Writes the whole of `source` into the layout's blob store as `digest`: into a temporary
/// file first (named as skopeo names its own, so an interrupted copy's leftover is tidied the
/// same way), renamed into place once the digest checked out.
pub async fn to_layout(
    source: &mut Reader<'_>,
    layout: &Path,
    digest: &str,
) -> Result<(), ImageError> {
    let internal = |what: String| ImageError::new(FailureKind::Internal, what);
    let hex = digest.trim_start_matches("sha256:");
    let blobs = layout.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs)
        .await
        .map_err(|e| internal(format!("cannot create {}: {e}", blobs.display())))?;
    let temp = super::layout::temp_path(layout);
    let written = async {
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| internal(format!("cannot create {}: {e}", temp.display())))?;
        while let Some(chunk) = source.take(u64::MAX).await? {
            file.write_all(&chunk)
                .await
                .map_err(|e| internal(format!("cannot write {}: {e}", temp.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| internal(format!("cannot write {}: {e}", temp.display())))?;
        let path = blobs.join(hex);
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(|e| internal(format!("cannot write {}: {e}", path.display())))
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_download_starts_where_the_content_range_says() {
        let headers = |value: &str| {
            let mut map = reqwest::header::HeaderMap::new();
            map.insert("content-range", value.parse().unwrap());
            map
        };
        assert_eq!(
            content_range_start(&headers("bytes 1024-2047/2048")),
            Some(1024)
        );
        assert_eq!(content_range_start(&headers("bytes 0-9/*")), Some(0));
        assert_eq!(content_range_start(&headers("items 1-2/3")), None);
        assert_eq!(
            content_range_start(&reqwest::header::HeaderMap::new()),
            None
        );
    }

    #[tokio::test]
    async fn the_ledger_forgets_unused_blobs_one_repository_holds_not_shared_or_busy_ones() {
        let ledger = Ledger::default();
        let hold = |digest: &str, repositories: &[&str]| {
            let entry = ledger.entry("r.example", digest);
            let mut holders = entry.holders.try_lock().unwrap();
            holders.extend(repositories.iter().map(|r| (*r).to_owned()));
        };
        hold("shared", &["a", "b"]);
        let busy = ledger.entry("r.example", "busy");
        for n in 0..LEDGER_KEPT * 3 {
            hold(&format!("config-{n}"), &["a"]);
        }
        assert!(ledger.len() <= LEDGER_KEPT * 2, "{} entries", ledger.len());
        let entries = ledger.entries.lock().unwrap();
        let kept = |digest: &str| {
            entries
                .by_blob
                .contains_key(&("r.example".to_owned(), digest.to_owned()))
        };
        assert!(kept("shared") && kept("busy"));
        assert!(!kept("config-0"));
        drop(busy);
    }

    #[test]
    fn images_waiting_for_a_blob_give_up_with_a_move_that_got_no_answer() {
        let entry = LedgerEntry::default();
        let error = |kind| ImageError::new(kind, "x");
        let seen = entry.failures();
        // One repository's access is the next image's to try.
        entry.failed(&error(FailureKind::Unauthorized));
        assert_eq!(entry.failed_since(seen), None);
        entry.failed(&error(FailureKind::Timeout));
        assert_eq!(entry.failed_since(seen), Some(error(FailureKind::Timeout)));
        // An image that comes later tries for itself.
        assert_eq!(entry.failed_since(entry.failures()), None);
    }

    #[test]
    fn mismatches_say_so_once() {
        assert_eq!(
            mismatch("blob x hashes to y: digest mismatch".into()).message,
            "blob x hashes to y: digest mismatch"
        );
        let larger = mismatch("blob x is larger".into());
        assert_eq!(larger.message, "digest mismatch: blob x is larger");
        assert_eq!(larger.kind, FailureKind::Other);
    }
}
