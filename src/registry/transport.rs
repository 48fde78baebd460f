//! How ferry's registry client reaches a registry host: one HTTP client per host, side and TLS
//! settings, with skopeo's TLS rules (system roots, the cert dirs [`crate::access`] names,
//! unverified where the host is insecure); the scheme an insecure host speaks, probed once
//! (HTTPS, else plain HTTP, as skopeo falls back); and every request sent through here, counted
//! by host and answer, its transport failure told as a network, TLS or timeout error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Response, StatusCode};

use super::request::url_authority;
use super::{Deadline, RegistryError};
use crate::access::conf::Endpoint;
use crate::access::Reach;
use crate::model::Side;

/// How an insecure registry is spoken to (`https` or `http`), or why it could not be told;
/// found out once per host.
type Probe = tokio::sync::OnceCell<Result<&'static str, String>>;

/// Clients differ by host, side and TLS settings.
type ClientKey = (String, Side, bool, Option<PathBuf>);

/// The HTTP clients, the schemes found out and the requests counted, for one registry client.
#[derive(Default)]
pub struct Transport {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    schemes: Mutex<HashMap<(String, Side), Arc<Probe>>>,
    requests: AtomicU64,
    /// Requests by (host, answer class).
    answers: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Transport {
    /// The HTTP client for `endpoint` on `side`, reached as `reach` says; made on first use.
    pub fn client(
        &self,
        side: Side,
        endpoint: &Endpoint,
        reach: &Reach,
    ) -> Result<reqwest::Client, RegistryError> {
        let key = (
            endpoint.host.clone(),
            side,
            reach.insecure,
            reach.cert_dir.clone(),
        );
        if let Some(client) = self.clients.lock().expect("lock").get(&key) {
            return Ok(client.clone());
        }
        let cert_dirs = reach.cert_dirs(&endpoint.host, &|dir| dir.is_dir());
        let client =
            build_client(reach.insecure, &cert_dirs).map_err(|message| RegistryError::Tls {
                what: endpoint.host.clone(),
                message,
            })?;
        self.clients
            .lock()
            .expect("lock")
            .insert(key, client.clone());
        Ok(client)
    }

    /// HTTPS, unless the registry is insecure and does not speak it (as skopeo falls back).
    /// The probe is a lookup: it has `deadline`.
    pub async fn scheme(
        &self,
        side: Side,
        endpoint: &Endpoint,
        insecure: bool,
        client: &reqwest::Client,
        what: &str,
        deadline: Deadline,
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

    /// Sends one request, counting it, by host and answer (see [`Transport::answers`]); a
    /// timeout is told with `deadline`, the one the request was sent with.
    pub async fn send(
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
        if let Some(host) = url
            .filter(|url| url.host_str().is_some())
            .map(url_authority)
        {
            *self
                .answers
                .lock()
                .expect("lock")
                .entry((host, class))
                .or_default() += 1;
        }
        sent.map_err(|e| failed(what, &e, deadline))
    }

    /// HTTP requests sent so far (including token requests and probes).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
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
}

/// A client with skopeo's TLS rules: system roots (and `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus
/// `*.crt` CAs and a `*.cert`/`*.key` client pair from the cert dirs (see [`Reach::cert_dirs`]:
/// the side's `--*-cert-dir` or else the host's `certs.d` directories).
fn build_client(insecure: bool, cert_dirs: &[PathBuf]) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        // Every request sets its own time limit (see `Patience`).
        .connect_timeout(Duration::from_secs(15))
        .danger_accept_invalid_certs(insecure);
    for dir in cert_dirs {
        let entries = std::fs::read_dir(dir)
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

/// `2xx`, `3xx`, `4xx` or `5xx`.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
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
pub fn failed(what: &str, error: &reqwest::Error, deadline: Deadline) -> RegistryError {
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
pub fn explain_tls(side: Side, host: &str, error: RegistryError) -> RegistryError {
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
    use crate::model::FailureKind;

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
