//! Small reads whose bytes ferry looks into, beyond a digest: a manifest read whole while
//! planning (a target's index, to read what it records of upstream; a source's, to see its
//! platforms), and an image's config blob (the platform of a single-platform image). Each is
//! bounded as a manifest is (4 MiB) and a blob is checked against its digest.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::api::{RawManifest, MANIFEST_ACCEPT};
use super::request::{Patience, Request, Scope};
use super::{
    header, read_body, status_error, Deadline, RegistryClient, RegistryError, MAX_MANIFEST_BYTES,
    STALL_TIMEOUT_FLAG,
};
use crate::model::Side;

impl RegistryClient {
    /// The manifest `reference` (tag or digest) of `name` on `side`, read whole as a lookup
    /// (`--lookup-timeout`, pull access); `None` when it does not exist. Its `advertised`
    /// digest is the sha256 of the bytes read.
    pub async fn manifest_lookup(
        &self,
        side: Side,
        name: &str,
        reference: &str,
    ) -> Result<Option<RawManifest>, RegistryError> {
        let endpoint = self.endpoint(side, name)?;
        let what = format!("{name}:{reference}").replace(":sha256:", "@sha256:");
        let path = format!("/v2/{}/manifests/{reference}", endpoint.repository);
        let response = self
            .send(Request {
                accept: Some(MANIFEST_ACCEPT),
                ..Request::new(side, name, Method::GET, path, &what)
            })
            .await?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error(&what, &response)),
        }
        let content_type = header(response.headers(), CONTENT_TYPE.as_str()).map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
        let bytes = read_body(
            response,
            MAX_MANIFEST_BYTES,
            "manifest",
            &what,
            self.lookup_deadline(),
        )
        .await?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        Ok(Some(RawManifest {
            bytes,
            content_type,
            advertised: Some(digest),
        }))
    }

    /// Blob `digest` (a checked sha256 digest) of source `name`, read whole: a config, at
    /// most 4 MiB like a manifest, and only when its bytes are that digest. `lookup` gives the
    /// read `--lookup-timeout` (planning), else `--stall-timeout` (a copy).
    pub async fn small_blob(
        &self,
        name: &str,
        digest: &str,
        lookup: bool,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let side = Side::Source;
        let path = format!(
            "/v2/{}/blobs/{digest}",
            self.endpoint(side, name)?.repository
        );
        let (patience, deadline) = match lookup {
            true => (Patience::Lookup, self.lookup_deadline()),
            false => (
                Patience::Copy,
                Deadline {
                    after: self.options.limits.stall_timeout,
                    flag: STALL_TIMEOUT_FLAG,
                },
            ),
        };
        let response = self
            .send(Request {
                scope: Scope::Pull,
                retry_transient: !lookup,
                patience,
                ..Request::new(side, name, Method::GET, path, what)
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(what, &response));
        }
        let bytes = read_body(response, MAX_MANIFEST_BYTES, "blob", what, deadline).await?;
        let got = format!("sha256:{:x}", Sha256::digest(&bytes));
        if got != digest {
            return Err(RegistryError::Invalid {
                what: what.to_owned(),
                message: format!("digest mismatch: the blob served hashes to {got}"),
            });
        }
        Ok(bytes)
    }
}
