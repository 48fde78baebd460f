//! How an image failed: the kind of failure, and the error an engine (or the plan) gives for
//! it. The kind is decided once, where the failure was seen; the run only reads it.

use serde::Serialize;

/// Why an image failed, decided in one place from the engine's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The source image, tag or repository does not exist.
    NotFound,
    /// Bad or missing credentials, or access denied.
    Unauthorized,
    /// The registry throttled us (HTTP 429 / toomanyrequests).
    RateLimited,
    /// The registry could not be reached or the connection broke.
    Network,
    /// Certificate or TLS handshake problems.
    Tls,
    /// The copy ran past `--image-timeout` and was stopped.
    Timeout,
    /// ferry was interrupted before the image finished.
    Interrupted,
    /// ferry itself could not run the engine (spawn failed, bad output).
    Internal,
    /// Anything else the engine reported.
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not-found",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::RateLimited => "rate-limited",
            FailureKind::Network => "network",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Internal => "internal",
            FailureKind::Other => "other",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageError {
    pub kind: FailureKind,
    pub message: String,
}

/// Whether a network failure says the registry's host name does not exist: skopeo's "no such
/// host", reqwest's "dns error: failed to lookup address information". A resolver that could
/// not answer for now ("temporary failure in name resolution") is not that.
pub fn unresolvable_host(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    !m.contains("temporary failure in name resolution")
        && [
            "no such host",
            "failed to lookup address information",
            "dns error",
        ]
        .iter()
        .any(|needle| m.contains(needle))
}
