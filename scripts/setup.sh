#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need.
# Idempotent and quick when everything is present: it asks dpkg first and only
# calls apt-get for what is missing.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --bench  also the benchmark peers (Lua 5.4, Go, Erlang, psycopg2)
set -euo pipefail

pkgs=(
  cmake ninja-build g++ ccache pkg-config
  libboost-context-dev libasio-dev libfmt-dev libedit-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libre2-dev libcurl4-openssl-dev libsqlite3-dev zlib1g-dev libmimalloc-dev
  libpq-dev postgresql
  nats-server libnats-dev libssl-dev
  python3
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(lua5.4 liblua5.4-dev golang-go erlang-base wrk python3-psycopg2)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
