#!/usr/bin/env bash
# The deployment artefacts under deploy/, each checked by the tool its
# community uses (installed when absent), then against the daemon itself:
#   container.sh   hadolint on deploy/container/Containerfile, .dockerignore, the probe
#   kubernetes.sh  kubectl kustomize + kubernetes-validate --strict, invariants, check-config
#   prometheus.sh  promtool check rules / test rules on deploy/prometheus/
#   dashboard.sh   deploy/grafana and the alert rules against a live daemon's /metrics
# The RabbitMQ definitions and the rolling restart are cargo tests
# (tests/broker_definitions.rs, tests/rolling_restart.rs).
# Needs the debug binary (tests/run.sh builds it); IPS_BIN overrides.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../deploy/local/services.sh
source deploy/local/services.sh
# The daemon these checks run (built by cargo test already: this is quick),
# wherever CARGO_TARGET_DIR puts it.
IPS_BIN="${IPS_BIN:-$(cargo_build_bins --quiet --bin ips-bridge | pick_bin ips-bridge)}"
export IPS_BIN IPS_BRIDGE_BIN="$IPS_BIN" OPS_REQUIRE_BINARY=1
for check in container kubernetes prometheus dashboard; do
  printf '\033[1m==> ops: %s\033[0m\n' "$check"
  "tests/ops/$check.sh"
done
