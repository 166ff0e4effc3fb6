#!/usr/bin/env bash
# Shared by deploy/local/demo.sh, tests/run.sh and tests/perf/run.sh (source it).
# Brings up what is missing on a Debian machine: RabbitMQ, PostgreSQL, a Node.js
# new enough for the FHIR sandbox, and the sandbox's npm packages; the MESH
# sandbox in a Python virtual environment. Installs Debian packages only when a
# service is absent (needs root or sudo).

IPS_ROOT="${IPS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SANDBOX_DIR="$IPS_ROOT/deploy/local/fhir-sandbox"
NODE_PREFIX="$IPS_ROOT/deploy/local/.node"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Builds with cargo (arguments as for `cargo build`) and prints the path of each
# executable built, one a line: wherever cargo put it (CARGO_TARGET_DIR,
# build.target-dir in a cargo config, --target), not a fixed target/ path.
cargo_build_bins() {
  local out
  out="$(cargo build --message-format=json-render-diagnostics "$@")" || return 1
  printf '%s\n' "$out" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
}

# The path of executable NAME among cargo_build_bins' output (stdin); fails if absent.
pick_bin() {
  local bin
  bin="$(grep -E "/$1(\.exe)?\$" | head -1)"
  [ -n "$bin" ] && [ -x "$bin" ] || { echo "error: cargo built no executable named $1" >&2; return 1; }
  printf '%s\n' "$bin"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
  for _ in $(seq 1 $(( $2 * 4 ))); do port_open "$1" && return 0; sleep 0.25; done
  echo "error: $3 did not come up on 127.0.0.1:$1 within $2 s" >&2; return 1
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 90 RabbitMQ
  as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
}

ensure_postgres() {
  if port_open 5432; then return 0; fi
  local fresh=0
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fresh=1; fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -1)
  if [ "$fresh" = 1 ]; then
    # A new cluster on a test machine: trust local TCP connections, as the test environment expects.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || as_root pg_ctlcluster "$version" main start
  wait_port 5432 60 PostgreSQL
}

# The sandbox needs Node >= 20.19; Debian's may be older, so a newer one comes from npm.
node_bin() {
  if [ -x "$NODE_PREFIX/node_modules/node/bin/node" ]; then echo "$NODE_PREFIX/node_modules/node/bin/node"; return; fi
  if command -v node >/dev/null; then
    local v; v=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);console.log(a>22||(a==22&&b>=12)||(a==20&&b>=19)?"ok":"old")')
    if [ "$v" = ok ]; then command -v node; return; fi
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing Node 22 from npm into deploy/local/.node"
  npm install --silent --prefix "$NODE_PREFIX" node@22 >/dev/null
  echo "$NODE_PREFIX/node_modules/node/bin/node"
}

ensure_sandbox_deps() {
  NODE="$(node_bin)"; export NODE
  if [ ! -d "$SANDBOX_DIR/node_modules/@medplum/fhir-router" ]; then
    say "installing the FHIR sandbox's npm packages (npm ci)"
    (cd "$SANDBOX_DIR" && PATH="$(dirname "$NODE"):$PATH" npm ci --silent --no-audit --no-fund)
  fi
}

# start_node_server VAR PIDVAR LOGFILE WHAT SCRIPT [ARGS...]: runs a Node server that
# prints its URL as the first line of stdout; sets $VAR to that URL and $PIDVAR to its pid.
start_node_server() {
  local var="$1" pidvar="$2" log="$3" what="$4"; shift 4
  local out; out=$(mktemp)
  "$NODE" "$@" >"$out" 2>"${log:-/dev/null}" &
  local pid=$!
  printf -v "$pidvar" '%s' "$pid"
  for _ in $(seq 1 120); do
    if [ -s "$out" ]; then printf -v "$var" '%s' "$(head -1 "$out")"; rm -f "$out"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "error: $what exited during start-up" >&2; return 1; }
    sleep 0.25
  done
  echo "error: $what did not print its URL within 30 s" >&2; return 1
}

# start_sandbox VAR LOGFILE: starts the sandbox on a free port, sets $VAR to its base URL and SANDBOX_PID.
start_sandbox() {
  ensure_sandbox_deps
  start_node_server "$1" SANDBOX_PID "${2:-}" "the FHIR sandbox" "$SANDBOX_DIR/server.mjs" --port 0
}

# --- Staff pages: OIDC provider, NHS.UK frontend / axe-core assets, headless Chromium ---

OIDC_DIR="$IPS_ROOT/deploy/local/oidc-provider"
WEB_ASSETS_DIR="$IPS_ROOT/deploy/local/web-assets"

# npm ci of the local OIDC provider (panva's oidc-provider; it warns on Node 20 and runs).
ensure_oidc_deps() {
  NODE="$(node_bin)"; export NODE
  if [ ! -f "$OIDC_DIR/node_modules/oidc-provider/package.json" ]; then
    say "installing the OIDC provider's npm packages (npm ci)"
    (cd "$OIDC_DIR" && PATH="$(dirname "$NODE"):$PATH" npm ci --silent --no-audit --no-fund)
  fi
}

# start_oidc_provider VAR LOGFILE [users.json]: starts the provider on a free port, sets $VAR
# to its issuer URL (http://127.0.0.1:PORT) and OIDC_PID. Client ips-bridge /
# ips-bridge-local-secret; users from users.json (default: users.example.json beside it).
start_oidc_provider() {
  ensure_oidc_deps
  start_node_server "$1" OIDC_PID "${2:-}" "the OIDC provider" \
    "$OIDC_DIR/server.mjs" --port 0 --users "${3:-$OIDC_DIR/users.example.json}"
}

# npm ci of the static assets: nhsuk-frontend (served by the daemon) and axe-core (tests).
ensure_web_assets() {
  if [ ! -f "$WEB_ASSETS_DIR/node_modules/nhsuk-frontend/package.json" ] ||
     [ ! -f "$WEB_ASSETS_DIR/node_modules/axe-core/axe.min.js" ]; then
    local node; node="$(node_bin)"
    say "installing the web assets' npm packages (npm ci)"
    (cd "$WEB_ASSETS_DIR" && PATH="$(dirname "$node"):$PATH" npm ci --silent --no-audit --no-fund)
  fi
}

# Debian's headless Chromium and its WebDriver, for the browser tests.
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver
  fi
}

# --- MESH: NHS England's mesh-sandbox (PyPI), the GP practice's side of the MESH sink ---

MESH_SANDBOX_DIR="$IPS_ROOT/deploy/local/mesh-sandbox"
MESH_VENV="$IPS_ROOT/deploy/local/.mesh-venv"
# The sandbox's own default SHARED_KEY is "Banana"; ours is set explicitly so the
# bridge's local config and the tests' harness (tests/common/mesh.rs) name it too.
MESH_SHARED_KEY_DEFAULT="TestKey"

# Creates deploy/local/.mesh-venv (python3 -m venv; Debian's python3-venv if venv is
# missing) and pip installs mesh-sandbox with every dependency pinned
# (deploy/local/mesh-sandbox/requirements.txt). A stamp holding the requirements'
# hash skips the work when nothing changed. Exports MESH_SANDBOX_PYTHON.
ensure_mesh_sandbox() {
  local req="$MESH_SANDBOX_DIR/requirements.txt" stamp="$MESH_VENV/.requirements.sha256" want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ ! -x "$MESH_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    # mesh-sandbox 1.0.137 declares Python >= 3.11, < 3.14; say so rather than let pip
    # report "no matching distribution".
    if ! python3 -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))'; then
      echo "error: the MESH sandbox needs Python 3.11 to 3.13; python3 is $(python3 -V 2>&1)" >&2
      return 1
    fi
    say "installing the MESH sandbox (pip) into deploy/local/.mesh-venv"
    rm -rf "$MESH_VENV"
    if ! python3 -m venv "$MESH_VENV" >/dev/null 2>&1; then
      # Debian ships venv's ensurepip separately.
      rm -rf "$MESH_VENV"
      apt_install python3-venv
      python3 -m venv "$MESH_VENV" || return 1
    fi
    "$MESH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2 || return 1
    printf '%s\n' "$want" >"$stamp"
  fi
  MESH_SANDBOX_PYTHON="$MESH_VENV/bin/python"; export MESH_SANDBOX_PYTHON
}

# start_mesh_sandbox PORT LOGFILE [SHARED_KEY]: starts the MESH sandbox on 127.0.0.1:PORT
# in the background and prints its pid (also left in MESH_SANDBOX_PID when not called in
# $(...)). In-memory store (the default "canned" store is read-only: sends answer 202 and
# never arrive), AUTH_MODE=full (NHSMESH HMAC checked with SHARED_KEY, default TestKey;
# no timestamp, nonce or client-certificate checks). Mailboxes X26ABC1, X26ABC2, X26ABC3,
# password "password". LOGFILE gets everything it says, uvicorn's access log included
# (one line a request: `INFO:     127.0.0.1:PORT - "POST /messageexchange/X26ABC1/outbox HTTP/1.1" 202 Accepted`).
start_mesh_sandbox() {
  local port="${1:-}" log="${2:-/dev/null}" key="${3:-$MESH_SHARED_KEY_DEFAULT}"
  [ -n "$port" ] || { echo "usage: start_mesh_sandbox PORT LOGFILE [SHARED_KEY]" >&2; return 2; }
  ensure_mesh_sandbox || return 1
  if port_open "$port"; then echo "error: 127.0.0.1:$port is already in use (MESH sandbox)" >&2; return 1; fi
  (cd "$MESH_VENV" && STORE_MODE=memory AUTH_MODE=full SHARED_KEY="$key" \
    PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore \
    exec "$MESH_SANDBOX_PYTHON" -m uvicorn mesh_sandbox.api:app --host 127.0.0.1 --port "$port") \
    </dev/null >"$log" 2>&1 &
  MESH_SANDBOX_PID=$!
  if ! wait_port "$port" 60 "the MESH sandbox" || ! kill -0 "$MESH_SANDBOX_PID" 2>/dev/null; then
    kill "$MESH_SANDBOX_PID" 2>/dev/null || true
    return 1
  fi
  echo "$MESH_SANDBOX_PID"
}
