//! What travels with an image, built in the test and pushed over the registry API (with curl,
//! to a plain-HTTP registry or a front of one): cosign-shaped signatures (`sha256-<hex>.sig`: a
//! simple-signing payload layer with cosign's signature annotation) and attestations (`.att`:
//! an in-toto DSSE envelope layer), OCI 1.1 referrers (a manifest whose `subject` is the
//! image, pushed by digest alone), and the referrers tag schema's index (`sha256-<hex>`) that a
//! client keeps for a registry without the referrers API.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use super::{run, sha256_digest, stdout_of, unique, HttpAnswer};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SPDX: &str = "application/spdx+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A manifest pushed by a test: its digest and bytes.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// A registry's (or a front's) plain-HTTP address and a directory for curl's request bodies.
pub struct Api<'a> {
    pub addr: String,
    pub scratch: &'a Path,
}

impl Api<'_> {
    /// `curl -i` of `url` with `args`; the answer parsed.
    fn curl(&self, args: &[&str], url: &str) -> HttpAnswer {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--noproxy", "*", "--max-time", "20"])
            .args(args)
            .arg(url);
        HttpAnswer::parse(&stdout_of(&run(&mut cmd, 0)))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A file holding `bytes`, for curl's `--data-binary @FILE`.
    fn body_file(&self, bytes: &[u8]) -> String {
        let path = self.scratch.join(format!("body-{}", unique()));
        std::fs::write(&path, bytes).unwrap();
        format!("@{}", path.display())
    }

    /// Uploads `bytes` as a blob of `repo` (monolithic); returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let started = self.curl(
            &["-X", "POST", "-H", "Content-Length: 0"],
            &self.url(&format!("/v2/{repo}/blobs/uploads/")),
        );
        assert_eq!(
            started.status, 202,
            "starting an upload to {repo}: {}",
            started.body
        );
        let location = started.header("location").expect("an upload's Location");
        let location = match location.starts_with('/') {
            true => self.url(location),
            false => location.to_owned(),
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let body = self.body_file(bytes);
        let put = self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &body,
            ],
            &format!("{location}{separator}digest={digest}"),
        );
        assert_eq!(
            put.status, 201,
            "uploading {digest} to {repo}: {}",
            put.body
        );
        digest
    }

    /// Writes `bytes` as manifest `reference` (a tag or its digest) of `repo`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Pushed {
        let body = self.body_file(bytes);
        let answer = self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {media_type}"),
                "--data-binary",
                &body,
            ],
            &self.url(&format!("/v2/{repo}/manifests/{reference}")),
        );
        assert_eq!(
            answer.status, 201,
            "writing {repo}:{reference}: {}",
            answer.body
        );
        Pushed {
            digest: sha256_digest(bytes),
            bytes: bytes.to_vec(),
        }
    }

    /// Deletes manifest `digest` of `repo` (and the tags on it).
    pub fn delete_manifest(&self, repo: &str, digest: &str) {
        let answer = self.curl(
            &["-X", "DELETE"],
            &self.url(&format!("/v2/{repo}/manifests/{digest}")),
        );
        assert_eq!(
            answer.status, 202,
            "deleting {repo}@{digest}: {}",
            answer.body
        );
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let answer = self.curl(&[], &self.url(path));
        (answer.status, answer.body)
    }

    /// An OCI image manifest over `config` (media type, bytes) and `layers` (media type,
    /// bytes, annotations JSON or ""), with `extra` fields (`"artifactType":…`, `"subject":…`)
    /// spliced in; its blobs uploaded to `repo`, itself not.
    fn manifest(
        &self,
        repo: &str,
        config: (&str, &[u8]),
        layers: &[(&str, &[u8], &str)],
        extra: &str,
    ) -> Vec<u8> {
        let descriptor = |media_type: &str, bytes: &[u8], annotations: &str| {
            let digest = self.put_blob(repo, bytes);
            let annotations = match annotations {
                "" => String::new(),
                json => format!(r#","annotations":{json}"#),
            };
            format!(
                r#"{{"mediaType":"{media_type}","size":{},"digest":"{digest}"{annotations}}}"#,
                bytes.len()
            )
        };
        let config = descriptor(config.0, config.1, "");
        let layers: Vec<String> = layers
            .iter()
            .map(|(media_type, bytes, annotations)| descriptor(media_type, bytes, annotations))
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[{}]{extra}}}"#,
            layers.join(",")
        )
        .into_bytes()
    }

    /// cosign's signature of `subject` in `repo`, at its tag `sha256-<hex>.sig`: a
    /// simple-signing payload naming the image, with the signature in cosign's annotation.
    pub fn cosign_signature(&self, repo: &str, subject: &str, seed: &str) -> Pushed {
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{repo}"}},"image":{{"docker-manifest-digest":"{subject}"}},"type":"cosign container image signature"}},"optional":{{"seed":"{seed}"}}}}"#
        );
        let signature = base64::engine::general_purpose::STANDARD
            .encode(sha256_digest(format!("signature {seed}").as_bytes()));
        let annotations = format!(r#"{{"dev.cosignproject.cosign/signature":"{signature}"}}"#);
        let config = cosign_config(&sha256_digest(payload.as_bytes()));
        let bytes = self.manifest(
            repo,
            (
                "application/vnd.oci.image.config.v1+json",
                config.as_bytes(),
            ),
            &[(SIMPLE_SIGNING, payload.as_bytes(), &annotations)],
            "",
        );
        let tag = format!("{}.sig", subject.replacen(':', "-", 1));
        self.put_manifest(repo, &tag, OCI_MANIFEST, &bytes)
    }

    /// cosign's attestation of `subject` in `repo`, at its tag `sha256-<hex>.att`: an in-toto
    /// statement in a DSSE envelope.
    pub fn cosign_attestation(&self, repo: &str, subject: &str, seed: &str) -> Pushed {
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{{"name":"{repo}","digest":{{"sha256":"{}"}}}}],"predicate":{{"seed":"{seed}"}}}}"#,
            &subject["sha256:".len()..]
        );
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let envelope = format!(
            r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{}","signatures":[{{"keyid":"","sig":"{}"}}]}}"#,
            encode(statement.as_bytes()),
            encode(seed.as_bytes())
        );
        let annotations = r#"{"predicateType":"https://slsa.dev/provenance/v0.2"}"#;
        let config = cosign_config(&sha256_digest(envelope.as_bytes()));
        let bytes = self.manifest(
            repo,
            (
                "application/vnd.oci.image.config.v1+json",
                config.as_bytes(),
            ),
            &[(DSSE, envelope.as_bytes(), annotations)],
            "",
        );
        let tag = format!("{}.att", subject.replacen(':', "-", 1));
        self.put_manifest(repo, &tag, OCI_MANIFEST, &bytes)
    }

    /// An SBOM referrer of `subject` (the index of `subject_size` bytes) in `repo`: an OCI 1.1
    /// artifact (`artifactType` application/spdx+json, the empty config, `subject` set), pushed
    /// by its digest alone.
    pub fn sbom_referrer(
        &self,
        repo: &str,
        subject: &str,
        subject_size: usize,
        seed: &str,
    ) -> Pushed {
        let sbom = format!(
            r#"{{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"{seed}","packages":[]}}"#
        );
        let extra = format!(
            r#","artifactType":"{SPDX}","subject":{{"mediaType":"{OCI_INDEX}","digest":"{subject}","size":{subject_size}}},"annotations":{{"org.opencontainers.image.created":"2024-05-01T00:00:00Z","org.example.seed":"{seed}"}}"#
        );
        let bytes = self.manifest(repo, (EMPTY, b"{}"), &[(SPDX, sbom.as_bytes(), "")], &extra);
        let digest = sha256_digest(&bytes);
        self.put_manifest(repo, &digest, OCI_MANIFEST, &bytes)
    }

    /// The referrers tag schema's index of `subject` in `repo` (tag `sha256-<hex>`), listing
    /// `referrers` as a client writes them for a registry without the referrers API.
    pub fn fallback_index(&self, repo: &str, subject: &str, referrers: &[&Pushed]) -> Pushed {
        let descriptors: Vec<String> = referrers
            .iter()
            .map(|referrer| referrer_descriptor(referrer).to_string())
            .collect();
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            descriptors.join(",")
        );
        let tag = subject.replacen(':', "-", 1);
        self.put_manifest(repo, &tag, OCI_INDEX, bytes.as_bytes())
    }
}

/// The descriptor a referrers listing gives `referrer`: media type, digest, size, its
/// `artifactType` and annotations.
pub fn referrer_descriptor(referrer: &Pushed) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_slice(&referrer.bytes).unwrap();
    let mut descriptor = serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "digest": referrer.digest,
        "size": referrer.bytes.len(),
        "artifactType": manifest["artifactType"],
    });
    if manifest.get("annotations").is_some() {
        descriptor["annotations"] = manifest["annotations"].clone();
    }
    descriptor
}

/// The config cosign writes for its signature and attestation images.
fn cosign_config(layer: &str) -> String {
    format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"config":{{}}}}"#
    )
}
