//! The server's HTTP endpoint: `GET /metrics`, `/healthz` (alive) and `/readyz` (the last run's
//! inputs were valid). A small HTTP/1.1 responder on tokio: one request per connection, no
//! bodies, no keep-alive; enough for a Prometheus scrape and a kubelet probe.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::metrics::Metrics;

/// Longest request head read, and how long a client may take to send it.
const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers requests on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &metrics)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let (status, content_type, body) = route(method, path, metrics);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The status line, content type and body for one request. Pure.
fn route(method: &str, path: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".to_owned());
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
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /healthz or /readyz\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer_as_probes_and_scrapes_expect() {
        let metrics = Metrics::new();
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
}
