#!/usr/bin/env bash
# A picture of what a GP receives: renders a made-up IPS document (no real person)
# with `ips-bridge render-sample` and takes a full-page screenshot of it in
# headless Chromium (Debian's `chromium`, installed if missing).
#
#   deploy/local/screenshot-document.sh                 # vocational profile -> vp.png
#   deploy/local/screenshot-document.sh iwsp out.png    # in-work support plan
#   deploy/local/screenshot-document.sh note            # a contact note
#
# The XHTML it rendered is kept beside the picture (same name, .xhtml), so the
# exact bytes a FHIR Binary would hold can be opened too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=services.sh
source "$ROOT/deploy/local/services.sh"

kind="${1:-vp}"
case "$kind" in
  vp|iwsp|note) ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "error: kind must be vp, iwsp or note (got \"$kind\")" >&2; exit 2 ;;
esac
out="${2:-$kind.png}"
xhtml="${out%.png}.xhtml"

say "building ips-bridge"
bins="$(cargo_build_bins --quiet --bin ips-bridge)"
BRIDGE_BIN="$(pick_bin ips-bridge <<<"$bins")"
"$BRIDGE_BIN" render-sample "$kind" --out "$xhtml"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  say "installing Debian's chromium"
  apt_install chromium
  browser="$(command -v chromium)"
fi
# As root Chromium needs --no-sandbox; /dev/shm is small in containers.
flags=(--headless=new --disable-gpu --disable-dev-shm-usage --hide-scrollbars
       --window-size=1000,3200 --screenshot="$(realpath -m "$out")")
if [ "$(id -u)" = 0 ]; then flags+=(--no-sandbox); fi
say "taking the screenshot"
"$browser" "${flags[@]}" "file://$(realpath "$xhtml")" 2>/dev/null
[ -s "$out" ] || { echo "error: chromium wrote no screenshot to $out" >&2; exit 1; }
say "wrote $out (and $xhtml)"
