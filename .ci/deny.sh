#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (policy: .ci/deny.toml):
#   licences, banned and duplicate crates, sources — always (offline);
#   RustSec advisories — against a fresh clone of the database when GitHub is
#   reachable, else against a local clone named by IPS_ADVISORY_DB, else skipped
#   with a notice (the README says when the last snapshot check was and how to run one).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! command -v cargo-deny >/dev/null; then
  say "installing cargo-deny (cargo install --locked; a few minutes, once)"
  cargo install --locked cargo-deny@0.20.2
fi

say "cargo deny: licences, bans (incl. duplicate versions), sources"
cargo deny --log-level warn --config .ci/deny.toml --locked check bans licenses sources

db_root="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if [ -n "${IPS_ADVISORY_DB:-}" ]; then
  # A local clone of github.com/rustsec/advisory-db (e.g. a snapshot brought in by hand):
  # copied to where cargo-deny looks for the database of its default URL.
  [ -d "$IPS_ADVISORY_DB/crates" ] || { echo "error: IPS_ADVISORY_DB=$IPS_ADVISORY_DB has no crates/ folder: is it a clone of rustsec/advisory-db?" >&2; exit 1; }
  when=$(git -C "$IPS_ADVISORY_DB" log -1 --format=%cs 2>/dev/null || echo "unknown date")
  say "cargo deny: advisories against the local RustSec snapshot of $when"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  sed "s|^db-path = .*|db-path = \"$tmp/dbs\"|" .ci/deny.toml > "$tmp/deny.toml"
  # cargo-deny keeps the database of its default URL in this folder (name derived from the URL).
  mkdir -p "$tmp/dbs"; cp -r "$IPS_ADVISORY_DB" "$tmp/dbs/advisory-db-3157b0e258782691"
  cargo deny --log-level warn --config "$tmp/deny.toml" --offline check advisories
elif timeout 15 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  say "cargo deny: advisories against the RustSec database (fetched now)"
  cargo deny --log-level warn --config .ci/deny.toml --locked check advisories
else
  say "cargo deny: advisories SKIPPED — github.com/rustsec/advisory-db is not reachable from here;"
  echo "    run with IPS_ADVISORY_DB=<a clone of it> to check against a snapshot (README: Supply chain)."
fi
