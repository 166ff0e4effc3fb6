#!/usr/bin/env bash
# Checks the alerting rules and the dashboard's queries with promtool:
#   - `promtool check rules deploy/prometheus/alerts.yml`;
#   - `promtool test rules deploy/prometheus/alerts.test.yml`;
#   - the Grafana dashboard's queries parse (each as a recording rule, with
#     Grafana's variables replaced by plain values);
# then that the tests can fail:
#   - every alert in alerts.yml has a test case where it fires and one where it
#     stays quiet (read from the two files);
#   - each alert's expression in turn is replaced by one that never fires, and
#     `promtool test rules` must then fail (so every alert's firing case is real).
# promtool comes with Debian's `prometheus` package (2.42 on bookworm); it is
# installed when absent. Installing it must not leave a Prometheus server
# running: one the install started is stopped again.
#   tests/ops/prometheus.sh            all of the above
#   tests/ops/prometheus.sh --quick    the promtool checks only
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../deploy/local/services.sh
source deploy/local/services.sh

RULES=deploy/prometheus/alerts.yml
TESTS=deploy/prometheus/alerts.test.yml
QUICK=0; [ "${1:-}" = "--quick" ] && QUICK=1

prometheus_pids() { pgrep -x prometheus 2>/dev/null | sort || true; }
systemd_up() { command -v systemctl >/dev/null && [ -d /run/systemd/system ]; }

if ! command -v promtool >/dev/null; then
  before="$(prometheus_pids)"
  unit_before=inactive
  if systemd_up; then unit_before="$(systemctl is-active prometheus 2>/dev/null || true)"; fi
  # No recommends: they would bring prometheus-node-exporter, another daemon.
  apt_install --no-install-recommends prometheus
  command -v promtool >/dev/null || { echo "error: installing Debian's prometheus gave no promtool" >&2; exit 1; }
  if systemd_up && [ "$unit_before" != active ] &&
     [ "$(systemctl is-active prometheus 2>/dev/null || true)" = active ]; then
    say "stopping the prometheus unit the install started"
    as_root systemctl stop prometheus || true
    as_root systemctl disable prometheus >/dev/null 2>&1 || true
  fi
  for pid in $(prometheus_pids); do
    if ! grep -qx "$pid" <<<"$before"; then
      say "stopping the prometheus server the install started (pid $pid)"
      as_root kill "$pid" 2>/dev/null || true
    fi
  done
fi

say "$(promtool --version 2>&1 | head -1)"
promtool check rules "$RULES"
promtool test rules "$TESTS"

# The dashboard's queries are PromQL too: with Grafana's variables replaced by
# plain values, each becomes a recording rule for promtool to parse.
DASH_RULES="$(mktemp --suffix=.yml)"
python3 - deploy/grafana/ips-bridge.json >"$DASH_RULES" <<'PYEOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
subst = [(r"\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}", "5m"),
         (r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", ".*")]
rules = []
def walk(items):
    for p in items or []:
        for t in p.get("targets") or []:
            e = t.get("expr")
            if e:
                for pat, rep in subst:
                    e = re.sub(pat, rep, e)
                rules.append({"record": f"dashboard:panel_{p['id']}_{t.get('refId', 'A')}", "expr": e})
        walk(p.get("panels"))
walk(d.get("panels"))
# JSON is YAML: no PyYAML needed to write a rule file.
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, indent=1)
PYEOF
say "the dashboard's queries parse ($(grep -c '"record"' "$DASH_RULES") of them)"
promtool check rules "$DASH_RULES" >/dev/null || { promtool check rules "$DASH_RULES"; rm -f "$DASH_RULES"; exit 1; }
rm -f "$DASH_RULES"

[ "$QUICK" = 1 ] && exit 0

# A python with PyYAML for reading the two files (Debian's python3-yaml if needed).
PY=python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  PY=/usr/bin/python3
  "$PY" -c 'import yaml' 2>/dev/null || apt_install python3-yaml
fi

say "every alert has a firing and a quiet test case"
"$PY" - "$RULES" "$TESTS" <<'PYEOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
fires, quiet = set(), set()
for t in tests.get("tests", []):
    for c in t.get("alert_rule_test", []) or []:
        (fires if c.get("exp_alerts") else quiet).add(c["alertname"])
bad = [f"{a}: no case where it fires" for a in alerts if a not in fires]
bad += [f"{a}: no case where it stays quiet" for a in alerts if a not in quiet]
bad += [f"{a}: tested but not in the rules" for a in sorted((fires | quiet) - set(alerts))]
if len(set(alerts)) != len(alerts):
    bad.append("duplicate alert names")
for b in bad:
    print("error:", b, file=sys.stderr)
print(f"{len(alerts)} alerts, each with both cases" if not bad else "", end="")
sys.exit(1 if bad else 0)
PYEOF
echo

say "each alert's firing case fails when its expression never fires"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
n=$(grep -c '^ *expr:' "$RULES")
failed=0
for i in $(seq 1 "$n"); do
  # Replace the i-th expr: line (expressions are one line each in alerts.yml).
  awk -v i="$i" '/^ *expr:/ { k++; if (k == i) { sub(/expr:.*/, "expr: vector(0) > 1") } } { print }' \
    "$RULES" >"$WORK/$(basename "$RULES")"
  # alerts.test.yml names alerts.yml relative to itself, so a copy beside the broken rules reads them.
  cp "$TESTS" "$WORK/$(basename "$TESTS")"
  name=$(grep -E '^ *- alert:|^ *expr:' "$RULES" | awk -v i="$i" '/alert:/ { a = $3 } /expr:/ { k++; if (k == i) print a }')
  if promtool test rules "$WORK/$(basename "$TESTS")" >"$WORK/out" 2>&1; then
    echo "error: with $name's expression broken, promtool test rules still passed" >&2; failed=1
  else
    echo "  $name: broken expression caught"
  fi
done
[ "$failed" = 0 ] || exit 1
say "promtool checks passed"
