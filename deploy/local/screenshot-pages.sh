#!/usr/bin/env bash
# Screenshots of every staff page, as a specialist and as a team lead, taken
# by the browser test (tests/web_pages.rs) in headless Chromium against the
# real daemon, signed in through the local OIDC provider. Brings up what is
# missing first (RabbitMQ, PostgreSQL, the sandbox, the provider, the
# NHS.UK frontend, Chromium).
#
#   deploy/local/screenshot-pages.sh [DIR]     (default: target/page-screenshots)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEFAULT_OUT="${CARGO_TARGET_DIR:-$ROOT/target}/page-screenshots"
OUT="$(mkdir -p "${1:-$DEFAULT_OUT}" && cd "${1:-$DEFAULT_OUT}" && pwd)"
cd "$ROOT"
# shellcheck source=services.sh
source deploy/local/services.sh
ensure_rabbitmq
ensure_postgres
ensure_sandbox_deps
ensure_oidc_deps
ensure_web_assets
ensure_chromium
export NODE
VHOST="ips-shots-$$"
as_root rabbitmqctl -q add_vhost "$VHOST" >/dev/null
as_root rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
trap 'as_root rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true' EXIT
IPS_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST" IPS_SCREENSHOTS_DIR="$OUT" \
  cargo test --test web_pages -- --nocapture >/dev/null
say "screenshots in $OUT:"
ls -1 "$OUT"
