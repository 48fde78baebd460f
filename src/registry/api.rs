//! The distribution API calls ferry makes, on top of [`RegistryClient::send`]: the lookups
//! before any copy (a manifest's digest, a repository's tags, page by page), and the calls a
//! copy makes: manifests read and written byte for byte, blobs checked, read (from an offset),
//! mounted and uploaded (monolithic or in chunks). Every call goes through the client's gate
//! (pace, in-flight cap, 429s) and session; a copy's calls without a streamed body are sent
//! again on their own after a connection error or a 5xx.

use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use super::request::{Patience, Payload, Request, Scope};
use super::{
    header, read_body, read_json, status_error, Deadline, RegistryClient, RegistryError,
    MAX_ERROR_BODY_BYTES, MAX_MANIFEST_BYTES, MAX_TAG_PAGE_BYTES, STALL_TIMEOUT_FLAG,
    TAGS_PER_PAGE_AT_LEAST,
};
use crate::model::Side;
use crate::reference::check_sha256_digest;

/// The header in which a registry names the digest of what it served or stored.
const DIGEST_HEADER: &str = "docker-content-digest";

/// Every manifest type a multi-arch mirror deals with; the top-level digest is what matters.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest type, with the schema 1 ones last: a registry holding only schema 1 then
/// says so (and ferry refuses it) instead of answering 404.
pub const MANIFEST_GET_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
    application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// A manifest as a registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    /// The `Content-Type` it came with, parameters dropped.
    pub content_type: Option<String>,
    /// The digest the registry advertised for it (`Docker-Content-Digest`), checked to be a
    /// sha256 digest but not yet against the bytes.
    pub advertised: Option<String>,
}

/// What starting a blob upload gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// The registry mounted the blob from the other repository: nothing to upload.
    Mounted,
    /// An upload session at `location`; `chunk_min` is the smallest chunk the registry takes
    /// (`OCI-Chunk-Min-Length`), when it says.
    Session {
        location: String,
        chunk_min: Option<u64>,
    },
}

/// An upload session of one blob to destination repository `name` (`domain/path`).
pub struct Upload<'a> {
    pub name: &'a str,
    /// Where the session continues (the registry's last `Location`).
    pub location: String,
    /// Bounds each request of the upload, body and all.
    pub timeout: Duration,
    pub what: &'a str,
}

impl RegistryClient {
    /// The top-level digest of `name` (`domain/path`) at `reference` (tag or digest), or
    /// `None` when it does not exist there.
    pub async fn manifest_digest(
        &self,
        side: Side,
        name: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let endpoint = self.endpoint(side, name)?;
        let what = format!("{name}:{reference}").replace(":sha256:", "@sha256:");
        let path = format!("/v2/{}/manifests/{reference}", endpoint.repository);
        let lookup = |method| Request {
            accept: Some(MANIFEST_ACCEPT),
            ..Request::new(side, name, method, path.clone(), &what)
        };
        let response = self.send(lookup(Method::HEAD)).await?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error(&what, &response)),
        }
        // What a source's manifest is counts its pulls at a metered registry.
        let media_type = header(response.headers(), CONTENT_TYPE.as_str());
        if let (Side::Source, Some(media_type)) = (side, media_type) {
            let (host, repository) = (&endpoint.host, &endpoint.repository);
            self.quota
                .note_kind(host, repository, reference, &media_type);
        }
        if let Some(digest) = header_digest(response.headers(), &what)? {
            return Ok(Some(digest));
        }
        // Some registries omit the header on HEAD: the digest is the sha256 of the body.
        let response = self.send(lookup(Method::GET)).await?;
        if !response.status().is_success() {
            return Err(status_error(&what, &response));
        }
        let body = read_body(
            response,
            MAX_MANIFEST_BYTES,
            "manifest",
            &what,
            self.lookup_deadline(),
        )
        .await?;
        Ok(Some(format!("sha256:{:x}", Sha256::digest(&body))))
    }

    /// Every tag of `name`, following `Link` pagination; `None` when the repository does not
    /// exist. A listing longer than `--max-tags`, or than the pages that many tags take, is an
    /// error: a registry whose `Link` always names a next page would otherwise never end.
    pub async fn tags(&self, side: Side, name: &str) -> Result<Option<Vec<String>>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        if side == Side::Source {
            if let Some(tags) = self.listing.take_tags(name) {
                // A namespace's listing read them a moment ago.
                return Ok(Some(tags));
            }
        }
        let endpoint = self.endpoint(side, name)?;
        let what = format!("tags of {name}");
        let max_tags = self.options.limits.max_tags;
        let max_pages = self.options.limits.max_tag_pages();
        let mut path = format!("/v2/{}/tags/list?n=1000", endpoint.repository);
        let mut tags = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > max_pages {
                return Err(RegistryError::Bound {
                    what,
                    message: format!(
                        "the listing goes on past {max_pages} pages ({} tags so far), more than \
                         --max-tags {max_tags} takes at {TAGS_PER_PAGE_AT_LEAST} tags a page; \
                         raise --max-tags if the repository really has that many tags, or name \
                         the tags to mirror",
                        tags.len()
                    ),
                });
            }
            let response = self
                .send(Request {
                    accept: Some("application/json"),
                    ..Request::new(side, name, Method::GET, path.clone(), &what)
                })
                .await?;
            match response.status() {
                status if status.is_success() => {}
                StatusCode::NOT_FOUND => return Ok(None),
                _ => return Err(status_error(&what, &response)),
            }
            let next = header(response.headers(), LINK.as_str()).and_then(|link| next_link(&link));
            let page: Page = read_json(
                response,
                MAX_TAG_PAGE_BYTES,
                "page of tags",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > max_tags {
                return Err(RegistryError::Bound {
                    what,
                    message: format!(
                        "the repository lists more than --max-tags {max_tags} tags; raise \
                         --max-tags if it really has that many, or name the tags to mirror"
                    ),
                });
            }
            match next {
                Some(next) => path = next,
                None => return Ok(Some(tags)),
            }
        }
    }

    /// Whether the registry says repository `name` does not exist at all: its tag list
    /// (`GET /v2/NAME/tags/list?n=1`) answered `404` with the error code `NAME_UNKNOWN`, as
    /// distribution answers for a repository it has never held. Any other answer (a listing, a
    /// `404` without that code, a refusal, a failure) is `false`: the repository may exist, and
    /// its tags are to be looked up one by one. One request, never retried. A destination
    /// repository said not to exist is remembered (see [`RegistryClient::was_unknown`]).
    pub async fn repository_unknown(&self, side: Side, name: &str) -> bool {
        let Ok(endpoint) = self.endpoint(side, name) else {
            return false;
        };
        let what = format!("tags of {name}");
        let path = format!("/v2/{}/tags/list?n=1", endpoint.repository);
        let Ok(response) = self
            .send(Request {
                accept: Some("application/json"),
                ..Request::new(side, name, Method::GET, path, &what)
            })
            .await
        else {
            return false;
        };
        if response.status() != StatusCode::NOT_FOUND {
            return false;
        }
        let body = read_prefix(response, MAX_ERROR_BODY_BYTES).await;
        let unknown = name_unknown(&body);
        if unknown && side == Side::Destination {
            self.unknown_repositories
                .lock()
                .expect("lock")
                .insert(name.to_owned());
        }
        unknown
    }

    /// The manifest `reference` (tag or digest) of `name` on `side`; `None` when the registry
    /// does not have it. One larger than [`MAX_MANIFEST_BYTES`] is an error, read no further.
    pub async fn manifest(
        &self,
        side: Side,
        name: &str,
        reference: &str,
        what: &str,
    ) -> Result<Option<RawManifest>, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository(side, name)?);
        let response = self
            .send(Request {
                accept: Some(MANIFEST_GET_ACCEPT),
                scope: scope_for(side),
                retry_transient: true,
                patience: Patience::Copy,
                ..Request::new(side, name, Method::GET, path, what)
            })
            .await?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(rejected(what, response).await),
        }
        let advertised = header_digest(response.headers(), what)?;
        let content_type = header(response.headers(), CONTENT_TYPE.as_str()).map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
        let bytes = read_body(response, MAX_MANIFEST_BYTES, "manifest", what, self.stall()).await?;
        Ok(Some(RawManifest {
            bytes,
            content_type,
            advertised,
        }))
    }

    /// Writes `bytes` as manifest `reference` of `name` (a destination) with `media_type`;
    /// returns the digest the registry says it stored, when it says.
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        what: &str,
    ) -> Result<Option<String>, RegistryError> {
        let side = Side::Destination;
        let path = format!("/v2/{}/manifests/{reference}", self.repository(side, name)?);
        let response = self
            .send(Request {
                headers: vec![(CONTENT_TYPE, value(media_type))],
                body: Payload::Bytes(bytes.to_vec()),
                scope: Scope::Push,
                retry_transient: true,
                patience: Patience::Copy,
                ..Request::new(side, name, Method::PUT, path, what)
            })
            .await?;
        if !response.status().is_success() {
            return Err(rejected(what, response).await);
        }
        header_digest(response.headers(), what)
    }

    /// Whether blob `digest` is in `name` on `side`.
    pub async fn blob_exists(
        &self,
        side: Side,
        name: &str,
        digest: &str,
        what: &str,
    ) -> Result<bool, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository(side, name)?);
        let response = self
            .send(Request {
                scope: scope_for(side),
                retry_transient: true,
                patience: Patience::Copy,
                ..Request::new(side, name, Method::HEAD, path, what)
            })
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(what, &response)),
        }
    }

    /// Blob `digest` of source `name`, from byte `from` on (a `Range` request when not 0).
    /// The answer's status tells whether the registry honoured the range (206) or sends the
    /// whole blob (200); its body is for the caller to stream (and to watch for stalls).
    /// `timeout` bounds the whole transfer, `--stall-timeout` the wait for the answer.
    pub async fn blob(
        &self,
        name: &str,
        digest: &str,
        from: u64,
        timeout: Duration,
        what: &str,
    ) -> Result<Response, RegistryError> {
        let side = Side::Source;
        let path = format!("/v2/{}/blobs/{digest}", self.repository(side, name)?);
        let headers = match from {
            0 => Vec::new(),
            from => vec![(RANGE, value(&format!("bytes={from}-")))],
        };
        let response = self
            .send(Request {
                headers,
                retry_transient: true,
                patience: Patience::Transfer { total: timeout },
                ..Request::new(side, name, Method::GET, path, what)
            })
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(response),
            _ => Err(rejected(what, response).await),
        }
    }

    /// Starts an upload of a blob to destination `name`: with `mount` (the digest and the
    /// name of another repository of the same registry holding it), asks the registry to
    /// mount it from there instead.
    pub async fn start_upload(
        &self,
        name: &str,
        mount: Option<(&str, &str)>,
        what: &str,
    ) -> Result<UploadStart, RegistryError> {
        let side = Side::Destination;
        let repository = self.repository(side, name)?;
        let (path, scope) = match mount {
            Some((digest, from)) => {
                let from = self.repository(side, from)?;
                let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
                (path, Scope::Mount { from })
            }
            None => (format!("/v2/{repository}/blobs/uploads/"), Scope::Push),
        };
        let response = self
            .send(Request {
                headers: vec![(CONTENT_LENGTH, value("0"))],
                scope,
                retry_transient: true,
                patience: Patience::Copy,
                ..Request::new(side, name, Method::POST, path, what)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED if mount.is_some() => Ok(UploadStart::Mounted),
            StatusCode::ACCEPTED => {
                let location = header(response.headers(), LOCATION.as_str()).ok_or_else(|| {
                    RegistryError::Invalid {
                        what: what.to_owned(),
                        message: "upload started without a Location".to_owned(),
                    }
                })?;
                let chunk_min =
                    header(response.headers(), "oci-chunk-min-length").and_then(|v| v.parse().ok());
                Ok(UploadStart::Session {
                    location,
                    chunk_min,
                })
            }
            _ => Err(rejected(what, response).await),
        }
    }

    /// Sends `length` bytes of `body` to `upload`, starting at byte `start` of the blob;
    /// returns where the upload continues.
    pub async fn patch_upload(
        &self,
        upload: &Upload<'_>,
        start: u64,
        length: u64,
        body: reqwest::Body,
    ) -> Result<String, RegistryError> {
        let end = (start + length).saturating_sub(1);
        let response = self
            .send(Request {
                headers: vec![
                    (CONTENT_TYPE, value("application/octet-stream")),
                    (CONTENT_LENGTH, value(&length.to_string())),
                    (
                        HeaderName::from_static("content-range"),
                        value(&format!("{start}-{end}")),
                    ),
                ],
                body: Payload::Stream(Some(body)),
                scope: Scope::Push,
                patience: Patience::Transfer {
                    total: upload.timeout,
                },
                ..Request::new(
                    Side::Destination,
                    upload.name,
                    Method::PATCH,
                    upload.location.clone(),
                    upload.what,
                )
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(rejected(upload.what, response).await);
        }
        Ok(
            header(response.headers(), LOCATION.as_str())
                .unwrap_or_else(|| upload.location.clone()),
        )
    }

    /// Completes `upload` as blob `digest`, with the last `length` bytes in `body` (a
    /// monolithic upload: all of them; after chunks: none). The registry checks the digest
    /// before it keeps anything.
    pub async fn finish_upload(
        &self,
        upload: &Upload<'_>,
        digest: &str,
        length: u64,
        body: Option<reqwest::Body>,
    ) -> Result<(), RegistryError> {
        let what = upload.what;
        let location = &upload.location;
        let separator = if location.contains('?') { '&' } else { '?' };
        let target = format!("{location}{separator}digest={digest}");
        let mut headers = vec![(CONTENT_LENGTH, value(&length.to_string()))];
        let body = match body {
            Some(body) => {
                headers.push((CONTENT_TYPE, value("application/octet-stream")));
                Payload::Stream(Some(body))
            }
            None => Payload::Empty,
        };
        let response = self
            .send(Request {
                headers,
                retry_transient: matches!(body, Payload::Empty),
                body,
                scope: Scope::Push,
                patience: Patience::Transfer {
                    total: upload.timeout,
                },
                ..Request::new(Side::Destination, upload.name, Method::PUT, target, what)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(rejected(what, response).await);
        }
        match header_digest(response.headers(), what)? {
            Some(stored) if stored != digest => Err(RegistryError::Invalid {
                what: what.to_owned(),
                message: format!("digest mismatch: the registry stored {stored}"),
            }),
            _ => Ok(()),
        }
    }

    /// Gives up the upload at `location` (best effort: a registry also expires it itself).
    pub async fn cancel_upload(&self, name: &str, location: &str, what: &str) {
        let request = Request {
            scope: Scope::Push,
            patience: Patience::Transfer {
                total: CANCEL_TIMEOUT.min(self.options.limits.stall_timeout),
            },
            ..Request::new(
                Side::Destination,
                name,
                Method::DELETE,
                location.to_owned(),
                what,
            )
        };
        if let Err(e) = self.send(request).await {
            tracing::debug!("cancelling the upload for {what}: {e}");
        }
    }

    /// The host and repository requests for `name` on `side` go to.
    pub fn registry_of(&self, side: Side, name: &str) -> Result<(String, String), RegistryError> {
        let endpoint = self.endpoint(side, name)?;
        Ok((endpoint.host, endpoint.repository))
    }

    fn repository(&self, side: Side, name: &str) -> Result<String, RegistryError> {
        Ok(self.endpoint(side, name)?.repository)
    }

    /// The deadline of a copy's small request, for messages.
    fn stall(&self) -> Deadline {
        Deadline {
            after: self.options.limits.stall_timeout,
            flag: STALL_TIMEOUT_FLAG,
        }
    }
}

/// The longest a best-effort cancel of an upload is waited for.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sources are only read; a destination is asked for push access from the first request on,
/// so that one token serves its checks and its uploads.
fn scope_for(side: Side) -> Scope {
    match side {
        Side::Source => Scope::Pull,
        Side::Destination => Scope::Push,
    }
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Docker-Content-Digest` of an answer, when it has one, checked as every digest from a
/// registry is (see [`check_sha256_digest`]) before anything uses it: in a URL, a digest like
/// `sha256:../../x` would take a request (with the registry's credentials) out of the
/// repository.
fn header_digest(headers: &HeaderMap, what: &str) -> Result<Option<String>, RegistryError> {
    let Some(value) = headers.get(DIGEST_HEADER) else {
        return Ok(None);
    };
    let digest = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if digest.is_empty() {
        return Ok(None);
    }
    check_sha256_digest(&digest).map_err(|reason| RegistryError::DigestHeader {
        what: what.to_owned(),
        reason,
    })?;
    Ok(Some(digest))
}

/// The next page from `Link: </v2/…/tags/list?last=x&n=1000>; rel="next"`.
pub(super) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        match reqwest::Url::parse(target) {
            // An absolute link: keep its path and query (it points at the same registry).
            Ok(url) => Some(match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            }),
            Err(_) => Some(target.to_owned()),
        }
    })
}

/// The error for an answer that is not the one expected, with the registry's own words
/// (its `errors[]` code and message) when it gave them.
async fn rejected(what: &str, response: Response) -> RegistryError {
    let status = response.status();
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        return status_error(what, &response);
    }
    let body = read_prefix(response, MAX_ERROR_BODY_BYTES).await;
    RegistryError::Rejected {
        what: what.to_owned(),
        status: status.as_u16(),
        detail: error_detail(&body),
    }
}

/// The first `limit` bytes of `response`'s body at most (all of it when shorter, what came
/// when it broke off): the rest is never read.
async fn read_prefix(mut response: Response, limit: u64) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = usize::try_from(limit).unwrap_or(usize::MAX) - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= limit {
            break;
        }
    }
    body
}

/// Whether a registry's `{"errors": [...]}` names the code `NAME_UNKNOWN` (the repository
/// does not exist).
fn name_unknown(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
    }
    serde_json::from_slice::<Errors>(body)
        .is_ok_and(|e| e.errors.iter().any(|e| e.code == "NAME_UNKNOWN"))
}

/// `CODE: message` of each entry of a registry's `{"errors": [...]}`, or the start of the
/// body as text.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(errors) = serde_json::from_slice::<Errors>(body) {
        let entries: Vec<String> = errors
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code.to_lowercase(), e.message),
                (false, true) => e.code.to_lowercase(),
                _ => e.message.clone(),
            })
            .collect();
        return entries.join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    text.chars().take(200).collect()
}

/// The most referrers ferry reads for one subject: a registry listing more is broken or hostile.
pub const MAX_REFERRERS: usize = 1_000;
/// The most pages of one referrers listing ferry reads.
pub const MAX_REFERRER_PAGES: usize = 20;

/// One descriptor of a referrers listing (the referrers API's answer, or the index under the
/// referrers tag schema's `sha256-<hex>` tag): its digest checked, the whole of it kept as the
/// registry wrote it, to be written back into a fallback index as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    /// The descriptor as read.
    pub raw: serde_json::Value,
}

/// What a referrers listing gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub referrers: Vec<Referrer>,
    /// Whether the registry applied the `artifactType` filter asked for
    /// (`OCI-Filters-Applied: artifactType`).
    pub filtered: bool,
}

/// Reads the descriptors of a referrers listing (an image index), checking each digest before
/// anything may use it; more than [`MAX_REFERRERS`] in all (with `so_far` already read) is an
/// error.
pub fn parse_referrers(
    body: &[u8],
    so_far: usize,
    what: &str,
) -> Result<Vec<Referrer>, RegistryError> {
    let invalid = |message: String| RegistryError::Invalid {
        what: what.to_owned(),
        message,
    };
    let index: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the referrers listing is not JSON ({e})")))?;
    let manifests = match index.get("manifests") {
        Some(serde_json::Value::Array(manifests)) => manifests,
        Some(serde_json::Value::Null) | None => return Ok(Vec::new()),
        Some(_) => {
            return Err(invalid(
                "the referrers listing's manifests is not an array".to_owned(),
            ))
        }
    };
    if so_far + manifests.len() > MAX_REFERRERS {
        return Err(RegistryError::Bound {
            what: what.to_owned(),
            message: format!(
                "the subject has more than {MAX_REFERRERS} referrers, the most ferry reads: the \
                 registry is broken or hostile"
            ),
        });
    }
    manifests
        .iter()
        .map(|raw| {
            let text = |key: &str| raw.get(key).and_then(serde_json::Value::as_str);
            let digest = text("digest").unwrap_or_default().to_owned();
            check_sha256_digest(&digest)
                .map_err(|reason| invalid(format!("a referrer's {reason}")))?;
            Ok(Referrer {
                media_type: text("mediaType").unwrap_or_default().to_owned(),
                size: raw
                    .get("size")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                artifact_type: text("artifactType").map(str::to_owned),
                digest,
                raw: raw.clone(),
            })
        })
        .collect()
}

impl RegistryClient {
    /// The referrers of manifest `digest` in `name` on `side`, from the OCI 1.1 referrers API
    /// (`GET /v2/<name>/referrers/<digest>`, following `Link` pages), with the registry asked
    /// to filter on `artifact_type` when one is given; `None` when the registry answers 404,
    /// that is, has no referrers API (the caller then reads the referrers tag schema's index).
    /// At most [`MAX_REFERRERS`] referrers over [`MAX_REFERRER_PAGES`] pages of at most 4 MiB
    /// are read.
    pub async fn referrers(
        &self,
        side: Side,
        name: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Listing>, RegistryError> {
        let what = format!("referrers of {name}@{digest}");
        check_sha256_digest(digest).map_err(|reason| RegistryError::Invalid {
            what: what.clone(),
            message: reason,
        })?;
        let repository = self.repository(side, name)?;
        let mut path = format!("/v2/{repository}/referrers/{digest}");
        if let Some(artifact_type) = artifact_type {
            path.push_str("?artifactType=");
            path.push_str(&percent_encoded(artifact_type));
        }
        let mut listing = Listing {
            referrers: Vec::new(),
            filtered: artifact_type.is_some(),
        };
        for page in 1.. {
            if page > MAX_REFERRER_PAGES {
                return Err(RegistryError::Bound {
                    what,
                    message: format!(
                        "the listing goes on past {MAX_REFERRER_PAGES} pages, more than ferry \
                         reads: the registry is broken or hostile"
                    ),
                });
            }
            let response = self
                .send(Request {
                    accept: Some(OCI_INDEX_TYPE),
                    scope: scope_for(side),
                    retry_transient: true,
                    ..Request::new(side, name, Method::GET, path.clone(), &what)
                })
                .await?;
            match response.status() {
                status if status.is_success() => {}
                StatusCode::NOT_FOUND if page == 1 => return Ok(None),
                _ => return Err(rejected(&what, response).await),
            }
            let applied = header(response.headers(), "oci-filters-applied")
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            listing.filtered &= applied;
            let next = header(response.headers(), LINK.as_str()).and_then(|link| next_link(&link));
            let body = read_body(
                response,
                MAX_MANIFEST_BYTES,
                "referrers listing",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            let referrers = parse_referrers(&body, listing.referrers.len(), &what)?;
            listing.referrers.extend(referrers);
            match next {
                Some(next) => path = next,
                None => break,
            }
        }
        Ok(Some(listing))
    }
}

/// The OCI image index's media type: what a referrers listing is.
const OCI_INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// `text` as a URL query value: every byte but the unreserved ones percent-encoded.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FailureKind;

    #[test]
    fn only_a_name_unknown_code_says_a_repository_does_not_exist() {
        let unknown = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        assert!(name_unknown(unknown));
        assert!(name_unknown(
            br#"{"errors":[{"code":"DENIED"},{"code":"NAME_UNKNOWN"}]}"#
        ));
        for other in [
            &br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#[..],
            br#"{"errors":[{"code":"name_unknown"}]}"#,
            b"404 page not found",
            b"",
        ] {
            assert!(!name_unknown(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn digest_headers_are_checked_before_use() {
        let good = format!("sha256:{}", "a".repeat(64));
        let answer = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(DIGEST_HEADER, value.parse().unwrap());
            header_digest(&headers, "reading manifest x:1")
        };
        assert_eq!(header_digest(&HeaderMap::new(), "x").unwrap(), None);
        assert_eq!(answer(&format!(" {good} ")).unwrap(), Some(good.clone()));
        for bad in ["sha256:../../../../x", "sha512:ab", &good.to_uppercase()] {
            let error = answer(bad).unwrap_err();
            assert_eq!(error.kind(), FailureKind::Other, "{bad}");
            let message = error.to_string();
            assert!(
                message.starts_with("reading manifest x:1: unexpected response: its Docker-Content-Digest header is invalid: digest")
                    && message.ends_with("is not a sha256 digest, which ferry cannot verify"),
                "{message}"
            );
        }
    }

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/library/nginx/tags/list?last=1.25&n=1000>; rel="next""#).as_deref(),
            Some("/v2/library/nginx/tags/list?last=1.25&n=1000")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list?n=2>; rel="prev""#), None);
    }

    #[test]
    fn a_registrys_error_body_is_read_as_its_words() {
        let table = [
            (
                r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:aa"}]}"#,
                "manifest_blob_unknown: blob unknown to registry",
            ),
            (
                r#"{"errors":[{"code":"DIGEST_INVALID"},{"message":"and more"}]}"#,
                "digest_invalid; and more",
            ),
            ("upstream: connection reset\n", "upstream: connection reset"),
            ("", ""),
        ];
        for (body, expected) in table {
            assert_eq!(error_detail(body.as_bytes()), expected, "{body}");
        }
    }

    #[test]
    fn referrers_listings_are_read_bounded_and_checked() {
        let digest = format!("sha256:{}", "c".repeat(64));
        let listing = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":9,"artifactType":"application/spdx+json","annotations":{{"a":"b"}}}}]}}"#
        );
        let read = parse_referrers(listing.as_bytes(), 0, "x").unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].digest, digest);
        assert_eq!(read[0].size, 9);
        assert_eq!(
            read[0].artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert_eq!(read[0].raw["annotations"]["a"], "b");
        assert!(parse_referrers(b"{\"manifests\":null}", 0, "x")
            .unwrap()
            .is_empty());
        let error = parse_referrers(listing.as_bytes(), MAX_REFERRERS, "x").unwrap_err();
        assert!(
            error.to_string().contains("more than 1000 referrers"),
            "{error}"
        );
        let traversal = r#"{"manifests":[{"digest":"sha256:../../x","size":1}]}"#;
        let error = parse_referrers(traversal.as_bytes(), 0, "x").unwrap_err();
        assert!(
            error.to_string().contains("is not a sha256 digest"),
            "{error}"
        );
        assert_eq!(
            percent_encoded("application/spdx+json"),
            "application%2Fspdx%2Bjson"
        );
    }
}
