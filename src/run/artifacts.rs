//! `--signatures`: after an image is synced or found current, what belongs to it follows it,
//! each artifact after its subject, digests kept, and skipped when the target holds it already.
//!
//! For one image: its subjects (its digest, and each platform's) are read from the target's
//! copy of it; its artifacts are looked up at the source ([`Lookups::at_source`]): cosign's
//! tags and the OCI referrers. A tag the target holds at the source's digest is current; any
//! other is copied by the run's engine, tag to tag, as an extra copy of its own. A referrer the
//! target lists for its subject is current; any other is copied by digest, which only the
//! native engine does (with skopeo or crane it is `needs-native`), and where the target has no
//! referrers API, the referrers tag schema's index is written there with it. A failed lookup
//! or copy is tried again under the run's retry policy; what still fails fails the image.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{stream, StreamExt as _};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::engine::{Attempt, Engine};
use crate::exec::{wait_for, Stop};
use crate::model::{
    ArtifactResult, ArtifactState, FailureKind, ImageError, Job, RetryPolicy, Selection, Side,
    Target,
};
use crate::plan::artifacts::{descriptor_of, write_fallback_index, Found, Lookups};
use crate::reference::ImageRef;
use crate::registry::api::Referrer;
use crate::registry::RegistryClient;

/// Artifacts of one image looked up or copied at once (copied: with an engine that shares
/// blobs between copies; else one after the other).
const AT_ONCE: usize = 4;

/// What one image's artifacts need from its run.
pub struct Follow<'a> {
    pub client: &'a RegistryClient,
    pub engine: &'a dyn Engine,
    pub retry: RetryPolicy,
    pub job: &'a Job,
    /// The image's digest (at the source and the target alike).
    pub digest: &'a str,
    pub selection: &'a Selection,
    pub stop: watch::Receiver<Stop>,
}

/// The artifact work of one run, shared by its images.
pub struct Artifacts {
    lookups: Lookups,
    /// Numbers for the engine's private files of each extra copy (skopeo's digest files),
    /// past the run's own jobs'.
    next_index: AtomicUsize,
    /// One image at a time per target repository and digest: two tags of one image would
    /// otherwise write the same referrers index at once.
    subjects: Mutex<HashMap<(String, String), SubjectLock>>,
}

/// Held while one image's artifacts are carried to one target repository.
type SubjectLock = Arc<tokio::sync::Mutex<()>>;

impl Artifacts {
    /// The artifact work of a run whose jobs number `first_index` (the extra copies are
    /// numbered from there on).
    pub fn new(first_index: usize) -> Artifacts {
        Artifacts {
            lookups: Lookups::default(),
            next_index: AtomicUsize::new(first_index),
            subjects: Mutex::default(),
        }
    }

    /// Copies what belongs to `follow.job`'s image, under the run's retry policy: its
    /// artifacts, each copied, current, failed or needing the native engine; an error when
    /// they could not even be looked up.
    pub async fn follow(&self, follow: &Follow<'_>) -> Result<Vec<ArtifactResult>, ImageError> {
        let Target::Registry(target) = &follow.job.target else {
            return Ok(Vec::new());
        };
        let target_name = target.repository();
        let lock = {
            let mut subjects = self.subjects.lock().expect("lock");
            let key = (target_name.clone(), follow.digest.to_owned());
            Arc::clone(subjects.entry(key).or_default())
        };
        let _held = lock.lock().await;
        let mut copied: HashMap<(Option<String>, String), ArtifactResult> = HashMap::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = match self.pass(follow, &target_name).await {
                Ok(mut results) => {
                    for result in &mut results {
                        let key = (result.tag.clone(), result.digest.clone());
                        match result.state {
                            ArtifactState::Copied => {
                                copied.insert(key, result.clone());
                            }
                            // Copied by an earlier pass whose other copies failed.
                            ArtifactState::Current if copied.contains_key(&key) => {
                                result.state = ArtifactState::Copied;
                            }
                            _ => {}
                        }
                    }
                    let failed = results.iter().filter_map(|r| r.error.as_ref());
                    let retryable = failed.clone().find(|e| e.retryable).cloned();
                    match retryable {
                        Some(error) if attempt <= follow.retry.retries => error,
                        _ => return Ok(results),
                    }
                }
                Err(error) if error.retryable && attempt <= follow.retry.retries => error,
                Err(error) => return Err(error),
            };
            let delay = follow
                .retry
                .backoff(attempt, retry.kind, crate::model::jitter());
            info!(
                "{}: its artifacts: {} ({}); trying again in {:.1}s",
                follow.job.target,
                retry.message,
                retry.kind,
                delay.as_secs_f64()
            );
            let mut stop = follow.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = wait_for(&mut stop, Stop::Graceful) => return Err(stopped()),
            }
        }
    }

    /// One look at the image's artifacts, and a copy of those the target lacks: up to
    /// [`AT_ONCE`] at a time, each subject's referrers index written once they are in.
    async fn pass(
        &self,
        follow: &Follow<'_>,
        target_name: &str,
    ) -> Result<Vec<ArtifactResult>, ImageError> {
        let client = follow.client;
        let source_name = follow.job.source.repository();
        let subjects = self
            .lookups
            .subjects(client, Side::Destination, target_name, follow.digest)
            .await?;
        let found = self
            .lookups
            .at_source(client, &source_name, &subjects, follow.selection)
            .await?;
        // Collected first: a stream over an iterator's closure would not be `Send` for every
        // lifetime.
        let mut tags = Vec::new();
        for artifact in &found {
            if artifact.tag.is_some() {
                tags.push(async move {
                    let state = self.tag_artifact(follow, target_name, artifact).await;
                    result(artifact, state)
                });
            }
        }
        let at_once = match follow.engine.shares_blobs_between_copies() {
            true => AT_ONCE,
            false => 1,
        };
        let mut results: Vec<ArtifactResult> = stream::iter(tags).buffered(at_once).collect().await;
        let mut referred = Vec::new();
        for subject in &subjects {
            let mut referrers: Vec<&Found> = Vec::new();
            for artifact in &found {
                if artifact.tag.is_none() && artifact.subject == *subject {
                    referrers.push(artifact);
                }
            }
            if !referrers.is_empty() {
                referred.push(self.referrers(follow, target_name, subject, referrers));
            }
        }
        let referred: Vec<Result<Vec<ArtifactResult>, ImageError>> =
            stream::iter(referred).buffered(AT_ONCE).collect().await;
        for subject in referred {
            results.extend(subject?);
        }
        Ok(results)
    }

    /// The referrers of one subject: those the target lists are current, the others copied by
    /// digest (with an engine that can), and the subject's referrers index written with them
    /// where the target has no referrers API.
    async fn referrers(
        &self,
        follow: &Follow<'_>,
        target_name: &str,
        subject: &str,
        referrers: Vec<&Found>,
    ) -> Result<Vec<ArtifactResult>, ImageError> {
        let client = follow.client;
        let listed = self
            .lookups
            .listed(client, Side::Destination, target_name, subject, None)
            .await?;
        let listed = &listed;
        let mut copies = Vec::new();
        for artifact in referrers {
            copies.push(async move {
                let outcome = if listed.holds(&artifact.digest) {
                    Ok((ArtifactState::Current, None))
                } else if !follow.engine.copies_by_digest() {
                    Ok((ArtifactState::NeedsNative, None))
                } else {
                    self.copy_referrer(follow, target_name, artifact, !listed.api)
                        .await
                        .map(|descriptor| (ArtifactState::Copied, descriptor))
                };
                match outcome {
                    Ok((state, descriptor)) => (result(artifact, Ok(state)), descriptor),
                    Err(error) => (result(artifact, Err(error)), None),
                }
            });
        }
        let copied: Vec<(ArtifactResult, Option<Referrer>)> =
            stream::iter(copies).buffered(AT_ONCE).collect().await;
        let added: Vec<&Referrer> = copied.iter().filter_map(|(_, d)| d.as_ref()).collect();
        let written = match added.is_empty() {
            true => Ok(()),
            false => {
                write_fallback_index(client, target_name, subject, &listed.referrers, &added).await
            }
        };
        Ok(copied
            .into_iter()
            .map(|(mut result, descriptor)| {
                if let (Some(_), Err(error)) = (&descriptor, &written) {
                    result.state = ArtifactState::Failed;
                    result.error = Some(error.clone());
                }
                result
            })
            .collect())
    }

    /// Copies one of cosign's tags unless the target holds it at the source's digest.
    async fn tag_artifact(
        &self,
        follow: &Follow<'_>,
        target_name: &str,
        artifact: &Found,
    ) -> Result<ArtifactState, ImageError> {
        let tag = artifact.tag.as_deref().unwrap_or_default();
        let held = follow
            .client
            .manifest_digest(Side::Destination, target_name, tag)
            .await
            .map_err(|e| e.image_error(Side::Destination))?;
        if held.as_deref() == Some(artifact.digest.as_str()) {
            return Ok(ArtifactState::Current);
        }
        let job = extra_job(follow.job, target_name, Some(tag), &artifact.digest)?;
        let landed = self.copy(follow, &job, &artifact.digest).await?;
        if landed != artifact.digest {
            // A signature tag gains layers as signatures are added: the tag may have moved
            // since it was looked up, to what landed.
            let now = follow
                .client
                .manifest_digest(Side::Source, &follow.job.source.repository(), tag)
                .await
                .map_err(|e| e.image_error(Side::Source))?;
            if now.as_deref() != Some(landed.as_str()) {
                return Err(ImageError::new(
                    FailureKind::Other,
                    format!(
                        "digest mismatch: {target_name}:{tag} now holds {landed}, but the source \
                         advertises {}",
                        artifact.digest
                    ),
                ));
            }
            info!("{target_name}:{tag}: the source's tag moved since it was looked up; copied {landed}");
        }
        Ok(ArtifactState::Copied)
    }

    /// Copies one referrer by digest; with `describe` (a target without the referrers API),
    /// gives the descriptor its referrers index is to list it with (read back from the target).
    async fn copy_referrer(
        &self,
        follow: &Follow<'_>,
        target_name: &str,
        artifact: &Found,
        describe: bool,
    ) -> Result<Option<Referrer>, ImageError> {
        let job = extra_job(follow.job, target_name, None, &artifact.digest)?;
        let landed = self.copy(follow, &job, &artifact.digest).await?;
        if landed != artifact.digest {
            return Err(ImageError::new(
                FailureKind::Other,
                format!(
                    "digest mismatch: {target_name}@{} was written as {landed}",
                    artifact.digest
                ),
            ));
        }
        if !describe {
            return Ok(None);
        }
        let what = format!("reading back {target_name}@{landed}");
        let raw = follow
            .client
            .manifest(Side::Destination, target_name, &landed, &what)
            .await
            .map_err(|e| e.image_error(Side::Destination))?;
        let Some(raw) = raw else {
            return Err(ImageError::new(
                FailureKind::Other,
                format!("{what}: not found right after it was written"),
            )
            .on(Side::Destination));
        };
        descriptor_of(&landed, &raw.bytes, raw.content_type.as_deref())
            .map(Some)
            .map_err(|reason| ImageError::new(FailureKind::Other, format!("{what}: {reason}")))
    }

    /// Runs the engine on an extra job, retried under the run's policy; gives the digest
    /// that landed.
    async fn copy(
        &self,
        follow: &Follow<'_>,
        job: &Job,
        digest: &str,
    ) -> Result<String, ImageError> {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        let progress = |_| {};
        let mut number = 0;
        loop {
            number += 1;
            let outcome = follow
                .engine
                .copy(Attempt {
                    index,
                    job,
                    digest: Some(digest),
                    number,
                    spent: Duration::ZERO,
                    stop: follow.stop.clone(),
                    progress: &progress,
                })
                .await;
            let error = match outcome {
                Ok(copied) => {
                    debug!("{}: copied as {:?}", job.target, copied.digest);
                    return match copied.digest {
                        Some(landed) => Ok(landed),
                        None => landed_at(follow.client, job, digest).await,
                    };
                }
                Err(error) => error,
            };
            if !error.retryable || number > follow.retry.retries {
                return Err(error);
            }
            let delay = follow
                .retry
                .backoff(number, error.kind, crate::model::jitter());
            info!(
                "{}: copy {number} failed ({}); trying again in {:.1}s",
                job.target,
                error.message,
                delay.as_secs_f64()
            );
            let mut stop = follow.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = wait_for(&mut stop, Stop::Graceful) => return Err(stopped()),
            }
        }
    }
}

/// The digest an extra job's target holds after its copy (when the engine did not say).
async fn landed_at(
    client: &RegistryClient,
    job: &Job,
    expected: &str,
) -> Result<String, ImageError> {
    let Target::Registry(target) = &job.target else {
        return Ok(expected.to_owned());
    };
    let at = target.tag().or(target.digest()).unwrap_or(expected);
    let held = client
        .manifest_digest(Side::Destination, &target.repository(), at)
        .await
        .map_err(|e| e.image_error(Side::Destination))?;
    held.ok_or_else(|| {
        ImageError::new(
            FailureKind::Other,
            format!("{target}: not found right after its copy"),
        )
    })
}

/// The copy of one artifact: from the image's source repository to its target repository, at
/// cosign's `tag`, or by `digest` alone (a referrer).
fn extra_job(
    image: &Job,
    target_name: &str,
    tag: Option<&str>,
    digest: &str,
) -> Result<Job, ImageError> {
    let reference = |name: &str| {
        let written = match tag {
            Some(tag) => format!("{name}:{tag}"),
            None => format!("{name}@{digest}"),
        };
        ImageRef::parse(&written).map_err(|e| {
            ImageError::new(
                FailureKind::Internal,
                format!("cannot name the artifact {written}: {e}"),
            )
        })
    };
    Ok(Job {
        origin: image.origin.clone(),
        source: reference(&image.source.repository())?,
        target: Target::Registry(reference(target_name)?),
        explicit: true,
        filter: None,
        signatures: None,
    })
}

fn result(artifact: &Found, state: Result<ArtifactState, ImageError>) -> ArtifactResult {
    let (state, error) = match state {
        Ok(state) => (state, None),
        Err(error) => (ArtifactState::Failed, Some(error)),
    };
    ArtifactResult {
        kind: artifact.kind,
        subject: artifact.subject.clone(),
        tag: artifact.tag.clone(),
        digest: artifact.digest.clone(),
        artifact_type: artifact.artifact_type.clone(),
        state,
        error,
    }
}

fn stopped() -> ImageError {
    ImageError::new(
        FailureKind::Interrupted,
        "stopped while copying its signatures and other artifacts",
    )
}

/// The image's result with its artifacts: a failed artifact fails the image (it is in the
/// failed list, so a rerun copies what is still missing), naming the artifact.
pub fn with_artifacts(
    mut result: crate::model::ImageResult,
    artifacts: Result<Vec<ArtifactResult>, ImageError>,
) -> crate::model::ImageResult {
    let artifacts = match artifacts {
        Ok(artifacts) => artifacts,
        Err(error) => {
            let message = format!(
                "the image is at the target, but its artifacts could not be looked up: {}",
                error.message
            );
            result.status = crate::model::Status::Failed;
            result.error = Some(Box::new(error.reworded(message)));
            result.artifacts = Some(Vec::new());
            return result;
        }
    };
    let failed: Vec<&ArtifactResult> = artifacts
        .iter()
        .filter(|a| a.state == ArtifactState::Failed)
        .collect();
    if let Some(first) = failed.first() {
        let error = first
            .error
            .clone()
            .unwrap_or_else(|| ImageError::new(FailureKind::Other, "the artifact was not copied"));
        let more = match failed.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let message = format!(
            "the image is at the target, but its {} {}{more} was not copied: {}",
            first.kind.as_str(),
            first.name(),
            error.message
        );
        result.status = crate::model::Status::Failed;
        result.error = Some(Box::new(error.reworded(message)));
    }
    result.artifacts = Some(artifacts);
    result
}
