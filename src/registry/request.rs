//! One request to a registry and how [`RegistryClient::send`] sends it: where it goes, what it
//! carries, which access it needs, how long it may take, and the retries it makes on its own
//! (request-level retries: 429s waited out, and, where the request allows it, a dropped
//! connection or a 5xx sent again after a backoff). Whole images are retried by the run, with
//! its own policy; nothing here knows of images.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, Response, StatusCode};
use tracing::warn;

use super::gate::MAX_RETRY_AFTER;
use super::session::RequestAuth;
use super::transport::explain_tls;
use super::{Deadline, RegistryClient, RegistryError, STALL_TIMEOUT_FLAG};
use crate::access::Route;
use crate::model::Side;

/// Connection errors and 5xx answers one request waits out (with backoff) before its caller
/// sees them, for the requests that allow it.
pub const MAX_TRANSIENT_RETRIES: u32 = 3;
/// 429s one request waits out before it reports the registry as rate limited.
pub const MAX_THROTTLED_RETRIES: u32 = 8;

/// One request to the registry serving `name` on `side`.
pub struct Request<'a> {
    pub side: Side,
    /// The image name as written (`domain/path`): it picks the endpoint, the credentials and
    /// the TLS rules.
    pub name: &'a str,
    pub method: Method,
    /// A path on the endpoint (`/v2/…`), or an absolute URL the registry gave (an upload's
    /// `Location`). Credentials go only to the endpoint's own host.
    pub target: String,
    pub accept: Option<&'a str>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Payload,
    pub scope: Scope,
    /// Whether a connection error or a 5xx is sent again (this request alone, with backoff)
    /// before the caller sees it. Lookups leave that to their callers' own retry policy; a
    /// streamed body is never sent twice.
    pub retry_transient: bool,
    /// How long it may go without an answer.
    pub patience: Patience,
    /// What the request is about, for messages.
    pub what: &'a str,
}

impl<'a> Request<'a> {
    /// A request without body, extra headers or retries, with pull access.
    pub fn new(side: Side, name: &'a str, method: Method, target: String, what: &'a str) -> Self {
        Request {
            side,
            name,
            method,
            target,
            accept: None,
            headers: Vec::new(),
            body: Payload::Empty,
            scope: Scope::Pull,
            retry_transient: false,
            patience: Patience::Lookup,
            what,
        }
    }
}

/// How long a request may go without an answer. A request that runs out of it fails as
/// `timeout`, naming the flag that set the limit, and is not sent again on its own: a registry
/// that stalls once is left to the image's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A lookup (a digest, a page of tags, a token, the probe of a scheme): the whole exchange,
    /// connection, answer and body, within `--lookup-timeout`.
    Lookup,
    /// A copy's small request (a manifest read or written, a blob looked for, an upload started
    /// or cancelled): the whole exchange within `--stall-timeout`.
    Copy,
    /// A blob going up or down: the whole exchange within `total` (the image's own time) and,
    /// for a request without a streamed body, the answer within `--stall-timeout`. The bytes
    /// on the way are the caller's to watch.
    Transfer { total: Duration },
}

/// A request's body.
pub enum Payload {
    Empty,
    /// Small and kept, so the request can be sent again.
    Bytes(Vec<u8>),
    /// Streamed as it is produced: sent once at most.
    Stream(Option<reqwest::Body>),
}

/// The access a request needs to its repository; a Bearer token is asked for exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Pull,
    /// Pull and push.
    Push,
    /// Pull and push, and pull from `from` (a repository on the same registry) to mount a
    /// blob from it.
    Mount {
        from: String,
    },
}

impl Scope {
    /// The key of the authorizations cached for this scope.
    pub fn key(&self) -> String {
        match self {
            Scope::Pull => "pull".to_owned(),
            Scope::Push => "pull,push".to_owned(),
            Scope::Mount { from } => format!("pull,push+{from}:pull"),
        }
    }

    /// The narrower scopes on the same repository that an authorization for this one serves
    /// too: a token for a mount is one for pushes and pulls, a push token one for pulls.
    /// (Basic credentials serve every scope.)
    pub fn narrower(&self) -> &'static [Scope] {
        match self {
            Scope::Mount { .. } => &[Scope::Push, Scope::Pull],
            Scope::Push => &[Scope::Pull],
            Scope::Pull => &[],
        }
    }

    /// The `scope` parameters of a token request for `repository`. Pulls take what the
    /// registry's challenge asked for (else pull on the repository); pushes and mounts ask
    /// for what they need, and the challenge's scope too when it names something else.
    pub fn token_scopes(&self, repository: &str, challenged: Option<String>) -> Vec<String> {
        let pull = |repository: &str| format!("repository:{repository}:pull");
        let mut scopes = match self {
            Scope::Pull => {
                return vec![challenged.unwrap_or_else(|| pull(repository))];
            }
            Scope::Push => vec![format!("repository:{repository}:pull,push")],
            Scope::Mount { from } => {
                vec![format!("repository:{repository}:pull,push"), pull(from)]
            }
        };
        if let Some(challenged) = challenged {
            let covered = challenged
                .split(' ')
                .all(|asked| scopes.iter().any(|have| have == asked) || *asked == pull(repository));
            if !covered {
                scopes.push(challenged);
            }
        }
        scopes
    }
}

/// The retries one request has made on its own so far: request-level retries, inside one
/// request, each kind bounded.
#[derive(Debug, Default)]
struct RequestRetries {
    /// 429s waited out.
    throttled: u32,
    /// Connection errors and 5xx sent again.
    transient: u32,
}

impl RequestRetries {
    /// Counts a 429 when one more may be waited out; its number (from 1).
    fn throttled(&mut self) -> Option<u32> {
        (self.throttled < MAX_THROTTLED_RETRIES).then(|| {
            self.throttled += 1;
            self.throttled
        })
    }

    /// Counts a transient failure when the request may be sent once more; the wait before.
    fn transient(&mut self) -> Option<Duration> {
        (self.transient < MAX_TRANSIENT_RETRIES).then(|| {
            self.transient += 1;
            transient_backoff(self.transient)
        })
    }
}

impl RegistryClient {
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
            retry_transient,
            patience,
            what,
        } = request;
        let Route { endpoint, reach } = self.route(side, name)?;
        let client = self.transport.client(side, &endpoint, &reach)?;
        let (url, own_host) = if target.starts_with('/') {
            let deadline = self.lookup_deadline();
            let scheme = self
                .transport
                .scheme(side, &endpoint, reach.insecure, &client, what, deadline)
                .await?;
            (format!("{scheme}://{}{target}", endpoint.host), true)
        } else {
            let own = reqwest::Url::parse(&target)
                .ok()
                .is_some_and(|url| url_authority(&url) == endpoint.host);
            (target, own)
        };
        let resendable = !matches!(body, Payload::Stream(_));
        let retry_transient = retry_transient && resendable;
        let (deadline, answer_within) = self.deadlines(patience, !resendable);
        // One request per repository and scope finds out how to authenticate (and fetches
        // the token); the others wait for it and reuse the answer instead of all being
        // challenged at once. They wait without holding one of the host's slots, which
        // requests for its other repositories may use meanwhile.
        let slot = self
            .session
            .auth_slot(&endpoint.host, &endpoint.repository, &scope);
        let mut auth = RequestAuth::enter(&slot, what).await?;
        let slots = self.gate.slots(&endpoint.host);
        let _permit = slots.acquire().await.expect("slots are never closed");
        let mut retries = RequestRetries::default();
        loop {
            auth.before_send(&self.session, &endpoint.host, what)
                .await?;
            let sent = self.gate.pace(&endpoint.host).await;
            let mut builder = client.request(method.clone(), &url);
            if let Some(accept) = accept {
                builder = builder.header(ACCEPT, accept);
            }
            for (key, value) in &headers {
                builder = builder.header(key, value);
            }
            if let Some(value) = auth.value().filter(|_| own_host) {
                builder = builder.header(AUTHORIZATION, value);
            }
            builder = builder.timeout(deadline.after);
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
            let sending = self.transport.send(builder, what, deadline);
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
                Err(error) => {
                    if retry_transient && retries_transport(&error) {
                        if let Some(wait) = retries.transient() {
                            warn!(
                                "{what}: {error}; trying again in {:.1}s",
                                wait.as_secs_f64()
                            );
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    let error = explain_tls(side, &endpoint.host, error);
                    // No answer: those waiting for this one's give up with it.
                    auth.unanswered(&error);
                    return Err(error);
                }
            };
            let status = response.status();
            self.gate.note_quota(&endpoint.host, response.headers());
            let now = std::time::SystemTime::now();
            (self.quota).note(&endpoint.host, status.as_u16(), response.headers(), now);
            if status != StatusCode::TOO_MANY_REQUESTS {
                self.gate.passed(&endpoint.host, sent);
            } else if let Some(number) = retries.throttled() {
                let asked = self.gate.throttle(&endpoint.host, sent, &response, number);
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
            auth.answered(status);
            if retry_transient && status.is_server_error() {
                if let Some(wait) = retries.transient() {
                    warn!(
                        "{what}: HTTP {}; trying again in {:.1}s",
                        status.as_u16(),
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let Some(challenge) = auth.challenge(&response, own_host) else {
                return Ok(response);
            };
            let answered = self
                .answer_challenge(
                    &mut auth, side, name, &endpoint, &client, challenge, &scope, what,
                )
                .await?;
            if !answered || !resendable {
                // Nothing to offer; or renewed for the next request, this one's body gone.
                return Ok(response);
            }
        }
    }
}

/// `host[:port]` of `url`, as endpoints name hosts (the port only when it is written).
pub fn url_authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether a transport failure may pass if the request is sent again at once: a dropped
/// connection or a timeout may. A TLS failure or a host name that does not exist will not,
/// and a refused connection is a registry that is down: the image's retries (and the run's
/// outage check, which fails the rest once one image's round met only refusals) take it, so
/// a registry that is down costs one round of retries, not one per request.
pub fn retries_transport(error: &RegistryError) -> bool {
    match error {
        RegistryError::Network { message, .. } => {
            !crate::model::unresolvable_host(message) && !refused(message)
        }
        _ => false,
    }
}

/// A connection the host refused (nothing listens there), as reqwest words it.
fn refused(message: &str) -> bool {
    message.to_ascii_lowercase().contains("connection refused")
}

/// The wait before retry number `retry` (from 1) of one request: 0.5 s, 1 s, 2 s, …
pub fn transient_backoff(retry: u32) -> Duration {
    Duration::from_millis(500).saturating_mul(1 << retry.saturating_sub(1).min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_asked_for_exactly_the_access_a_request_needs() {
        let challenge = |s: &str| Some(s.to_owned());
        let table: [(Scope, Option<String>, Vec<&str>); 6] = [
            (Scope::Pull, None, vec!["repository:m/a:pull"]),
            (
                Scope::Pull,
                challenge("repository:m/a:pull"),
                vec!["repository:m/a:pull"],
            ),
            (Scope::Push, None, vec!["repository:m/a:pull,push"]),
            // Docker Hub challenges a HEAD with pull: the push token covers it.
            (
                Scope::Push,
                challenge("repository:m/a:pull"),
                vec!["repository:m/a:pull,push"],
            ),
            (
                Scope::Mount { from: "m/b".into() },
                challenge("repository:m/a:pull,push"),
                vec!["repository:m/a:pull,push", "repository:m/b:pull"],
            ),
            // A challenge for something else is asked for as well.
            (
                Scope::Push,
                challenge("registry:catalog:*"),
                vec!["repository:m/a:pull,push", "registry:catalog:*"],
            ),
        ];
        for (scope, challenged, expected) in table {
            assert_eq!(
                scope.token_scopes("m/a", challenged.clone()),
                expected,
                "{scope:?} {challenged:?}"
            );
        }
        assert_ne!(Scope::Push.key(), Scope::Pull.key());
        // A mount's token serves the pushes into the session a refused mount opens.
        let mount = Scope::Mount { from: "m/b".into() };
        assert_eq!(mount.narrower(), [Scope::Push, Scope::Pull]);
        assert_eq!(Scope::Push.narrower(), [Scope::Pull]);
        assert!(Scope::Pull.narrower().is_empty());
    }

    #[test]
    fn a_request_retries_on_its_own_a_bounded_number_of_times() {
        let mut retries = RequestRetries::default();
        let throttled: Vec<u32> = std::iter::from_fn(|| retries.throttled()).collect();
        assert_eq!(throttled, (1..=MAX_THROTTLED_RETRIES).collect::<Vec<_>>());
        let waits: Vec<u128> = std::iter::from_fn(|| retries.transient())
            .map(|wait| wait.as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000]);
        assert_eq!(retries.throttled(), None);
    }

    #[test]
    fn transient_failures_back_off_and_only_some_are_retried() {
        let waits: Vec<u64> = (1..=4)
            .map(|n| transient_backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000]);
        let network = |message: &str| RegistryError::Network {
            what: "x".into(),
            message: message.into(),
            refused: None,
        };
        assert!(!retries_transport(&network(
            "error sending request: tcp connect error: Connection refused (os error 111)"
        )));
        assert!(retries_transport(&network(
            "error sending request: connection closed before message completed"
        )));
        assert!(retries_transport(&network(
            "error sending request: connection reset by peer (os error 104)"
        )));
        assert!(!retries_transport(&network(
            "dns error: failed to lookup address information: Name or service not known"
        )));
        assert!(!retries_transport(&RegistryError::Tls {
            what: "x".into(),
            message: "invalid peer certificate: UnknownIssuer".into()
        }));
        let url =
            reqwest::Url::parse("http://127.0.0.1:5000/v2/x/blobs/uploads/u?_state=s").unwrap();
        assert_eq!(url_authority(&url), "127.0.0.1:5000");
        let url = reqwest::Url::parse("https://harbor.example/v2/").unwrap();
        assert_eq!(url_authority(&url), "harbor.example");
    }
}
