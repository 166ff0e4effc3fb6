#!/usr/bin/env bash
# Shared by deploy/local/demo.sh, tests/run.sh and tests/perf/run.sh (source it).
# Brings up what is missing on a Debian machine: RabbitMQ, PostgreSQL, a Node.js
# new enough for the FHIR sandbox, and the sandbox's npm packages. Installs
# Debian packages only when a service is absent (needs root or sudo).

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
