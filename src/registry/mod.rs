//! ferry's own registry client (the OCI distribution API), engine-free: the cheap questions
//! asked before any copy ("what digest does this tag have here?", one `HEAD` per tag; "which
//! tags does this repository have?") and every request the native engine makes. It reaches each
//! registry exactly as [`crate::access`] resolves it (endpoint, TLS, credentials), the same
//! answer skopeo and crane are given, so a lookup and a copy always agree.
//!
//! - [`transport`]: HTTP clients per host and TLS settings, the scheme probe, requests counted.
//! - [`session`]: challenges, Bearer tokens and Basic logins; a refused login is never resent.
//! - [`gate`]: a host's in-flight slots, its pace, its 429 state, copies' turns.
//! - [`request`]: one request and its own retries ([`RegistryClient::send`]).
//! - [`api`]: manifests, tags, blobs and uploads on top of `send`.
//! - [`listing`]: the repositories under a namespace (catalog, Google's `child`, the Hub API).
//! - [`quota`]: pull quotas (Docker Hub's `ratelimit-*` headers) and `--pull-budget`.
//! - [`reads`]: manifests and configs read whole to look into (platform subsets).

pub mod api;
pub mod gate;
pub mod listing;
pub mod quota;
pub mod reads;
pub mod request;
pub mod session;
pub mod transport;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use self::gate::Gate;
use self::session::Session;
pub use self::transport::describe_transport;
use self::transport::{failed, Transport};
use crate::access::conf::{ConfError, Endpoint};
use crate::access::credentials::CredentialsError;
use crate::access::{Access, Route};
use crate::model::{FailureKind, ImageError, Side};

/// The largest manifest ferry reads: what skopeo reads at most, and what the distribution
/// spec asks registries to accept at least. A registry serving more is broken or hostile.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest page of a tag listing ferry reads (a thousand tags take about 130 KiB; some
/// registries add a map of every manifest).
pub const MAX_TAG_PAGE_BYTES: u64 = 16 << 20;
/// The largest token response ferry reads.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// How much of an error answer's body ferry reads for the registry's words; the rest is left.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;
/// The fewest tags a page of a listing is reckoned to hold when bounding the number of pages
/// by `--max-tags`: registries page by 100 or 1000 (ferry asks for 1000).
pub const TAGS_PER_PAGE_AT_LEAST: usize = 50;

/// The flags that set the time limits, for messages.
pub const LOOKUP_TIMEOUT_FLAG: &str = "--lookup-timeout";
pub const STALL_TIMEOUT_FLAG: &str = "--stall-timeout";

/// The bounds on what one registry may cost: time without an answer, and the size of a
/// listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Each request of a lookup, whole (`--lookup-timeout`).
    pub lookup_timeout: Duration,
    /// A copy's request without an answer, a transfer without a byte (`--stall-timeout`).
    pub stall_timeout: Duration,
    /// Tags one repository may list (`--max-tags`).
    pub max_tags: usize,
}

impl Limits {
    pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_MAX_TAGS: usize = 10_000;

    /// Pages one tag listing may take: `--max-tags` at [`TAGS_PER_PAGE_AT_LEAST`] a page, and
    /// one more for a registry that ends on an empty page.
    pub fn max_tag_pages(&self) -> usize {
        self.max_tags.div_ceil(TAGS_PER_PAGE_AT_LEAST) + 1
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            lookup_timeout: Limits::DEFAULT_LOOKUP_TIMEOUT,
            stall_timeout: Limits::DEFAULT_STALL_TIMEOUT,
            max_tags: Limits::DEFAULT_MAX_TAGS,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// How each registry is reached (shared with the engines).
    pub access: Access,
    /// Requests per second per registry endpoint host (`--registry-rps`).
    pub per_registry_rps: HashMap<String, f64>,
    pub limits: Limits,
    /// `--pull-budget`: pulls a run may spend per metered registry.
    pub pull_budget: Option<quota::PullBudget>,
    /// `--hub-api`: where Docker Hub's namespaces are listed ([`listing::HUB_API`] if `None`).
    pub hub_api: Option<String>,
}

/// A time limit as a message tells it: how long, and the flag that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub after: Duration,
    pub flag: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error("{what}: {source}")]
    Credentials {
        what: String,
        #[source]
        source: CredentialsError,
    },
    #[error("{what}: unauthorized (HTTP {status})")]
    Unauthorized { what: String, status: u16 },
    #[error("{what}: {host} refused the credentials of {username} earlier in this run; not sending them again")]
    Refused {
        what: String,
        host: String,
        username: String,
    },
    #[error("{what}: rate limited (HTTP 429)")]
    RateLimited {
        what: String,
        retry_after: Option<Duration>,
    },
    #[error("{what}: HTTP {status}")]
    Status { what: String, status: u16 },
    /// An answer other than the one expected, with the registry's own words for it.
    #[error("{what}: HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Rejected {
        what: String,
        status: u16,
        detail: String,
    },
    /// `refused`: the host (`host[:port]` of the URL) that refused the connection, when that
    /// is what failed.
    #[error("{what}: {message}")]
    Network {
        what: String,
        message: String,
        refused: Option<String>,
    },
    /// The message names the registry (see [`crate::tls::explain`]), so the same failure
    /// reads the same from any lookup and from a copy.
    #[error("{message}")]
    Tls { what: String, message: String },
    #[error("{what}: unexpected response: {message}")]
    Invalid { what: String, message: String },
    /// A request that got no answer (or no end to it) in the time its flag allows.
    #[error("{what}: not answered in full within {} ({flag}){}", crate::words::format_duration(*after), if cause.is_empty() { String::new() } else { format!(": {cause}") })]
    TimedOut {
        what: String,
        after: Duration,
        flag: &'static str,
        cause: String,
    },
    /// An answer past one of ferry's bounds (a manifest larger than 4 MiB, a listing longer
    /// than `--max-tags`): read no further.
    #[error("{what}: {message}")]
    Bound { what: String, message: String },
    /// The request this one waited for (the first to its repository, the first with its
    /// login) got no answer, after as long as this one would have waited for its own.
    #[error("{what}: the request it waited for got no answer: {first}")]
    WaitedFor {
        what: String,
        kind: FailureKind,
        first: String,
        refused: Option<String>,
    },
    /// A `Docker-Content-Digest` that is no digest ferry can check.
    #[error("{what}: unexpected response: its Docker-Content-Digest header is invalid: {reason}")]
    DigestHeader { what: String, reason: String },
}

impl RegistryError {
    /// The failure kind, decided here once for every caller.
    pub fn kind(&self) -> FailureKind {
        match self {
            RegistryError::Unauthorized { .. }
            | RegistryError::Refused { .. }
            | RegistryError::Credentials { .. } => FailureKind::Unauthorized,
            RegistryError::RateLimited { .. } => FailureKind::RateLimited,
            RegistryError::Network { .. } => FailureKind::Network,
            RegistryError::Status { status, .. } | RegistryError::Rejected { status, .. }
                if *status >= 500 =>
            {
                FailureKind::Network
            }
            RegistryError::Rejected { status: 404, .. } => FailureKind::NotFound,
            RegistryError::Tls { .. } => FailureKind::Tls,
            RegistryError::TimedOut { .. } => FailureKind::Timeout,
            RegistryError::WaitedFor { kind, .. } => *kind,
            RegistryError::Conf(_)
            | RegistryError::Status { .. }
            | RegistryError::Rejected { .. }
            | RegistryError::Invalid { .. }
            | RegistryError::Bound { .. }
            | RegistryError::DigestHeader { .. } => FailureKind::Other,
        }
    }

    /// The host that refused the connection, when that is what failed (this request's, or the
    /// one it waited for).
    pub fn refused_host(&self) -> Option<&str> {
        match self {
            RegistryError::Network { refused, .. } | RegistryError::WaitedFor { refused, .. } => {
                refused.as_deref()
            }
            _ => None,
        }
    }

    /// The error as the failure of an image's request on `side` (see [`ImageError`]): its kind,
    /// the host that refused the connection, and whether another attempt may fare better (a
    /// transient kind, but not a host name that does not resolve).
    pub fn image_error(&self, side: Side) -> ImageError {
        ImageError {
            host: self.refused_host().map(str::to_owned),
            ..ImageError::reported(self.kind(), self.to_string()).on(side)
        }
    }

    /// Whether the answer is one no working registry gives (a digest header that is no
    /// digest, a manifest past 4 MiB, a listing past `--max-tags`): an image whose source
    /// answered so fails, rather than be copied by tag regardless.
    pub fn source_is_broken(&self) -> bool {
        matches!(
            self,
            RegistryError::Bound { .. } | RegistryError::DigestHeader { .. }
        )
    }
}

/// ferry's registry client, one per run: shared by the plan's lookups, the run's turns and
/// the native engine.
pub struct RegistryClient {
    options: ClientOptions,
    transport: Transport,
    session: Session,
    gate: Gate,
    quota: quota::Quotas,
    listing: listing::ListingState,
    /// Destination repositories (as jobs name them) a registry said do not exist
    /// (`NAME_UNKNOWN`): a small blob going there is uploaded without asking for it first.
    unknown_repositories: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl RegistryClient {
    pub fn new(options: ClientOptions) -> RegistryClient {
        let gate = Gate::new(options.per_registry_rps.clone());
        RegistryClient {
            options,
            transport: Transport::default(),
            session: Session::default(),
            gate,
            quota: quota::Quotas::default(),
            listing: listing::ListingState::default(),
            unknown_repositories: std::sync::Mutex::default(),
        }
    }

    /// Whether destination repository `name` was said not to exist earlier in this run (by
    /// [`RegistryClient::repository_unknown`]). What this run put there since is the caller's
    /// to know.
    pub fn was_unknown(&self, name: &str) -> bool {
        self.unknown_repositories
            .lock()
            .expect("lock")
            .contains(name)
    }

    /// How this client reaches each registry.
    pub fn access(&self) -> &Access {
        &self.options.access
    }

    /// The bounds this client keeps (and its callers keep for it: a blob's bytes on the way).
    pub fn limits(&self) -> Limits {
        self.options.limits
    }

    /// HTTP requests sent so far (including token requests and probes).
    pub fn requests_sent(&self) -> u64 {
        self.transport.requests_sent()
    }

    /// Requests sent so far by registry host and answer class (`2xx` … `5xx`; `429` on its
    /// own, not in `4xx`; `error` when no answer came), for metrics.
    pub fn answers(&self) -> Vec<(String, &'static str, u64)> {
        self.transport.answers()
    }

    /// The host ferry and skopeo talk to for `name` on `side`, after registries.conf.
    pub fn endpoint_host(&self, side: Side, name: &str) -> Option<String> {
        self.endpoint(side, name).ok().map(|endpoint| endpoint.host)
    }

    fn endpoint(&self, side: Side, name: &str) -> Result<Endpoint, RegistryError> {
        Ok(self.options.access.endpoint(side, name)?)
    }

    fn route(&self, side: Side, name: &str) -> Result<Route, RegistryError> {
        Ok(self.options.access.route(side, name)?)
    }

    /// The deadline of a lookup's request, for messages.
    fn lookup_deadline(&self) -> Deadline {
        Deadline {
            after: self.options.limits.lookup_timeout,
            flag: LOOKUP_TIMEOUT_FLAG,
        }
    }
}

/// The body of `response` read as [`read_body`] reads it, parsed as JSON: a body that is not
/// the JSON expected is `Invalid`.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    response: Response,
    limit: u64,
    noun: &str,
    what: &str,
    deadline: Deadline,
) -> Result<T, RegistryError> {
    let body = read_body(response, limit, noun, what, deadline).await?;
    serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// The body of `response` (a `noun`, for messages), failing as soon as it is known to pass
/// `limit` bytes: from its `Content-Length` before a byte is read, else as the bytes come.
/// A timeout on the way is told with `deadline`, the request's own.
pub(crate) async fn read_body(
    mut response: Response,
    limit: u64,
    noun: &str,
    what: &str,
    deadline: Deadline,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::Bound {
        what: what.to_owned(),
        message: format!(
            "the {noun} is larger than {}, the most ferry reads: the registry is broken \
             or hostile",
            size(limit)
        ),
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(failed(what, &e, deadline)),
        }
    }
}

/// `4 MiB`, `64 KiB`: a bound as messages tell it.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn status_error(what: &str, response: &Response) -> RegistryError {
    let what = what.to_owned();
    let status = response.status();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            what,
            status: status.as_u16(),
        },
        StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited {
            what,
            retry_after: header(response.headers(), RETRY_AFTER.as_str())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => RegistryError::Status {
            what,
            status: status.as_u16(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_may_take_the_pages_its_tags_need_at_50_a_page() {
        let limits = |max_tags| Limits {
            max_tags,
            ..Limits::default()
        };
        assert_eq!(Limits::default().max_tag_pages(), 201);
        assert_eq!(limits(1000).max_tag_pages(), 21);
        assert_eq!(limits(1).max_tag_pages(), 2);
        assert_eq!(size(MAX_MANIFEST_BYTES), "4 MiB");
        assert_eq!(size(MAX_ERROR_BODY_BYTES), "64 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn error_kinds_are_decided_once() {
        let what = || "x".to_owned();
        assert_eq!(
            RegistryError::Unauthorized {
                what: what(),
                status: 401
            }
            .kind(),
            FailureKind::Unauthorized
        );
        assert_eq!(
            RegistryError::RateLimited {
                what: what(),
                retry_after: None
            }
            .kind(),
            FailureKind::RateLimited
        );
        assert_eq!(
            RegistryError::Status {
                what: what(),
                status: 503
            }
            .kind(),
            FailureKind::Network
        );
        assert_eq!(
            RegistryError::Status {
                what: what(),
                status: 400
            }
            .kind(),
            FailureKind::Other
        );
    }
}
