#!/usr/bin/env bash
# The whole test suite against real services: brings up RabbitMQ, PostgreSQL
# and the FHIR sandbox's dependencies if missing, then runs unit, property,
# contract and integration tests, the benchmarks in --quick mode (so they
# cannot rot; they fail only on error, never on speed), and the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../deploy/local/services.sh
source deploy/local/services.sh

command -v cargo >/dev/null || { echo "error: cargo is needed (install Rust with rustup; see README)" >&2; exit 1; }
ensure_rabbitmq
ensure_postgres
ensure_sandbox_deps
export NODE

# Databases left by earlier runs of the PostgreSQL store tests.
psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'ips_test_%'" 2>/dev/null |
  while read -r db; do psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done

say "cargo test"
cargo test --all-targets --no-fail-fast

say "FHIR sandbox self-test"
(cd deploy/local/fhir-sandbox && "$NODE" selftest.mjs >/dev/null)

say "benchmarks, quick mode"
tests/perf/run.sh --quick

say "demo"
DEMO_PORT="${DEMO_PORT:-18089}" deploy/local/demo.sh --once >/dev/null

say "all tests passed"
