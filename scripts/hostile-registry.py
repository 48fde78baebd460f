#!/usr/bin/env python3
"""A hostile registry for ferry's tests: a reverse proxy in front of a real docker-registry that
meets the requests for chosen repositories with an attack, and passes everything else through.

    hostile-registry.py --upstream HOST:PORT [--upstream-ca FILE] [--listen 127.0.0.1:0]
                        [--port-file PATH] [--log PATH] --attack REPO=ATTACK[,ATTACK...] ...

Every request whose path names repository REPO (`/v2/REPO/manifests/...`, `/v2/REPO/blobs/...`,
`/v2/REPO/tags/list`, ...) meets the attacks given for it; `*` stands for every repository. One
attack per repository keeps a test's images apart: `--attack library/evil=digest-traversal
--attack library/swapped=manifest-body-mismatch` serves both, and `library/good` as it is.
Anything an attack does not concern (other requests of its repository too) is forwarded with its
headers (Host included, so the registry's `Location` URLs name this front) and its body, and the
registry's answer relayed as it streams in. With --upstream-ca the registry is spoken to over
HTTPS, verified with that CA; this front itself speaks plain HTTP, and says so to the registry
(`X-Forwarded-Proto: http`), so Basic credentials pass through it untouched.

The attacks (see ATTACKS below):

  manifest-body-mismatch     A manifest read by tag (GET) comes with the registry's own
                             Docker-Content-Digest but a body one newline longer: still valid
                             JSON, but it hashes to another digest, as a tampering mirror or
                             cache might serve it. HEAD, and reads by digest, are left alone.
  digest-traversal           Manifest answers for a tag (HEAD and GET) carry
                             `Docker-Content-Digest: sha256:../../../../x`: put in a URL
                             unchecked, it leads out of the repository.
  no-mount                   A blob upload POST loses its `mount=` and `from=` parameters, so
                             the registry opens an upload session (202) where it would have
                             mounted (201), as registries without cross-repository mounts, or
                             with the other repository outside the token's scope, answer.
  unauthorized-upload-once   The first blob upload request with a body (PUT or PATCH under
                             /blobs/uploads/) is answered 401 with the registry's own challenge,
                             as a token that expired mid-run would be.
  error-escapes              Manifest reads (GET) and tag listings are refused (400 DENIED) with
                             an error message full of terminal control: ESC sequences (clear
                             the screen, colours), CR, a line break followed by a forged result
                             line, BEL, DEL and a C1 CSI. HEAD is left alone.
  stall                      Every request for the repository is read and never answered: the
                             connection stays open, silent, as a hung registry's would.
  stall-body                 Manifest and tag list GETs get the registry's status and headers
                             and the first half of the body, then nothing more (the connection
                             stays open).
  stall-blob                 Blob GETs likewise: a download that stalls midway.
  stall-upload-once          The first blob upload request with a body is read whole and never
                             answered; later ones pass.
  endless-manifest           A manifest read by tag (GET) is `{"schemaVersion":2,` followed by
                             spaces without end, chunked; HEAD by tag answers 200 with no
                             Docker-Content-Digest, so a client that wants the digest must GET.
  endless-error              A manifest read by tag (GET) is refused with 400 and an error
                             body (`{"errors":[{"code":"DENIED","message":"` and spaces) without
                             end, chunked.
  huge-manifest              A manifest read by tag is a real one padded with 50 MB of spaces,
                             with its Content-Length; HEAD by tag as for endless-manifest.
  endless-tags               Every page of the tag listing names one new tag and a `Link` to a
                             next page: the listing never ends.
  many-tags                  The repository lists 100,000 tags (t0 ... t99999), in pages of the
                             `n` asked for (1000 at most), each with a `Link` to the next.
  repeated-child             The tag's manifest (HEAD, GET) is an OCI index naming the real
                             one's descriptor 5,000 times; reads by digest pass.
  nested-index               The tag's manifest is an index of 40 indexes, each of 40 indexes,
                             each naming the real manifest 40 times: indexes 3 deep, all
                             served by digest, each with its own digest.
  wide-index                 The tag's manifest is an index naming 1,001 distinct manifests
                             (none of them exists).
  referrers-api              Not an attack: the OCI 1.1 referrers API that docker-registry 2.8
                             lacks. A manifest pushed through this front with a `subject` is
                             answered with `OCI-Subject` and remembered (deleted by digest
                             through it, forgotten); `GET /v2/REPO/referrers/DIGEST` answers
                             with an index of what was remembered for that subject (filtered
                             on `?artifactType=`, saying so in `OCI-Filters-Applied`). Only
                             what went through this front is known to it.
  referrers-traversal        The referrers API answers with one descriptor whose digest is
                             `sha256:../../../../x`.
  referrers-many             The referrers API answers with 1,001 descriptors (of manifests
                             that do not exist).

To add one: subclass Attack, give it a `name` and override `before` (answer instead of the
registry: a stall, an endless body, an endless Link chain...) and/or `after` (change the
registry's answer), then list it in ATTACKS and above.

--listen with port 0 picks a free port; --port-file receives the port once the front listens.
--log gets one line per request, `METHOD PATH STATUS` (the path as the client sent it), written
before the answer is sent. Stdlib only.
"""
import argparse
import hashlib
import http.client
import http.server
import json
import os
import re
import socket
import ssl
import sys
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "expect"}
CHUNK = 64 * 1024
API_PATH = re.compile(
    r"^/v2/(?P<repository>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags|referrers)"
    r"(?:/(?P<rest>.*))?$")


class Exchange:
    """One request as the attacks see it: `path` is what goes to the registry (an attack may
    change it), `original` what the client asked for."""

    def __init__(self, method, path, headers):
        self.method = method
        self.original = path
        self.path = path
        self.headers = headers
        split = urllib.parse.urlsplit(path)
        match = API_PATH.match(split.path)
        self.repository = match["repository"] if match else None
        self.kind = match["kind"] if match else None
        self.reference = (match["rest"] or "") if match else ""
        self.query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)

    def by_tag(self):
        """Whether this is a manifest request for a tag (not a digest)."""
        return self.kind == "manifests" and ":" not in self.reference

    def with_query(self, query):
        split = urllib.parse.urlsplit(self.path)
        return urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))


class Reply:
    """An answer to send: `body` is bytes, or an iterable of chunks streamed as they come
    (with the length from `headers`, else chunked)."""

    def __init__(self, status, headers, body=b"", reason=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def read(self):
        """The whole body, read now."""
        if not isinstance(self.body, bytes):
            self.body = b"".join(self.body)
        return self.body

    def set_body(self, body):
        self.body = body
        self.set_header("Content-Length", str(len(body)))


class Attack:
    """Forwards everything unchanged; an attack overrides what it changes."""
    name = None

    def before(self, exchange, front):
        """A Reply to answer with instead of asking the registry, or None to go on (after
        changing `exchange.path`, perhaps)."""
        return None

    def after(self, exchange, reply):
        """The registry's reply, changed as the attack wants."""
        return reply


class ManifestBodyMismatch(Attack):
    name = "manifest-body-mismatch"

    def after(self, exchange, reply):
        if exchange.method == "GET" and exchange.by_tag() and reply.status == 200:
            reply.set_body(reply.read() + b"\n")
        return reply


class DigestTraversal(Attack):
    name = "digest-traversal"

    def after(self, exchange, reply):
        if exchange.by_tag() and reply.status == 200:
            reply.set_header("Docker-Content-Digest", "sha256:../../../../x")
        return reply


class NoMount(Attack):
    name = "no-mount"

    def before(self, exchange, front):
        if exchange.method == "POST" and exchange.kind == "blobs/uploads":
            query = [(k, v) for k, v in exchange.query if k not in ("mount", "from")]
            exchange.path = exchange.with_query(query)
        return None


class UnauthorizedUploadOnce(Attack):
    name = "unauthorized-upload-once"

    def __init__(self):
        self.done = False
        self.lock = threading.Lock()

    def before(self, exchange, front):
        if not uploads_a_body(exchange):
            return None
        with self.lock:
            if self.done:
                return None
            self.done = True
        challenge = front.challenge()
        headers = [("Content-Type", "application/json")]
        if challenge:
            headers.append(("WWW-Authenticate", challenge))
        body = (b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        return Reply(401, headers, body)


class ErrorEscapes(Attack):
    name = "error-escapes"
    MESSAGE = ("\x1b[2J\x1b[31mFAKE-ALERT\x1b[0m\rhidden\r\n"
               "synced  forged/line:1  0.1s\x07\x7f\u009b31m end")

    def before(self, exchange, front):
        if exchange.method != "GET" or exchange.kind not in ("manifests", "tags"):
            return None
        body = json.dumps({"errors": [{"code": "DENIED", "message": self.MESSAGE}]})
        return Reply(400, [("Content-Type", "application/json")], body.encode())


def hang():
    """Blocks this connection's thread for good (the server's threads are daemons)."""
    threading.Event().wait()


def uploads_a_body(exchange):
    """Whether this is a blob upload request with a body (PUT or PATCH)."""
    length = int(exchange.headers.get("content-length") or 0)
    chunked = "chunked" in exchange.headers.get("transfer-encoding", "").lower()
    return (exchange.method in ("PUT", "PATCH") and exchange.kind == "blobs/uploads"
            and bool(length or chunked))


class Stall(Attack):
    name = "stall"

    def before(self, exchange, front):
        hang()


class StallBody(Attack):
    name = "stall-body"
    kinds = ("manifests", "tags")

    def after(self, exchange, reply):
        if exchange.method != "GET" or exchange.kind not in self.kinds:
            return reply
        if reply.status not in (200, 206):
            return reply
        body = reply.read()

        def half_then_nothing():
            yield body[:len(body) // 2]
            hang()
        reply.body = half_then_nothing()
        return reply


class StallBlob(StallBody):
    name = "stall-blob"
    kinds = ("blobs",)


class StallUploadOnce(Attack):
    name = "stall-upload-once"

    def __init__(self):
        self.done = False
        self.lock = threading.Lock()

    def before(self, exchange, front):
        if not uploads_a_body(exchange):
            return None
        with self.lock:
            if self.done:
                return None
            self.done = True
        for _ in front.body:  # read whole, as a registry does before it answers
            pass
        hang()


class EndlessManifest(Attack):
    name = "endless-manifest"

    def before(self, exchange, front):
        if not exchange.by_tag():
            return None
        headers = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")]
        if exchange.method == "HEAD":
            return Reply(200, headers)

        def endless():
            yield b'{"schemaVersion":2,'
            spaces = b" " * CHUNK
            while True:
                yield spaces
        return Reply(200, headers, endless())


class EndlessError(Attack):
    name = "endless-error"

    def before(self, exchange, front):
        if not (exchange.by_tag() and exchange.method == "GET"):
            return None

        def endless():
            yield b'{"errors":[{"code":"DENIED","message":"'
            spaces = b" " * CHUNK
            while True:
                yield spaces
        return Reply(400, [("Content-Type", "application/json")], endless())


class HugeManifest(Attack):
    name = "huge-manifest"
    padding = 50 * 1000 * 1000

    def before(self, exchange, front):
        if not exchange.by_tag():
            return None
        status, headers, body = front.upstream_get(exchange.path, exchange.headers.get("accept"))
        if status != 200:
            return None
        content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
        headers = [("Content-Type", content_type or "application/json"),
                   ("Content-Length", str(len(body) + self.padding))]
        if exchange.method == "HEAD":
            return Reply(200, headers)

        def padded():
            yield body
            spaces = b" " * CHUNK
            left = self.padding
            while left > 0:
                yield spaces[:min(left, CHUNK)]
                left -= min(left, CHUNK)
        return Reply(200, headers, padded())


def tags_page(exchange, tags):
    """A page of `tags` as a registry serves it: JSON, and a Link when more follow."""
    body = json.dumps({"name": exchange.repository, "tags": tags}).encode()
    return [("Content-Type", "application/json")], body


class EndlessTags(Attack):
    name = "endless-tags"

    def before(self, exchange, front):
        if exchange.kind != "tags":
            return None
        last = dict(exchange.query).get("last", "t0")
        tag = f"t{int(last[1:]) + 1}"
        headers, body = tags_page(exchange, [tag])
        link = f'</v2/{exchange.repository}/tags/list?n=1000&last={tag}>; rel="next"'
        return Reply(200, headers + [("Link", link)], body)


class ManyTags(Attack):
    name = "many-tags"
    count = 100_000

    def before(self, exchange, front):
        if exchange.kind != "tags":
            return None
        query = dict(exchange.query)
        n = min(int(query.get("n") or 1000), 1000)
        start = int(query["last"][1:]) + 1 if "last" in query else 0
        tags = [f"t{i}" for i in range(start, min(start + n, self.count))]
        headers, body = tags_page(exchange, tags)
        if tags and start + n < self.count:
            link = f'</v2/{exchange.repository}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
            headers.append(("Link", link))
        return Reply(200, headers, body)


OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class SyntheticIndex(Attack):
    """Serves a made-up index for the tag (HEAD and GET) and the made-up manifests under it by
    digest; `made(front, real)` returns the top index's bytes, registering any others with
    `self.serve(bytes)`. `real` is the descriptor of the registry's own manifest for the tag."""

    def __init__(self):
        self.served = {}
        self.top = None
        self.lock = threading.Lock()

    def serve(self, body):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.served[digest] = body
        return {"mediaType": OCI_INDEX, "digest": digest, "size": len(body)}

    def before(self, exchange, front):
        if exchange.kind != "manifests" or exchange.method not in ("GET", "HEAD"):
            return None
        with self.lock:
            if exchange.by_tag():
                if self.top is None:
                    accept = exchange.headers.get("accept")
                    status, headers, body = front.upstream_get(exchange.path, accept)
                    if status != 200:
                        return None
                    media_type = next((v for k, v in headers if k.lower() == "content-type"),
                                      OCI_INDEX)
                    real = {"mediaType": media_type.split(";")[0].strip(),
                            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                            "size": len(body)}
                    self.top = self.made(real)
                body = self.top
            else:
                body = self.served.get(exchange.reference)
                if body is None:
                    return None
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = [("Content-Type", OCI_INDEX), ("Docker-Content-Digest", digest),
                   ("Content-Length", str(len(body)))]
        return Reply(200, headers, b"" if exchange.method == "HEAD" else body)


def index(manifests, note=None):
    value = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    if note is not None:
        value["annotations"] = {"org.example.note": note}
    return json.dumps(value).encode()


class RepeatedChild(SyntheticIndex):
    name = "repeated-child"

    def made(self, real):
        return index([real] * 5000)


class NestedIndex(SyntheticIndex):
    name = "nested-index"
    fan_out = 40

    def made(self, real):
        middle = []
        for i in range(self.fan_out):
            inner = [self.serve(index([real] * self.fan_out, f"{i}-{j}"))
                     for j in range(self.fan_out)]
            middle.append(self.serve(index(inner, f"{i}")))
        return index(middle)


class WideIndex(SyntheticIndex):
    name = "wide-index"

    def made(self, real):
        children = [{"mediaType": real["mediaType"],
                     "digest": "sha256:" + hashlib.sha256(b"%d" % i).hexdigest(),
                     "size": real["size"]} for i in range(1001)]
        return index(children)


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def referrers_reply(manifests, filtered):
    headers = [("Content-Type", OCI_INDEX)]
    if filtered:
        headers.append(("OCI-Filters-Applied", "artifactType"))
    return Reply(200, headers, index(manifests))


class ReferrersApi(Attack):
    name = "referrers-api"

    def __init__(self):
        self.known = {}  # (repository, subject digest) -> [descriptor]
        self.lock = threading.Lock()

    def before(self, exchange, front):
        if exchange.kind == "referrers" and exchange.method == "GET":
            subject = exchange.reference
            wanted = dict(exchange.query).get("artifactType")
            with self.lock:
                listed = list(self.known.get((exchange.repository, subject), []))
            if wanted is not None:
                listed = [d for d in listed if d.get("artifactType") == wanted]
            return referrers_reply(listed, wanted is not None)
        if exchange.kind == "manifests" and exchange.method == "PUT":
            body = b"".join(front.body)
            front.body = [body]
            exchange.pushed = body
        return None

    def after(self, exchange, reply):
        if exchange.kind == "manifests" and exchange.method == "DELETE" and reply.status == 202:
            with self.lock:
                for descriptors in self.known.values():
                    descriptors[:] = [d for d in descriptors if d["digest"] != exchange.reference]
            return reply
        body = getattr(exchange, "pushed", None)
        if body is None or reply.status != 201:
            return reply
        try:
            manifest = json.loads(body)
        except ValueError:
            return reply
        subject = (manifest.get("subject") or {}).get("digest")
        if not subject:
            return reply
        descriptor = {"mediaType": manifest.get("mediaType") or exchange.headers.get(
                          "content-type", OCI_MANIFEST),
                      "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                      "size": len(body)}
        artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get(
            "mediaType")
        if artifact_type and "manifests" not in manifest:
            descriptor["artifactType"] = artifact_type
        elif manifest.get("artifactType"):
            descriptor["artifactType"] = manifest["artifactType"]
        if manifest.get("annotations"):
            descriptor["annotations"] = manifest["annotations"]
        with self.lock:
            listed = self.known.setdefault((exchange.repository, subject), [])
            if all(d["digest"] != descriptor["digest"] for d in listed):
                listed.append(descriptor)
        reply.set_header("OCI-Subject", subject)
        return reply


class ReferrersTraversal(Attack):
    name = "referrers-traversal"

    def before(self, exchange, front):
        if exchange.kind != "referrers":
            return None
        return referrers_reply([{"mediaType": OCI_MANIFEST, "digest": "sha256:../../../../x",
                                 "size": 2, "artifactType": "application/spdx+json"}], False)


class ReferrersMany(Attack):
    name = "referrers-many"

    def before(self, exchange, front):
        if exchange.kind != "referrers":
            return None
        listed = [{"mediaType": OCI_MANIFEST,
                   "digest": "sha256:" + hashlib.sha256(b"%d" % i).hexdigest(), "size": 2,
                   "artifactType": "application/spdx+json"} for i in range(1001)]
        return referrers_reply(listed, False)


ATTACKS = {attack.name: attack for attack in
           (ManifestBodyMismatch, DigestTraversal, NoMount, UnauthorizedUploadOnce, Stall,
            StallBody, StallBlob, StallUploadOnce, EndlessManifest, EndlessError, HugeManifest,
            EndlessTags, ManyTags, RepeatedChild, NestedIndex, WideIndex, ErrorEscapes,
            ReferrersApi, ReferrersTraversal, ReferrersMany)}


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a registry client expects
    timeout = 60  # an idle or stuck client connection is dropped after this

    def handle(self):
        try:
            # A TLS ClientHello would make the request-line read hang until the client's TLS
            # timeout: refuse anything that does not start like an HTTP method, as Go does.
            first = self.connection.recv(1, socket.MSG_PEEK)
            if first and not first.isupper():
                self.server.log("- - 400")
                self.connection.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client went away: nothing to answer

    def do_request(self):
        exchange = Exchange(self.command, self.path, self.headers)
        attacks = self.server.attacks_for(exchange.repository)
        body = self.body = self.request_body()
        for attack in attacks:
            reply = attack.before(exchange, self)
            if reply is not None:
                for _ in self.body:  # drained, so the connection can carry the next request
                    pass
                self.send(exchange, reply)
                return
        body = self.body  # an attack may have read it (and put it back as a list)
        upstream = self.server.connect()
        try:
            response = self.forward(upstream, exchange, body)
        except (OSError, http.client.HTTPException) as e:
            upstream.close()
            self.close_connection = True  # the request body may be half read
            self.send(exchange, Reply(502, [("Content-Type", "text/plain")],
                                      f"upstream: {e}\n".encode()))
            return
        try:
            reply = self.relayed(response)
            for attack in attacks:
                reply = attack.after(exchange, reply)
            self.send(exchange, reply)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    def forward(self, upstream, exchange, body):
        upstream.putrequest(self.command, exchange.path, skip_host=True, skip_accept_encoding=True)
        for key, value in self.headers.items():  # items() keeps repeated headers (Accept)
            if key.lower() not in HOP_BY_HOP and key.lower() != "x-forwarded-proto":
                upstream.putheader(key, value)
        if "host" not in self.headers:
            upstream.putheader("Host", self.server.address)
        upstream.putheader("X-Forwarded-Proto", "http")
        chunked = "content-length" not in self.headers and self.has_chunked_body()
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        upstream.endheaders()
        for data in body:
            upstream.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            upstream.send(b"0\r\n\r\n")
        return upstream.getresponse()

    def relayed(self, response):
        """The registry's answer as a Reply whose body streams from it."""
        headers = []
        for key, value in response.msg.items():
            if key.lower() in HOP_BY_HOP:
                continue
            if key.lower() == "location":
                value = self.own_location(value)
            headers.append((key, value))

        def chunks():
            try:
                while data := response.read(CHUNK):
                    yield data
            except http.client.HTTPException:
                self.close_connection = True  # the registry broke off: so does the answer
        no_body = self.command == "HEAD" or response.status in (204, 304)
        return Reply(response.status, headers, b"" if no_body else chunks(), response.reason)

    def own_location(self, value):
        """An absolute `Location` at the registry, pointed at this front instead."""
        for scheme in ("http", "https"):
            prefix = f"{scheme}://{self.server.upstream}/"
            if value.startswith(prefix):
                own = self.headers.get("host") or self.server.address
                return f"http://{own}/{value[len(prefix):]}"
        return value

    def send(self, exchange, reply):
        self.server.log(f"{exchange.method} {exchange.original} {reply.status}")
        self.send_response_only(reply.status, reply.reason)
        streamed = not isinstance(reply.body, bytes)
        length = reply.header("Content-Length")
        if length is None and not streamed:
            reply.set_header("Content-Length", str(len(reply.body)))
        chunked = streamed and length is None and self.command != "HEAD"
        for key, value in reply.headers:
            self.send_header(key, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        if not streamed:
            self.wfile.write(reply.body)
            return
        for data in reply.body:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def upstream_get(self, path, accept):
        """The registry's answer to a GET of `path`: status, headers, body. Credentials the
        client sent go along."""
        upstream = self.server.connect()
        try:
            headers = {"Host": self.headers.get("host") or self.server.address,
                       "X-Forwarded-Proto": "http"}
            if accept:
                headers["Accept"] = accept
            if self.headers.get("authorization"):
                headers["Authorization"] = self.headers["authorization"]
            upstream.request("GET", path, headers=headers)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def challenge(self):
        """The registry's `WWW-Authenticate` for a request without credentials."""
        with self.server.lock:
            if self.server.challenge is None:
                upstream = self.server.connect()
                try:
                    upstream.request("GET", "/v2/", headers={"Host": self.server.address})
                    response = upstream.getresponse()
                    response.read()
                    self.server.challenge = response.getheader("WWW-Authenticate", "")
                finally:
                    upstream.close()
            return self.server.challenge

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

    def log_request(self, code="-", size="-"):
        # Only BaseHTTPRequestHandler's own error answers (a malformed request) come here.
        self.server.log(f"{self.command or '-'} {getattr(self, 'path', None) or '-'} {code}")

    def log_message(self, format, *args):
        pass  # no access log on stderr: --log has it


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def attacks_for(self, repository):
        if repository is None:
            return []
        return self.attacks.get(repository, []) + self.attacks.get("*", [])

    def connect(self):
        if self.tls is None:
            return http.client.HTTPConnection(self.upstream, timeout=60)
        return http.client.HTTPSConnection(self.upstream, timeout=60, context=self.tls)

    def log(self, line):
        if self.log_file:
            with self.log_lock:
                self.log_file.write(line + "\n")


def parse_attack(text):
    repository, _, names = text.partition("=")
    if not repository or not names:
        raise argparse.ArgumentTypeError(f"expected REPO=ATTACK[,ATTACK...], got {text!r}")
    attacks = []
    for name in names.split(","):
        if name not in ATTACKS:
            known = ", ".join(sorted(ATTACKS))
            raise argparse.ArgumentTypeError(f"no attack {name!r} (known: {known})")
        attacks.append(ATTACKS[name]())
    return repository, attacks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free one)")
    parser.add_argument("--upstream", required=True, help="the registry, HOST:PORT")
    parser.add_argument("--upstream-ca", help="speak HTTPS to the registry, trusting this CA")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--log", help="append METHOD PATH STATUS per request here")
    parser.add_argument("--attack", type=parse_attack, action="append", default=[],
                        metavar="REPO=ATTACK[,ATTACK...]",
                        help=f"attack REPO (or * for all): {', '.join(sorted(ATTACKS))}")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = Server((host, int(port)), Front)
    server.upstream = args.upstream
    server.address = f"{host}:{server.server_address[1]}"
    server.tls = ssl.create_default_context(cafile=args.upstream_ca) if args.upstream_ca else None
    server.attacks = {}
    for repository, attacks in args.attack:
        server.attacks.setdefault(repository, []).extend(attacks)
    server.challenge = None
    server.lock = threading.Lock()
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
