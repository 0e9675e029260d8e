#!/usr/bin/env bash
# latchkey benchmark: page throughput and latency, and a login flood. A measurement, not a test:
# it prints a table with PASS/FAIL against the targets and exits 0 whatever the figures are.
# It exits non-zero only when it cannot measure at all (no wrk, build failed, the site did not
# start, or the benchmark users could not be created).
#
#   bench/run.sh                      # build (release), start the site, measure, print the table
#   BENCH_SKIP_BUILD=1 bench/run.sh   # use the existing ${CARGO_TARGET_DIR:-target}/release/latchkey
#
# See bench/README.md for what each figure means and the knobs below.

set -uo pipefail

# ---- settings (environment overrides) --------------------------------------------------------
ROUNDS=${BENCH_ROUNDS:-3}               # interleaved rounds of /healthz, /private, its static copy, /api/me
DURATION=${BENCH_DURATION:-8}           # seconds per wrk run in those rounds
WARMUP=${BENCH_WARMUP:-2}               # seconds of untimed warm-up per endpoint
CONNS=${BENCH_CONNECTIONS:-32}          # connections for the page runs
THREADS=${BENCH_THREADS:-1}             # wrk threads for the page runs
FLOOD_THREADS=${BENCH_FLOOD_THREADS:-2} # wrk threads for the login flood
FLOOD_DURATION=${BENCH_FLOOD_DURATION:-10}
FLOOD_CONNS=${BENCH_FLOOD_CONNECTIONS:-64}
REFRESH_CHAINS=${BENCH_REFRESH_CHAINS:-4} # renewal chains (one wrk thread and connection each)
MONITOR_CONNS=${BENCH_MONITOR_CONNECTIONS:-8}   # /private load while the flood runs
MONITOR_DURATION=$((FLOOD_DURATION - 2))        # starts 1 s into the flood, ends 1 s before it
KEEP=${BENCH_KEEP:-0}                   # 1: keep the temp dir (server log, raw wrk output)
# The flood comes from one IP; a per-IP sign-in limit would turn it into a flood of 429s and
# measure nothing about password hashing, so it is raised for the run (set it to the site's
# default, 30, to measure the throttled path instead).
LOGIN_PER_IP=${BENCH_LOGIN_PER_IP_PER_MINUTE:-1000000}

# Targets.
T_RATIO=0.6          # private req/s ÷ healthz req/s, at least
T_STATIC=0.8         # private req/s ÷ the same page served from memory (median of the rounds' ratios), at least
T_P99=10             # ms, /private p99 at $CONNS connections, below
T_P99_FLOOD=25       # ms, /private p99 during the login flood, below
T_RSS=160            # MiB, peak resident set (VmHWM), below

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/latchkey"
STATIC_BIN="$TARGET_DIR/release/bench-static-page"
SUMMARY_FILE="$TARGET_DIR/bench-summary.txt"
HOST=127.0.0.1
PASSWORD='Bench-lantern-orbit-7731'
USER1=bench_viewer
USER2=bench_flooder

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }

# ---- cleanup ---------------------------------------------------------------------------------
TMP=""
SERVER_PID=""
STATIC_PID=""
BG_PIDS=()
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ -n "$STATIC_PID" ]; then
        kill "$STATIC_PID" 2>/dev/null
        wait "$STATIC_PID" 2>/dev/null
    fi
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "$KEEP" = 1 ]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools -----------------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is required (Debian/Ubuntu: apt-get install -y curl)"
if ! command -v wrk >/dev/null; then
    log "wrk not found; installing it with apt-get"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null \
            || die "wrk is missing: install it (Debian/Ubuntu: apt-get install -y wrk; macOS: brew install wrk)"
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y wrk || { $SUDO apt-get update && $SUDO apt-get install -y wrk; } \
        || die "could not install wrk: install it yourself (Debian/Ubuntu: apt-get install -y wrk)"
fi

# ---- build -----------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    # Both binaries: the site and bench-static-page (bench/static_page.rs).
    log "cargo build --release${CARGO_BUILD_JOBS:+ -j $CARGO_BUILD_JOBS}"
    (cd "$ROOT" && cargo build --release ${CARGO_BUILD_JOBS:+-j "$CARGO_BUILD_JOBS"}) \
        || die "release build failed"
fi
[ -x "$BIN" ] || die "$BIN not found (build with cargo build --release)"
[ -x "$STATIC_BIN" ] || die "$STATIC_BIN not found (build with cargo build --release)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX") || die "mktemp failed"

# ---- helpers ---------------------------------------------------------------------------------
free_port() {
    local p
    if command -v python3 >/dev/null; then
        p=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null)
        if [ -n "$p" ]; then echo "$p"; return; fi
    fi
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    return 1
}

proc_kb() { # pid field → value in kB from /proc/<pid>/status, or empty
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }

# A field of the BENCH line status.lua prints at the end of a wrk run.
bench_field() {
    grep -m1 '^BENCH ' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}
# Responses whose status is not $2 (per the STATUS lines), plus socket errors and timeouts.
bad_responses() {
    local statuses errors
    statuses=$(awk -v ok="$2" '$1 == "STATUS" && $2 != ok { n += $3 } END { print n + 0 }' "$1")
    errors=$(grep -m1 '^BENCH ' "$1" | tr ' ' '\n' |
        awk -F= '$1 ~ /^err_(connect|read|write|timeout)$/ { n += $2 } END { print n + 0 }')
    echo $((statuses + errors))
}
status_list() { # "303:1234 500:2" from the STATUS lines
    awk '$1 == "STATUS" { printf "%s%s:%s", sep, $2, $3; sep = " " } END { print "" }' "$1"
}
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2];
              else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
verdict() { # value op target → PASS / FAIL
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v == "" || v == "nan") { print "FAIL"; exit }
        ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0)
        print ok ? "PASS" : "FAIL" }'
}

run_wrk() { # out-file threads conns duration timeout script url [extra wrk args…]
    local out=$1 t=$2 c=$3 d=$4 to=$5 script=$6 url=$7
    shift 7
    # In the background and waited for, so a TERM is handled at once rather than after the run.
    wrk -t"$t" -c"$c" -d"${d}s" --timeout "${to}s" --latency -s "$script" "$@" "$url" >"$out" 2>&1 &
    BG_PIDS=("$!")
    wait "$!"
    BG_PIDS=()
    grep -q '^BENCH ' "$out" || { log "wrk produced no summary; its output:"; cat "$out" >&2; }
}

# ---- start the site --------------------------------------------------------------------------
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n=')
start_server() {
    PORT=$(free_port) || die "no free port found"
    BASE="http://$HOST:$PORT"
    (
        cd "$ROOT" || exit 1
        export ROCKET_ADDRESS=$HOST ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=critical \
            ROCKET_CLI_COLORS=false DATABASE_URL="$TMP/bench.db" \
            LATCHKEY_JWT_SECRET="$JWT_SECRET" LATCHKEY_KEY_FILE="$TMP/keys.json" \
            LATCHKEY_COOKIE_SECURE=false LATCHKEY_LOGIN_PER_IP_PER_MINUTE="$LOGIN_PER_IP" \
            LATCHKEY_EMAIL_VERIFICATION=off # sign-up signs in at once (303), as the bench expects
        exec "$BIN" serve
    ) >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 120); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null
            SERVER_PID=""
            return 1
        fi
        if curl -fsS --max-time 1 -o /dev/null "$BASE/healthz" 2>/dev/null; then
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# The static copy of /private, from $TMP (no Rocket.toml there: Rocket's defaults, as bare as it gets).
start_static() {
    STATIC_PORT=$(free_port) || return 1
    STATIC_BASE="http://$HOST:$STATIC_PORT"
    (
        cd "$TMP" || exit 1
        export ROCKET_ADDRESS=$HOST ROCKET_PORT=$STATIC_PORT ROCKET_LOG_LEVEL=critical \
            ROCKET_CLI_COLORS=false BENCH_PAGE_BODY="$TMP/private.html" \
            BENCH_PAGE_HEADERS="$TMP/private.head"
        exec "$STATIC_BIN"
    ) >"$TMP/static.log" 2>&1 &
    STATIC_PID=$!
    for _ in $(seq 1 40); do
        kill -0 "$STATIC_PID" 2>/dev/null || return 1
        curl -fsS --max-time 1 -o /dev/null "$STATIC_BASE/private" 2>/dev/null && return 0
        sleep 0.25
    done
    return 1
}

started=0
for attempt in 1 2 3; do
    rm -f "$TMP"/bench.db*
    if start_server; then started=1; break; fi
    log "the site did not start on port $PORT (attempt $attempt); its log:"
    sed 's/^/    /' "$TMP/server.log" >&2
    [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; }
    grep -qi 'in use' "$TMP/server.log" || break
done
[ "$started" = 1 ] || die "the site failed to start" 3
log "site up at $BASE (pid $SERVER_PID), database $TMP/bench.db"

# ---- users and session cookie ----------------------------------------------------------------
# Forms may carry a CSRF token (hidden csrf_token input, bound to a pre-session cookie): GET the
# form page into a cookie jar first, then post with that jar and the token. If the page has no
# token, none is sent.
csrf_token_of() { # path jar → the form's csrf_token, or nothing
    curl -sS --max-time 10 -b "$2" -c "$2" "$BASE$1" |
        grep -o '<input[^>]*name="csrf_token"[^>]*>' | head -1 |
        sed -n 's/.*value="\([^"]*\)".*/\1/p'
}
jar_cookie() { # jar name → value of that cookie, or nothing
    awk -v n="$2" '$6 == n { v = $7 } END { if (v != "") print v }' "$1" 2>/dev/null
}
jar_header() { # jar → "a=1; b=2": the cookies a browser sends to every page (Path=/), but Rocket's flash message
    awk 'NF >= 7 && ($1 !~ /^#/ || $1 ~ /^#HttpOnly_/) && $3 == "/" && $6 != "_flash" {
        printf "%s%s=%s", sep, $6, $7; sep = "; " } END { print "" }' "$1" 2>/dev/null
}
signup() { # username → prints the HTTP status; cookie jar in $TMP/<username>.jar
    local jar="$TMP/$1.jar" token
    token=$(csrf_token_of /signup "$jar")
    curl -sS --max-time 20 -o "$TMP/signup-$1.html" -w '%{http_code}' -b "$jar" -c "$jar" \
        --data-urlencode "username=$1" --data-urlencode "email=$1@example.com" \
        --data-urlencode "password=$PASSWORD" --data-urlencode "password_confirm=$PASSWORD" \
        ${token:+--data-urlencode "csrf_token=$token"} "$BASE/signup"
}
code=$(signup "$USER1") || true
[ "$code" = 303 ] || die "sign-up of $USER1 answered $code, not 303 (page in $TMP/signup-$USER1.html; BENCH_KEEP=1 keeps it)" 4
TOKEN=$(jar_cookie "$TMP/$USER1.jar" latchkey)
[ -n "$TOKEN" ] || die "sign-up of $USER1 set no latchkey cookie" 4
code=$(signup "$USER2") || true
[ "$code" = 303 ] || die "sign-up of $USER2 answered $code, not 303" 4

# Sanity: the cookie opens /private (200, not a 303 to /login).
code=$(curl -sS --max-time 5 -o "$TMP/private.html" -w '%{http_code}' \
    -H "Cookie: latchkey=$TOKEN" "$BASE/private") || true
[ "$code" = 200 ] || die "GET /private with the session cookie answered $code, not 200" 4
grep -q "$USER1" "$TMP/private.html" || log "warning: /private does not show the username $USER1"

# The flood's request: the sign-in form's token and cookies (fetched once, signed out), reused
# by every flood request. Checked once with curl: 303 and a session cookie.
LOGIN_CSRF=$(csrf_token_of /login "$TMP/flood.jar")
LOGIN_COOKIE=$(jar_header "$TMP/flood.jar")
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -b "$TMP/flood.jar" -c "$TMP/login.jar" \
    --data-urlencode "username=$USER2" --data-urlencode "password=$PASSWORD" \
    ${LOGIN_CSRF:+--data-urlencode "csrf_token=$LOGIN_CSRF"} "$BASE/login") || true
[ "$code" = 303 ] || die "POST /login for $USER2 answered $code, not 303" 4
[ -n "$(jar_cookie "$TMP/login.jar" latchkey)" ] || die "POST /login for $USER2 set no session cookie" 4
log "users $USER1 and $USER2 created; session cookie captured${LOGIN_CSRF:+; forms use a CSRF token}"

COOKIE="Cookie: latchkey=$TOKEN"

# A Bearer token for GET /api/me (the JSON API's hot path), checked once with curl.
API_TOKEN=$(curl -sS --max-time 20 -H 'Content-Type: application/json' \
    -d "{\"username\":\"$USER1\",\"password\":\"$PASSWORD\"}" "$BASE/api/token" \
    | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p') || true
[ -n "$API_TOKEN" ] || die "POST /api/token for $USER1 gave no access_token" 4
BEARER="Authorization: Bearer $API_TOKEN"
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H "$BEARER" "$BASE/api/me") || true
[ "$code" = 200 ] || die "GET /api/me with the Bearer token answered $code, not 200" 4
RSS_START=$(proc_kb "$SERVER_PID" VmRSS)

# ---- the physical limit: the same page, served from memory -----------------------------------
# The very answer /private gave the bench user (body, status, every response header), captured
# now and replayed by a bare Rocket route (bench/static_page.rs) started beside the site.
curl -sS --max-time 5 -D "$TMP/private.head" -o "$TMP/private.html" -H "$COOKIE" "$BASE/private" \
    || die "could not capture /private" 4
start_static || die "the static page server did not start; its log: $(cat "$TMP/static.log")" 3
curl -sS --max-time 5 -o "$TMP/static.html" "$STATIC_BASE/private" || true
cmp -s "$TMP/private.html" "$TMP/static.html" || die "the static server's page differs from /private" 4
PAGE_BYTES=$(wc -c <"$TMP/private.html")
log "static copy of /private ($PAGE_BYTES bytes) at $STATIC_BASE/private (pid $STATIC_PID)"

# ---- interleaved rounds ----------------------------------------------------------------------
# The wrk targets, measured in this order in every round: name, URL, the status every response
# must have, wrk script, one request header (or ""). To measure one more endpoint, add a line
# (its figures are then in the details; add a row to the summary to judge it).
T_NAMES=()
declare -A T_URL T_OK T_SCRIPT T_HEADER
target() { T_NAMES+=("$1"); T_URL[$1]=$2; T_OK[$1]=$3; T_SCRIPT[$1]=$4; T_HEADER[$1]=$5; }
target healthz "$BASE/healthz" 200 "$BENCH/status.lua" ""
target private "$BASE/private" 200 "$BENCH/status.lua" "$COOKIE"
target static "$STATIC_BASE/private" 200 "$BENCH/status.lua" ""
target api/me "$BASE/api/me" 200 "$BENCH/status.lua" "$BEARER"

measure() { # name out-file duration
    local name=$1
    run_wrk "$2" "$THREADS" "$CONNS" "$3" 5 "${T_SCRIPT[$name]}" "${T_URL[$name]}" \
        ${T_HEADER[$name]:+-H "${T_HEADER[$name]}"}
}
file_of() { echo "$TMP/r$1-${2//\//_}.txt"; } # round name → wrk output

log "warm-up: ${WARMUP}s each"
for name in "${T_NAMES[@]}"; do measure "$name" "$TMP/warm-${name//\//_}.txt" "$WARMUP"; done

declare -A RPS P99 BAD
ROUND_LINES=()
for r in $(seq 1 "$ROUNDS"); do
    line="  round $r:"
    for name in "${T_NAMES[@]}"; do
        log "round $r/$ROUNDS: $name ${DURATION}s"
        f=$(file_of "$r" "$name")
        measure "$name" "$f" "$DURATION"
        v=$(bench_field "$f" rps); RPS[$name]+="${v:-0} "
        p=$(bench_field "$f" p99_ms); P99[$name]+="${p:-nan} "
        BAD[$name]=$(( ${BAD[$name]:-0} + $(bad_responses "$f" "${T_OK[$name]}") ))
        line+=$(printf '  %s %s req/s p99 %s ms [%s]' "$name" "${v:-?}" "${p:-?}" "$(status_list "$f")")
    done
    ROUND_LINES+=("$line")
done
# shellcheck disable=SC2086 # the per-round lists are space-separated on purpose
med() { median ${1}; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
HEALTHZ_RPS=$(med "${RPS[healthz]}"); HEALTHZ_P99=$(med "${P99[healthz]}")
PRIVATE_RPS=$(med "${RPS[private]}"); PRIVATE_P99=$(med "${P99[private]}")
STATIC_RPS=$(med "${RPS[static]}"); STATIC_P99=$(med "${P99[static]}")
API_RPS=$(med "${RPS[api/me]}"); API_P99=$(med "${P99[api/me]}")
RATIO=$(ratio "$PRIVATE_RPS" "$HEALTHZ_RPS")
API_RATIO=$(ratio "$API_RPS" "$HEALTHZ_RPS")
H_BAD=${BAD[healthz]}; P_BAD=${BAD[private]}; S_BAD=${BAD[static]}; A_BAD=${BAD[api/me]}
# /private against its own bytes served statically: the ratio of each round, then their median.
read -ra P_LIST <<<"${RPS[private]}"; read -ra S_LIST <<<"${RPS[static]}"
STATIC_RATIOS=()
for i in "${!P_LIST[@]}"; do STATIC_RATIOS+=("$(ratio "${P_LIST[$i]}" "${S_LIST[$i]:-0}")"); done
STATIC_RATIO=$(median "${STATIC_RATIOS[@]}")

# ---- renewals: refresh-token rotation throughput ---------------------------------------------
# Each chain is one session from POST /api/token, renewed over and over on its own connection
# (bench/refresh.lua, one wrk thread per chain): every request is a real rotation (conditional
# update, insert, session and user read, a token signed), the path a browser's refresh cookie
# takes too. A chain that sent a used value would end its session and see 401s.
: >"$TMP/refresh-chains.txt"
for _ in $(seq 1 "$REFRESH_CHAINS"); do
    # (echo: the JSON answer has no final newline, and each chain needs a line of its own)
    { curl -sS --max-time 20 -H 'Content-Type: application/json' \
        -d "{\"username\":\"$USER1\",\"password\":\"$PASSWORD\"}" "$BASE/api/token"; echo; } \
        | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' >>"$TMP/refresh-chains.txt"
done
[ "$(grep -c '^lkr_' "$TMP/refresh-chains.txt")" = "$REFRESH_CHAINS" ] \
    || die "POST /api/token gave no refresh_token for the renewal chains" 4
log "renewals: $REFRESH_CHAINS chains of POST /api/token/refresh for ${DURATION}s"
BENCH_DIR="$BENCH" BENCH_REFRESH_FILE="$TMP/refresh-chains.txt" \
    wrk -t"$REFRESH_CHAINS" -c"$REFRESH_CHAINS" -d"${DURATION}s" --timeout 5s --latency \
    -s "$BENCH/refresh.lua" "$BASE/api/token/refresh" >"$TMP/refresh.txt" 2>&1
RENEW_DUR=$(bench_field "$TMP/refresh.txt" duration_s)
RENEW_OK=$(awk '$1 == "STATUS" && $2 == 200 { n += $3 } END { print n + 0 }' "$TMP/refresh.txt")
RENEW_BAD=$(bad_responses "$TMP/refresh.txt" 200)
RENEW_RATE=$(awk -v n="$RENEW_OK" -v d="${RENEW_DUR:-0}" 'BEGIN { if (d > 0) printf "%.1f", n / d; else print "nan" }')
RENEW_P99=$(bench_field "$TMP/refresh.txt" p99_ms)

HWM_BEFORE_FLOOD=$(proc_kb "$SERVER_PID" VmHWM)

# ---- login flood with /private measured alongside --------------------------------------------
log "login flood: ${FLOOD_CONNS} connections POST /login for ${FLOOD_DURATION}s; /private at ${MONITOR_CONNS} connections alongside"
export BENCH_LOGIN_USER="$USER2" BENCH_LOGIN_PASSWORD="$PASSWORD" \
    BENCH_LOGIN_CSRF="$LOGIN_CSRF" BENCH_LOGIN_COOKIE="$LOGIN_COOKIE"
wrk -t"$FLOOD_THREADS" -c"$FLOOD_CONNS" -d"${FLOOD_DURATION}s" --timeout 15s --latency \
    -s "$BENCH/login.lua" "$BASE/login" >"$TMP/flood-login.txt" 2>&1 &
FLOOD_PID=$!; BG_PIDS+=("$FLOOD_PID")
RSS_MAX=0; RSS_SAMPLES=0
sample_rss() {
    local v
    v=$(proc_kb "$SERVER_PID" VmRSS)
    if [ -n "$v" ]; then
        RSS_SAMPLES=$((RSS_SAMPLES + 1))
        [ "$v" -gt "$RSS_MAX" ] && RSS_MAX=$v
        echo "$(date +%s.%N) $v" >>"$TMP/rss.log"
    fi
}
for _ in 1 2 3 4; do sample_rss; sleep 0.25; done
wrk -t1 -c"$MONITOR_CONNS" -d"${MONITOR_DURATION}s" --timeout 5s --latency \
    -s "$BENCH/status.lua" -H "$COOKIE" "$BASE/private" >"$TMP/flood-private.txt" 2>&1 &
MON_PID=$!; BG_PIDS+=("$MON_PID")
while kill -0 "$FLOOD_PID" 2>/dev/null; do sample_rss; sleep 0.5; done
wait "$FLOOD_PID"; wait "$MON_PID"
BG_PIDS=()
for f in flood-login flood-private; do
    grep -q '^BENCH ' "$TMP/$f.txt" || { log "wrk ($f) produced no summary:"; cat "$TMP/$f.txt" >&2; }
done

SERVER_ALIVE=yes
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    SERVER_ALIVE="NO - the server died during the flood"
elif ! curl -fsS --max-time 5 -o /dev/null "$BASE/healthz"; then
    SERVER_ALIVE="NO - /healthz failed after the flood"
fi
HWM=$(proc_kb "$SERVER_PID" VmHWM)
RSS_END=$(proc_kb "$SERVER_PID" VmRSS)

FLOOD_P99=$(bench_field "$TMP/flood-private.txt" p99_ms)
FLOOD_PRIVATE_RPS=$(bench_field "$TMP/flood-private.txt" rps)
FLOOD_PRIVATE_BAD=$(bad_responses "$TMP/flood-private.txt" 200)
LOGIN_DUR=$(bench_field "$TMP/flood-login.txt" duration_s)
LOGIN_303=$(awk '$1 == "STATUS" && $2 == 303 { n += $3 } END { print n + 0 }' "$TMP/flood-login.txt")
LOGIN_BAD=$(bad_responses "$TMP/flood-login.txt" 303)
LOGIN_RATE=$(awk -v n="$LOGIN_303" -v d="${LOGIN_DUR:-0}" 'BEGIN { if (d > 0) printf "%.1f", n / d; else print "nan" }')
LOGIN_P50=$(bench_field "$TMP/flood-login.txt" p50_ms)
LOGIN_P99=$(bench_field "$TMP/flood-login.txt" p99_ms)
PEAK_MIB=$(mib "${HWM:-0}")

# ---- summary ---------------------------------------------------------------------------------
V_RATIO=$(verdict "$RATIO" ">=" "$T_RATIO")
# Informational since issue 10: tokens carry no email, so /api/me reads the user's row (one
# database query per request) where it used to answer from the token alone.
V_API=info
V_STATIC=$(verdict "$STATIC_RATIO" ">=" "$T_STATIC")
if [ "$A_BAD" -gt 0 ]; then V_API="FAIL*"; fi
V_P99=$(verdict "$PRIVATE_P99" "<" "$T_P99")
V_FLOOD=$(verdict "$FLOOD_P99" "<" "$T_P99_FLOOD")
V_RSS=$(verdict "$PEAK_MIB" "<" "$T_RSS")
# A /private figure only counts if every response was a 200 (a 303 to /login is a failure).
if [ "$P_BAD" -gt 0 ]; then V_RATIO="FAIL*"; V_P99="FAIL*"; V_STATIC="FAIL*"; fi
if [ "$S_BAD" -gt 0 ]; then V_STATIC="FAIL*"; fi
if [ "$FLOOD_PRIVATE_BAD" -gt 0 ]; then V_FLOOD="FAIL*"; fi
V_LOGIN=info
[ "$LOGIN_BAD" -gt 0 ] && V_LOGIN="WARN*"
[ "$HWM" = "" ] && V_RSS="FAIL"

GIT_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]) && GIT_REV="$GIT_REV (uncommitted changes)"

row() { printf '%-44s %16s %12s  %s\n' "$@"; }
{
    echo "latchkey benchmark - $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit $GIT_REV; $(nproc) cores; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS interleaved rounds (medians); flood -t$FLOOD_THREADS -c$FLOOD_CONNS ${FLOOD_DURATION}s, /private -t1 -c$MONITOR_CONNS alongside"
    echo
    row "metric" "measured" "target" "result"
    row "--------------------------------------------" "----------------" "------------" "------"
    row "GET /healthz req/s (c$CONNS, median)" "$HEALTHZ_RPS" "-" "-"
    row "GET /private req/s (c$CONNS, median)" "$PRIVATE_RPS" "-" "-"
    row "private / healthz throughput ratio" "$RATIO" ">= $T_RATIO" "$V_RATIO"
    row "same page from memory req/s (c$CONNS, median)" "$STATIC_RPS" "-" "-"
    row "private / static page ratio (median)" "$STATIC_RATIO" ">= $T_STATIC" "$V_STATIC"
    row "GET /private p99 (c$CONNS, median)" "$PRIVATE_P99 ms" "< $T_P99 ms" "$V_P99"
    row "GET /api/me (Bearer) req/s (c$CONNS, median)" "$API_RPS" "-" "-"
    row "renewals/s (refresh rotation, $REFRESH_CHAINS chains)" "$RENEW_RATE" "-" "$( [ "$RENEW_BAD" -gt 0 ] && echo "WARN* $RENEW_BAD not 200" || echo info)"
    row "renewal p99" "$RENEW_P99 ms" "-" "info"
    row "api/me / healthz throughput ratio (reads the row)" "$API_RATIO" "-" "$V_API"
    row "GET /api/me p99 (c$CONNS, median)" "$API_P99 ms" "-" "-"
    row "GET /private p99 during login flood (c$MONITOR_CONNS)" "${FLOOD_P99:-nan} ms" "< $T_P99_FLOOD ms" "$V_FLOOD"
    row "login flood throughput (303s per second)" "$LOGIN_RATE /s" "-" "$V_LOGIN"
    row "peak RSS (VmHWM after the flood)" "$PEAK_MIB MiB" "< $T_RSS MiB" "$V_RSS"
    echo
    echo "details:"
    printf '%s\n' "${ROUND_LINES[@]}"
    echo "  /private ÷ static page per round: ${STATIC_RATIOS[*]} (page: $PAGE_BYTES bytes of HTML, same status and headers)"
    echo "  /healthz p99 (median): $HEALTHZ_P99 ms; static page p99 (median): $STATIC_P99 ms"
    echo "  non-200 or failed /healthz responses: $H_BAD; /private: $P_BAD; static page: $S_BAD; /api/me: $A_BAD"
    echo "  during the flood: /private $FLOOD_PRIVATE_RPS req/s, statuses [$(status_list "$TMP/flood-private.txt")], failures $FLOOD_PRIVATE_BAD"
    echo "  login flood: $(bench_field "$TMP/flood-login.txt" requests) responses in ${LOGIN_DUR:-?} s, statuses [$(status_list "$TMP/flood-login.txt")], not-303 or failed: $LOGIN_BAD"
    echo "  login latency under the flood: p50 ${LOGIN_P50:-?} ms, p99 ${LOGIN_P99:-?} ms"
    echo "  RSS: $(mib "$RSS_START") MiB after start-up, VmHWM $(mib "$HWM_BEFORE_FLOOD") MiB before the flood," \
        "max VmRSS $(mib "$RSS_MAX") MiB during it ($RSS_SAMPLES samples), $(mib "$RSS_END") MiB after; VmHWM $PEAK_MIB MiB"
    echo "  server alive after the flood: $SERVER_ALIVE"
    if [ "$P_BAD" -gt 0 ] || [ "$FLOOD_PRIVATE_BAD" -gt 0 ]; then
        echo "  * /private did not answer 200 every time, so its figures do not measure the page"
    fi
    if [ "$LOGIN_BAD" -gt 0 ]; then
        echo "  * some sign-ins did not answer 303 (see the statuses above)"
    fi
} >"$TMP/summary.txt"

echo
cat "$TMP/summary.txt"
mkdir -p "$(dirname "$SUMMARY_FILE")" && cp "$TMP/summary.txt" "$SUMMARY_FILE" && log "summary written to $SUMMARY_FILE"
# When wrk stops it drops its connections, in-flight flood sign-ins included, and Rocket logs a
# line for each; count those, show anything else.
NOISE='Remote left: client disconnect|Connection failed: connection closed before message completed'
LEFT=$(grep -cE "$NOISE" "$TMP/server.log")
grep -vE "$NOISE" "$TMP/server.log" >"$TMP/server-other.log"
[ "$LEFT" -gt 0 ] && log "server log: $LEFT lines about connections wrk dropped when it stopped (expected)"
if [ -s "$TMP/server-other.log" ]; then
    log "server log (last 20 other lines):"
    tail -n 20 "$TMP/server-other.log" | sed 's/^/    /' >&2
fi
exit 0
