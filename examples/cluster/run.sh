#!/usr/bin/env bash
# examples/cluster/run.sh — the cluster example on one machine: a nats-server with JetStream on
# a free loopback port, two local `weft worker`s, then the program; everything is stopped at
# the end. Usage: examples/cluster/run.sh [path/to/weft]   (default: build/weft)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
weft=${1:-$here/../../build/weft}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=nats://127.0.0.1:$port
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

nats-server -js -sd "$tmp/js" -a 127.0.0.1 -p "$port" >"$tmp/nats.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q "Server is ready" "$tmp/nats.log" && break; sleep 0.1; done
"$weft" worker --cluster "$url" --name w1 2>"$tmp/w1.log" & pids+=($!)
"$weft" worker --cluster "$url" --name w2 2>"$tmp/w2.log" & pids+=($!)
sleep 0.5
"$weft" cluster status --cluster "$url"
"$weft" --stats run --cluster "$url" "$here/scores.weft"
