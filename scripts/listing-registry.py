#!/usr/bin/env python3
"""Stand-ins for the namespace listings no local registry offers, in front of a real
docker-registry (plain HTTP) that holds the repositories and serves their images.

    listing-registry.py --upstream HOST:PORT --mode google|hub|bare [--listen 127.0.0.1:0]
                        [--port-file PATH] [--log PATH] [--page-size N] [--login USER:PASS]

--mode google: a Google registry (gcr.io, Artifact Registry, registry.k8s.io's backends).
  `GET /v2/NAME/tags/list` (and `GET /v2/tags/list` for the whole registry) answers Google's
  listing: `{"child": [...], "manifest": {}, "name": NAME, "tags": [...]}`, the children being
  the names one level below NAME among the registry's repositories, the tags NAME's own (none
  when NAME is only a namespace); a NAME that is neither is 404 NAME_UNKNOWN. `GET /v2/_catalog`
  is 404, as these registries give ferry none. Every other request (manifests, blobs) is
  forwarded to the registry, and its answer relayed.
--mode hub: Docker Hub's Hub API (not a registry). `GET /v2/namespaces/NS/repositories
  ?page_size=N&page=P` lists the repositories one level below NS in the registry, as
  `{"count", "next", "previous", "results": [{"name", "namespace", ...}]}`, at most
  --page-size (100) to a page, `next` naming the next page on this host; a namespace with
  none is 404. With --login, `POST /v2/users/login` with `{"username", "password"}` answers
  `{"token": ...}` (401 for any other pair), and the listing wants `Authorization: Bearer
  TOKEN` (401 without).
--mode bare: a registry with no way to list a namespace: `GET /v2/_catalog` is 404 (and, as
  any registry:2, a namespace's tags/list is 404 too); everything else is forwarded.

--listen with port 0 picks a free port; --port-file receives the port once it listens; --log
gets one line per request, `METHOD PATH STATUS`. Stdlib only.
"""
import argparse
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import sys
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "expect"}
CHUNK = 64 * 1024
TAGS_PATH = re.compile(r"^/v2/(?:(?P<name>.+)/)?tags/list$")
HUB_PATH = re.compile(r"^/v2/namespaces/(?P<ns>[^/]+)/repositories/?$")
NOT_FOUND = b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def handle(self):
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
            if first and not first.isupper():  # a TLS probe: refused, as Go does
                self.server.log("- - 400")
                self.connection.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            super().handle()
        except (ConnectionError, TimeoutError):
            pass

    def do_request(self):
        body = self.read_body()
        split = urllib.parse.urlsplit(self.path)
        mode = self.server.mode
        if mode == "hub":
            self.hub(split, body)
            return
        if split.path == "/v2/_catalog" and mode in ("google", "bare"):
            self.reply(404, NOT_FOUND)
            return
        tags = TAGS_PATH.match(split.path)
        if mode == "google" and tags and self.command == "GET":
            self.google(tags["name"] or "")
            return
        self.forward(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    # -- Google ----------------------------------------------------------------------------

    def google(self, name):
        repositories = upstream_catalog(self.server)
        prefix = name + "/" if name else ""
        children = sorted({r[len(prefix):].split("/")[0] for r in repositories
                           if r.startswith(prefix) and len(r) > len(prefix)})
        tags = []
        if name in repositories:
            status, _, data = upstream_get(self.server, f"/v2/{name}/tags/list")
            if status == 200:
                tags = json.loads(data).get("tags") or []
        if not children and name not in repositories:
            self.reply(404, NOT_FOUND)
            return
        listing = {"child": children, "manifest": {}, "name": name, "tags": tags}
        self.reply(200, json.dumps(listing).encode())

    # -- Docker Hub's Hub API --------------------------------------------------------------

    def hub(self, split, body):
        server = self.server
        if split.path == "/v2/users/login" and self.command == "POST":
            try:
                asked = json.loads(b"".join(body))
            except ValueError:
                asked = {}
            user, _, password = (server.login or "").partition(":")
            if server.login and asked.get("username") == user and asked.get("password") == password:
                self.reply(200, json.dumps({"token": server.token}).encode())
            else:
                self.reply(401, b'{"detail":"Incorrect authentication credentials"}')
            return
        match = HUB_PATH.match(split.path)
        if not match or self.command != "GET":
            self.reply(404, b'{"message":"not found"}')
            return
        if server.login and self.headers.get("authorization") != f"Bearer {server.token}":
            self.reply(401, b'{"detail":"authentication required"}')
            return
        ns = match["ns"]
        query = dict(urllib.parse.parse_qsl(split.query))
        size = min(int(query.get("page_size") or 10), server.page_size)
        page = int(query.get("page") or 1)
        names = sorted(r[len(ns) + 1:] for r in upstream_catalog(server)
                       if r.startswith(ns + "/") and "/" not in r[len(ns) + 1:])
        if not names:
            self.reply(404, b'{"message":"object not found"}')
            return
        start = (page - 1) * size
        results = [{"name": n, "namespace": ns, "repository_type": "image",
                    "description": "", "is_private": False}
                   for n in names[start:start + size]]
        host = self.headers.get("host") or server.address
        base = f"http://{host}/v2/namespaces/{ns}/repositories?page_size={size}"
        answer = {"count": len(names),
                  "next": f"{base}&page={page + 1}" if start + size < len(names) else None,
                  "previous": f"{base}&page={page - 1}" if page > 1 else None,
                  "results": results}
        self.reply(200, json.dumps(answer).encode())

    # -- plumbing ----------------------------------------------------------------------------

    def forward(self, body):
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    upstream.putheader(key, value)
            upstream.endheaders()
            for data in body:
                upstream.send(data)
            response = upstream.getresponse()
            data = b"" if self.command == "HEAD" else response.read()
            headers = [(k, v) for k, v in response.msg.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            length = response.getheader("content-length") if self.command == "HEAD" else None
            self.reply(response.status, data, headers=headers, length=length)
        except (OSError, http.client.HTTPException) as e:
            self.close_connection = True
            self.reply(502, f"upstream: {e}\n".encode())
        finally:
            upstream.close()

    def read_body(self):
        length = int(self.headers.get("content-length") or 0)
        chunks = []
        while length > 0:
            data = self.rfile.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            chunks.append(data)
        return chunks

    def reply(self, status, data, headers=None, length=None):
        self.server.log(f"{self.command} {self.path} {status}")
        self.send_response_only(status)
        headers = headers if headers is not None else [("Content-Type", "application/json")]
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_request(self, code="-", size="-"):
        self.server.log(f"{self.command or '-'} {getattr(self, 'path', None) or '-'} {code}")

    def log_message(self, format, *args):
        pass


def upstream_get(server, path):
    connection = http.client.HTTPConnection(server.upstream, timeout=60)
    try:
        connection.request("GET", path, headers={"Host": server.upstream})
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


def upstream_catalog(server):
    """Every repository of the registry (its catalog, page by page)."""
    repositories, path = [], "/v2/_catalog"
    while path:
        status, headers, data = upstream_get(server, path)
        if status != 200:
            raise OSError(f"the registry's catalog: HTTP {status}")
        repositories += json.loads(data).get("repositories") or []
        link = headers.get("link") or ""
        path = link[link.find("<") + 1:link.find(">")] if 'rel="next"' in link else None
    return set(repositories)


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
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True, help="the registry, HOST:PORT")
    parser.add_argument("--mode", required=True, choices=("google", "hub", "bare"))
    parser.add_argument("--port-file")
    parser.add_argument("--log")
    parser.add_argument("--page-size", type=int, default=100, help="hub: repositories a page")
    parser.add_argument("--login", metavar="USER:PASS", help="hub: the one login it takes")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = Server((host, int(port)), Handler)
    server.upstream = args.upstream
    server.mode = args.mode
    server.page_size = args.page_size
    server.login = args.login
    server.token = "hub-" + secrets.token_hex(8)
    server.address = f"{host}:{server.server_address[1]}"
    server.log_lock = threading.Lock()
    server.log_file = open(args.log, "a", buffering=1) if args.log else None
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{server.server_address[1]}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
