#!/usr/bin/env bash
# The whole test suite against real services: brings up RabbitMQ, PostgreSQL
# and the FHIR and MESH sandboxes' dependencies if missing, then runs unit,
# property, contract and integration tests, the benchmarks in --quick mode (so
# they cannot rot; they fail only on error, never on speed), and the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../deploy/local/services.sh
source deploy/local/services.sh

command -v cargo >/dev/null || { echo "error: cargo is needed (install Rust with rustup; see README)" >&2; exit 1; }
ensure_rabbitmq
ensure_postgres
ensure_sandbox_deps
ensure_mesh_sandbox
ensure_oidc_deps
ensure_web_assets
ensure_chromium
# The MESH mutual-TLS tests make their certificates with the openssl command line.
command -v openssl >/dev/null || apt_install openssl
export NODE MESH_SANDBOX_PYTHON

# The tests declare many durable quorum queues; they live in a vhost of this
# run's own, deleted at the end, so they never pile up on the broker. Vhosts
# left by runs that did not finish are swept first.
for v in $(as_root rabbitmqctl -q list_vhosts 2>/dev/null | grep -E '^(ips-test-|t-)'); do
  as_root rabbitmqctl -q delete_vhost "$v" >/dev/null 2>&1 || true
done
TEST_VHOST="ips-test-$(date +%s)-$$"
as_root rabbitmqctl -q add_vhost "$TEST_VHOST" >/dev/null
as_root rabbitmqctl -q set_permissions -p "$TEST_VHOST" guest '.*' '.*' '.*' >/dev/null
export IPS_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$TEST_VHOST"
trap 'as_root rabbitmqctl -q delete_vhost "$TEST_VHOST" >/dev/null 2>&1 || true' EXIT

# Databases left by earlier runs of the PostgreSQL store tests.
psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'ips_test_%'" 2>/dev/null |
  while read -r db; do psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done

say "cargo test"
cargo test --all-targets --no-fail-fast

# The broker-loss fault test stops RabbitMQ (rabbitmqctl stop_app) for ~10 s, which would
# break every test running beside it: it is #[ignore]d in the run above and runs here, alone.
say "broker loss, alone"
cargo test --test fault_broker -- --ignored --test-threads=1

if [[ ${IPS_SKIP_FUZZ:-0} == 1 ]]; then
  say "fuzzing skipped (IPS_SKIP_FUZZ=1)"
else
  say "fuzzing the ingest path, 60 s (tests/fuzz/run.sh)"
  tests/fuzz/run.sh 60
fi

say "deployment artefacts: hadolint, kubernetes-validate, promtool, dashboard vs a live daemon (tests/ops/run.sh)"
tests/ops/run.sh

say "FHIR sandbox self-test"
(cd deploy/local/fhir-sandbox && "$NODE" selftest.mjs >/dev/null)

say "OIDC provider self-test"
(cd deploy/local/oidc-provider && "$NODE" selftest.mjs >/dev/null)

say "benchmarks, quick mode"
tests/perf/run.sh --quick

say "demo"
DEMO_PORT="${DEMO_PORT:-18089}" deploy/local/demo.sh --once >/dev/null

say "scripts honour CARGO_TARGET_DIR"
DEMO_PORT=18091 tests/scripts/target_dir.sh

say "all tests passed"
