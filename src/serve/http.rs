//! The server's HTTP endpoint: `GET /metrics`, `/healthz` (alive), `/readyz` (the last run's
//! inputs were valid) and `/catalog` (`/catalog.md`: the last run's catalog, as the command
//! renders it and hands it over in [`Pages`]; 404 before the first run), and `HEAD` of each. A small HTTP/1.1 responder on tokio: one request per
//! connection, no bodies, no keep-alive; enough for a Prometheus scrape and a kubelet probe.
//!
//! Its resources are bounded: at most [`MAX_CONNECTIONS`] connections are open at once (the
//! next waits in the kernel's backlog until one ends), a client has [`READ_TIMEOUT`] for its
//! whole exchange, so idle connections cannot hold the slots, and a failing `accept` (out of
//! file descriptors: `EMFILE`) is retried after [`ACCEPT_BACKOFF`] instead of at once, which
//! would spin a core, and logged once per run of failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::metrics::Metrics;

/// Longest request head read, and how long a client may take for its whole exchange.
const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// The pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The pages of the last run the endpoint serves besides the metrics: its catalog as HTML and
/// as Markdown, none before a run has finished.
#[derive(Debug, Default)]
pub struct Pages {
    catalog: Mutex<Option<Arc<(String, String)>>>,
}

impl Pages {
    /// The last run's catalog, as HTML and as Markdown.
    pub fn set_catalog(&self, html: String, markdown: String) {
        *self.catalog.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new((html, markdown)));
    }

    fn catalog(&self) -> Option<Arc<(String, String)>> {
        self.catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Answers requests on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, pages: Arc<Pages>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut failing = false;
    loop {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        match listener.accept().await {
            Ok((stream, _)) => {
                if failing {
                    tracing::warn!("accepting connections on /metrics again");
                    failing = false;
                }
                let metrics = Arc::clone(&metrics);
                let pages = Arc::clone(&pages);
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(READ_TIMEOUT, answer(stream, &metrics, &pages)).await;
                    drop(slot);
                });
            }
            // The client gave up before its connection was accepted: nothing to wait for.
            Err(e) if peer_gone(&e) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "cannot accept connections on /metrics: {e}; retrying every {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                    failing = true;
                }
                drop(slot);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// An `accept` error that concerns one connection only, not the listener.
fn peer_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted
    )
}

async fn answer(mut stream: TcpStream, metrics: &Metrics, pages: &Pages) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    if head.is_empty() {
        // Closed without a request (a TCP check): nothing to answer.
        return Ok(());
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let response = respond(method, path, metrics, pages);
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The whole response to one request: `HEAD` gets `GET`'s status and headers without the body.
fn respond(method: &str, path: &str, metrics: &Metrics, pages: &Pages) -> Vec<u8> {
    let (status, content_type, body) = route(method, path, metrics, pages);
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

/// The status line, content type and body for one request. Pure.
fn route(
    method: &str,
    path: &str,
    metrics: &Metrics,
    pages: &Pages,
) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            TEXT,
            "only GET and HEAD\n".to_owned(),
        );
    }
    match path {
        "/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => ("200 OK", TEXT, "ok\n".to_owned()),
        "/readyz" if metrics.inputs_valid() => ("200 OK", TEXT, "ready\n".to_owned()),
        "/readyz" => (
            "503 Service Unavailable",
            TEXT,
            "the last run's inputs were not valid\n".to_owned(),
        ),
        "/catalog" | "/catalog.md" => match (pages.catalog(), path) {
            (Some(catalog), "/catalog") => {
                ("200 OK", "text/html; charset=utf-8", catalog.0.clone())
            }
            (Some(catalog), _) => ("200 OK", "text/markdown; charset=utf-8", catalog.1.clone()),
            (None, _) => (
                "404 Not Found",
                TEXT,
                "no run has finished yet: the catalog is the last run's\n".to_owned(),
            ),
        },
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /healthz, /readyz or /catalog\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer_as_probes_and_scrapes_expect() {
        let metrics = Metrics::new(false);
        let pages = Pages::default();
        let route = |method, path, metrics: &Metrics| route(method, path, metrics, &pages);
        metrics.inputs_checked(false);
        assert_eq!(route("GET", "/healthz", &metrics).0, "200 OK");
        assert_eq!(
            route("GET", "/readyz", &metrics).0,
            "503 Service Unavailable"
        );
        metrics.inputs_checked(true);
        assert_eq!(route("GET", "/readyz", &metrics).0, "200 OK");
        let (status, content_type, body) = route("GET", "/metrics", &metrics);
        assert_eq!(status, "200 OK");
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert!(body.contains("ferry_inputs_valid 1"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(route("GET", "/nope", &metrics).0, "404 Not Found");
        assert_eq!(
            route("POST", "/metrics", &metrics).0,
            "405 Method Not Allowed"
        );
    }

    #[test]
    fn the_catalog_is_the_last_runs_and_none_before_the_first() {
        let metrics = Metrics::new(false);
        let pages = Pages::default();
        for path in ["/catalog", "/catalog.md"] {
            let (status, _, body) = route("GET", path, &metrics, &pages);
            assert_eq!(status, "404 Not Found", "{path}");
            assert!(body.starts_with("no run has finished yet"), "{body}");
        }
        pages.set_catalog("<p>one</p>".to_owned(), "# one".to_owned());
        pages.set_catalog("<p>two</p>".to_owned(), "# two".to_owned());
        assert_eq!(
            route("GET", "/catalog", &metrics, &pages),
            (
                "200 OK",
                "text/html; charset=utf-8",
                "<p>two</p>".to_owned()
            )
        );
        assert_eq!(
            route("GET", "/catalog.md", &metrics, &pages),
            ("200 OK", "text/markdown; charset=utf-8", "# two".to_owned())
        );
    }

    #[test]
    fn head_gets_the_status_and_headers_of_get_without_the_body() {
        let metrics = Metrics::new(false);
        let pages = Pages::default();
        pages.set_catalog("<p>html</p>".to_owned(), "# md".to_owned());
        let respond = |method, path, metrics: &Metrics| respond(method, path, metrics, &pages);
        metrics.inputs_checked(true);
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/catalog",
            "/catalog.md",
            "/nope",
        ] {
            let get = String::from_utf8(respond("GET", path, &metrics)).unwrap();
            let head = String::from_utf8(respond("HEAD", path, &metrics)).unwrap();
            let (get_head, body) = get.split_once("\r\n\r\n").unwrap();
            assert!(!body.is_empty(), "{path}");
            assert_eq!(head, format!("{get_head}\r\n\r\n"), "{path}");
        }
        let healthz = String::from_utf8(respond("HEAD", "/healthz", &metrics)).unwrap();
        assert!(healthz.starts_with("HTTP/1.1 200 OK\r\n"), "{healthz}");
        assert!(healthz.contains("Content-Length: 3\r\n"), "{healthz}");
        let refused = String::from_utf8(respond("DELETE", "/healthz", &metrics)).unwrap();
        assert!(refused.starts_with("HTTP/1.1 405"), "{refused}");
        assert!(refused.contains("Allow: GET, HEAD\r\n"), "{refused}");
    }
}
