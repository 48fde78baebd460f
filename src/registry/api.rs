//! The distribution API calls a copy makes, on top of [`RegistryClient::send`]: manifests read
//! and written byte for byte, blobs checked, read (from an offset), mounted and uploaded
//! (monolithic or in chunks). Every call goes through the client's pace, in-flight cap, 429
//! handling and authorization; calls without a streamed body are retried alone on connection
//! errors and 5xx.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};

use super::request::{Patience, Payload, Request, Scope};
use super::{
    header, header_digest, read_body, status_error, Deadline, RegistryClient, RegistryError,
    MAX_ERROR_BODY_BYTES, MAX_MANIFEST_BYTES, STALL_TIMEOUT_FLAG,
};
use crate::model::Side;

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
                retry: true,
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
                retry: true,
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
                retry: true,
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
                retry: true,
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
                retry: true,
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
                retry: matches!(body, Payload::Empty),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
