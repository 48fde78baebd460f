//! A stand-in for Docker Hub's token auth in front of a plain `docker-registry`: every `/v2/`
//! request needs `Authorization: Bearer <token>`, tokens come from `GET /token` for Basic
//! credentials and are bound to the one repository of the requested scope, and authorized
//! `GET`/`HEAD` requests are forwarded to the real registry. docker-registry's own token auth
//! needs a key pair and a token server.
//!
//! This std-only HTTP/1.1 server is small and records every request, so tests can check how
//! often ferry asks for a token. (Docker Hub's rate limit, and every other fault a front can
//! put in, is `scripts/rate-limit-proxy.py`'s: see `script_proxy`.)

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;

pub const SERVICE: &str = "ferry-test";
/// An idle keep-alive connection (or a stuck upstream) is dropped after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 64 * 1024;

/// The proxy on a free 127.0.0.1 port; the listener thread stops on drop.
pub struct TokenProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    auth: TokenAuth,
    /// "METHOD target [bearer] -> status", one line per request, in order of answer.
    log: Mutex<Vec<String>>,
    stopping: AtomicBool,
}

struct TokenAuth {
    /// The `Authorization` value the token endpoint accepts.
    basic: String,
    realm: String,
    /// Issued token -> the repository it opens (None: none, only `/v2/` itself).
    tokens: Mutex<HashMap<String, Option<String>>>,
}

impl TokenProxy {
    /// Serve in front of `upstream` ("127.0.0.1:PORT"), issuing tokens to `user`:`password`.
    pub fn start(upstream: &str, user: &str, password: &str) -> TokenProxy {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token proxy");
        let addr = listener.local_addr().expect("token proxy address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            auth: TokenAuth {
                basic: format!("Basic {pair}"),
                realm: format!("http://{addr}/token"),
                tokens: Mutex::default(),
            },
            log: Mutex::default(),
            stopping: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let listener = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let shared = Arc::clone(&accepting);
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(&shared, stream));
                }
            }
        });
        let listener = Some(listener);
        TokenProxy {
            addr,
            shared,
            listener,
        }
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Requests to `/token`, granted or not.
    pub fn token_requests(&self) -> usize {
        self.count(|line| line.contains(" /token?") || line.contains(" /token "))
    }

    /// Requests to `/token` that were granted a token.
    pub fn granted_tokens(&self) -> usize {
        self.count(|line| line.contains(" /token") && line.ends_with("-> 200"))
    }

    /// Requests to `/v2/…`, forwarded or refused (401).
    pub fn registry_requests(&self) -> usize {
        self.count(|line| line.contains(" /v2"))
    }

    /// `/v2/…` requests answered 401 with a challenge.
    pub fn unauthorized(&self) -> usize {
        self.count(|line| line.contains(" /v2") && line.ends_with("-> 401"))
    }

    /// Every request seen, one line each, for failure messages.
    pub fn log(&self) -> String {
        self.shared.log.lock().unwrap().join("\n")
    }

    fn count(&self, matches: impl Fn(&str) -> bool) -> usize {
        let log = self.shared.log.lock().unwrap();
        log.iter().filter(|line| matches(line)).count()
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the blocking accept
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        let mut headers = self.headers.iter();
        let found = headers.find(|(key, _)| key.eq_ignore_ascii_case(name));
        found.map(|(_, value)| value.as_str())
    }
}

struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// One connection: requests until the client closes or asks to, or sends something that is
/// not HTTP (ferry's `https://` probe sends a TLS ClientHello: like Go, answer 400 and close).
fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut buffer = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buffer) {
            Ok(Some(request)) => request,
            Ok(None) => break, // closed, idle too long
            Err(e) => {
                shared.log.lock().unwrap().push(format!("({e}) -> 400"));
                let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                break;
            }
        };
        let answer = answer_with_token(shared, &request);
        let bearer = request
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "));
        let line = format!(
            "{} {}{} -> {}",
            request.method,
            request.target,
            if bearer { " [bearer]" } else { "" },
            answer.status
        );
        shared.log.lock().unwrap().push(line);
        let close = request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        if write_answer(&mut stream, answer, request.method == "HEAD").is_err() || close {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// The next request's head; its body (if any) is read and dropped. `Ok(None)` when the
/// connection ended, `Err` when the bytes are not an HTTP request.
fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.first().is_some_and(|b| !b.is_ascii_uppercase()) || buffer.len() > MAX_HEAD {
            return Err(bad("not an HTTP request"));
        }
        if !read_more(stream, buffer) {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let [method, target, _version] = request_line[..] else {
        return Err(bad("bad request line"));
    };
    let headers = lines.filter_map(|l| l.split_once(':'));
    let headers = headers
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let (method, target) = (method.to_string(), target.to_string());
    let request = Request {
        method,
        target,
        headers,
    };
    let length = request
        .header("content-length")
        .unwrap_or("0")
        .parse::<usize>();
    let length = length.map_err(|_| bad("bad Content-Length"))?;
    while buffer.len() < head_end + length {
        if !read_more(stream, buffer) {
            return Ok(None);
        }
    }
    buffer.drain(..head_end + length);
    Ok(Some(request))
}

/// Appends what the socket has; false when it is closed, timed out or broken.
fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(n) if n > 0 => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

fn answer_with_token(shared: &Shared, request: &Request) -> Answer {
    let auth = &shared.auth;
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    if path == "/token" {
        return issue_token(auth, request, query);
    }
    if path != "/v2" && !path.starts_with("/v2/") {
        return plain(404, "not found");
    }
    let repository = repository_of(path);
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    let opens = bearer.and_then(|token| auth.tokens.lock().unwrap().get(token).cloned());
    // Any token opens `/v2/`; a repository needs a token issued for it.
    let valid = opens.is_some_and(|opens| repository.is_none() || opens == repository);
    if !valid {
        let scope = repository.map_or(String::new(), |r| format!(",scope=\"repository:{r}:pull\""));
        let challenge = format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\"{scope}",
            auth.realm
        );
        let body = r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#;
        let mut unauthorized = json(401, body.to_string());
        unauthorized.headers.push(("WWW-Authenticate", challenge));
        return unauthorized;
    }
    if request.method != "GET" && request.method != "HEAD" {
        return plain(405, "only GET and HEAD are forwarded");
    }
    forward(shared, request).unwrap_or_else(|e| plain(502, &format!("upstream: {e}")))
}

/// `/v2/<name>/manifests/…`, `/v2/<name>/blobs/…` or `/v2/<name>/tags/list` -> `<name>`.
fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let markers = ["/manifests/", "/blobs/", "/tags/list"];
    let at = markers.iter().filter_map(|m| rest.rfind(m)).max()?;
    Some(rest[..at].to_string())
}

fn issue_token(auth: &TokenAuth, request: &Request, query: &str) -> Answer {
    let pairs = query.split('&').filter_map(|pair| pair.split_once('='));
    let params: Vec<(String, String)> = pairs.map(|(k, v)| (unescape(k), unescape(v))).collect();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if param("service") != Some(SERVICE) {
        return plain(400, "unknown service");
    }
    if request.header("authorization") != Some(auth.basic.as_str()) {
        return json(
            401,
            r#"{"details":"incorrect username or password"}"#.to_string(),
        );
    }
    let repository = match param("scope").map(|s| s.split(':').collect::<Vec<_>>()) {
        None => None,
        Some(scope) => match scope[..] {
            ["repository", name, actions] if actions.split(',').any(|a| a == "pull") => {
                Some(name.to_string())
            }
            _ => return plain(400, "unsupported scope"),
        },
    };
    let random = || RandomState::new().build_hasher().finish();
    let token = format!("{:016x}{:016x}", random(), random());
    auth.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), repository);
    json(
        200,
        format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
    )
}

/// Sends the request on to the registry as HTTP/1.0, so the body ends where the stream does.
/// Every `Accept` line goes along: skopeo sends one per media type, and a registry that sees only
/// the first would answer an index with one of its platform manifests. `Range` goes along too,
/// for a client resuming a blob.
fn forward(shared: &Shared, request: &Request) -> io::Result<Answer> {
    let mut upstream = TcpStream::connect(&shared.upstream)?;
    upstream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let passed = ["Accept", "Range"];
    let mut passed_on = String::new();
    for (key, value) in &request.headers {
        if let Some(key) = passed.iter().find(|p| p.eq_ignore_ascii_case(key)) {
            passed_on.push_str(&format!("{key}: {value}\r\n"));
        }
    }
    let (method, target, host) = (&request.method, &request.target, &shared.upstream);
    write!(
        upstream,
        "{method} {target} HTTP/1.0\r\nHost: {host}\r\n{passed_on}\r\n"
    )?;
    let mut raw = Vec::new();
    upstream.read_to_end(&mut raw)?;
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let at = at.ok_or_else(|| io::Error::other("no end of headers from the registry"))?;
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)?.parse().ok());
    let status = status.ok_or_else(|| io::Error::other("bad status line from the registry"))?;
    let kept = [
        "Content-Type",
        "Docker-Content-Digest",
        "Docker-Distribution-Api-Version",
        "Content-Length",
        "Content-Range",
        "Link",
    ];
    let mut headers = Vec::new();
    let mut length = None;
    for (key, value) in lines.filter_map(|l| l.split_once(':')) {
        let Some(&key) = kept.iter().find(|k| k.eq_ignore_ascii_case(key.trim())) else {
            continue;
        };
        let value = value.trim().to_string();
        // A GET's Content-Length is the body's, added on the way out; a HEAD's is the registry's.
        if key == "Content-Length" {
            length = value.parse::<usize>().ok();
        }
        if key != "Content-Length" || method == "HEAD" {
            headers.push((key, value));
        }
    }
    let body = raw[at + 4..].to_vec();
    // A registry that dies mid-blob must not look like one that sent a short blob.
    if let Some(length) = length.filter(|&n| method != "HEAD" && n != body.len()) {
        let got = body.len();
        return Err(io::Error::other(format!(
            "the registry sent {got} of {length} bytes"
        )));
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn plain(status: u16, text: &str) -> Answer {
    let headers = vec![("Content-Type", "text/plain".to_string())];
    Answer {
        status,
        headers,
        body: format!("{text}\n").into_bytes(),
    }
}

fn json(status: u16, text: String) -> Answer {
    let headers = vec![("Content-Type", "application/json".to_string())];
    Answer {
        status,
        headers,
        body: text.into_bytes(),
    }
}

fn write_answer(stream: &mut TcpStream, answer: Answer, head_only: bool) -> io::Result<()> {
    let reason = match answer.status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        502 => "Bad Gateway",
        _ => "",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (key, value) in &answer.headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    if !answer
        .headers
        .iter()
        .any(|(key, _)| *key == "Content-Length")
    {
        head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&answer.body);
    }
    stream.write_all(&out)
}

/// Query decoding: `%XX` escapes and `+` for a space.
fn unescape(text: &str) -> String {
    let (bytes, mut out, mut i) = (text.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        let (byte, width) = match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => (byte, 3),
            (b'+', _) => (b' ', 1),
            (byte, _) => (byte, 1),
        };
        out.push(byte);
        i += width;
    }
    String::from_utf8_lossy(&out).into_owned()
}
