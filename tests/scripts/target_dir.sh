#!/usr/bin/env bash
# The scripts must find the binaries where cargo put them, not at a fixed
# target/ path: runs `deploy/local/demo.sh --once` from a copy of the source
# tree that has no target/ folder, with CARGO_TARGET_DIR naming another
# folder (a symlink to this tree's target/, so the build stays warm). A script
# that runs `target/debug/ips-bridge` finds nothing there and fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$ROOT/target"
ln -s "$ROOT/target" "$scratch/elsewhere"
# The copy keeps modification times, so cargo finds the warm build fresh.
tar -C "$ROOT" --exclude=./target --exclude=./deploy/local/.demo -cf - . | tar -C "$scratch" -xf - --one-top-level=src-copy
[ ! -e "$scratch/src-copy/target" ] || { echo "error: the copy has a target/ folder" >&2; exit 1; }
cd "$scratch/src-copy"
CARGO_TARGET_DIR="$scratch/elsewhere" DEMO_PORT="${DEMO_PORT:-18091}" deploy/local/demo.sh --once >"$scratch/demo.out" 2>&1 || {
  echo "error: demo.sh with CARGO_TARGET_DIR set failed:" >&2; tail -30 "$scratch/demo.out" >&2; exit 1
}
[ ! -e target ] || { echo "error: demo.sh built into ./target despite CARGO_TARGET_DIR" >&2; exit 1; }
echo "ok: demo.sh ran the binary from CARGO_TARGET_DIR"
