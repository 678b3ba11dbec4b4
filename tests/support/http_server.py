#!/usr/bin/env python3
"""A small HTTP/1.1 test server for the `http` module's tests and examples.

Listens on 127.0.0.1, port given as the first argument or 0 (an ephemeral port), and prints the
port on the first line of stdout, so a test can start it with proc.spawn_process and read it:

    srv = proc.spawn_process(["python3", "tests/support/http_server.py"])
    base = "http://127.0.0.1:" + srv.read_line()

One thread per connection, keep-alive (so clients can reuse connections). It exits on its own
when its parent process goes away or after --lifetime seconds (default 120), so a crashed test
never leaves it behind. With --tls it speaks HTTPS with the self-signed certificate
test_tls_cert.pem (for 127.0.0.1 and localhost; clients verify it with that file as their CA).
Endpoints:

    /text                 "hello from weft-test\\n" (text/plain)
    /json                 {"name": "weft", "items": [1, 2, 3], "ok": true}
    /echo                 JSON: method, path, query (dict of lists), headers (lower-case), body
    /slow?ms=N            waits N ms, then "slept N"
    /peak                 JSON {"peak": P}: the most /slow requests ever in progress at once
                          (how many requests a concurrent client really had in flight)
    /redirect?to=URL[&code=302]    redirects to URL
    /chain?n=N            N redirects (302) before landing on /text
    /loop                 redirects to itself forever
    /status/CODE          responds with CODE and body "status CODE"
    /big?n=BYTES          BYTES bytes of 'x' (default 5,000,000)
    /conn                 JSON: {"port": client port} (the same port means a reused connection)
    /count?path=P         how many requests for path P were served so far
    /latin1               text/plain; charset=iso-8859-1 body "caf\\xe9"
    /api/item/N[?ms=D]    JSON {"id": N, "name": "item N"}, after D ms (default 0); the first
                          request for every third N fails with 503 (for retry examples)
Standard library only.
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNTS = {}
FLAKY = {}
SLOW = {"now": 0, "peak": 0}  # /slow requests in progress, and the most at once
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-test"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, code, body, ctype="text/plain; charset=utf-8", extra=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        if code in (204, 304) or code < 200:
            body = b""  # these statuses have no body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, code, value):
        self.send(code, json.dumps(value), "application/json")

    def handle_any(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1

        def arg(name, default=None):
            return query.get(name, [default])[0]

        if path == "/text":
            self.send(200, "hello from weft-test\n")
        elif path == "/json":
            self.send_json(200, {"name": "weft", "items": [1, 2, 3], "ok": True})
        elif path == "/echo":
            self.send_json(200, {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
            })
        elif path == "/slow":
            ms = int(arg("ms", "1000"))
            with LOCK:
                SLOW["now"] += 1
                SLOW["peak"] = max(SLOW["peak"], SLOW["now"])
            try:
                time.sleep(ms / 1000)
            finally:
                with LOCK:
                    SLOW["now"] -= 1
            self.send(200, f"slept {ms}")
        elif path == "/peak":
            with LOCK:
                peak = SLOW["peak"]
            self.send_json(200, {"peak": peak})
        elif path == "/redirect":
            code = int(arg("code", "302"))
            self.send(code, "", extra=[("Location", arg("to", "/text"))])
        elif path == "/chain":
            n = int(arg("n", "1"))
            to = f"/chain?n={n - 1}" if n > 1 else "/text"
            self.send(302, "", extra=[("Location", to)])
        elif path == "/loop":
            self.send(302, "", extra=[("Location", "/loop")])
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.send(code, f"status {code}")
        elif path == "/big":
            n = int(arg("n", "5000000"))
            self.send(200, b"x" * n, "application/octet-stream")
        elif path == "/conn":
            self.send_json(200, {"port": self.client_address[1]})
        elif path == "/count":
            with LOCK:
                n = COUNTS.get(arg("path", "/"), 0)
            self.send_json(200, {"count": n})
        elif path == "/latin1":
            self.send(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif path.startswith("/api/item/"):
            n = path.rsplit("/", 1)[1]
            time.sleep(int(arg("ms", "0")) / 1000)
            with LOCK:
                FLAKY[n] = FLAKY.get(n, 0) + 1
                fail = FLAKY[n] % 3 == 1 and int(n) % 3 == 0
            if fail:
                self.send_json(503, {"error": "try again"})
            else:
                self.send_json(200, {"id": int(n), "name": f"item {n}"})
        else:
            self.send(404, "not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many clients connect at once in the concurrency tests


def watchdog(lifetime):
    parent = os.getppid()
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", nargs="?", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--tls", action="store_true", help="HTTPS with test_tls_cert.pem")
    opts = ap.parse_args()
    srv = Server(("127.0.0.1", opts.port), Handler)
    if opts.tls:
        here = os.path.dirname(os.path.abspath(__file__))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(here, "test_tls_cert.pem"),
                            os.path.join(here, "test_tls_key.pem"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=watchdog, args=(opts.lifetime,), daemon=True).start()
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
