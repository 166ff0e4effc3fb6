#!/usr/bin/env bash
# Checks that the Grafana dashboard (deploy/grafana/ips-bridge.json) and the
# alert rules (deploy/prometheus/alerts.yml) name only metrics that a freshly
# started daemon exports:
#   1. the dashboard is valid JSON with unique panel ids and panels that do not
#      overlap (no daemon needed);
#   2. tests/ops/metric_names.py checks itself (it must fail on a misspelt name);
#   3. a real ips-bridge is started (SQLite in a temporary folder, the FHIR
#      sandbox, RabbitMQ with queues and exchanges of its own), /metrics is
#      scraped once it answers /healthz, and metric_names.py compares every
#      name the two files use with the scrape.
# Everything it started is stopped on exit. It does not build the bridge:
#   IPS_BIN=path/to/ips-bridge tests/ops/dashboard.sh   (default target/debug/ips-bridge)
#   IPS_TEST_AMQP_URL=amqp://...                         (default: the local RabbitMQ)
#   KEEP_SCRAPE=file                                     (keep the scrape there)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../deploy/local/services.sh
source deploy/local/services.sh

DASHBOARD=deploy/grafana/ips-bridge.json
RULES=deploy/prometheus/alerts.yml
CHECK=tests/ops/metric_names.py

say "dashboard layout: $DASHBOARD"
python3 - "$DASHBOARD" <<'PYEOF'
import json, sys
path = sys.argv[1]
d = json.load(open(path))
bad = []
panels = []
def walk(items):
    for p in items or []:
        panels.append(p)
        walk(p.get("panels"))
walk(d.get("panels"))
ids = [p.get("id") for p in panels]
dups = sorted({i for i in ids if ids.count(i) > 1}, key=str)
if dups: bad.append(f"duplicate panel ids: {dups}")
if None in ids: bad.append("a panel has no id")
cells = {}
for p in panels:
    g = p.get("gridPos") or {}
    if not all(k in g for k in ("x", "y", "w", "h")):
        bad.append(f"panel {p.get('title')!r}: no gridPos"); continue
    if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
        bad.append(f"panel {p.get('title')!r}: outside the 24-column grid")
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                bad.append(f"panel {p.get('title')!r} overlaps {cells[(x, y)]!r}"); break
            cells[(x, y)] = p.get("title")
        else:
            continue
        break
    if p.get("type") != "row" and not p.get("targets"):
        bad.append(f"panel {p.get('title')!r}: no query")
    for t in p.get("targets") or []:
        if (t.get("datasource") or {}).get("uid") != "${datasource}":
            bad.append(f"panel {p.get('title')!r}: a query not on the $datasource variable")
names = [v.get("name") for v in (d.get("templating") or {}).get("list", [])]
for want in ("datasource", "job", "instance"):
    if want not in names: bad.append(f"no ${want} variable")
for b in bad: print("error:", b, file=sys.stderr)
if bad: sys.exit(1)
print(f"{len(panels)} panels, ids unique, no overlap, schemaVersion {d.get('schemaVersion')}")
PYEOF

say "metric_names.py self-test"
python3 "$CHECK" --self-test

BIN="${IPS_BIN:-$ROOT/target/debug/ips-bridge}"
[ -x "$BIN" ] || { echo "error: no ips-bridge binary at $BIN: build it (cargo build) or set IPS_BIN" >&2; exit 1; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ -z "${IPS_TEST_AMQP_URL:-}" ]; then ensure_rabbitmq; fi
start_sandbox FHIR_URL "$WORK/sandbox.log"
PIDS+=("$SANDBOX_PID")

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/patient.key")

# Queues and exchanges of its own, so it neither takes nor gets other tests' messages.
export IPS__FHIR__BASE_URL="$FHIR_URL" IPS__STORE__URL="sqlite://$WORK/bridge.db" \
  IPS__STORE__PATIENT_KEY_FILE="$WORK/patient.key" \
  IPS__HTTP__LISTEN="127.0.0.1:$PORT" IPS__HTTP__API_TOKEN="ops-check-token" \
  IPS__AMQP__INBOUND_EXCHANGE="ips-bridge-ops.clinical.events" \
  IPS__AMQP__INBOUND_QUEUE="ips-bridge-ops.inbound" \
  IPS__AMQP__DEAD_LETTER_EXCHANGE="ips-bridge-ops.dlx" \
  IPS__AMQP__DEAD_LETTER_QUEUE="ips-bridge-ops.inbound.dlq" \
  IPS__AMQP__EVENTS_EXCHANGE="ips-bridge-ops.events" \
  IPS__LOG__FORMAT=json IPS__LOG__LEVEL=info
if [ -n "${IPS_TEST_AMQP_URL:-}" ]; then export IPS__AMQP__URL="$IPS_TEST_AMQP_URL"; fi

say "starting $BIN on 127.0.0.1:$PORT"
"$BIN" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; exit 1; }
"$BIN" run >"$WORK/bridge.log" 2>&1 &
PIDS+=("$!")
for i in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then
    echo "error: the bridge exited during start-up:" >&2; tail -20 "$WORK/bridge.log" >&2; exit 1
  fi
  [ "$i" = 120 ] && { echo "error: no /healthz after 60 s" >&2; tail -20 "$WORK/bridge.log" >&2; exit 1; }
  sleep 0.5
done

curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.prom"
[ -n "${KEEP_SCRAPE:-}" ] && cp "$WORK/metrics.prom" "$KEEP_SCRAPE"
say "scraped $(grep -c '^# TYPE' "$WORK/metrics.prom" || true) metric families; checking $DASHBOARD and $RULES against them"
python3 "$CHECK" "$WORK/metrics.prom" "$DASHBOARD" "$RULES"
say "dashboard and alert rules name only exported metrics"
