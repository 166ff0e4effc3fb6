#!/usr/bin/env bash
# The ips-bridge demo: brings up what is missing (RabbitMQ, the FHIR sandbox),
# runs the bridge on embedded defaults + config/local.toml (SQLite), feeds it
# sample referrals and appointments over both channels, accepts one referral,
# and shows what it wrote to the record. Ctrl-C stops what it started.
#   deploy/local/demo.sh          run, then keep the bridge up until Ctrl-C
#   deploy/local/demo.sh --once   run, show, stop (used by tests/run.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=services.sh
source deploy/local/services.sh

ONCE=0; [ "${1:-}" = "--once" ] && ONCE=1
STATE="$ROOT/deploy/local/.demo"
PORT="${DEMO_PORT:-8080}"
TOKEN="demo-token"
mkdir -p "$STATE"; rm -f "$STATE"/bridge.db*

command -v cargo >/dev/null || { echo "error: cargo is needed (install Rust with rustup; see README)" >&2; exit 1; }
ensure_rabbitmq
start_sandbox FHIR_URL "$STATE/sandbox.log"
PIDS=("$SANDBOX_PID")
# The staff pages: a local OpenID Connect provider to sign in with (users
# in deploy/local/oidc-provider/users.example.json) and the NHS.UK frontend.
ensure_web_assets
start_oidc_provider OIDC_URL "$STATE/oidc.log"
PIDS+=("$OIDC_PID")
# GP practices get documents over MESH: NHS England's MESH sandbox, the bridge on
# mailbox X26ABC1, practice A81001 (the samples' registered practice) on X26ABC2.
MESH_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
start_mesh_sandbox "$MESH_PORT" "$STATE/mesh.log" >/dev/null
PIDS+=("$MESH_SANDBOX_PID")
MESH_URL="http://127.0.0.1:$MESH_PORT"
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

say "building ips-bridge"
BIN="$(cargo_build_bins --quiet --bin ips-bridge | pick_bin ips-bridge)"

# The patient lookup key (store.patient_key_file in config/local.toml): made
# once and kept with the demo's state, like a real deployment's key file.
if [ ! -s "$STATE/patient.key" ]; then
  (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$STATE/patient.key")
fi

export IPS__FHIR__BASE_URL="$FHIR_URL" IPS__STORE__URL="sqlite://$STATE/bridge.db" \
  IPS__HTTP__LISTEN="127.0.0.1:$PORT" IPS__HTTP__API_TOKEN="$TOKEN" IPS__HTTP__WEBHOOK_SECRET="demo-hook" \
  IPS__AMQP__INBOUND_QUEUE="ips-bridge-demo.inbound" IPS__AMQP__DEAD_LETTER_QUEUE="ips-bridge-demo.inbound.dlq" \
  IPS__WEB__ENABLED=true IPS__WEB__ISSUER="$OIDC_URL" IPS__WEB__CLIENT_ID=ips-bridge \
  IPS__WEB__CLIENT_SECRET=ips-bridge-local-secret IPS__WEB__REDIRECT_URL="http://127.0.0.1:$PORT/auth/callback" \
  IPS__WEB__COOKIE_SECURE=false IPS__WEB__ASSETS_DIR="$ROOT/deploy/local/web-assets/node_modules/nhsuk-frontend/dist/nhsuk" \
  IPS__TEAM__SPECIALISTS="alice=Alice Specialist,bob=Bob Specialist" \
  IPS__MESH__ENABLED=true IPS__MESH__URL="$MESH_URL" IPS__MESH__MAILBOX=X26ABC1 IPS__MESH__PASSWORD=password \
  IPS__MESH__SHARED_KEY="$MESH_SHARED_KEY_DEFAULT" IPS__MESH__POLL_INTERVAL=1s IPS__MESH__MAILBOXES__A81001=X26ABC2 \
  IPS__ROUTING__DEFAULT=both
"$BIN" --config config/local.toml check-config >/dev/null
"$BIN" --config config/local.toml migrate
"$BIN" --config config/local.toml run >"$STATE/bridge.log" 2>&1 &
PIDS+=("$!")
say "waiting for http://127.0.0.1:$PORT/readyz"
for i in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  kill -0 "${PIDS[1]}" 2>/dev/null || { echo "error: the bridge exited; see $STATE/bridge.log" >&2; tail -20 "$STATE/bridge.log" >&2; exit 1; }
  [ "$i" = 120 ] && { echo "error: not ready after 60 s" >&2; curl -s "http://127.0.0.1:$PORT/readyz" >&2; exit 1; }
  sleep 0.5
done
say "ready: $(curl -s "http://127.0.0.1:$PORT/readyz")"

json() { "$NODE" -e "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const j=JSON.parse(d);console.log($1)})"; }
api() { curl -s -H "Authorization: Bearer $TOKEN" "$@"; }

say "a trust EPR writes a Patient and an IPS ServiceRequest to the FHIR server (polled)"
PATIENT_ID=$(curl -s -X POST -H 'Content-Type: application/fhir+json' --data @deploy/local/samples/fhir-patient.json "$FHIR_URL/Patient" | json 'j.id')
curl -s -X POST -H 'Content-Type: application/fhir+json' "$FHIR_URL/ServiceRequest" --data "{\"resourceType\":\"ServiceRequest\",\"status\":\"active\",\"intent\":\"order\",
  \"identifier\":[{\"system\":\"https://trust.example.nhs.uk/Id/referral\",\"value\":\"EPR-42\"}],
  \"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"1098041000000101\"}]},
  \"subject\":{\"reference\":\"Patient/$PATIENT_ID\"},\"reasonCode\":[{\"text\":\"Employment support\"}]}" >/dev/null
curl -s -X POST -H 'Authorization: Bearer demo-hook' "http://127.0.0.1:$PORT/fhir/notify" >/dev/null

say "GP systems send BaRS referrals, an appointment and one broken message over RabbitMQ"
"$BIN" --config config/local.toml send --routing-key bars.servicerequest \
  deploy/local/samples/bars-referral-complete.json deploy/local/samples/bars-referral-same-patient.json \
  deploy/local/samples/bars-referral-invalid-nhs-number.json deploy/local/samples/not-fhir.txt
for i in $(seq 1 40); do
  [ "$(api "http://127.0.0.1:$PORT/api/referrals?status=awaiting-decision" | json 'j.count')" -ge 3 ] && break; sleep 0.5
done

FIRST=$(api "http://127.0.0.1:$PORT/api/referrals?status=awaiting-decision" | json 'j.referrals.find(r=>r.channel==="amqp").id')
say "the employment specialist accepts referral $FIRST"
api -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/referrals/$FIRST/decision" --data '{"outcome":"accepted","decided_by":"ES demo"}' >/dev/null
"$BIN" --config config/local.toml send --routing-key appointment deploy/local/samples/appointment-attended.json >/dev/null
say "the patient referred through FHIR misses an appointment"
"$BIN" --config config/local.toml send --routing-key appointment deploy/local/samples/appointment-dna.json >/dev/null
sleep 2

say "cases (GET /api/cases)"
api "http://127.0.0.1:$PORT/api/cases" | json 'j.cases.map(c=>`  case ${c.id}: ${c.referral_count} referral(s): `+c.referrals.map(r=>`${r.state}${r.multiple?" (multiple)":""} via ${r.channel}`).join(", ")).join("\n")'
say "incomplete referrals (GET /api/referrals?status=incomplete)"
api "http://127.0.0.1:$PORT/api/referrals?status=incomplete" | json 'j.referrals.map(r=>`  ${r.id}: ${r.incomplete_reasons.join("; ")}`).join("\n")'
say "what the bridge wrote to the record (Tasks telling the referrer)"
curl -s "$FHIR_URL/Task" | json '(j.entry||[]).map(e=>`  Task/${e.resource.id} (${e.resource.status}): ${(e.resource.businessStatus||e.resource.code||{}).text} -> focus ${JSON.stringify(e.resource.focus.identifier||e.resource.focus.reference)}`).join("\n")'
say "assertive outreach: a DNA flagged before a discharge rule closes the case (GET /api/outreach, Flags in the record)"
api "http://127.0.0.1:$PORT/api/outreach" | json 'j.flags.map(f=>`  case ${f.case_id}: ${f.rule.name} -> ${JSON.stringify(f.fires)}, Task due ${f.task_due_at}`).join("\n")||"  (no open flags)"'
curl -s "$FHIR_URL/Flag" | json '(j.entry||[]).map(e=>`  Flag/${e.resource.id} (${e.resource.status}): ${e.resource.code.text}`).join("\n")||"  (no Flags)"'
CASE=$(api "http://127.0.0.1:$PORT/api/cases" | json 'j.cases[0].id')
say "the specialist writes case $CASE's vocational profile over two sessions and completes it"
for f in vp-session-1 vp-session-2; do
  api -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/cases/$CASE/documents/vp/sections" --data @"deploy/local/samples/$f.json" >/dev/null
done
api -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/cases/$CASE/documents/vp/complete" --data '{"specialist":"Sam Specialist (demo)"}' >/dev/null
for i in $(seq 1 40); do
  [ "$(curl -s "$FHIR_URL/DocumentReference" | json '(j.entry||[]).length')" -ge 1 ] && break; sleep 0.25
done
say "documents in the record (DocumentReference, its Binary, the GP's review Task)"
curl -s "$FHIR_URL/DocumentReference" | json '(j.entry||[]).map(e=>`  DocumentReference/${e.resource.id} (${e.resource.status}): ${e.resource.description}, ${e.resource.content[0].attachment.size} bytes at ${e.resource.content[0].attachment.url}`).join("\n")||"  (none)"'
say "the GP practice's MESH mailbox: GP Connect Send Document, answered with a business acknowledgement"
for i in $(seq 1 40); do
  [ "$(api "http://127.0.0.1:$PORT/api/cases/$CASE/documents" | json '(j.deliveries||[]).filter(d=>d.send&&d.send.status==="done").length')" -ge 1 ] && break; sleep 0.25
done
"$MESH_SANDBOX_PYTHON" deploy/local/mesh-sandbox/practice.py "$MESH_URL" "$MESH_SHARED_KEY_DEFAULT"
for i in $(seq 1 40); do
  [ "$(api "http://127.0.0.1:$PORT/api/cases/$CASE/documents" | json '(j.deliveries||[]).filter(d=>d.state==="accepted").length')" -ge 1 ] && break; sleep 0.25
done
say "deliveries of case $CASE (GET /api/cases/$CASE/documents)"
api "http://127.0.0.1:$PORT/api/cases/$CASE/documents" | json '(j.deliveries||[]).map(d=>`  ${d.document_id} -> ${d.recipient_ods} (${d.mailbox}): ${d.state} ${d.code||""} ${d.text||""}`).join("\n")||"  (none)"'
ACCEPTED=$(api "http://127.0.0.1:$PORT/api/cases/$CASE/documents" | json '(j.deliveries||[]).filter(d=>d.state==="accepted").length')
[ "$ACCEPTED" -ge 1 ] || { echo "error: no document was accepted over MESH; see $STATE/bridge.log and $STATE/mesh.log" >&2; exit 1; }
say "dead-lettered: $(curl -s "http://127.0.0.1:$PORT/metrics" | grep '^ips_dead_letters_total' | grep -v ' 0$' || echo none)"

TASKS=$(curl -s "$FHIR_URL/Task" | json '(j.entry||[]).length')
[ "$TASKS" -ge 1 ] || { echo "error: the bridge wrote no Task; see $STATE/bridge.log" >&2; exit 1; }
FLAGS=$(curl -s "$FHIR_URL/Flag" | json '(j.entry||[]).length')
[ "$FLAGS" -ge 1 ] || { echo "error: the bridge flagged no DNA; see $STATE/bridge.log" >&2; exit 1; }
DOCS=$(curl -s "$FHIR_URL/DocumentReference" | json '(j.entry||[]).length')
[ "$DOCS" -ge 1 ] || { echo "error: the bridge published no document; see $STATE/bridge.log" >&2; exit 1; }
say "the team's report (ips-bridge report fidelity), first lines"
"$BIN" --config config/local.toml report fidelity | head -14

# The staff pages are up: signing in sends the browser to the provider.
SIGN_IN=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$PORT/auth/sign-in")
case "$SIGN_IN" in
  30[23]\ "$OIDC_URL"*) ;;
  *) echo "error: the staff pages' sign-in does not go to the OIDC provider ($SIGN_IN); see $STATE/bridge.log" >&2; exit 1 ;;
esac

cat <<MSG

Where to look:
  pages      http://127.0.0.1:$PORT/   sign in as alice (specialist) or lena (team lead), any password
  reports    IPS__STORE__URL=sqlite://$STATE/bridge.db $BIN --config config/local.toml report fidelity
             (also: report ips-grow --quarter 2026Q4, report employment-status --month 2026-11)
  API        curl -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$PORT/api/cases
  probes     http://127.0.0.1:$PORT/readyz   metrics http://127.0.0.1:$PORT/metrics
  FHIR       $FHIR_URL/Task   $FHIR_URL/DocumentReference   (in-memory sandbox)
  documents  deploy/local/screenshot-document.sh vp   (a picture of what a GP receives)
  DLQ        queue ips-bridge-demo.inbound.dlq (rabbitmqctl list_queues)
  log        $STATE/bridge.log
MSG
if [ "$ONCE" = 1 ]; then say "demo done"; exit 0; fi
say "the bridge keeps running; Ctrl-C stops it and the sandbox"
wait "${PIDS[1]}"
