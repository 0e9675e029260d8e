#!/usr/bin/env bash
# The README's two commands on a fresh Debian that has only a Rust toolchain, checked in a clean
# root: debootstrap makes a minimal Debian bookworm (variant minbase), this machine's own Rust
# toolchain is bind-mounted into it read-only, and a `git clone` of this repository (its committed
# HEAD) runs there as a new user would:
#
#   1. `cargo run`: built from scratch, then probed from outside the root until
#      http://127.0.0.1:8000/healthz answers 200;
#   2. `cargo test`: must pass, with every browser test printing its "skipped" line (the root has
#      no Chromium).
#
# Not part of .ci/run: the first run takes a debootstrap plus two cold builds. The root is cached
# in $LATCHKEY_FRESH_ROOT (default /var/tmp/latchkey-fresh-root, outside the repository), so a
# re-run only clones and builds again. Needs root (debootstrap, chroot, mounts), the network to
# Debian's mirror, and a Rust toolchain installed by rustup on this machine.
#
#   bash .ci/fresh-root.sh            # prints "fresh root: PASS" or "fresh root: FAIL (...)"
#
# What the root gets besides minbase (which has no compiler, no make and only perl-base), and why:
#   gcc, libc6-dev    rustc links through `cc` and needs the C library to link against; rustup's
#                     toolchain ships no linker, so every Rust user on Debian has these;
#   make, perl        building OpenSSL from source (openssl-sys `vendored`, for TLS to
#                     PostgreSQL): its Configure needs perl modules that perl-base lacks
#                     (FindBin, IPC::Cmd), and it is built with make. Without them `cargo run`
#                     fails in openssl-src; with `bundled_without_openssl` it would not need them
#                     but libpq could not speak TLS. Both are on any standard Debian install.
# No libpq, no OpenSSL headers, no pkg-config, no Chromium, no PostgreSQL in the root.
#
# Crates: the root's CARGO_HOME is seeded with a copy of this machine's crate cache (index and
# .crate files; sources are unpacked afresh) and cargo runs offline, because this sandbox reaches
# crates.io only through a proxy whose CA a fresh root does not trust. On a real fresh machine
# cargo downloads the same crates.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${LATCHKEY_FRESH_ROOT:-/var/tmp/latchkey-fresh-root}
ROOTFS=$CACHE/root
SUITE=bookworm
MIRROR=${LATCHKEY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=gcc,libc6-dev,make,perl
PORT=${LATCHKEY_FRESH_PORT:-8000}      # the README's port; another one only if 8000 is taken here
RUN_TIMEOUT=${LATCHKEY_FRESH_RUN_TIMEOUT:-2400} # s for `cargo run` to build and answer
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$CACHE/logs/$STAMP
mkdir -p "$LOGS"

log() { printf '[fresh-root %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOGS/summary.txt" >&2; }
fail() { log "fresh root: FAIL ($*)"; log "logs in $LOGS"; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root: debootstrap, chroot and mounts need it"

# ---- the toolchain on this machine ---------------------------------------------------------
CARGO_BIN=$(dirname "$(readlink -f "$(command -v cargo)")")
[ -x "$CARGO_BIN/rustc" ] || fail "no rustup toolchain: $CARGO_BIN has no rustc"
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
[ -d "$RUSTUP_DIR/toolchains" ] || fail "no rustup home at $RUSTUP_DIR"
log "toolchain: $(cargo -V), $(rustc -V); binaries $CARGO_BIN, rustup home $RUSTUP_DIR"

# ---- the root, cached ------------------------------------------------------------------------
want="$SUITE minbase $PACKAGES"
if [ ! -f "$ROOTFS/.latchkey-root" ] || [ "$(cat "$ROOTFS/.latchkey-root")" != "$want" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    log "debootstrap --variant=minbase --include=$PACKAGES $SUITE (once; cached in $ROOTFS)"
    rm -rf "$ROOTFS.new"
    started=$SECONDS
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS.new" "$MIRROR" \
        >"$LOGS/debootstrap.log" 2>&1 || fail "debootstrap failed, see $LOGS/debootstrap.log"
    rm -rf "$ROOTFS"
    mv "$ROOTFS.new" "$ROOTFS"
    echo "$want" >"$ROOTFS/.latchkey-root"
    log "root made in $((SECONDS - started)) s"
else
    log "cached root $ROOTFS ($want)"
fi
log "root: $(du -sh --exclude="$ROOTFS/root" "$ROOTFS" 2>/dev/null | cut -f1) besides /root," \
    "$(chroot "$ROOTFS" dpkg-query -W -f='${Status}\n' | grep -c '^install ok installed') packages;" \
    "$(chroot "$ROOTFS" sh -c 'for p in cc gcc make perl pkg-config curl psql chromium chromedriver; do
        command -v $p >/dev/null && printf "%s " "$p"; done') on PATH;" \
    "libpq: $(chroot "$ROOTFS" sh -c 'ls /usr/lib/*/libpq.so* 2>/dev/null | wc -l') files," \
    "OpenSSL headers: $(chroot "$ROOTFS" sh -c 'ls /usr/include/openssl 2>/dev/null | wc -l') files"

# ---- a fresh home: the repository and an empty CARGO_HOME -----------------------------------
# Everything a previous run left in /root (clone, crates, build) goes: each run starts cold. The
# mounts below live in a private mount namespace, so none can be under the root here; check anyway
# before deleting, since /root/.rustup would be this machine's own toolchain.
if grep -q " $ROOTFS/" /proc/self/mountinfo; then
    fail "something is mounted under $ROOTFS; unmount it first"
fi
rm -rf "$ROOTFS/root" "$ROOTFS/tmp"/*
mkdir -p "$ROOTFS/root/.cargo/bin" "$ROOTFS/root/.cargo/registry" "$ROOTFS/root/.rustup"
CARGO_HOME_HERE=${CARGO_HOME:-$HOME/.cargo}
cp -a "$CARGO_HOME_HERE/registry/index" "$CARGO_HOME_HERE/registry/cache" "$ROOTFS/root/.cargo/registry/"
git clone -q "$REPO" "$ROOTFS/root/latchkey"
log "cloned $(git -C "$ROOTFS/root/latchkey" log --oneline -1)"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"

# ---- inside: mounts in a private mount namespace, so they vanish with it ---------------------
[ "$PORT" = 8000 ] || export ROCKET_PORT=$PORT
export ROOTFS CARGO_BIN RUSTUP_DIR PORT RUN_TIMEOUT LOGS
unshare --mount --propagation private bash -euo pipefail <<'INSIDE' || fail "see the lines above"
log() { printf '[fresh-root %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOGS/summary.txt" >&2; }
mount -t proc proc "$ROOTFS/proc"
mount --bind /dev "$ROOTFS/dev"
for pair in "$CARGO_BIN:/root/.cargo/bin" "$RUSTUP_DIR:/root/.rustup"; do
    mount --bind "${pair%%:*}" "$ROOTFS${pair#*:}"
    mount -o remount,bind,ro "$ROOTFS${pair#*:}"
done
# A login-like environment: nothing from this machine's shell leaks in (no DATABASE_URL,
# CARGO_TARGET_DIR, CHROMEDRIVER ...).
in_root() {
    chroot "$ROOTFS" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb \
        PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin CARGO_TERM_COLOR=never CARGO_NET_OFFLINE=true \
        ${ROCKET_PORT:+ROCKET_PORT=$ROCKET_PORT} /bin/bash -c "cd /root/latchkey && $1"
}
in_root 'cargo -V && rustc -V && cc --version | head -1' 2>&1 | tee -a "$LOGS/summary.txt" >&2

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT is taken on this machine; stop what listens there, or set LATCHKEY_FRESH_PORT"
    exit 1
fi

# 1. cargo run, probed from outside (the root shares this machine's network).
log "cargo run (cold build)"
started=$SECONDS
setsid bash -c "$(declare -f in_root); in_root 'cargo run'" >"$LOGS/cargo-run.log" 2>&1 &
RUN=$!
stop_run() { kill -- -"$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; }
trap stop_run EXIT
answered=""
while [ $((SECONDS - started)) -lt "$RUN_TIMEOUT" ]; do
    if ! kill -0 "$RUN" 2>/dev/null; then
        tail -30 "$LOGS/cargo-run.log" >&2
        log "cargo run exited before answering"
        exit 1
    fi
    code=$(curl -s -o "$LOGS/healthz.json" -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)
    if [ "$code" = 200 ] && grep -q "Rocket has launched from http://127.0.0.1:$PORT" "$LOGS/cargo-run.log"; then
        answered=yes
        break
    fi
    sleep 2
done
[ -n "$answered" ] || { tail -30 "$LOGS/cargo-run.log" >&2; log "no answer on :$PORT within $RUN_TIMEOUT s"; exit 1; }
log "cargo run answered GET /healthz 200 after $((SECONDS - started)) s: $(cat "$LOGS/healthz.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
log "GET / answered $code"
[ "$code" = 200 ] || exit 1
stop_run
trap - EXIT
grep -E 'Compiling (pq-src|openssl-src|openssl-sys|pq-sys)' "$LOGS/cargo-run.log" | tee -a "$LOGS/summary.txt" >&2 || true

# 2. cargo test, on SQLite (the root has no PostgreSQL) and without Chromium.
log "cargo test"
started=$SECONDS
status=0
in_root 'cargo test' >"$LOGS/cargo-test.log" 2>&1 || status=$?
log "cargo test exited $status after $((SECONDS - started)) s"
grep -E '^test result:|Running ' "$LOGS/cargo-test.log" | tee -a "$LOGS/summary.txt" >&2
[ "$status" = 0 ] || { tail -40 "$LOGS/cargo-test.log" >&2; exit 1; }
browser_tests=$(cat "$ROOTFS"/root/latchkey/tests/browser/*.rs | grep -c 'Scene::new(')
skipped=$(grep -c '^browser test .* skipped: .*install it with: apt-get install -y chromium chromium-driver' "$LOGS/cargo-test.log" || true)
grep -m1 '^browser test .* skipped' "$LOGS/cargo-test.log" | sed 's/^/  e.g. /' | tee -a "$LOGS/summary.txt" >&2
log "$skipped of $browser_tests browser tests printed their skip line"
[ "$skipped" = "$browser_tests" ] || exit 1
INSIDE

log "fresh root: PASS (logs in $LOGS)"
