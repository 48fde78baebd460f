//! ferry's own registry client, for the cheap questions asked before any copy: "what digest
//! does this tag have here?" (one `HEAD` per tag) and "which tags does this repository have?".
//! It finds the same endpoint, credentials and TLS settings skopeo would use, so both agree.
//!
//! Authentication: anonymous, Basic, and the Bearer challenge flow; the `Authorization`
//! value is cached per (host, repository) and a 401 triggers exactly one re-challenge.

pub mod api;
pub mod auth;
pub mod conf;
pub mod pace;
pub mod request;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::auth::{parse_challenge, AuthError, Challenge};
use self::conf::{ConfError, Endpoint};
use self::pace::{parse_retry_after, Pacer};
use self::request::{
    retries_transport, transient_backoff, url_authority, Patience, Payload, Request, Scope,
    MAX_TRANSIENT_RETRIES,
};
use crate::access::{Access, SideAccess};
use crate::model::{FailureKind, ImageError, Side};
use crate::reference::check_sha256_digest;
use tracing::warn;

/// The header in which a registry names the digest of what it served or stored.
const DIGEST_HEADER: &str = "docker-content-digest";

/// Every manifest type a multi-arch mirror deals with; the top-level digest is what matters.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// 429s one request waits out before it reports the registry as rate limited.
const MAX_THROTTLED_RETRIES: u32 = 8;
/// The longest `Retry-After` honoured for one wait; longer ones fail the lookup instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Times a request gives up a slot that a 429 made stale before it takes the one it has.
const MAX_STALE_SLOTS: u32 = 3;

/// How an insecure registry is spoken to (`https` or `http`), or why it could not be told;
/// found out once per host.
type Probe = tokio::sync::OnceCell<Result<&'static str, String>>;

/// Requests in flight to one registry host at most.
const REQUESTS_IN_FLIGHT: usize = 8;

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
        source: AuthError,
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

/// How to authenticate to one repository: unknown (`None`), anonymously (`Some(None)`), or
/// with this `Authorization` value. The async lock makes the first request the only one that
/// has to find out.
type AuthSlot = Arc<AuthCell>;

#[derive(Default)]
struct AuthCell {
    known: tokio::sync::Mutex<Option<Option<String>>>,
    /// First requests that got no answer.
    unanswered: Unanswered,
}

type KnownGuard<'a> = tokio::sync::MutexGuard<'a, Option<Option<String>>>;

impl AuthCell {
    /// What is known, and the guard when the caller is the first request, the one to find
    /// out; an error when the first request it waited for got no answer (see [`Unanswered`]).
    async fn enter(
        &self,
        what: &str,
    ) -> Result<(Option<KnownGuard<'_>>, Option<String>), RegistryError> {
        let seen = self.unanswered.seen();
        let guard = self.known.lock().await;
        if let Some(known) = &*guard {
            return Ok((None, known.clone()));
        }
        match self.unanswered.since(seen, what) {
            Some(error) => Err(error),
            None => Ok((Some(guard), None)),
        }
    }
}

/// The requests of a single flight (the first to a repository, the first with a login) that
/// got no answer at all: a timeout, a connection that failed. The requests that waited for
/// such a one meanwhile give up with it: they waited as long as their own request would have,
/// and otherwise would each become the next first in turn, each waiting out its own timeout,
/// one after the other. A request that comes later tries again.
#[derive(Default)]
struct Unanswered {
    count: AtomicU64,
    last: Mutex<Option<(FailureKind, String, Option<String>)>>,
}

impl Unanswered {
    /// Noted before waiting for the flight.
    fn seen(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The request in flight got no answer: `error`.
    fn record(&self, error: &RegistryError) {
        let refused = error.refused_host().map(str::to_owned);
        *self.last.lock().expect("lock") = Some((error.kind(), error.to_string(), refused));
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The error for request `what`, which noted `seen` before it waited, when a request it
    /// waited for got no answer meanwhile.
    fn since(&self, seen: u64, what: &str) -> Option<RegistryError> {
        if self.seen() == seen {
            return None;
        }
        let (kind, first, refused) = self.last.lock().expect("lock").clone()?;
        Some(RegistryError::WaitedFor {
            what: what.to_owned(),
            kind,
            first,
            refused,
        })
    }
}

/// What a host said of one login: not known yet (`None`), accepted, or refused. The async lock
/// makes the first request with the login the only one that sends it before the answer.
#[derive(Clone, Default)]
struct Verdict {
    answer: Arc<tokio::sync::Mutex<Option<bool>>>,
    /// Trials that got no answer at all.
    unanswered: Arc<Unanswered>,
}

/// The first use of a login on a host, holding back every other use until it is settled. When
/// dropped unsettled (a 429 or a 5xx came first), the next use tries again; when it got no
/// answer, the uses waiting for it meanwhile give up with it (see [`Unanswered`]).
struct Trial {
    guard: tokio::sync::OwnedMutexGuard<Option<bool>>,
    unanswered: Arc<Unanswered>,
}

impl Trial {
    fn settle(mut self, accepted: bool) {
        *self.guard = Some(accepted);
    }

    /// The request carrying the login got no answer: `error`.
    fn unanswered(self, error: &RegistryError) {
        self.unanswered.record(error);
    }
}

/// Clients differ by host, side and TLS settings.
type ClientKey = (String, Side, bool, Option<PathBuf>);

pub struct RegistryClient {
    options: ClientOptions,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    schemes: Mutex<HashMap<(String, Side), Arc<Probe>>>,
    /// By (host, repository, scope).
    authorizations: Mutex<HashMap<(String, String, String), AuthSlot>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    pacers: Mutex<HashMap<String, Pacer>>,
    /// What each host said of each login, by (host, username): a wrong password is sent once
    /// per run, never again, so it fails every lookup at once and cannot lock the account out.
    verdicts: Mutex<HashMap<(String, String), Verdict>>,
    /// One copy at a time per throttled host: see [`RegistryClient::throttled_turn`].
    throttled_turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Hosts whose spent pull quota was already logged.
    quota_spent: Mutex<HashSet<String>>,
    requests: AtomicU64,
    /// Requests by (host, answer class).
    answers: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
    throttled: AtomicU64,
    /// Told of every 429 a lookup waits out: the registry host and the wait.
    on_throttle: std::sync::OnceLock<ThrottleObserver>,
}

/// Told of every 429 a lookup waits out: the registry host and the wait.
pub type ThrottleObserver = Box<dyn Fn(&str, Duration) + Send + Sync>;

impl RegistryClient {
    pub fn new(options: ClientOptions) -> RegistryClient {
        RegistryClient {
            options,
            clients: Mutex::default(),
            schemes: Mutex::default(),
            authorizations: Mutex::default(),
            limits: Mutex::default(),
            pacers: Mutex::default(),
            verdicts: Mutex::default(),
            throttled_turns: Mutex::default(),
            quota_spent: Mutex::default(),
            requests: AtomicU64::new(0),
            answers: Mutex::default(),
            throttled: AtomicU64::new(0),
            on_throttle: std::sync::OnceLock::new(),
        }
    }

    /// The bounds this client keeps (and its callers keep for it: a blob's bytes on the way).
    pub fn limits(&self) -> Limits {
        self.options.limits
    }

    /// HTTP requests sent so far (including token requests and probes).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// 429 responses received so far.
    pub fn throttled_responses(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Waits for this host's next request slot; returns when the slot was reserved, which
    /// tells whether a 429 answered the current pace or an older one. A slot that a 429
    /// made stale while it was awaited (spaced for a pace now known to be too fast, perhaps
    /// inside the `Retry-After`) is given up for a new one, a few times at most.
    async fn pace(&self, host: &str) -> Instant {
        let mut stale = 0;
        loop {
            let reserved = Instant::now();
            let slot = self.with_pacer(host, |pacer| pacer.reserve(reserved));
            tokio::time::sleep_until(slot.into()).await;
            if stale < MAX_STALE_SLOTS && self.with_pacer(host, |p| p.slowed_since(reserved)) {
                stale += 1;
                continue;
            }
            return reserved;
        }
    }

    /// Counts a 429 and slows `host`'s pace (nothing goes out for the wait asked, at most
    /// [`MAX_RETRY_AFTER`]); returns the wait the registry asked for: its `Retry-After`, else
    /// a backoff by `attempt`.
    fn throttle(&self, host: &str, sent: Instant, response: &Response, attempt: u32) -> Duration {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let asked = header(response.headers(), RETRY_AFTER.as_str())
            .and_then(|v| parse_retry_after(&v, SystemTime::now()))
            .unwrap_or(Duration::from_secs(1 << attempt.min(5)));
        self.with_pacer(host, |pacer| {
            pacer.throttled(Instant::now(), sent, asked.min(MAX_RETRY_AFTER))
        });
        if let Some(observe) = self.on_throttle.get() {
            observe(host, asked.min(MAX_RETRY_AFTER));
        }
        asked
    }

    /// Has `observe` told of every 429 a lookup waits out from now on (the first observer
    /// set stays).
    pub fn observe_throttling(&self, observe: ThrottleObserver) {
        let _ = self.on_throttle.set(observe);
    }

    /// A turn for one copy from the registry serving `name` on `side`, once it has answered
    /// 429 in this run (to this client or to a copy reported through
    /// [`RegistryClient::wait_out_throttled_copy`]): copies then go one at a time, since
    /// parallel ones would only split its allowance and each draw their own 429s. `None` (no
    /// turn needed) while it is not throttling.
    pub async fn throttled_turn(&self, side: Side, name: &str) -> Option<OwnedSemaphorePermit> {
        let host = self.endpoint(side, name).ok()?.host;
        if !self.with_pacer(&host, |pacer| pacer.was_throttled()) {
            return None;
        }
        let turn = {
            let mut turns = self.throttled_turns.lock().expect("lock");
            Arc::clone(
                turns
                    .entry(host)
                    .or_insert_with(|| Arc::new(Semaphore::new(1))),
            )
        };
        turn.acquire_owned().await.ok()
    }

    /// Runs `f` on this host's pacer, made on first use at the configured rate.
    fn with_pacer<R>(&self, host: &str, f: impl FnOnce(&mut Pacer) -> R) -> R {
        let mut pacers = self.pacers.lock().expect("lock");
        let rate = self.options.per_registry_rps.get(host).copied();
        let pacer = pacers
            .entry(host.to_owned())
            .or_insert_with(|| Pacer::new(rate, Instant::now()));
        f(pacer)
    }

    /// A copy that ran outside this client (skopeo), started at `started`, was refused with a
    /// 429 by the registry serving `name` on `side`: slow that host down as if this client had
    /// been refused, with `backoff` as the wait asked for, then wait for the host's next slot.
    /// Returns how long it waited. Parallel copies refused at once slow the pace only once.
    pub async fn wait_out_throttled_copy(
        &self,
        side: Side,
        name: &str,
        started: Instant,
        backoff: Duration,
    ) -> Result<Duration, RegistryError> {
        let host = self.endpoint(side, name)?.host;
        self.with_pacer(&host, |pacer| {
            pacer.throttled(Instant::now(), started, backoff)
        });
        let waiting = Instant::now();
        self.pace(&host).await;
        Ok(waiting.elapsed())
    }

    /// The host ferry and skopeo talk to for `name` on `side`, after registries.conf.
    pub fn endpoint_host(&self, side: Side, name: &str) -> Option<String> {
        self.endpoint(side, name).ok().map(|endpoint| endpoint.host)
    }

    fn endpoint(&self, side: Side, name: &str) -> Result<Endpoint, RegistryError> {
        Ok(match side {
            Side::Source => self.options.access.conf.pull_endpoint(name)?,
            Side::Destination => self.options.access.conf.push_endpoint(name)?,
        })
    }

    fn side(&self, side: Side) -> &SideAccess {
        self.options.access.side(side)
    }

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
            let body = read_body(
                response,
                MAX_TAG_PAGE_BYTES,
                "page of tags",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: what.clone(),
                message: e.to_string(),
            })?;
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

    /// The deadline of a lookup's request, for messages.
    fn lookup_deadline(&self) -> Deadline {
        Deadline {
            after: self.options.limits.lookup_timeout,
            flag: LOOKUP_TIMEOUT_FLAG,
        }
    }

    /// The deadline of a request with `patience` as a whole, and the one for its answer alone
    /// when that is shorter (a transfer's headers), for a request with a streamed body or not.
    fn deadlines(&self, patience: Patience, streamed: bool) -> (Deadline, Option<Deadline>) {
        let stall = Deadline {
            after: self.options.limits.stall_timeout,
            flag: STALL_TIMEOUT_FLAG,
        };
        match patience {
            Patience::Lookup => (self.lookup_deadline(), None),
            Patience::Copy => (stall, None),
            Patience::Transfer { total } => (
                Deadline {
                    after: total,
                    flag: "--image-timeout",
                },
                (!streamed).then_some(stall),
            ),
        }
    }

    /// Sends `request` under this host's in-flight cap and pace, authenticating as the
    /// registry asks (one challenge per repository and scope, shared by every request for it),
    /// waiting out 429s and, for requests that allow it, retrying connection errors and 5xx
    /// with backoff. A streamed body goes out once: whatever the answer to it, it is returned
    /// (after a 401 the authorization is renewed for the next request).
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Response, RegistryError> {
        let Request {
            side,
            name,
            method,
            target,
            accept,
            headers,
            mut body,
            scope,
            retry,
            patience,
            what,
        } = request;
        let endpoint = self.endpoint(side, name)?;
        let insecure = self.side(side).reach(name, endpoint.insecure).insecure;
        let client = self.client(side, name, &endpoint, insecure)?;
        let (url, own_host) = if target.starts_with('/') {
            let scheme = self
                .scheme(side, &endpoint, insecure, &client, what)
                .await?;
            (format!("{scheme}://{}{target}", endpoint.host), true)
        } else {
            let own = reqwest::Url::parse(&target)
                .ok()
                .is_some_and(|url| url_authority(&url) == endpoint.host);
            (target, own)
        };
        let (deadline, answer_within) =
            self.deadlines(patience, matches!(body, Payload::Stream(_)));
        // One request per repository and scope finds out how to authenticate (and fetches
        // the token); the others wait for it and reuse the answer instead of all being
        // challenged at once. They wait without holding one of the host's slots, which
        // requests for its other repositories may use meanwhile.
        let slot = self.auth_slot(&endpoint.host, &endpoint.repository, &scope);
        let (mut first, mut authorization) = slot.enter(what).await?;
        let limit = self.limit(&endpoint.host);
        let _permit = limit.acquire().await.expect("limits are never closed");
        let mut challenged = false;
        let mut throttled = 0;
        let mut transient = 0;
        let mut trial = None;
        loop {
            if trial.is_none() {
                // Basic sends the password with every request: not once it was refused.
                if let Some(username) = authorization.as_deref().and_then(basic_username) {
                    trial = self.try_login(&endpoint.host, &username, what).await?;
                }
            }
            let sent = self.pace(&endpoint.host).await;
            let mut builder = client.request(method.clone(), &url);
            if let Some(accept) = accept {
                builder = builder.header(ACCEPT, accept);
            }
            for (key, value) in &headers {
                builder = builder.header(key, value);
            }
            if let Some(value) = authorization.as_ref().filter(|_| own_host) {
                builder = builder.header(AUTHORIZATION, value);
            }
            builder = builder.timeout(deadline.after);
            let resendable = !matches!(body, Payload::Stream(_));
            builder = match &mut body {
                Payload::Empty => builder,
                Payload::Bytes(bytes) => builder.body(bytes.clone()),
                Payload::Stream(stream) => match stream.take() {
                    Some(stream) => builder.body(stream),
                    None => {
                        return Err(RegistryError::Invalid {
                            what: what.to_owned(),
                            message: "a streamed body cannot be sent twice".to_owned(),
                        })
                    }
                },
            };
            let sending = self.counted(builder, what, deadline);
            let answered = match answer_within {
                Some(limit) => tokio::time::timeout(limit.after, sending)
                    .await
                    .unwrap_or_else(|_| {
                        Err(RegistryError::TimedOut {
                            what: what.to_owned(),
                            after: limit.after,
                            flag: limit.flag,
                            cause: String::new(),
                        })
                    }),
                None => sending.await,
            };
            let response = match answered {
                Ok(response) => response,
                Err(error)
                    if retry
                        && resendable
                        && transient < MAX_TRANSIENT_RETRIES
                        && retries_transport(&error) =>
                {
                    transient += 1;
                    let wait = transient_backoff(transient);
                    warn!(
                        "{what}: {error}; trying again in {:.1}s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => {
                    let error = explain_tls(side, &endpoint.host, error);
                    // No answer: those waiting for this one's give up with it.
                    if first.is_some() {
                        slot.unanswered.record(&error);
                    }
                    if let Some(trial) = trial.take() {
                        trial.unanswered(&error);
                    }
                    return Err(error);
                }
            };
            self.note_quota(&endpoint.host, response.headers());
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                self.with_pacer(&endpoint.host, |pacer| pacer.passed(Instant::now(), sent));
            }
            if response.status() == StatusCode::TOO_MANY_REQUESTS
                && throttled < MAX_THROTTLED_RETRIES
            {
                throttled += 1;
                let asked = self.throttle(&endpoint.host, sent, &response, throttled);
                if !resendable {
                    return Ok(response);
                }
                if asked <= MAX_RETRY_AFTER {
                    warn!(
                        "{}: rate limited (HTTP 429); pausing {:.1}s and slowing down",
                        endpoint.host,
                        asked.as_secs_f64()
                    );
                    continue;
                }
                // Asked for a long silence: this lookup ends rate-limited rather than hold
                // its slot (and its repository's others) through repeated waits.
                warn!(
                    "{}: rate limited (HTTP 429) with Retry-After {}s; {what} gives up \
                     rather than wait",
                    endpoint.host,
                    asked.as_secs()
                );
            }
            if let Some(trial) = trial.take() {
                // Settled before anything else is awaited: other lookups wait for it. Only an
                // answer that shows the login was checked settles it; after a 429 or 5xx the
                // next use tries again.
                match response.status() {
                    StatusCode::UNAUTHORIZED => trial.settle(false),
                    status if login_was_checked(status) => trial.settle(true),
                    _ => {}
                }
            }
            if retry
                && resendable
                && response.status().is_server_error()
                && transient < MAX_TRANSIENT_RETRIES
            {
                transient += 1;
                let wait = transient_backoff(transient);
                warn!(
                    "{what}: HTTP {}; trying again in {:.1}s",
                    response.status().as_u16(),
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if response.status() != StatusCode::UNAUTHORIZED || challenged || !own_host {
                if let Some(mut guard) = first.take() {
                    *guard = Some(authorization);
                }
                return Ok(response);
            }
            challenged = true;
            let challenge = header(response.headers(), WWW_AUTHENTICATE.as_str())
                .and_then(|h| parse_challenge(&h));
            let Some(challenge) = challenge else {
                return Ok(response);
            };
            let mut guard = match first.take() {
                Some(guard) => guard,
                None => slot.known.lock().await,
            };
            let current = (*guard).clone().flatten();
            if current.is_some() && current != authorization {
                // Another request renewed it while this one was being refused.
                authorization = current;
            } else {
                match self
                    .authorize(side, name, &endpoint, &client, challenge, &scope, what)
                    .await?
                {
                    (Some(value), basic_trial) => {
                        authorization = Some(value);
                        trial = basic_trial;
                    }
                    (None, _) => return Ok(response),
                }
            }
            *guard = Some(authorization.clone());
            drop(guard);
            self.share_authorization(&endpoint.host, &endpoint.repository, &scope, &authorization);
            if !resendable {
                // Renewed for the next request; this one's body is gone.
                return Ok(response);
            }
        }
    }

    /// Sends one request, counting it, by host and answer (see [`RegistryClient::answers`]);
    /// a timeout is told with `deadline`, the one the request was sent with.
    async fn counted(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
        deadline: Deadline,
    ) -> Result<Response, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = request.send().await;
        let (url, class) = match &sent {
            Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                (Some(response.url()), "429")
            }
            Ok(response) => (Some(response.url()), status_class(response.status())),
            Err(error) => (error.url(), "error"),
        };
        if let Some(host) = url.and_then(url_host) {
            *self
                .answers
                .lock()
                .expect("lock")
                .entry((host, class))
                .or_default() += 1;
        }
        sent.map_err(|e| failed(what, &e, deadline))
    }

    /// Requests sent so far by registry host and answer class (`2xx` … `5xx`; `429` on its
    /// own, not in `4xx`; `error` when no answer came), for metrics.
    pub fn answers(&self) -> Vec<(String, &'static str, u64)> {
        let answers = self.answers.lock().expect("lock");
        answers
            .iter()
            .map(|((host, class), n)| (host.clone(), *class, *n))
            .collect()
    }

    /// Gives `authorization`, just settled for `scope` on `repository`, to the narrower
    /// scopes' slots there that no request has settled yet, so that their first request
    /// carries it. That first request may stream a body that cannot be sent again after a
    /// 401: the blob `PUT` into the upload session a refused mount opened (a 202 instead of
    /// a 201) has the mount's authorization, not none.
    fn share_authorization(
        &self,
        host: &str,
        repository: &str,
        scope: &Scope,
        authorization: &Option<String>,
    ) {
        if authorization.is_none() {
            // Only what a challenge asked for: a request that went through without
            // credentials says little of the others.
            return;
        }
        for narrower in scope.narrower() {
            let slot = self.auth_slot(host, repository, narrower);
            // A slot being settled by its own first request is left to it.
            let Ok(mut known) = slot.known.try_lock() else {
                continue;
            };
            if known.is_none() {
                *known = Some(authorization.clone());
            }
        }
    }

    fn auth_slot(&self, host: &str, repository: &str, scope: &Scope) -> AuthSlot {
        let mut slots = self.authorizations.lock().expect("lock");
        let slot = slots
            .entry((host.to_owned(), repository.to_owned(), scope.key()))
            .or_default();
        Arc::clone(slot)
    }

    /// The `Authorization` value that answers `challenge`, or `None` when there is nothing to
    /// offer (Basic without credentials). For Basic, also the trial of a login not yet known:
    /// the request that sends it settles it.
    #[expect(clippy::too_many_arguments)]
    async fn authorize(
        &self,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
        client: &reqwest::Client,
        challenge: Challenge,
        wanted: &Scope,
        what: &str,
    ) -> Result<(Option<String>, Option<Trial>), RegistryError> {
        let credentials = self.credentials(side, name, endpoint, what)?;
        let trial = match &credentials {
            Some(credentials) => {
                self.try_login(&endpoint.host, &credentials.username, what)
                    .await?
            }
            None => None,
        };
        let basic = credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.username, c.password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        let (realm, service, scope) = match challenge {
            Challenge::Basic => return Ok((basic, trial)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => (realm, service, scope),
        };
        let scopes = wanted.token_scopes(&endpoint.repository, scope);
        let mut url = reqwest::Url::parse(&realm).map_err(|e| RegistryError::Invalid {
            what: what.to_owned(),
            message: format!("bad token realm {realm:?}: {e}"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &service {
                query.append_pair("service", service);
            }
            for scope in &scopes {
                query.append_pair("scope", scope);
            }
        }
        let deadline = self.lookup_deadline();
        let mut request = client.get(url).timeout(deadline.after);
        if let Some(value) = &basic {
            request = request.header(AUTHORIZATION, value);
        }
        let what = format!("{what} (token)");
        let response = match self.counted(request, &what, deadline).await {
            Ok(response) => response,
            Err(error) => {
                if let Some(trial) = trial {
                    trial.unanswered(&error);
                }
                return Err(error);
            }
        };
        if let Some(trial) = trial {
            match response.status() {
                StatusCode::UNAUTHORIZED => trial.settle(false),
                status if status.is_success() => trial.settle(true),
                _ => {}
            }
        }
        if !response.status().is_success() {
            return Err(status_error(&what, &response));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = read_body(response, MAX_TOKEN_BYTES, "token response", &what, deadline).await?;
        let token: Token = serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let token = token
            .token
            .or(token.access_token)
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                message: "token response without a token".to_owned(),
            })?;
        Ok((Some(format!("Bearer {token}")), None))
    }

    /// Waits for the verdict of `host` on `username`'s login: an error when it was refused,
    /// nothing when accepted, and the trial when it is not known yet.
    async fn try_login(
        &self,
        host: &str,
        username: &str,
        what: &str,
    ) -> Result<Option<Trial>, RegistryError> {
        let verdict = self.verdict(host, username);
        let seen = verdict.unanswered.seen();
        let guard = Arc::clone(&verdict.answer).lock_owned().await;
        match *guard {
            Some(false) => Err(RegistryError::Refused {
                what: what.to_owned(),
                host: host.to_owned(),
                username: username.to_owned(),
            }),
            Some(true) => Ok(None),
            None => match verdict.unanswered.since(seen, what) {
                Some(error) => Err(error),
                None => Ok(Some(Trial {
                    guard,
                    unanswered: verdict.unanswered,
                })),
            },
        }
    }

    fn verdict(&self, host: &str, username: &str) -> Verdict {
        let mut verdicts = self.verdicts.lock().expect("lock");
        verdicts
            .entry((host.to_owned(), username.to_owned()))
            .or_default()
            .clone()
    }

    /// Whether ferry holds credentials for the registry serving `name` on `side` that it has
    /// neither accepted nor refused in this run, and no request has gone to that registry
    /// yet: a lookup would settle the login, where a copy would send it without ferry
    /// learning the answer. (A registry already asked either settled it, let ferry in without
    /// it, or did not answer; asking again would only wait for it once more.)
    pub fn login_unsettled(&self, side: Side, name: &str) -> bool {
        let Ok(endpoint) = self.endpoint(side, name) else {
            return false;
        };
        let asked = self
            .authorizations
            .lock()
            .expect("lock")
            .keys()
            .any(|(host, _, _)| *host == endpoint.host);
        if asked {
            return false;
        }
        let Ok(Some(credentials)) = self.credentials(side, name, &endpoint, name) else {
            return false;
        };
        let verdict = self.verdict(&endpoint.host, &credentials.username);
        let unsettled = verdict.answer.try_lock().is_ok_and(|v| v.is_none());
        unsettled
    }

    /// Whether the registry serving `name` on `side` refused the credentials ferry has for it
    /// during this run: a copy with them would be refused too.
    pub fn credentials_refused(&self, side: Side, name: &str) -> bool {
        let Ok(endpoint) = self.endpoint(side, name) else {
            return false;
        };
        // Credential lookups read auth files and may run helpers: only when there is a refusal.
        let any_refused = self
            .verdicts
            .lock()
            .expect("lock")
            .iter()
            .any(|(key, verdict)| {
                key.0 == endpoint.host && verdict.answer.try_lock().is_ok_and(|v| *v == Some(false))
            });
        if !any_refused {
            return false;
        }
        let Ok(Some(credentials)) = self.credentials(side, name, &endpoint, name) else {
            return false;
        };
        let verdict = self.verdict(&endpoint.host, &credentials.username);
        let refused = verdict.answer.try_lock().is_ok_and(|v| *v == Some(false));
        refused
    }

    /// Says once per host when its pull quota is spent (Docker Hub's `ratelimit-remaining: 0`),
    /// since the 429s that follow are the quota, not a fault; HEADs, which do not count, go on.
    fn note_quota(&self, host: &str, headers: &HeaderMap) {
        if quota_remaining(headers) != Some(0)
            || !self
                .quota_spent
                .lock()
                .expect("lock")
                .insert(host.to_owned())
        {
            return;
        }
        let limit = header(headers, "ratelimit-limit").unwrap_or_else(|| "?".to_owned());
        warn!(
            "{host}: pull quota spent (ratelimit-limit {limit}); lookups and copies wait out its \
             429s (Retry-After, --retry-delay) rather than fail at once"
        );
    }

    /// Credentials for `name` as written; where registries.conf redirected it to another host,
    /// only those held for that host.
    fn credentials(
        &self,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
        what: &str,
    ) -> Result<Option<crate::secret::Credentials>, RegistryError> {
        credentials_for(&self.options.access, side, name, endpoint).map_err(|source| {
            RegistryError::Credentials {
                what: what.to_owned(),
                source,
            }
        })
    }

    fn limit(&self, host: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().expect("lock");
        Arc::clone(
            limits
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT))),
        )
    }

    fn client(
        &self,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
        insecure: bool,
    ) -> Result<reqwest::Client, RegistryError> {
        let reach = self.side(side).reach(name, endpoint.insecure);
        let cert_dir = reach.cert_dir.as_deref();
        let key = (
            endpoint.host.clone(),
            side,
            insecure,
            cert_dir.map(Path::to_owned),
        );
        if let Some(client) = self.clients.lock().expect("lock").get(&key) {
            return Ok(client.clone());
        }
        let client = build_client(&endpoint.host, insecure, cert_dir).map_err(|message| {
            RegistryError::Tls {
                what: endpoint.host.clone(),
                message,
            }
        })?;
        self.clients
            .lock()
            .expect("lock")
            .insert(key, client.clone());
        Ok(client)
    }

    /// HTTPS, unless the registry is insecure and does not speak it (as skopeo falls back).
    async fn scheme(
        &self,
        side: Side,
        endpoint: &Endpoint,
        insecure: bool,
        client: &reqwest::Client,
        what: &str,
    ) -> Result<&'static str, RegistryError> {
        if !insecure {
            return Ok("https");
        }
        // One probe per host, however many lookups start; other hosts' lookups go on
        // meanwhile. A host that did not answer in time is not asked again in this run.
        let probed = {
            let mut schemes = self.schemes.lock().expect("lock");
            Arc::clone(schemes.entry((endpoint.host.clone(), side)).or_default())
        };
        let probed = probed
            .get_or_init(|| async {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let deadline = self.lookup_deadline();
                let probe = client
                    .get(format!("https://{}/v2/", endpoint.host))
                    .timeout(deadline.after)
                    .send()
                    .await;
                match probe {
                    Ok(_) => Ok("https"),
                    Err(e) if e.is_timeout() => Err(format!(
                        " within {} ({})",
                        crate::words::format_duration(deadline.after),
                        deadline.flag
                    )),
                    Err(_) => Ok("http"),
                }
            })
            .await;
        probed.clone().map_err(|message| RegistryError::Network {
            what: what.to_owned(),
            message: format!("no answer to https://{}/v2/{message}", endpoint.host),
            refused: None,
        })
    }
}

/// The credentials ferry uses for `name` (`domain/path`, as written) on `side`, whose requests
/// go to `endpoint`: those for the name; where registries.conf redirected it to another host,
/// only those held for that host (never the ones given for a whole side, which are meant for
/// the registries named). ferry's own lookups and every engine's private auth files use this
/// one rule, so a copy never authenticates differently from the lookup that planned it.
pub fn credentials_for(
    access: &Access,
    side: Side,
    name: &str,
    endpoint: &Endpoint,
) -> Result<Option<crate::secret::Credentials>, AuthError> {
    let sources = &access.side(side).credentials;
    let domain = name.split('/').next().unwrap_or(name);
    if conf::api_host(domain) == endpoint.host {
        sources.lookup(name)
    } else {
        sources.lookup_redirected(&format!("{}/{}", endpoint.host, endpoint.repository))
    }
}

/// A client with skopeo's TLS rules: system roots (and `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus
/// `*.crt` CAs and a `*.cert`/`*.key` client pair from the cert dir, which is the side's
/// `--*-cert-dir` or else `/etc/containers/certs.d/HOST` and `/etc/docker/certs.d/HOST`.
fn build_client(
    host: &str,
    insecure: bool,
    cert_dir: Option<&Path>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        // Every request sets its own time limit (see `Patience`).
        .connect_timeout(Duration::from_secs(15))
        .danger_accept_invalid_certs(insecure);
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(dir) => vec![dir.to_owned()],
        None => ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            .iter()
            .map(|base| Path::new(base).join(host))
            .filter(|dir| dir.is_dir())
            .collect(),
    };
    for dir in dirs {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read cert dir {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in &files {
            let read = |path: &Path| {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            };
            match file.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    for cert in reqwest::Certificate::from_pem_bundle(&read(file)?)
                        .map_err(|e| format!("invalid certificate {}: {e}", file.display()))?
                    {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Some("cert") => {
                    let key = file.with_extension("key");
                    let mut pem = read(file)?;
                    pem.extend(read(&key)?);
                    let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                        format!("invalid client certificate {}: {e}", file.display())
                    })?;
                    builder = builder.identity(identity);
                }
                _ => {}
            }
        }
    }
    builder.build().map_err(|e| e.to_string())
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

/// The count in Docker Hub's `ratelimit-remaining: 0;w=21600` (pulls left in a window of
/// `w` seconds).
fn quota_remaining(headers: &HeaderMap) -> Option<u64> {
    header(headers, "ratelimit-remaining")?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
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
fn next_link(link: &str) -> Option<String> {
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

/// Whether an answer other than 401 shows the registry checked a login and let it in: success,
/// a missing manifest or a denied repository. A 429 or 5xx comes before or without the check.
fn login_was_checked(status: StatusCode) -> bool {
    status.is_success()
        || status.is_redirection()
        || status == StatusCode::NOT_FOUND
        || status == StatusCode::FORBIDDEN
}

/// The user in a `Basic` authorization value.
fn basic_username(authorization: &str) -> Option<String> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let pair = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let pair = String::from_utf8(pair).ok()?;
    pair.split_once(':').map(|(user, _)| user.to_owned())
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `host[:port]` of a URL.
fn url_host(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
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

/// A transport failure with all its causes, on one line.
pub fn describe_transport(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

/// A transport failure of a request sent with `deadline`: a timeout is told with the limit and
/// its flag.
fn failed(what: &str, error: &reqwest::Error, deadline: Deadline) -> RegistryError {
    if error.is_timeout() {
        return RegistryError::TimedOut {
            what: what.to_owned(),
            after: deadline.after,
            flag: deadline.flag,
            cause: describe_transport(error),
        };
    }
    transport_error(what, error)
}

fn transport_error(what: &str, error: &reqwest::Error) -> RegistryError {
    let message = describe_transport(error);
    let what = what.to_owned();
    if crate::tls::problem(&message).is_some() {
        RegistryError::Tls { what, message }
    } else {
        RegistryError::Network {
            what,
            message,
            refused: refused_host(error),
        }
    }
}

/// The host of the URL whose connection `error` says was refused (nothing listens there).
fn refused_host(error: &reqwest::Error) -> Option<String> {
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return error.url().map(url_authority);
            }
        }
        cause = inner.source();
    }
    None
}

/// A TLS failure with `host` told with its remedy (see [`crate::tls`]); other errors as they are.
fn explain_tls(side: Side, host: &str, error: RegistryError) -> RegistryError {
    match error {
        RegistryError::Tls { what, message } => {
            let problem = crate::tls::problem(&message).unwrap_or(crate::tls::TlsProblem::Other);
            RegistryError::Tls {
                what,
                message: crate::tls::explain(side, host, problem, &message),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn requests_waiting_for_a_first_request_without_answer_give_up_with_it() {
        let cell = Arc::new(AuthCell::default());
        let (first, known) = cell.enter("a").await.unwrap();
        assert!(first.is_some() && known.is_none());
        let waiting = {
            let cell = Arc::clone(&cell);
            tokio::spawn(async move { cell.enter("b").await.map(|(first, _)| first.is_some()) })
        };
        // The runtime has one thread: `b` now waits for the lock.
        tokio::task::yield_now().await;
        cell.unanswered.record(&RegistryError::TimedOut {
            what: "a".into(),
            after: Duration::from_secs(2),
            flag: LOOKUP_TIMEOUT_FLAG,
            cause: String::new(),
        });
        drop(first);
        let error = waiting.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), FailureKind::Timeout);
        assert_eq!(
            error.to_string(),
            "b: the request it waited for got no answer: a: not answered in full within 2s \
             (--lookup-timeout)"
        );
        // One that comes later tries again, as the first.
        let (again, _) = cell.enter("c").await.unwrap();
        assert!(again.is_some());
        drop(again);
        // Once settled, nobody waits.
        *cell.known.lock().await = Some(None);
        let (first, known) = cell.enter("d").await.unwrap();
        assert!(first.is_none() && known.is_none());
    }

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
    fn the_user_is_read_back_from_a_basic_authorization() {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bot:pa:ss")
        );
        assert_eq!(basic_username(&value).as_deref(), Some("bot"));
        assert_eq!(basic_username("Bearer abc"), None);
        assert_eq!(basic_username("Basic !!!"), None);
    }

    #[test]
    fn only_answers_past_the_login_check_settle_a_login() {
        for (status, checked) in [
            (200, true),
            (307, true),
            (404, true),
            (403, true),
            (429, false),
            (500, false),
            (502, false),
            (503, false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(login_was_checked(status), checked, "{status}");
        }
    }

    #[test]
    fn quota_headers_give_the_pulls_left() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert("ratelimit-remaining", value.parse().unwrap());
            map
        };
        assert_eq!(quota_remaining(&headers("0;w=21600")), Some(0));
        assert_eq!(quota_remaining(&headers("76;w=21600")), Some(76));
        assert_eq!(quota_remaining(&headers("many")), None);
        assert_eq!(quota_remaining(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn copies_refused_together_slow_the_pace_once_and_come_back_spaced() {
        let client = RegistryClient::new(ClientOptions::default());
        let started = Instant::now();
        let backoff = Duration::from_millis(100);
        let refused =
            || client.wait_out_throttled_copy(Side::Source, "127.0.0.1:5000/x", started, backoff);
        let (first, second) = tokio::join!(refused(), refused());
        let (first, second) = (first.unwrap(), second.unwrap());
        let pacers = client.pacers.lock().unwrap();
        let interval = pacers["127.0.0.1:5000"].interval();
        // Slowed from unpaced to its first throttled pace once, not once per refused copy.
        assert_eq!(interval, Some(pace::FIRST_THROTTLED_INTERVAL));
        let (early, late) = (first.min(second), first.max(second));
        assert!(early >= backoff, "came back after {early:?}");
        assert!(
            late >= backoff + interval.unwrap(),
            "came back after {late:?}"
        );
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

    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_connection_names_its_host_and_stays_retryable() {
        // A port nothing listens on: bound, then let go.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        drop(listener);
        let sent = reqwest::Client::new()
            .get(format!("http://{authority}/v2/"))
            .send()
            .await
            .unwrap_err();
        let error = transport_error("reading manifest x", &sent);
        assert_eq!(error.refused_host(), Some(authority.as_str()), "{error}");
        let image = error.image_error(Side::Destination);
        assert_eq!(
            (
                image.kind,
                image.side,
                image.host.as_deref(),
                image.retryable
            ),
            (
                FailureKind::Network,
                Some(Side::Destination),
                Some(authority.as_str()),
                true
            )
        );
        // Those that waited for it give up with it, on the same host.
        let unanswered = Unanswered::default();
        let seen = unanswered.seen();
        unanswered.record(&error);
        let waited = unanswered.since(seen, "reading manifest y").unwrap();
        assert_eq!(waited.refused_host(), Some(authority.as_str()));
        // Any other failure names no host; a name that does not resolve is final.
        let unresolved = RegistryError::Network {
            what: "x".into(),
            message: "dns error: failed to lookup address information: Name or service not \
                      known"
                .into(),
            refused: None,
        }
        .image_error(Side::Source);
        assert_eq!((unresolved.host, unresolved.retryable), (None, false));
    }
}
