#!/usr/bin/env bash
# Fuzzes the ingest path for a bounded time: tests/fuzz/run.sh [SECONDS]
#
# Builds every target of this crate with cargo-fuzz (installed if missing)
# and runs each for its share of SECONDS (default 60, split evenly), over a
# copy of the committed seeds in corpus/<target>/, so a run never dirties the
# work tree. Exits non-zero on the first crash, printing the input that
# caused it (kept under tests/fuzz/artifacts/<target>/). See README.md here.
#
# Environment:
#   IPS_FUZZ_KEEP_CORPUS=DIR  keep the grown corpus in DIR/<target> (default: discarded)
#   IPS_FUZZ_SANITIZER        cargo-fuzz sanitizer (default none: the code is safe Rust,
#                             what is looked for is panics, overflows, stack overflows, OOM)
#   IPS_FUZZ_TARGET_DIR       where the fuzz build goes (default: $CARGO_TARGET_DIR/fuzz when
#                             CARGO_TARGET_DIR is set, else ~/.cache/ips-bridge/fuzz-target).
#                             Never the main build's own files: the fuzz build has its own
#                             flags. The default lives outside the checkout so that a fresh
#                             clone (CI) reuses the dependencies built by an earlier run on
#                             the same machine: built cold, they take ~10 minutes on 2 cores.
set -euo pipefail

total=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sanitizer=${IPS_FUZZ_SANITIZER:-none}
# cargo-fuzz passes nightly-only flags (-Z...); the stable toolchain accepts
# them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
if [[ -n ${IPS_FUZZ_TARGET_DIR:-} ]]; then
  export CARGO_TARGET_DIR="$IPS_FUZZ_TARGET_DIR"
elif [[ -n ${CARGO_TARGET_DIR:-} ]]; then
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
else
  export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ips-bridge/fuzz-target"
fi
mkdir -p "$CARGO_TARGET_DIR"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=$(cargo fuzz list --fuzz-dir "$here")
count=$(echo "$targets" | wc -w)
each=$(( total / count )); (( each > 0 )) || each=1

start=$SECONDS
cargo fuzz build --fuzz-dir "$here" -s "$sanitizer" -O
echo "fuzz: built $count target(s) in $(( SECONDS - start ))s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in $targets; do
  mkdir -p "$work/$t" "$here/artifacts/$t"
  cp -r "$here/corpus/$t/." "$work/$t/"
  echo "fuzz: $t for ${each}s over $(ls "$work/$t" | wc -l) seed(s)"
  log="$work/$t.log"
  if ! cargo fuzz run --fuzz-dir "$here" -s "$sanitizer" -O "$t" "$work/$t" -- \
      -max_total_time="$each" -rss_limit_mb=2048 -max_len=262144 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" >"$log" 2>&1; then
    tail -n 40 "$log"
    artifact=$(grep -oE "$here/artifacts/$t/(crash|oom|timeout|leak|slow-unit)-[0-9a-f]+" "$log" | tail -n 1 || true)
    # A stack overflow kills the process before libFuzzer can save the input.
    echo "fuzz: $t FAILED; input: ${artifact:-none saved (a stack overflow?); the log is above}" >&2
    echo "fuzz: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz -s $sanitizer $t ${artifact:-<artifact>}" >&2
    status=1
    break
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ *DONE" "$log" || true
  if [[ -n ${IPS_FUZZ_KEEP_CORPUS:-} ]]; then
    mkdir -p "$IPS_FUZZ_KEEP_CORPUS/$t"
    cp -r "$work/$t/." "$IPS_FUZZ_KEEP_CORPUS/$t/"
  fi
done
echo "fuzz: done in $(( SECONDS - start ))s"
exit $status
