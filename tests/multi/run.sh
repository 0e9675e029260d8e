#!/usr/bin/env bash
# Two instances of latchkey on one PostgreSQL database behind nginx (round robin), checked through
# the balancer: every request succeeds on either instance; sign-out and demotion are
# refused on both within a second; a refresh value replayed on one instance after it was replaced
# on the other ends the session on both (API refresh tokens and browser refresh cookies); lockout
# counts are shared; and a key rotation rolled out while traffic runs fails no request. Bounded:
# fixed-length load, only 127.0.0.1. Prints "N passed, M failed" and exits non-zero on any failure.
# It runs the debug binary, which `cargo test` has already built: CI compiles nothing twice.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

PG_SERVER_URL="${LATCHKEY_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PASSWORD='correct-Horse-battery-77'
PASSED=0; FAILED=0
TMP=$(mktemp -d /tmp/latchkey-multi.XXXXXX)
DB="latchkey_multi_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PIDS=()

log() { printf '[multi] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '  ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

cleanup() {
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for _ in $(seq 1 50); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    psql "$PG_SERVER_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- set-up ---------------------------------------------------------------------------------
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
log "cargo build --bin latchkey"
cargo build -q --bin latchkey || exit 2
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}   # where cargo put the binary, as bench/run.sh finds it
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/debug/latchkey"

psql "$PG_SERVER_URL" -qc "CREATE DATABASE $DB" >/dev/null || exit 2
DB_URL="${PG_SERVER_URL%/*}/$DB"
# A short refresh grace (the default is 10 s), so the replay checks wait for it only briefly.
# Admins sign in with a password alone here: these checks are about sessions across instances
# (two-factor for admins, the default, has its own app and browser tests).
GRACE=2
export DATABASE_URL="$DB_URL" LATCHKEY_KEY_FILE="$TMP/keys.json" ROCKET_LOG_LEVEL=normal \
    LATCHKEY_COOKIE_SECURE=false ROCKET_IP_HEADER=X-Real-IP LATCHKEY_LOGIN_PER_IP_PER_MINUTE=1000 \
    LATCHKEY_REFRESH_GRACE_SECS=$GRACE LATCHKEY_ADMIN_REQUIRES_TWO_FACTOR=false
"$BIN" keys rotate >/dev/null || exit 2
"$BIN" migrate >/dev/null || exit 2
printf '%s\n' "$PASSWORD" | "$BIN" create-admin --username chief --email chief@example.com >/dev/null || exit 2
printf '%s\n' "$PASSWORD" | "$BIN" create-admin --username deputy --email deputy@example.com >/dev/null || exit 2

P1=$(free_port); P2=$(free_port); LB=$(free_port)
for spec in "a:$P1" "b:$P2"; do
    LATCHKEY_INSTANCE_NAME="${spec%%:*}" ROCKET_PORT="${spec##*:}" ROCKET_ADDRESS=127.0.0.1 \
        "$BIN" serve >"$TMP/instance-${spec%%:*}.log" 2>&1 &
    PIDS+=($!)
done
# Both instances must answer before nginx starts: a request nginx sends to an instance that is
# not up yet marks it failed for a while, and everything would go to the other one.
for _ in $(seq 1 150); do
    a=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/readyz")
    b=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/readyz")
    [ "$a$b" = 200200 ] && break
    sleep 0.2
done
[ "$a$b" = 200200 ] || { log "instances did not come up"; tail -5 "$TMP"/instance-*.log; exit 2; }
mkdir -p "$TMP/logs"
sed -e "s/@P1@/$P1/; s/@P2@/$P2/; s/@LB@/$LB/; s#@TMP@#$TMP#g" "$ROOT/tests/multi/nginx.conf" >"$TMP/nginx.conf"
nginx -p "$TMP" -c "$TMP/nginx.conf" || exit 2
BASE="http://127.0.0.1:$LB"
for _ in $(seq 1 50); do
    l=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")
    [ "$l" = 200 ] && break
    sleep 0.1
done
[ "$l" = 200 ] || { log "the balancer did not come up"; cat "$TMP/logs/error.log"; exit 2; }
log "instances a (:$P1) and b (:$P2) behind nginx at $BASE, database $DB"

# ---- helpers --------------------------------------------------------------------------------
csrf_of() { grep -o 'name="csrf_token" value="[^"]*"' "$1" | head -1 | sed 's/.*value="//; s/"$//'; }
# sign_in JAR USERNAME [PASSWORD] -> prints the HTTP status of POST /login
sign_in() {
    local jar=$1 user=$2 pw=${3:-$PASSWORD}
    curl -s -c "$jar" -b "$jar" -o "$jar.html" "$BASE/login"
    curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' \
        --data-urlencode "username=$user" --data-urlencode "password=$pw" \
        --data-urlencode "csrf_token=$(csrf_of "$jar.html")" "$BASE/login"
}
session_of() { awk '$6 == "latchkey" { print $7 }' "$1"; }
# status_on INSTANCE_PORT PATH COOKIE
status_on() { curl -s -o /dev/null -w '%{http_code}' -H "Cookie: latchkey=$3" "http://127.0.0.1:$1$2"; }
# refused_within_1s PATH COOKIE EXPECTED: both instances answer EXPECTED for a request sent >= 1 s later
refused_within_1s() {
    sleep 1
    [ "$(status_on "$P1" "$1" "$2")" = "$3" ] && [ "$(status_on "$P2" "$1" "$2")" = "$3" ]
}
# refused_within_1s_bearer TOKEN EXPECTED: GET /api/me with the Bearer TOKEN answers EXPECTED on
# both instances for a request sent >= 1 s later
refused_within_1s_bearer() {
    sleep 1
    [ "$(me_on "$P1" "$1")" = "$2" ] && [ "$(me_on "$P2" "$1")" = "$2" ]
}

# ---- any instance serves any request --------------------------------------------------------
code=$(sign_in "$TMP/u.jar" chief)
check "sign-in through the balancer answers 303" [ "$code" = 303 ]
TOKEN=$(session_of "$TMP/u.jar")
: >"$TMP/instances"
ok=0
for _ in $(seq 1 20); do
    out=$(curl -s -D - -o /dev/null -H "Cookie: latchkey=$TOKEN" "$BASE/private")
    [ "$(printf '%s' "$out" | head -1 | awk '{print $2}')" = 200 ] && ok=$((ok + 1))
    printf '%s' "$out" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-instance" { print $2 }' >>"$TMP/instances"
done
check "20 requests for /private through the balancer all answer 200" [ "$ok" = 20 ]
check "requests landed on both instances ($(sort "$TMP/instances" | uniq -c | tr -s ' ' | tr '\n' ';'))" \
    [ "$(sort -u "$TMP/instances" | tr '\n' ' ')" = "a b " ]

# ---- sign-out is refused on both within a second --------------------------------------------
curl -s -b "$TMP/u.jar" -o "$TMP/page.html" "$BASE/private"
code=$(curl -s -b "$TMP/u.jar" -c "$TMP/u.jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "csrf_token=$(csrf_of "$TMP/page.html")" "$BASE/logout")
check "sign-out answers 303" [ "$code" = 303 ]
check "the signed-out token is refused by both instances within 1 s" refused_within_1s /private "$TOKEN" 303

# ---- demotion is refused on both within a second --------------------------------------------
sign_in "$TMP/deputy.jar" deputy >/dev/null
DEPUTY=$(session_of "$TMP/deputy.jar")
check "the deputy opens the admin panel on both instances" \
    [ "$(status_on "$P1" /admin "$DEPUTY")$(status_on "$P2" /admin "$DEPUTY")" = 200200 ]
sign_in "$TMP/chief.jar" chief >/dev/null
curl -s -b "$TMP/chief.jar" -o "$TMP/admin.html" "$BASE/admin?q=deputy"
DEPUTY_ID=$(grep -o '/admin/users/[0-9a-f-]*/role' "$TMP/admin.html" | head -1 | cut -d/ -f4)
code=$(curl -s -b "$TMP/chief.jar" -o /dev/null -w '%{http_code}' --data-urlencode "role=user" \
    --data-urlencode "csrf_token=$(csrf_of "$TMP/admin.html")" "$BASE/admin/users/$DEPUTY_ID/role")
check "the chief demotes the deputy (303)" [ "$code" = 303 ]
check "the demoted deputy loses the panel on both instances within 1 s" refused_within_1s /admin "$DEPUTY" 303

# ---- a replayed refresh token ends the session on every instance (API) ----------------------
# json_field FILE KEY -> the string or number KEY of the JSON object in FILE (empty when absent)
json_field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null; }
# api_on PORT PATH JSON OUT -> prints the HTTP status of the POST; the body goes to OUT
api_on() { curl -s -o "$4" -w '%{http_code}' -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:$1$2"; }
# me_on PORT ACCESS_TOKEN -> the HTTP status of GET /api/me with that Bearer token
me_on() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "http://127.0.0.1:$1/api/me"; }
# past_grace SINCE: waits until GRACE seconds and a half have passed since SINCE (date +%s.%N)
past_grace() { sleep "$(python3 -c "import sys,time; print(max(0.0, float(sys.argv[1]) + $GRACE + 0.5 - time.time()))" "$1")"; }
reuse_events() { psql "$DB_URL" -tAc "SELECT count(*) FROM audit_events WHERE kind = 'refresh_reuse'"; }

code=$(api_on "$P1" /api/token "{\"username\":\"chief\",\"password\":\"$PASSWORD\"}" "$TMP/t0.json")
R0=$(json_field "$TMP/t0.json" refresh_token)
good=0; [ "$code" = 200 ] && [ "${R0#lkr_}" != "$R0" ] && good=1
check "a password grant on instance a answers 200 with a refresh token ($code)" [ "$good" = 1 ]
code=$(api_on "$P1" /api/token/refresh "{\"refresh_token\":\"$R0\"}" "$TMP/t1.json")
RENEWED_AT=$(date +%s.%N)
AT1=$(json_field "$TMP/t1.json" access_token); R1=$(json_field "$TMP/t1.json" refresh_token)
good=0; [ "$code" = 200 ] && [ -n "$AT1" ] && [ -n "$R1" ] && [ "$R1" != "$R0" ] && good=1
check "instance a renews it: 200, a new access token and a new refresh token ($code)" [ "$good" = 1 ]
code=$(api_on "$P2" /api/token/refresh "{\"refresh_token\":\"$R0\"}" "$TMP/t2.json")
answer="$code $(json_field "$TMP/t2.json" error)"
check "the replaced refresh token within the grace on instance b: 401 invalid_grant ($answer)" \
    [ "$answer" = "401 invalid_grant" ]
check "within the grace the session goes on: the new access token still works on both instances after 1 s" \
    refused_within_1s_bearer "$AT1" 200
past_grace "$RENEWED_AT"
before=$(reuse_events)
code=$(api_on "$P2" /api/token/refresh "{\"refresh_token\":\"$R0\"}" "$TMP/t3.json")
answer="$code $(json_field "$TMP/t3.json" error)"
check "the replaced refresh token after the grace on instance b: 401 invalid_grant ($answer)" \
    [ "$answer" = "401 invalid_grant" ]
check "the new access token is refused on both instances within 1 s" refused_within_1s_bearer "$AT1" 401
code=$(api_on "$P1" /api/token/refresh "{\"refresh_token\":\"$R1\"}" "$TMP/t4.json")
check "the new refresh token is refused on instance a too: the whole session ended ($code)" [ "$code" = 401 ]
check "one refresh_reuse audit event ($before -> $(reuse_events))" [ "$(reuse_events)" = $((before + 1)) ]

# ---- a replayed refresh cookie ends the browser session on every instance -------------------
cookie_of() { awk -v name="$2" '$6 == name { print $7 }' "$1"; }
# set_cookie_of HEADERS NAME -> the value a response's Set-Cookie gives cookie NAME
set_cookie_of() { tr -d '\r' <"$1" | awk -v name="$2" 'tolower($1) == "set-cookie:" { split($2, kv, "="); if (kv[1] == name) { sub(/^[^=]*=/, "", $2); sub(/;.*/, "", $2); print $2 } }'; }
# page_on PORT JAR OUT -> GET /private with the cookies of JAR, following redirects as a browser
# does (cookies set and removed on the way); prints the final path and query, the page goes to OUT
page_on() {
    curl -s -L -b "$2" -c "$2" -o "$3" -w '%{url_effective}' "http://127.0.0.1:$1/private" |
        sed 's#^http://[^/]*##'
}
# jar_of FILE NAME=VALUE... -> a cookie jar holding just these session cookies for 127.0.0.1
jar_of() {
    local file=$1; shift
    : >"$file"
    for kv in "$@"; do printf '127.0.0.1\tFALSE\t/\tFALSE\t0\t%s\t%s\n' "${kv%%=*}" "${kv#*=}" >>"$file"; done
}
STOLEN_MESSAGE='Your session was ended to protect your account. Please sign in again.'
code=$(BASE="http://127.0.0.1:$P1" sign_in "$TMP/c.jar" chief)
C0=$(cookie_of "$TMP/c.jar" latchkey_refresh)
good=0; [ "$code" = 303 ] && [ "${C0#lkr_}" != "$C0" ] && good=1
check "a browser sign-in on instance a sets a refresh cookie ($code)" [ "$good" = 1 ]
# The access cookie left out, as when it has expired: instance a renews from the refresh cookie.
code=$(curl -s -D "$TMP/renew.h" -o /dev/null -w '%{http_code}' -H "Cookie: latchkey_refresh=$C0" \
    "http://127.0.0.1:$P1/private")
RENEWED_AT=$(date +%s.%N)
A1=$(set_cookie_of "$TMP/renew.h" latchkey); C1=$(set_cookie_of "$TMP/renew.h" latchkey_refresh)
good=0; [ "$code" = 200 ] && [ -n "$A1" ] && [ -n "$C1" ] && [ "$C1" != "$C0" ] && good=1
check "instance a renews from the refresh cookie alone and rotates it ($code)" [ "$good" = 1 ]
past_grace "$RENEWED_AT"
jar_of "$TMP/thief.jar" "latchkey_refresh=$C0"
where=$(page_on "$P2" "$TMP/thief.jar" "$TMP/thief.html")
check "the old refresh cookie replayed on instance b after the grace lands on sign-in ($where)" \
    [ "$where" = "/login?next=/private" ]
check "... and the sign-in page says why" grep -qF "$STOLEN_MESSAGE" "$TMP/thief.html"
sleep 1
jar_of "$TMP/owner.jar" "latchkey=$A1" "latchkey_refresh=$C1"
where=$(page_on "$P1" "$TMP/owner.jar" "$TMP/owner.html")
check "within 1 s the owner's next page on instance a is the sign-in page ($where)" \
    [ "$where" = "/login?next=/private" ]
check "... saying the session was ended to protect the account" grep -qF "$STOLEN_MESSAGE" "$TMP/owner.html"

# ---- lockout counts are shared ---------------------------------------------------------------
statuses=""
for _ in 1 2 3 4 5; do statuses="$statuses$(sign_in "$TMP/lock.jar" chief 'Wrong-password-123') "; done
check "five failures through the balancer end in a lockout ($statuses)" [ "$statuses" = "422 422 422 422 429 " ]
for port in "$P1" "$P2"; do
    curl -s -c "$TMP/l$port.jar" -o "$TMP/l$port.html" "http://127.0.0.1:$port/login"
    code=$(curl -s -b "$TMP/l$port.jar" -o /dev/null -w '%{http_code}' --data-urlencode "username=chief" \
        --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$(csrf_of "$TMP/l$port.html")" \
        "http://127.0.0.1:$port/login")
    check "instance on :$port refuses the locked account even with the right password ($code)" [ "$code" = 429 ]
done
psql "$DB_URL" -qc "DELETE FROM login_attempts" >/dev/null

# ---- key rotation with traffic running: zero failed requests ---------------------------------
sign_in "$TMP/r.jar" deputy >/dev/null
OLD=$(session_of "$TMP/r.jar")
OLD_KID=$(printf '%s' "$OLD" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null | grep -o '"kid":"[^"]*"')
wrk -t1 -c4 -d6s -s "$ROOT/bench/status.lua" -H "Cookie: latchkey=$OLD" "$BASE/private" >"$TMP/wrk.txt" 2>&1 &
WRK=$!
sleep 2
"$BIN" keys rotate >/dev/null
sleep 1.5
sign_in "$TMP/n.jar" deputy >/dev/null
NEW=$(session_of "$TMP/n.jar")
NEW_KID=$(printf '%s' "$NEW" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null | grep -o '"kid":"[^"]*"')
wait "$WRK"
good=$(awk '/^STATUS/ && $2 == 200 { s += $3 } END { print s + 0 }' "$TMP/wrk.txt")
bad=$(awk '/^STATUS/ && $2 != 200 { s += $3 } END { print s + 0 }' "$TMP/wrk.txt")
errors=$(grep -o 'err_[a-z]*=[0-9]*' "$TMP/wrk.txt" | awk -F= '{ s += $2 } END { print s + 0 }')
new_kid_differs() { [ -n "$NEW_KID" ] && [ "$NEW_KID" != "$OLD_KID" ]; }
no_failures() { [ "$good" -gt 0 ] && [ "$bad" = 0 ] && [ "$errors" = 0 ]; }
check "a new sign-in after the rotation uses the new key ($OLD_KID -> $NEW_KID)" new_kid_differs
check "the old token still works on both instances" \
    [ "$(status_on "$P1" /private "$OLD")$(status_on "$P2" /private "$OLD")" = 200200 ]
check "zero failed requests during the rotation ($good answered 200, $bad other, $errors socket errors)" no_failures
for name in a b; do
    check "instance $name logged the key reload" grep -q "signing keys reloaded" "$TMP/instance-$name.log"
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
