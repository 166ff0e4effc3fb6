#!/usr/bin/env bash
# Checks deploy/kubernetes: the base and every overlay under overlays/.
#
#   tests/ops/kubernetes.sh
#
# For each: render it with `kubectl kustomize` (kubectl 1.37 from PyPI, which
# builds kustomize v5.8 in: the same renderer `kubectl apply -k` uses), validate
# every rendered document with `kubernetes-validate --strict` against ONE
# Kubernetes version (K8S_VERSION below), check the invariants of
# check_manifests.py, prove each invariant can fail (--self-test), and run
# `ips-bridge check-config` on the site TOML as the container would see it
# when a built binary is found (IPS_BRIDGE_BIN, else cargo's target
# directory; OPS_REQUIRE_BINARY=1 makes its absence a failure). Also checks
# that the base's discharge rules are config/discharge-rules.toml, and that
# the validator itself rejects a misspelled field.
#
# Exits non-zero if anything failed, after listing what.
set -uo pipefail

# The Kubernetes version the manifests are validated against: the oldest minor
# release upstream still supports at the time of writing (1.35, 1.36, 1.37;
# 2026-12). Schemas only grow, so passing 1.35 means no field newer than it
# is used. Change it here and in the README together.
K8S_VERSION=1.35.0

IPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=SCRIPTDIR/tools.sh
source "$IPS_ROOT/tests/ops/tools.sh"
cd "$IPS_ROOT" || exit 1

ensure_ops_venv || exit 1
KUBECTL="$(ops_bin kubectl)" || exit 1
VALIDATE="$(ops_bin kubernetes-validate)" || exit 1
PY="$(ops_python)" || exit 1
CONTAINERFILE=deploy/container/Containerfile

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
fail() { failed+=("$1"); echo "FAIL: $1" >&2; }
step() { printf '%s\n' "--- $*"; }

# The built daemon, for check-config (optional unless OPS_REQUIRE_BINARY=1).
find_binary() {
  if [ -n "${IPS_BRIDGE_BIN:-}" ]; then printf '%s\n' "$IPS_BRIDGE_BIN"; return; fi
  command -v cargo >/dev/null || return 1
  local dir
  dir="$(cargo metadata --no-deps --offline --format-version 1 2>/dev/null |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" || return 1
  for b in "$dir/debug/ips-bridge" "$dir/release/ips-bridge"; do
    [ -x "$b" ] && { printf '%s\n' "$b"; return; }
  done
  return 1
}
BINARY="$(find_binary || true)"

step "base discharge rules are config/discharge-rules.toml"
cmp -s config/discharge-rules.toml deploy/kubernetes/base/discharge-rules.toml ||
  fail "deploy/kubernetes/base/discharge-rules.toml differs from config/discharge-rules.toml (copy it again)"

step "kubernetes-validate --strict rejects a misspelled field (the validator works)"
cat >"$work/typo.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: typo
spec:
  prots:
    - port: 8080
EOF
if "$VALIDATE" --strict -k "$K8S_VERSION" --quiet "$work/typo.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate --strict accepted a Service with 'prots': the schema check proves nothing"
fi

dirs=(deploy/kubernetes/base)
for d in deploy/kubernetes/overlays/*/; do [ -f "$d/kustomization.yaml" ] && dirs+=("${d%/}"); done

for dir in "${dirs[@]}"; do
  name="$(basename "$dir")"
  out="$work/$name.yaml"
  # A site's overlay must pin every egress rule to its servers; the base cannot.
  pin=(); [ "$dir" = deploy/kubernetes/base ] || pin=(--pinned-egress)
  step "$dir: kubectl kustomize"
  if ! "$KUBECTL" kustomize "$dir" >"$out" 2>"$work/$name.err"; then
    cat "$work/$name.err" >&2
    fail "$dir: kubectl kustomize failed"
    continue
  fi
  step "$dir: kubernetes-validate --strict, Kubernetes $K8S_VERSION"
  if "$VALIDATE" --strict -k "$K8S_VERSION" "$out" >"$work/$name.val" 2>&1; then
    # Every rendered document was validated, not only some.
    count="$("$PY" -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$out")"
    ok="$(grep -c ' passed for resource ' "$work/$name.val")"
    if [ "$ok" = "$count" ]; then
      echo "    $ok of $count documents valid"
    else
      cat "$work/$name.val"
      fail "$dir: kubernetes-validate passed $ok resources of $count rendered"
    fi
  else
    grep -v ' passed for resource ' "$work/$name.val"
    fail "$dir: kubernetes-validate --strict -k $K8S_VERSION"
  fi
  step "$dir: invariants"
  # Prints the failures and the count; the passing checks are in $work.
  if "$PY" tests/ops/check_manifests.py --containerfile "$CONTAINERFILE" "${pin[@]}" "$out" >"$work/$name.inv"; then
    tail -1 "$work/$name.inv"
    # Breaks each invariant in turn on a copy: each must be caught (needs
    # manifests that pass, so it runs only when they do).
    step "$dir: each invariant can fail"
    if "$PY" tests/ops/check_manifests.py --containerfile "$CONTAINERFILE" "${pin[@]}" --self-test "$out" >"$work/$name.self"; then
      tail -1 "$work/$name.self"
    else
      grep -v '^  caught ' "$work/$name.self"
      fail "$dir: an invariant check missed its break"
    fi
  else
    grep -v '^  ok ' "$work/$name.inv"
    fail "$dir: invariants (tests/ops/check_manifests.py)"
  fi
  step "$dir: ips-bridge check-config on the site TOML"
  if [ -n "$BINARY" ]; then
    mkdir -p "$work/$name.site"
    "$PY" tests/ops/site_config.py --containerfile "$CONTAINERFILE" --binary "$BINARY" \
      --workdir "$work/$name.site" "$out" || fail "$dir: ips-bridge check-config refused the site TOML"
  elif [ "${OPS_REQUIRE_BINARY:-0}" = 1 ]; then
    fail "$dir: no ips-bridge binary for check-config (cargo build, or set IPS_BRIDGE_BIN)"
  else
    echo "    skipped: no built ips-bridge found (cargo build, or set IPS_BRIDGE_BIN)"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "kubernetes: ${#failed[@]} check(s) failed:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "kubernetes: ${dirs[*]} valid for Kubernetes $K8S_VERSION; every check passed"
