#!/usr/bin/env bash
# Instructions per request for GET /private and for the same bytes served from memory by
# bench-static-page, counted by callgrind: unlike req/s, the count does not depend on what else
# the machine is doing, so two commits can be compared on a busy machine. A measurement, not a
# test: it prints the figures and exits 0 (non-zero only when it cannot measure).
#
#   bench/instructions.sh                  # uses target/release (build it first: cargo build --release --bins)
#   BENCH_REQUESTS=5000 bench/instructions.sh
#
# Needs valgrind (callgrind_control) and curl. Each server runs with one Rocket worker; after
# BENCH_WARMUP requests the counters are zeroed, BENCH_REQUESTS sequential requests go over one
# kept-alive connection, and the total of every thread's instructions is divided by them.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${BENCH_REQUESTS:-2000}
WARMUP=${BENCH_WARMUP:-200}
BIN=${CARGO_TARGET_DIR:-target}/release
for tool in valgrind callgrind_control curl; do
    command -v "$tool" >/dev/null || { echo "[instructions] $tool is missing (apt-get install -y valgrind curl)" >&2; exit 2; }
done
[ -x "$BIN/latchkey" ] && [ -x "$BIN/bench-static-page" ] ||
    { echo "[instructions] build first: cargo build --release --bins" >&2; exit 2; }

TMP=$(mktemp -d /tmp/latchkey-instructions.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] && echo "[instructions] kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # url → waits up to 120 s (valgrind starts slowly)
    for _ in $(seq 1 600); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
    echo "[instructions] $1 did not come up" >&2; exit 3
}
# Sequential requests over one connection: curl reuses it for every URL on its command line.
hammer() { # count url [curl args…]
    local n=$1 url=$2; shift 2
    local args=()
    for _ in $(seq 1 "$n"); do args+=(-o /dev/null "$url"); done
    curl -sS "$@" "${args[@]}"
}
count() { # pid out url [curl args…] → instructions per request
    local pid=$1 out=$2 url=$3; shift 3
    hammer "$WARMUP" "$url" "$@"
    callgrind_control --zero "$pid" >/dev/null 2>&1
    hammer "$REQUESTS" "$url" "$@"
    rm -f "$out".*
    callgrind_control --dump "$pid" >/dev/null 2>&1
    # One file per dump (all threads together): the count since --zero.
    local total
    total=$(grep -h '^summary:' "$out".* 2>/dev/null | awk '{ s += $2 } END { print s + 0 }')
    echo $((total / REQUESTS))
}

PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
(
    export ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$PORT ROCKET_WORKERS=1 ROCKET_LOG_LEVEL=critical \
        DATABASE_URL="$TMP/bench.db" LATCHKEY_JWT_SECRET="$(head -c 32 /dev/urandom | base64)" \
        LATCHKEY_KEY_FILE="$TMP/keys.json" LATCHKEY_COOKIE_SECURE=false \
        LATCHKEY_ARGON2_MEMORY_KIB=1024 LATCHKEY_ARGON2_ITERATIONS=1 \
        LATCHKEY_EMAIL_VERIFICATION=off # sign-up signs in at once (303), as below expects
    exec valgrind --tool=callgrind --callgrind-out-file="$TMP/site.out" "$BIN/latchkey" serve
) >"$TMP/site.log" 2>&1 &
PIDS+=($!)
SITE_PID=$!
wait_up "$BASE/healthz"

JAR="$TMP/user.jar"
TOKEN=$(curl -sS -b "$JAR" -c "$JAR" "$BASE/signup" |
    grep -o '<input[^>]*name="csrf_token"[^>]*>' | head -1 | sed -n 's/.*value="\([^"]*\)".*/\1/p')
PASSWORD='instructions-bench-Pw-2026'
code=$(curl -sS -o /dev/null -w '%{http_code}' -b "$JAR" -c "$JAR" \
    --data-urlencode username=bench_counter --data-urlencode email=bench_counter@example.com \
    --data-urlencode "password=$PASSWORD" --data-urlencode "password_confirm=$PASSWORD" \
    ${TOKEN:+--data-urlencode "csrf_token=$TOKEN"} "$BASE/signup")
[ "$code" = 303 ] || { echo "[instructions] sign-up answered $code" >&2; exit 4; }
# The cookies a browser sends to /private: those for the whole site (Path=/), but the flash.
COOKIE=$(awk 'NF >= 7 && ($1 !~ /^#/ || $1 ~ /^#HttpOnly_/) && $3 == "/" && $6 != "_flash" {
    printf "%s%s=%s", sep, $6, $7; sep = "; " } END { print "" }' "$JAR")

curl -sS -D "$TMP/private.head" -o "$TMP/private.html" -H "Cookie: $COOKIE" "$BASE/private"
grep -q '^HTTP/1.1 200' "$TMP/private.head" || { echo "[instructions] /private did not answer 200" >&2; exit 4; }

STATIC_PORT=$(free_port)
(
    export ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$STATIC_PORT ROCKET_WORKERS=1 ROCKET_LOG_LEVEL=critical \
        BENCH_PAGE_BODY="$TMP/private.html" BENCH_PAGE_HEADERS="$TMP/private.head"
    exec valgrind --tool=callgrind --callgrind-out-file="$TMP/static.out" "$BIN/bench-static-page"
) >"$TMP/static.log" 2>&1 &
PIDS+=($!)
STATIC_PID=$!
wait_up "http://127.0.0.1:$STATIC_PORT/private"

# The cookie stays the same for the whole run: the token is renewed only past half its life.
private=$(count "$SITE_PID" "$TMP/site.out" "$BASE/private" -H "Cookie: $COOKIE")
static=$(count "$STATIC_PID" "$TMP/static.out" "http://127.0.0.1:$STATIC_PORT/private")
printf 'instructions per request (callgrind, %d requests after %d of warm-up, one worker)\n' "$REQUESTS" "$WARMUP"
printf '  GET /private                 %9d\n' "$private"
printf '  same page from memory        %9d\n' "$static"
awk -v p="$private" -v s="$static" 'BEGIN { printf "  static / private             %9.3f\n", s / p }'
