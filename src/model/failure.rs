//! How an image failed: the kind of failure, and the error an engine (or the plan) gives for
//! it. What the error says (its kind, the side and host it is on, whether another attempt may
//! fare better) is decided once, by whoever saw the failure; the run only reads the fields.

use serde::{Deserialize, Serialize};

use super::Side;

/// Why an image failed, decided in one place from the engine's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Not started: its pulls would have taken the run past `--pull-budget`.
    Deferred,
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
            FailureKind::Deferred => "deferred",
            FailureKind::Internal => "internal",
            FailureKind::Other => "other",
        }
    }

    /// Whether a failure of this kind may pass on another attempt: a throttled registry, a
    /// dropped connection or a timeout may; a missing image, bad credentials or a TLS problem
    /// will not.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::RateLimited | FailureKind::Network | FailureKind::Timeout
        )
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one attempt at an image (or a lookup for it) failed. Reports show the kind and the
/// message; the other fields are for the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageError {
    pub kind: FailureKind,
    /// Which end of the copy failed, when it is known: a 429 is waited out at that registry's
    /// pace (at the source's when it is not known: pull limits live there).
    #[serde(skip)]
    pub side: Option<Side>,
    /// The registry host (`host[:port]`, as ferry names the endpoint) that refused the
    /// connection, when that is what failed: a host that refuses every attempt of an image is
    /// taken for down for the rest of the run.
    #[serde(skip)]
    pub host: Option<String>,
    /// Whether another attempt may fare better.
    #[serde(skip)]
    pub retryable: bool,
    pub message: String,
}

impl ImageError {
    /// A failure of `kind`, retryable when its kind is transient.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> ImageError {
        ImageError {
            kind,
            side: None,
            host: None,
            retryable: kind.is_transient(),
            message: message.into(),
        }
    }

    /// A failure of `kind` as another program worded it (an engine's tool, the HTTP library):
    /// retryable when its kind is transient, but not a network failure that says the host name
    /// does not resolve (see [`unresolvable_host`]).
    pub fn reported(kind: FailureKind, message: impl Into<String>) -> ImageError {
        let error = ImageError::new(kind, message);
        ImageError {
            retryable: error.retryable
                && !(kind == FailureKind::Network && unresolvable_host(&error.message)),
            ..error
        }
    }

    /// The same failure, on `side`.
    pub fn on(self, side: Side) -> ImageError {
        ImageError {
            side: Some(side),
            ..self
        }
    }

    /// The same failure, told another way (the fields stay).
    pub fn reworded(self, message: impl Into<String>) -> ImageError {
        ImageError {
            message: message.into(),
            ..self
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        let retried: Vec<FailureKind> = [
            FailureKind::NotFound,
            FailureKind::Unauthorized,
            FailureKind::RateLimited,
            FailureKind::Network,
            FailureKind::Tls,
            FailureKind::Timeout,
            FailureKind::Interrupted,
            FailureKind::Internal,
            FailureKind::Other,
        ]
        .into_iter()
        .filter(|&kind| ImageError::reported(kind, "connection refused").retryable)
        .collect();
        assert_eq!(
            retried,
            [
                FailureKind::RateLimited,
                FailureKind::Network,
                FailureKind::Timeout
            ]
        );
    }

    #[test]
    fn a_host_name_that_does_not_resolve_is_final() {
        let table = [
            ("pinging container registry nonexistent.invalid: Get \"https://nonexistent.invalid/v2/\": dial tcp: lookup nonexistent.invalid on 10.0.0.53:53: no such host", false),
            ("nonexistent.invalid/x:1: error sending request for url (https://nonexistent.invalid/v2/x/manifests/1): client error (Connect): dns error: failed to lookup address information: Name or service not known", false),
            ("r.example/x:1: error sending request: dns error: failed to lookup address information: Temporary failure in name resolution", true),
            ("pinging container registry 127.0.0.1:5999: dial tcp 127.0.0.1:5999: connect: connection refused", true),
            ("dial tcp: lookup r.example on 10.0.0.53:53: read udp 10.0.0.2:1->10.0.0.53:53: i/o timeout", true),
            ("writing blob: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", true),
        ];
        for (message, retried) in table {
            let error = ImageError::reported(FailureKind::Network, message);
            assert_eq!(error.retryable, retried, "{message}");
        }
    }
}
