#!/usr/bin/env bash
# Benchmarks ips-bridge against raw baselines (GitHub issue 9) and prints one table.
#
#   tests/perf/run.sh           full run: 20,000-message ingest, 60 s latency run (a few minutes)
#   tests/perf/run.sh --quick   small counts, well under a minute after the build (for the test suite)
#
# Builds the release binaries (--quick: the dev build, which the test suite has already
# compiled: quick mode checks that every benchmark still runs and its figures are not
# compared with anything, so a release build of its own cost CI ~8 minutes for nothing),
# brings up RabbitMQ, PostgreSQL and the FHIR sandbox (deploy/local/services.sh), runs
# the ips-bridge-bench binary cargo built, prints the report and saves it to
# tests/perf/results/latest.md. Exits non-zero when a benchmark could not be
# measured; a figure that misses its goal is reported, not fatal.
# Any further arguments are passed to the bench binary (see `ips-bridge-bench --help`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

bench_args=()
profile=release
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --quick) profile=dev; bench_args+=("$arg") ;;
    *) bench_args+=("$arg") ;;
  esac
done

# shellcheck source=../../deploy/local/services.sh
source "$ROOT/deploy/local/services.sh"

say "building $profile binaries"
# Wherever cargo puts them (CARGO_TARGET_DIR, a cargo config), not a fixed target/ path.
bins="$(cargo_build_bins --profile "$profile" --quiet --bin ips-bridge --bin ips-bridge-bench)"
BRIDGE_BIN="$(pick_bin ips-bridge <<<"$bins")"
BENCH_BIN="$(pick_bin ips-bridge-bench <<<"$bins")"

ensure_rabbitmq
ensure_postgres

scratch="$(mktemp -d)"
SANDBOX_PID=""
cleanup() {
  if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
start_sandbox SANDBOX_URL "$scratch/sandbox.log"

mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$(nproc) cores${cpu:+ ($cpu)}, ${mem_gib} GiB RAM"
commit="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain)" ]; then commit="$commit+dirty"; fi

results="$ROOT/tests/perf/results"
mkdir -p "$results"
say "running benchmarks (progress on stderr)"
status=0
"$BENCH_BIN" \
  --daemon "$BRIDGE_BIN" \
  --sandbox-url "$SANDBOX_URL" \
  --machine "$machine" \
  --commit "$commit" \
  --build "$profile" \
  "${bench_args[@]}" >"$scratch/report.md" || status=$?

cp "$scratch/report.md" "$results/latest.md"
echo
cat "$results/latest.md"
echo
say "saved to tests/perf/results/latest.md"
exit "$status"
