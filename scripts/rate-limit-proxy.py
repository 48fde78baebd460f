#!/usr/bin/env python3
"""A rate-limited stand-in for Docker Hub, for scripts/bench.sh: an HTTP reverse proxy in front
of a plain-HTTP docker-registry on loopback that limits requests like nginx `limit_req` without
`burst`. ferry's integration tests put it in front of a source or a destination for their
faults (tests/integration/common/script_proxy.rs; tests/integration/rate_limit_proxy_selftest.rs
tests the proxy itself).

    rate-limit-proxy.py --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] [--rate 2]
                        [--port-file PATH] [--log PATH] [--log-bytes] [--fail-list-puts N]
                        [--corrupt-blobs TEXT] [--cut-blobs-after BYTES]
                        [--throttle-uploads N] [--redirect-blobs URL] [--refuse-authorization]
                        [--pull-quota N [--quota-window SECONDS]]

A token bucket of capacity one, full at the start, refilled at RATE requests per second (`inf`:
no limit). A request that finds it empty gets `429 Too Many Requests` with Docker Hub's
TOOMANYREQUESTS body, its quota headers saying the quota is spent (`ratelimit-remaining: 0`), and
`Retry-After` (the wait for the next token, rounded up to whole seconds, at least 1), on a
connection that stays open; a refused request takes nothing from the bucket. Every other
request (any method) is forwarded with its headers, its Host included (so the registry builds its
`Location` URLs with the proxy's address), and its body, and the registry's answer is relayed as
it streams in (read whole first only when it has no Content-Length).

--listen with port 0 picks a free port; --port-file receives the port once the proxy listens.
--log gets one line per request, `METHOD PATH STATUS`, written before the answer is sent; a
connection that does not speak HTTP (a client probing for TLS first) is logged as `- - 400`.
--log-bytes adds a fourth field to each line: the body bytes relayed to the client (a relayed
answer is then logged once it is sent).
--fail-list-puts answers the first N uploads of a manifest list or OCI index with `503 Service
Unavailable` (before the rate limit; they take no token), as a registry under load might.
--corrupt-blobs flips one byte (the middle one) of every blob GET whose path contains TEXT, as
a broken cache or disk would. --cut-blobs-after closes the connection after BYTES body bytes of
the first GET of each blob larger than that, as a dropped connection would (later GETs of it,
a resumed Range or a retry, come through whole). --throttle-uploads answers the first N blob
uploads (`PUT` or `PATCH` of `/blobs/uploads/`) with 429 and `Retry-After: 1`, as a registry
limiting pushes would (they take no token).
--redirect-blobs answers every blob GET with `307 Temporary Redirect` to URL followed by the
request's path, as Docker Hub and gcr.io send blob downloads to a CDN on another host (before the
rate limit; they take no token). --refuse-authorization answers any request that carries an
`Authorization` header with `400 Bad Request`, as a CDN given a registry's credentials should.
--pull-quota meters pulls as Docker Hub does: each manifest GET the registry answers 2xx is one
pull of N per window (--quota-window, 21600 s; the window never ends while the proxy runs), HEADs
are free, every manifest answer (HEAD and GET) carries `ratelimit-limit: N;w=WINDOW` and
`ratelimit-remaining: LEFT;w=WINDOW`, and a manifest GET with nothing left is refused with 429,
TOOMANYREQUESTS and those headers (no Retry-After, as Docker Hub sends none). It counts before the
token bucket (a refused pull takes no token).
Stdlib only.
"""
import argparse
import http.client
import http.server
import math
import os
import re
import socket
import sys
import threading
import time

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "expect"}
TOO_MANY = (b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate '
            b'limit. You may increase the limit by authenticating and upgrading: '
            b'https://www.docker.com/increase-rate-limit"}]}')
UNAVAILABLE = b'{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}'
LIST_TYPES = {"application/vnd.docker.distribution.manifest.list.v2+json",
              "application/vnd.oci.image.index.v1+json"}
CHUNK = 64 * 1024
MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/?]+")


class Bucket:
    """Capacity one: the whole state is the instant the next token arrives."""

    def __init__(self, rate):
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        """0 when the token was taken, else the seconds until there is one."""
        with self.lock:
            now = time.monotonic()
            if now < self.next:
                return self.next - now
            self.next = now + self.interval
            return 0


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a registry client expects
    timeout = 60  # an idle or stuck client connection is dropped after this

    def handle(self):
        try:
            # A TLS ClientHello would make the request-line read hang until the client's TLS
            # timeout: refuse anything that does not start like an HTTP method, as Go does.
            first = self.connection.recv(1, socket.MSG_PEEK)
            if first and not first.isupper():
                self.log_line("-", "-", 400)
                self.connection.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client went away: nothing to answer

    def do_request(self):
        body = self.request_body()
        if self.server.refuse_authorization and "authorization" in self.headers:
            for _ in body:
                pass
            self.answer(400, [("Content-Type", "text/plain")], b"credentials sent to a CDN\n")
            return
        if self.server.redirect_blobs and self.command == "GET" and "/blobs/sha256:" in self.path:
            for _ in body:
                pass
            self.answer(307, [("Location", self.server.redirect_blobs + self.path)], b"")
            return
        if self.fails_list_put():
            for _ in body:
                pass
            self.answer(503, [("Content-Type", "application/json")], UNAVAILABLE)
            return
        if self.throttles_upload():
            for _ in body:
                pass
            self.answer(429, [("Content-Type", "application/json"), ("Retry-After", "1")], TOO_MANY)
            return
        self.pull = None  # a pull held for this request, counted once its answer is 2xx
        if self.server.quota is not None and MANIFEST_PATH.match(self.path):
            if self.command == "GET" and not self.take_pull():
                for _ in body:
                    pass
                self.answer(429, [("Content-Type", "application/json")] + self.quota_headers(),
                            TOO_MANY)
                return
        wait = self.server.bucket.take()
        if wait:
            self.settle_pull(429)
            for _ in body:  # drain it, so the connection can carry the next request
                pass
            self.answer(429, [("Content-Type", "application/json"),
                              ("Retry-After", str(max(1, math.ceil(wait)))),
                              # Docker Hub's quota headers, saying the quota is spent.
                              ("ratelimit-limit", "100;w=21600"),
                              ("ratelimit-remaining", "0;w=21600")], TOO_MANY)
            return
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():  # items() keeps repeated headers (Accept)
                if key.lower() not in HOP_BY_HOP:
                    upstream.putheader(key, value)
            if "host" not in self.headers:
                upstream.putheader("Host", self.server.address)
            chunked = "content-length" not in self.headers and self.has_chunked_body()
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            upstream.endheaders()
            for data in body:
                upstream.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if chunked:
                upstream.send(b"0\r\n\r\n")
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException) as e:
            upstream.close()
            self.settle_pull(502)
            self.close_connection = True  # the request body may be half read
            self.answer(502, [("Content-Type", "text/plain")], f"upstream: {e}\n".encode())
            return
        try:
            self.relay(response)
        finally:
            upstream.close()

    def take_pull(self):
        """Holds one pull of the quota for this GET; False when none is left."""
        with self.server.fail_lock:
            if self.server.quota_left <= 0:
                return False
            self.server.quota_left -= 1
            self.pull = True
            return True

    def settle_pull(self, status):
        """A held pull counts only when the registry served the manifest."""
        if self.pull and not 200 <= status < 300:
            with self.server.fail_lock:
                self.server.quota_left += 1
        self.pull = None

    def quota_headers(self):
        window = self.server.quota_window
        with self.server.fail_lock:
            left = max(self.server.quota_left, 0)
        return [("ratelimit-limit", f"{self.server.quota};w={window}"),
                ("ratelimit-remaining", f"{left};w={window}"),
                ("docker-ratelimit-source", "127.0.0.1")]

    def fails_list_put(self):
        """Whether this is a manifest list or index upload that --fail-list-puts refuses."""
        media_type = self.headers.get("content-type", "").split(";")[0].strip()
        if self.command != "PUT" or media_type not in LIST_TYPES:
            return False
        with self.server.fail_lock:
            if self.server.list_puts_to_fail <= 0:
                return False
            self.server.list_puts_to_fail -= 1
            return True

    def throttles_upload(self):
        """Whether this is a blob upload that --throttle-uploads refuses."""
        if self.command not in ("PUT", "PATCH") or "/blobs/uploads/" not in self.path:
            return False
        with self.server.fail_lock:
            if self.server.uploads_to_throttle <= 0:
                return False
            self.server.uploads_to_throttle -= 1
            return True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    def request_body(self):
        """The request body as a generator of chunks (Content-Length or chunked)."""
        if "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("client closed mid-body")
                left -= len(data)
                yield data
        elif self.has_chunked_body():
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield self.rfile.read(size)
                self.rfile.readline()

    def has_chunked_body(self):
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def relay(self, response):
        headers, length = [], None
        if self.server.quota is not None and MANIFEST_PATH.match(self.path):
            self.settle_pull(response.status)
            headers.extend(self.quota_headers())
        for key, value in response.msg.items():
            lower = key.lower()
            if lower in HOP_BY_HOP:
                continue
            if lower == "content-length":
                length = value
            elif lower == "location" and value.startswith(f"http://{self.server.upstream}/"):
                own = self.headers.get("host") or self.server.address
                value = f"http://{own}{value[len('http://' + self.server.upstream):]}"
            headers.append((key, value))
        no_body = self.command == "HEAD" or response.status in (204, 304)
        if length is None and not no_body:
            # Unknown length (chunked from the registry): read it all and say how long it is.
            data = response.read()
            self.answer(response.status, headers + [("Content-Length", str(len(data)))], data,
                        response.reason)
            return
        blob = self.command == "GET" and "/blobs/sha256:" in self.path and response.status in (200, 206)
        corrupt_at = None
        if blob and self.server.corrupt and self.server.corrupt in self.path and length:
            corrupt_at = int(length) // 2
        cut_at = None
        if blob and self.server.cut_after and length and int(length) > self.server.cut_after:
            with self.server.fail_lock:
                if self.path not in self.server.cut_paths:
                    self.server.cut_paths.add(self.path)
                    cut_at = self.server.cut_after
        sent = 0
        if not self.server.log_bytes:  # logged before the answer, as documented
            self.log_line(self.command, self.path, response.status)
        self.send_response_only(response.status, response.reason)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        try:
            while not no_body and (data := response.read(CHUNK)):
                if corrupt_at is not None and sent <= corrupt_at < sent + len(data):
                    data = bytearray(data)
                    data[corrupt_at - sent] ^= 0xFF
                    data = bytes(data)
                if cut_at is not None and sent + len(data) >= cut_at:
                    data = data[:cut_at - sent]
                    self.wfile.write(data)
                    sent += len(data)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    break
                self.wfile.write(data)
                sent += len(data)
        except http.client.HTTPException:
            self.close_connection = True  # the registry broke off: so does the answer
        if self.server.log_bytes:
            self.log_line(self.command, self.path, response.status, sent)

    def answer(self, status, headers, body, reason=None):
        self.log_line(self.command, self.path, status, 0 if self.command == "HEAD" else len(body))
        self.send_response_only(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        if not any(key.lower() == "content-length" for key, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_line(self, method, path, status, sent=0):
        if self.server.log_bytes:
            self.server.log(f"{method} {path} {status} {sent}")
        else:
            self.server.log(f"{method} {path} {status}")

    def log_request(self, code="-", size="-"):
        # Only BaseHTTPRequestHandler's own error answers (a malformed request) come here.
        self.log_line(self.command or "-", getattr(self, "path", None) or "-", code)

    def log_message(self, format, *args):
        pass  # no access log on stderr: --log has it


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def log(self, line):
        if self.log_file:
            with self.log_lock:
                self.log_file.write(line + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free one)")
    parser.add_argument("--upstream", required=True, help="the registry, HOST:PORT")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second (2)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--log", help="append METHOD PATH STATUS per request here")
    parser.add_argument("--log-bytes", action="store_true",
                        help="log the body bytes relayed per request as a fourth field")
    parser.add_argument("--fail-list-puts", type=int, default=0, metavar="N",
                        help="answer 503 to the first N manifest list/index uploads (0)")
    parser.add_argument("--throttle-uploads", type=int, default=0, metavar="N",
                        help="answer 429 to the first N blob uploads (0)")
    parser.add_argument("--corrupt-blobs", metavar="TEXT",
                        help="flip one byte of every blob GET whose path contains TEXT")
    parser.add_argument("--cut-blobs-after", type=int, default=0, metavar="BYTES",
                        help="cut the first GET of each larger blob after BYTES body bytes")
    parser.add_argument("--redirect-blobs", metavar="URL",
                        help="answer blob GETs with 307 to URL + the request's path")
    parser.add_argument("--refuse-authorization", action="store_true",
                        help="answer 400 to any request with an Authorization header")
    parser.add_argument("--pull-quota", type=int, metavar="N",
                        help="meter manifest GETs as Docker Hub does: N per window, then 429")
    parser.add_argument("--quota-window", type=int, default=21600, metavar="SECONDS",
                        help="the window --pull-quota's headers name (21600)")
    args = parser.parse_args()
    if not args.rate > 0:
        parser.error("--rate must be positive")
    host, _, port = args.listen.rpartition(":")
    server = Server((host, int(port)), Proxy)
    server.upstream = args.upstream
    server.address = f"{host}:{server.server_address[1]}"
    server.bucket = Bucket(args.rate)
    server.list_puts_to_fail = args.fail_list_puts
    server.log_bytes = args.log_bytes
    server.uploads_to_throttle = args.throttle_uploads
    server.corrupt = args.corrupt_blobs
    server.cut_after = args.cut_blobs_after
    server.cut_paths = set()
    server.redirect_blobs = args.redirect_blobs.rstrip("/") if args.redirect_blobs else None
    server.refuse_authorization = args.refuse_authorization
    server.quota = args.pull_quota
    server.quota_left = args.pull_quota or 0
    server.quota_window = args.quota_window
    server.fail_lock = threading.Lock()
    server.log_lock = threading.Lock()
    server.log_file = open(args.log, "a", buffering=1) if args.log else None
    if args.port_file:  # written whole, then renamed: a reader never sees half a port
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{server.server_address[1]}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
