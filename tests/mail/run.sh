#!/usr/bin/env bash
# Mail through a third-party SMTP server process: aiosmtpd (PyPI) run standalone, requiring
# STARTTLS (its default: MAIL before STARTTLS is refused) with a self-signed certificate that
# latchkey is told to trust (smtp_ca_file), delivering into a local Maildir. Two latchkey instances
# share one PostgreSQL database. Mail is queued (`latchkey invite`) while the server is down; the
# instances try and fail; the server starts; each mail arrives exactly once, and its link opens
# the invitation on the other instance. The cargo tests use an in-process server
# (tests/common/smtp.rs); this is the same path against an independent implementation.
# Prints "N passed, M failed" and exits non-zero on any failure. Runs the debug binary.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

PG_SERVER_URL="${LATCHKEY_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PASSED=0; FAILED=0
TMP=$(mktemp -d /tmp/latchkey-mail.XXXXXX)
DB="latchkey_multi_mail_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PIDS=()

log() { printf '[mail] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '  ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

cleanup() {
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
sql() { psql "$DB_URL" -tAc "$1"; }

python3 -c 'import aiosmtpd, cryptography' 2>/dev/null || {
    log "needs aiosmtpd and cryptography (pip install aiosmtpd==1.4.6 cryptography)"; exit 2; }
log "cargo build --bin latchkey"
cargo build -q --bin latchkey || exit 2
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/debug/latchkey"

# A self-signed certificate for 127.0.0.1 (python's cryptography: no openssl binary needed).
python3 - "$TMP" <<'PY' || exit 2
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY

psql "$PG_SERVER_URL" -qc "CREATE DATABASE $DB" >/dev/null || exit 2
DB_URL="${PG_SERVER_URL%/*}/$DB"
SP=$(free_port); P1=$(free_port); P2=$(free_port)
export DATABASE_URL="$DB_URL" LATCHKEY_KEY_FILE="$TMP/keys.json" ROCKET_LOG_LEVEL=normal \
    LATCHKEY_COOKIE_SECURE=false LATCHKEY_PUBLIC_ORIGIN="http://localhost:$P1" \
    LATCHKEY_SMTP_URL="smtp://127.0.0.1:$SP?tls=required" LATCHKEY_SMTP_CA_FILE="$TMP/cert.pem" \
    LATCHKEY_MAIL_FROM="latchkey CI <ci@latchkey.test>" LATCHKEY_MAIL_RETRY_SECS=1
"$BIN" keys rotate >/dev/null || exit 2
"$BIN" migrate >/dev/null || exit 2
for spec in "a:$P1" "b:$P2"; do
    LATCHKEY_INSTANCE_NAME="${spec%%:*}" ROCKET_PORT="${spec##*:}" ROCKET_ADDRESS=127.0.0.1 \
        "$BIN" serve >"$TMP/instance-${spec%%:*}.log" 2>&1 &
    PIDS+=($!)
done
for _ in $(seq 1 150); do
    a=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/readyz")
    b=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/readyz")
    [ "$a$b" = 200200 ] && break
    sleep 0.2
done
[ "$a$b" = 200200 ] || { log "instances did not come up"; tail -5 "$TMP"/instance-*.log; exit 2; }

# ---- mail queued while the mail server is down ----------------------------------------------
log "the mail server is down; two invitations are queued"
LINK1=$("$BIN" invite --email first@example.com | grep -o 'http://[^ ]*/invite/[A-Za-z0-9_-]*' | head -1)
LINK2=$("$BIN" invite --email second@example.com --role admin | grep -o 'http://[^ ]*/invite/[A-Za-z0-9_-]*' | head -1)
check "the CLI printed both links" test -n "$LINK1" -a -n "$LINK2"
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM outbox WHERE attempts >= 1 AND sent_at IS NULL AND last_error IS NOT NULL")" = 2 ] && break
    sleep 0.2
done
check "both mails tried, failed and still queued" \
    test "$(sql "SELECT count(*) FROM outbox WHERE attempts >= 1 AND sent_at IS NULL AND failed_at IS NULL")" = 2
check "the waiting bodies are sealed (no link in the table)" \
    test "$(sql "SELECT count(*) FROM outbox WHERE body LIKE '%invite/%' OR body NOT LIKE 'v1.%'")" = 0

# ---- the server comes up ----------------------------------------------------------------------
log "aiosmtpd starts on 127.0.0.1:$SP (STARTTLS required)"
mkdir -p "$TMP/maildir/tmp" "$TMP/maildir/new" "$TMP/maildir/cur"
python3 -m aiosmtpd -n -l "127.0.0.1:$SP" --tlscert "$TMP/cert.pem" --tlskey "$TMP/key.pem" \
    -c aiosmtpd.handlers.Mailbox "$TMP/maildir" >"$TMP/aiosmtpd.log" 2>&1 &
PIDS+=($!)
count() { find "$TMP/maildir/new" -type f 2>/dev/null | wc -l; }
for _ in $(seq 1 300); do [ "$(count)" -ge 2 ] && break; sleep 0.2; done
sleep 4   # time for a second delivery, if either instance would make one
check "each mail delivered exactly once (2 in the Maildir)" test "$(count)" = 2
check "the outbox marks both sent and keeps no body" \
    test "$(sql "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND body = ''")" = 2
check "the instances logged failed attempts before the server came up" \
    grep -q "not sent, attempt" "$TMP/instance-a.log" "$TMP/instance-b.log"

# The delivered messages: recipient, subject, and the link, which must be the one the CLI printed.
python3 - "$TMP/maildir" "$LINK1" "$LINK2" >"$TMP/parsed" 2>&1 <<'PY'
import mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
want = {"first@example.com": sys.argv[2], "second@example.com": sys.argv[3]}
seen = {}
for msg in box:
    to = msg["To"].strip()
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode(text.get_content_charset() or "utf-8")
    assert msg["X-MailFrom"] == "ci@latchkey.test", msg["X-MailFrom"]
    assert "<ci@latchkey.test>" in msg["From"], msg["From"]
    assert msg["Message-ID"].endswith("@latchkey.test>"), msg["Message-ID"]
    assert any(p.get_content_type() == "text/html" for p in msg.walk()), "no HTML part"
    assert want[to] in body, (to, want[to], body)
    seen[to] = seen.get(to, 0) + 1
assert seen == {"first@example.com": 1, "second@example.com": 1}, seen
print("ok")
PY
check "messages carry From, Message-ID, text + HTML and the printed link ($(tail -1 "$TMP/parsed"))" \
    grep -qx ok "$TMP/parsed"
PATH1="/${LINK1#http://*/}"
page=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$P2$PATH1")
check "the mailed link opens the invitation on the other instance" \
    test "$(tail -1 <<<"$page")" = 200 -a -n "$(grep -o 'first@example.com' <<<"$page" | head -1)"

printf '[mail] %d passed, %d failed\n' "$PASSED" "$FAILED"
if [ "$FAILED" -gt 0 ]; then
    tail -n 20 "$TMP"/instance-*.log "$TMP/aiosmtpd.log"
    exit 1
fi
