#!/usr/bin/env bash
# Every page of the site through the W3C Nu Html Checker (vnu.jar): tests/app/html.rs renders
# each page in each state (signed out, signed in, two-factor set-up and sign-in, a new API key,
# admin, form errors, the error pages) into a temp dir, and vnu must report no error for any of
# them, nor for the stylesheet and the SVG icon. vnu.jar comes from the npm package vnu-jar
# (cached under the cargo target dir; VNU_JAR=path uses another); it needs Java 11 or later.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VNU_VERSION=26.9.27
TMP=$(mktemp -d /tmp/latchkey-html.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
log() { printf '[html] %s\n' "$*"; }

if ! command -v java >/dev/null; then
    apt-get install -y -qq default-jre-headless >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; } || exit 2
fi
JAR="${VNU_JAR:-$CARGO_TARGET_DIR/vnu/node_modules/vnu-jar/build/dist/vnu.jar}"
if [ ! -f "$JAR" ]; then
    log "npm install vnu-jar@$VNU_VERSION"
    # The jar ships in the package; its install script (a Java download) is not needed.
    npm install --prefix "$CARGO_TARGET_DIR/vnu" --no-audit --no-fund --ignore-scripts -s \
        "vnu-jar@$VNU_VERSION" || exit 2
fi

log "rendering every page (cargo test --test app html::)"
env -u DATABASE_URL -u LATCHKEY_TEST_DATABASE_URL LATCHKEY_HTML_DIR="$TMP" \
    cargo test -q --test app html:: >"$TMP.log" 2>&1 || { cat "$TMP.log"; rm -f "$TMP.log"; exit 1; }
rm -f "$TMP.log"
pages=("$TMP"/*.html)
[ "${#pages[@]}" -ge 30 ] || { log "only ${#pages[@]} pages rendered"; exit 1; }

log "vnu on ${#pages[@]} pages, the stylesheet and the icon"
status=0
java -jar "$JAR" --errors-only "${pages[@]}" || status=1
java -jar "$JAR" --errors-only --css static/css/*.css || status=1
java -jar "$JAR" --errors-only --svg static/*.svg || status=1
if [ "$status" = 0 ]; then
    printf '%s passed, 0 failed\n' "$((${#pages[@]} + 2))"
else
    log "the checker reported errors (above)"
fi
exit "$status"
