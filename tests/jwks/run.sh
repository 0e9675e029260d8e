#!/usr/bin/env bash
# Proof with clients nobody here wrote: for an EdDSA and then an ES256 key file, start the debug
# binary on a fresh SQLite database, sign a user up through the form, get a token from
# POST /api/token, then
#   - tests/jwks/verify.py: PyJWT's PyJWKClient fetches /.well-known/jwks.json and verifies the
#     token (algorithm, issuer, audience), and refuses it once expired (freezegun) or altered;
#   - examples/downstream (a second Rocket service that knows only the JWKS URL) answers 200 to
#     the token and 401 without one or to a forged one, and after `keys rotate` takes the new
#     key's token (fetching the set again) as well as the old one.
# Needs PyJWT with cryptography, and freezegun (.ci/run installs them pinned). Prints what it
# checked and "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$ROOT/$CARGO_TARGET_DIR" ;; esac
PASSWORD='correct-Horse-battery-77'
PASSED=0; FAILED=0
TMP=$(mktemp -d /tmp/latchkey-jwks.XXXXXX)
PIDS=()

log() { printf '[jwks] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '  ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

stop() {
    for pid in "$@"; do kill "$pid" 2>/dev/null; done
    for pid in "$@"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
}
cleanup() { stop "${PIDS[@]}"; rm -rf "$TMP"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL: until it answers 200, at most 20 s
    for _ in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
csrf_of() { grep -o 'name="csrf_token" value="[^"]*"' "$1" | head -1 | sed 's/.*value="//; s/"$//'; }

python3 -c 'import jwt, cryptography, freezegun' 2>/dev/null ||
    { log "needs PyJWT, cryptography and freezegun: python3 -m pip install 'PyJWT[crypto]' freezegun"; exit 2; }
log "cargo build (latchkey and examples/downstream)"
cargo build -q --bin latchkey --example downstream || exit 2
BIN="$CARGO_TARGET_DIR/debug/latchkey"
DOWNSTREAM="$CARGO_TARGET_DIR/debug/examples/downstream"

for ALG in EdDSA ES256; do
    DIR="$TMP/$ALG"; mkdir -p "$DIR"
    PORT=$(free_port); BASE="http://127.0.0.1:$PORT"
    log "$ALG: latchkey on $BASE"
    # Address verification off: sign-up then signs the new account in (303), as this script
    # expects; with it on (the default, optional) sign-up answers "Check your email" instead.
    (
        export DATABASE_URL="$DIR/latchkey.db" LATCHKEY_KEY_FILE="$DIR/keys.json" \
            LATCHKEY_JWT_ALGORITHM="$ALG" LATCHKEY_CREATE_KEY_FILE=false LATCHKEY_COOKIE_SECURE=false \
            LATCHKEY_ARGON2_MEMORY_KIB=1024 LATCHKEY_ARGON2_ITERATIONS=1 \
            LATCHKEY_EMAIL_VERIFICATION=off \
            ROCKET_PORT="$PORT" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=critical
        unset LATCHKEY_JWT_SECRET
        "$BIN" keys rotate --alg "$ALG" >"$DIR/rotate.txt" || exit 2
        exec "$BIN" serve >"$DIR/server.log" 2>&1
    ) &
    SERVER=$!; PIDS+=("$SERVER")
    if ! wait_for "$BASE/readyz"; then
        fail "$ALG: latchkey came up"; cat "$DIR/rotate.txt" 2>/dev/null; tail -5 "$DIR/server.log"; continue
    fi
    check "$ALG: keys rotate --alg $ALG made the key ($(head -1 "$DIR/rotate.txt"))" grep -q "new $ALG signing key" "$DIR/rotate.txt"

    # Sign up through the form, as a person would, then trade the password for a token.
    curl -s -c "$DIR/jar" -b "$DIR/jar" -o "$DIR/signup.html" "$BASE/signup"
    code=$(curl -s -c "$DIR/jar" -b "$DIR/jar" -o /dev/null -w '%{http_code}' \
        --data-urlencode "username=pia" --data-urlencode "email=pia@example.com" \
        --data-urlencode "password=$PASSWORD" --data-urlencode "password_confirm=$PASSWORD" \
        --data-urlencode "csrf_token=$(csrf_of "$DIR/signup.html")" "$BASE/signup")
    check "$ALG: sign-up through the form answers 303" [ "$code" = 303 ]
    TOKEN=$(curl -sf -X POST "$BASE/api/token" -H 'Content-Type: application/json' \
        -d "{\"username\": \"pia\", \"password\": \"$PASSWORD\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    check "$ALG: POST /api/token gave an access token" [ -n "$TOKEN" ]
    headers=$(curl -s -D - -o "$DIR/jwks.json" "$BASE/.well-known/jwks.json" | tr -d '\r')
    check "$ALG: the JWKS is JSON ($(printf '%s' "$headers" | grep -i '^content-type' | head -1))" \
        grep -qi '^content-type: application/json' <<<"$headers"
    check "$ALG: the JWKS is cacheable ($(printf '%s' "$headers" | grep -i '^cache-control' | head -1))" \
        grep -qi '^cache-control: public, max-age=[1-9]' <<<"$headers"

    log "$ALG: PyJWT"
    if python3 tests/jwks/verify.py "$BASE" "$TOKEN" "$ALG"; then
        pass "$ALG: PyJWT verified the token through the JWKS and refused the expired and altered ones"
    else
        fail "$ALG: PyJWT (see the lines above)"
    fi

    DPORT=$(free_port); DBASE="http://127.0.0.1:$DPORT"
    JWKS_URL="$BASE/.well-known/jwks.json" ROCKET_PORT="$DPORT" ROCKET_ADDRESS=127.0.0.1 \
        ROCKET_LOG_LEVEL=critical "$DOWNSTREAM" >"$DIR/downstream.log" 2>&1 &
    DOWN=$!; PIDS+=("$DOWN")
    if ! wait_for "$DBASE/healthz"; then
        fail "$ALG: examples/downstream came up"; tail -5 "$DIR/downstream.log"; stop "$SERVER"; continue
    fi
    log "$ALG: examples/downstream on $DBASE"
    code=$(curl -s -o "$DIR/hello.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$DBASE/hello")
    check "$ALG: downstream answers 200 to the fresh token ($(cat "$DIR/hello.json"))" \
        [ "$code" = 200 ]
    code=$(curl -s -o /dev/null -w '%{http_code}' "$DBASE/hello")
    check "$ALG: downstream answers 401 without a token" [ "$code" = 401 ]
    # Forged: the claims changed (another sub, admin role), the signature kept.
    FORGED=$(python3 - "$TOKEN" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims.update(sub="someone-else", role="admin")
print(h + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + s)
PY
)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FORGED" "$DBASE/hello")
    check "$ALG: downstream answers 401 to a forged token" [ "$code" = 401 ]
    # alg none, naming the real kid: no signature at all.
    NONE=$(python3 - "$TOKEN" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split(".")
header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
header["alg"] = "none"
print(base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode() + "." + p + ".")
PY
)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $NONE" "$DBASE/hello")
    check "$ALG: downstream answers 401 to the token re-headed as alg none" [ "$code" = 401 ]
    code=$(curl -s -o /dev/null -w '%{http_code}' "$DBASE/hello?token=$TOKEN")
    check "$ALG: downstream ignores a token in the query string (401)" [ "$code" = 401 ]

    # A key rotation: latchkey signs with the new key within a second; the downstream service
    # fetches the set again for the new kid (not more often than every 2 s) and keeps the old
    # key, which is within its grace.
    OLD_KID=$(python3 -c 'import jwt, sys; print(jwt.get_unverified_header(sys.argv[1])["kid"])' "$TOKEN")
    LATCHKEY_KEY_FILE="$DIR/keys.json" LATCHKEY_JWT_ALGORITHM="$ALG" "$BIN" keys rotate >/dev/null
    NEW_KID=$OLD_KID
    for _ in $(seq 1 50); do
        NEW=$(curl -sf -X POST "$BASE/api/token" -H 'Content-Type: application/json' \
            -d "{\"username\": \"pia\", \"password\": \"$PASSWORD\"}" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
        NEW_KID=$(python3 -c 'import jwt, sys; print(jwt.get_unverified_header(sys.argv[1])["kid"])' "$NEW")
        [ "$NEW_KID" != "$OLD_KID" ] && break
        sleep 0.2
    done
    check "$ALG: after keys rotate, latchkey signs with a new kid ($OLD_KID -> $NEW_KID)" [ "$NEW_KID" != "$OLD_KID" ]
    code=000
    for _ in $(seq 1 50); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $NEW" "$DBASE/hello")
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    check "$ALG: downstream accepts the new key's token within 5 s ($code)" [ "$code" = 200 ]
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$DBASE/hello")
    check "$ALG: downstream still accepts the old key's token during its grace ($code)" [ "$code" = 200 ]
    stop "$DOWN" "$SERVER"
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
