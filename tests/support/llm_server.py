#!/usr/bin/env python3
"""A local OpenAI-compatible chat-completions server for llm()'s tests and examples.

No real model is reachable from the test machines, so this stands in: deterministic replies,
streaming, rate limits, errors and slow answers, chosen by markers in the last user message.
Listens on 127.0.0.1 (port: first argument, default 0 = any) and prints the port on the first
line of stdout; exits when its parent goes away or after --lifetime seconds (default 120).

POST /v1/chat/completions with {"model", "messages", "stream"?, "response_format"?, ...}:
  reply text          "echo: <last user message>" (also names the model and system prompt when
                      the message contains [meta]: "model=M system=S")
  [json]              the reply is a JSON object {"answer": 42, "words": N}
  [badjson]           the reply claims to be JSON but is not: "this is {not json"
  [429:N]             the first N requests with this message get 429 with Retry-After: 0.2
  [500:N]             the first N requests with this message get 500
  [400]               400 with an OpenAI-style error body
  [slow:S]            waits S seconds before answering
  [key]               the reply is the Authorization header it got ("none" when absent)
  "stream": true      server-sent events, one chunk per word of the reply, then [DONE]
  [stream-broken]     (with stream) the stream stops after two chunks without [DONE]
  [drip:S]            (with stream) waits S seconds between chunks
Standard library only.
"""
import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

attempts = {}
lock = threading.Lock()


def count(key):
    with lock:
        attempts[key] = attempts.get(key, 0) + 1
        return attempts[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if not self.path.endswith("/chat/completions"):
            return self.send(404, json.dumps({"error": {"message": "no such endpoint " + self.path}}))
        length = int(self.headers.get("Content-Length", 0))
        try:
            req = json.loads(self.rfile.read(length))
        except ValueError:
            return self.send(400, json.dumps({"error": {"message": "request is not JSON"}}))
        msgs = req.get("messages", [])
        last = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "")
        system = next((m["content"] for m in msgs if m.get("role") == "system"), None)
        m = re.search(r"\[slow:([\d.]+)\]", last)
        if m:
            time.sleep(float(m.group(1)))
        for kind, status in (("429", 429), ("500", 500)):
            m = re.search(r"\[%s:(\d+)\]" % kind, last)
            if m and count(kind + last) <= int(m.group(1)):
                headers = {"Retry-After": "0.2"} if status == 429 else {}
                return self.send(status, json.dumps({"error": {"message": "try again (%d)" % status}}),
                                 headers=headers)
        if "[400]" in last:
            return self.send(400, json.dumps({"error": {"message": "bad request: you asked for it"}}))
        if "[json]" in last:
            reply = json.dumps({"answer": 42, "words": len(last.split())})
        elif "[badjson]" in last:
            reply = "this is {not json"
        elif "[key]" in last:
            reply = self.headers.get("Authorization", "none")
        elif "[meta]" in last:
            reply = "model=%s system=%s format=%s" % (
                req.get("model"), system, (req.get("response_format") or {}).get("type"))
        else:
            reply = "echo: " + last
        if req.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            words = reply.split(" ")
            drip = re.search(r"\[drip:([\d.]+)\]", last)
            for i, w in enumerate(words):
                piece = w if i == 0 else " " + w
                ev = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(("data: " + json.dumps(ev) + "\n\n").encode())
                self.wfile.flush()
                time.sleep(float(drip.group(1)) if drip else 0.01)
                if "[stream-broken]" in last and i == 1:
                    self.close_connection = True
                    return
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        body = {"id": "chatcmpl-test", "object": "chat.completion", "model": req.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}]}
        self.send(200, json.dumps(body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", nargs="?", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 128
    print(srv.server_address[1], flush=True)
    parent = os.getppid()

    def watchdog():
        end = time.time() + args.lifetime
        while time.time() < end and os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
