#!/usr/bin/env python3
"""The slow server of the slow-server HTTP benchmark (bench/http/slow.py): Python's
http.server.ThreadingHTTPServer (a thread per connection) whose handler sleeps DELAY ms before
answering every GET with a 64-byte body, so that a client's requests can only finish quickly if
they are all in flight at once and each requester is woken as soon as its answer is in.

    python3 bench/http/slow_server.py [--delay-ms 300] [--backlog 1024]

Prints its port (127.0.0.1, ephemeral) on the first line. --backlog is the listen queue:
http.server's own default is 5, which drops the connection attempts of a client that opens
many at the same moment (the kernel retries a dropped SYN after 1 s, then 3 s, 7 s, ...); the
benchmark runs with a large queue unless told otherwise. Exits when its parent goes away.
Standard library only.
"""
import argparse
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"x" * 64


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay-ms", type=int, default=300)
    ap.add_argument("--backlog", type=int, default=1024)
    opts = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def do_GET(self):
            time.sleep(opts.delay_ms / 1000)
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = opts.backlog

    srv = Server(("127.0.0.1", 0), Handler)
    parent = os.getppid()

    def watchdog():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
