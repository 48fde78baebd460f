//! The authentication session of ferry's registry client: the `WWW-Authenticate` challenges
//! registries send and how each is answered (anonymously, with Basic credentials, or with a
//! Bearer token asked for exactly the scope a request needs); the `Authorization` value each
//! repository and scope settled on, found out by one request while the others wait for it;
//! and what each host said of each login, so that a password a registry refused is never sent
//! again in the run. The credentials themselves come from [`crate::access`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};

use super::request::Scope;
use super::{header, read_body, status_error, RegistryClient, RegistryError, MAX_TOKEN_BYTES};
use crate::access::conf::Endpoint;
use crate::model::{FailureKind, Side};
use crate::secret::Credentials;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `key="quoted, value",key2=bare` pairs.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    other => out.push(other),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

/// How to authenticate to one repository: unknown (`None`), anonymously (`Some(None)`), or
/// with this `Authorization` value. The async lock makes the first request the only one that
/// has to find out.
pub type AuthSlot = Arc<AuthCell>;

#[derive(Default)]
pub struct AuthCell {
    known: tokio::sync::Mutex<Option<Option<String>>>,
    /// First requests that got no answer.
    unanswered: Unanswered,
}

pub type KnownGuard<'a> = tokio::sync::MutexGuard<'a, Option<Option<String>>>;

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
pub struct Trial {
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

/// What a client learned of authentication in this run.
#[derive(Default)]
pub struct Session {
    /// By (host, repository, scope).
    authorizations: Mutex<Slots>,
    /// What each host said of each login, by (host, username): a wrong password is sent once
    /// per run, never again, so it fails every lookup at once and cannot lock the account out.
    verdicts: Mutex<HashMap<(String, String), Verdict>>,
}

/// Each repository's and scope's [`AuthSlot`]. Past [`SLOTS_KEPT`] slots, those no request
/// holds that carry no authorization (a repository read anonymously, or never settled) are
/// forgotten: a long run's slots grow with the repositories that need a login, not with all
/// it touched, and one forgotten costs at most its next request's challenge again.
#[derive(Default)]
struct Slots {
    by_scope: HashMap<(String, String, String), AuthSlot>,
    /// The hosts any slot was ever made for (a sweep forgets slots, not these).
    hosts: std::collections::HashSet<String>,
    /// The size at which the next sweep comes.
    sweep_at: usize,
}

/// The slots a session holds before it first forgets any (see [`Slots`]).
const SLOTS_KEPT: usize = 4096;

impl Session {
    pub fn auth_slot(&self, host: &str, repository: &str, scope: &Scope) -> AuthSlot {
        let mut slots = self.authorizations.lock().expect("lock");
        if slots.by_scope.len() >= slots.sweep_at.max(SLOTS_KEPT) {
            slots.by_scope.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .known
                        .try_lock()
                        .map_or(true, |known| matches!(*known, Some(Some(_))))
            });
            // Twice what is left: sweeps cost the slots added between them, no more.
            slots.sweep_at = slots.by_scope.len() * 2;
        }
        if !slots.hosts.contains(host) {
            slots.hosts.insert(host.to_owned());
        }
        let slot = slots
            .by_scope
            .entry((host.to_owned(), repository.to_owned(), scope.key()))
            .or_default();
        Arc::clone(slot)
    }

    /// Gives `authorization`, just settled for `scope` on `repository`, to the narrower
    /// scopes' slots there that no request has settled yet, so that their first request
    /// carries it. That first request may stream a body that cannot be sent again after a
    /// 401: the blob `PUT` into the upload session a refused mount opened (a 202 instead of
    /// a 201) has the mount's authorization, not none.
    pub fn share_authorization(
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

    /// Waits for the verdict of `host` on `username`'s login: an error when it was refused,
    /// nothing when accepted, and the trial when it is not known yet.
    pub async fn try_login(
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

    /// Whether any request has gone to `host` (one of its repositories has a slot).
    fn asked(&self, host: &str) -> bool {
        self.authorizations
            .lock()
            .expect("lock")
            .hosts
            .contains(host)
    }

    /// Whether `host` refused any login in this run.
    fn refused_any(&self, host: &str) -> bool {
        self.verdicts
            .lock()
            .expect("lock")
            .iter()
            .any(|(key, verdict)| key.0 == host && verdict.is(Some(false)))
    }
}

impl Verdict {
    /// Whether the answer is `answer` (never while a request is finding it out).
    fn is(&self, answer: Option<bool>) -> bool {
        self.answer.try_lock().is_ok_and(|known| *known == answer)
    }
}

/// How one request authenticates, across the times it is sent: the `Authorization` value it
/// sends, the guard of its repository and scope's slot while it is the first request to find
/// out (the others wait for it), the trial of a login not yet settled, and whether a 401 made
/// it answer a challenge already (once per request).
pub struct RequestAuth<'s> {
    slot: &'s AuthCell,
    first: Option<KnownGuard<'s>>,
    value: Option<String>,
    trial: Option<Trial>,
    challenged: bool,
}

impl<'s> RequestAuth<'s> {
    /// The authorization `slot` settled on, once the request finding it out has; or, for that
    /// first request, none yet.
    pub async fn enter(slot: &'s AuthCell, what: &str) -> Result<RequestAuth<'s>, RegistryError> {
        let (first, value) = slot.enter(what).await?;
        Ok(RequestAuth {
            slot,
            first,
            value,
            trial: None,
            challenged: false,
        })
    }

    /// Before each send: Basic sends the password with every request, so a login the host has
    /// not settled yet goes out with one request at a time, and not at all once refused.
    pub async fn before_send(
        &mut self,
        session: &Session,
        host: &str,
        what: &str,
    ) -> Result<(), RegistryError> {
        if self.trial.is_none() {
            if let Some(username) = self.value.as_deref().and_then(basic_username) {
                self.trial = session.try_login(host, &username, what).await?;
            }
        }
        Ok(())
    }

    /// The `Authorization` value to send, if any.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The request got no answer (`error`): the requests waiting for it, as the first to its
    /// slot or with the login it carried, give up with it.
    pub fn unanswered(&mut self, error: &RegistryError) {
        if self.first.is_some() {
            self.slot.unanswered.record(error);
        }
        if let Some(trial) = self.trial.take() {
            trial.unanswered(error);
        }
    }

    /// An answer with `status` came, one not waited out: it settles the login on trial when
    /// it shows the login was checked (after a 429 or 5xx the next use tries again). Settled
    /// before anything else is awaited: other requests wait for it.
    pub fn answered(&mut self, status: StatusCode) {
        if let Some(trial) = self.trial.take() {
            match status {
                StatusCode::UNAUTHORIZED => trial.settle(false),
                status if login_was_checked(status) => trial.settle(true),
                _ => {}
            }
        }
    }

    /// The request is done: as the first to its slot, it leaves the others the authorization
    /// it ended with.
    pub fn done(&mut self) {
        if let Some(mut guard) = self.first.take() {
            *guard = Some(self.value.clone());
        }
    }

    /// The challenge to answer in `response`: a 401 from `own_host` when this request has not
    /// answered one yet (now it has). Otherwise `None`: the request is done, with this answer.
    /// (A 401 whose challenge ferry cannot read is the answer too, but settles nothing.)
    pub fn challenge(&mut self, response: &Response, own_host: bool) -> Option<Challenge> {
        if response.status() != StatusCode::UNAUTHORIZED || self.challenged || !own_host {
            self.done();
            return None;
        }
        self.challenged = true;
        header(response.headers(), WWW_AUTHENTICATE.as_str()).and_then(|h| parse_challenge(&h))
    }
}

impl RegistryClient {
    /// Answers `challenge` for the request `auth` belongs to (to `name` on `side`, at
    /// `endpoint`, through `client`, for `scope`): with the authorization another request
    /// renewed while this one was being refused, else with a new one (see
    /// [`RegistryClient::authorize`]), which the narrower scopes' slots get too. `false` when
    /// there is nothing to offer (Basic without credentials).
    #[expect(clippy::too_many_arguments)]
    pub(super) async fn answer_challenge(
        &self,
        auth: &mut RequestAuth<'_>,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
        client: &reqwest::Client,
        challenge: Challenge,
        scope: &Scope,
        what: &str,
    ) -> Result<bool, RegistryError> {
        let mut guard = match auth.first.take() {
            Some(guard) => guard,
            None => auth.slot.known.lock().await,
        };
        let current = (*guard).clone().flatten();
        if current.is_some() && current != auth.value {
            // Another request renewed it while this one was being refused.
            auth.value = current;
        } else {
            match self
                .authorize(side, name, endpoint, client, challenge, scope, what)
                .await?
            {
                (Some(value), trial) => {
                    auth.value = Some(value);
                    auth.trial = trial;
                }
                (None, _) => return Ok(false),
            }
        }
        *guard = Some(auth.value.clone());
        drop(guard);
        self.session
            .share_authorization(&endpoint.host, &endpoint.repository, scope, &auth.value);
        Ok(true)
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
                self.session
                    .try_login(&endpoint.host, &credentials.username, what)
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
        let response = match self.transport.send(request, &what, deadline).await {
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

    /// Whether ferry holds credentials for the registry serving `name` on `side` that it has
    /// neither accepted nor refused in this run, and no request has gone to that registry
    /// yet: a lookup would settle the login, where a copy would send it without ferry
    /// learning the answer. (A registry already asked either settled it, let ferry in without
    /// it, or did not answer; asking again would only wait for it once more.)
    pub fn login_unsettled(&self, side: Side, name: &str) -> bool {
        let Ok(endpoint) = self.endpoint(side, name) else {
            return false;
        };
        if self.session.asked(&endpoint.host) {
            return false;
        }
        let Ok(Some(credentials)) = self.credentials(side, name, &endpoint, name) else {
            return false;
        };
        self.session
            .verdict(&endpoint.host, &credentials.username)
            .is(None)
    }

    /// Whether the registry serving `name` on `side` refused the credentials ferry has for it
    /// during this run: a copy with them would be refused too.
    pub fn credentials_refused(&self, side: Side, name: &str) -> bool {
        let Ok(endpoint) = self.endpoint(side, name) else {
            return false;
        };
        // Credential lookups read auth files and may run helpers: only when there is a refusal.
        if !self.session.refused_any(&endpoint.host) {
            return false;
        }
        let Ok(Some(credentials)) = self.credentials(side, name, &endpoint, name) else {
            return false;
        };
        self.session
            .verdict(&endpoint.host, &credentials.username)
            .is(Some(false))
    }

    /// Credentials for `name` as written; where registries.conf redirected it to another host,
    /// only those held for that host (see [`crate::access::Access::credentials`]).
    fn credentials(
        &self,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
        what: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        self.options
            .access
            .credentials(side, name, endpoint)
            .map_err(|source| RegistryError::Credentials {
                what: what.to_owned(),
                source,
            })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_runs_anonymous_slots_are_forgotten_logins_and_busy_ones_kept() {
        let session = Session::default();
        let slot = |repository: &str| session.auth_slot("r.example", repository, &Scope::Pull);
        *slot("login").known.try_lock().unwrap() = Some(Some("Bearer t".into()));
        let busy = slot("busy");
        for n in 0..SLOTS_KEPT * 3 {
            *slot(&format!("anonymous-{n}")).known.try_lock().unwrap() = Some(None);
        }
        let slots = session.authorizations.lock().unwrap();
        assert!(
            slots.by_scope.len() <= SLOTS_KEPT * 2,
            "{}",
            slots.by_scope.len()
        );
        let kept = |repository: &str| {
            slots.by_scope.contains_key(&(
                "r.example".to_owned(),
                repository.to_owned(),
                Scope::Pull.key(),
            ))
        };
        assert!(kept("login") && kept("busy") && !kept("anonymous-0"));
        drop(slots);
        assert!(session.asked("r.example"));
        drop(busy);
    }

    #[test]
    fn those_that_waited_for_a_refused_request_give_up_on_its_host() {
        let refused = RegistryError::Network {
            what: "reading manifest x".into(),
            message: "tcp connect error: Connection refused".into(),
            refused: Some("127.0.0.1:5000".into()),
        };
        let unanswered = Unanswered::default();
        let seen = unanswered.seen();
        unanswered.record(&refused);
        let waited = unanswered.since(seen, "reading manifest y").unwrap();
        assert_eq!(waited.refused_host(), Some("127.0.0.1:5000"));
        assert_eq!(
            unanswered
                .since(unanswered.seen(), "z")
                .map(|e| e.to_string()),
            None
        );
    }
    use crate::registry::LOOKUP_TIMEOUT_FLAG;
    use std::time::Duration;

    #[test]
    fn challenges_are_parsed() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="https://h/token", scope="repository:a/b:pull,push""#),
            Some(Challenge::Bearer {
                realm: "https://h/token".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
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
}
