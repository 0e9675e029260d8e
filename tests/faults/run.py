#!/usr/bin/env python3
"""Load and faults, against the release binary on this machine (127.0.0.1 only, bounded).

1. Load: at least 10 000 requests for /private at 256 connections, zero errors.
2. PostgreSQL restarted during load: requests fail cleanly and at once (503 within 250 ms, never
   500 or a dropped connection), a signed-in page keeps answering 200 from memory (the 3 s outage
   is shorter than revocation_max_age_secs), and everything recovers without restarting latchkey.
3. kill -9 of latchkey during a sign-up flood on SQLite: after a restart every sign-up that got a
   success answer is there, and the database passes PRAGMA integrity_check.

Prints what it measured and "N passed, M failed"; exits non-zero on any failure. Run all three
with `tests/faults/run.py`, or some: `tests/faults/run.py load kill9`.
Needs: cargo, wrk, PostgreSQL on 127.0.0.1:5432 (restarted by part 2 with pg_ctlcluster).
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Where cargo puts the binary: CARGO_TARGET_DIR (relative to the repository, as cargo reads it) or target/.
BIN = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release", "latchkey")
STATUS_LUA = os.path.join(ROOT, "bench", "status.lua")
PG = os.environ.get("LATCHKEY_CI_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct-Horse-battery-77"
results = []


def check(what, ok):
    results.append(bool(ok))
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Site:
    """A latchkey process on a port, with its own environment."""

    def __init__(self, tmp, name, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, ROCKET_PORT=str(self.port), ROCKET_ADDRESS="127.0.0.1",
                        ROCKET_LOG_LEVEL="critical", LATCHKEY_COOKIE_SECURE="false",
                        LATCHKEY_KEY_FILE=os.path.join(tmp, "keys.json"), **env)
        self.log = open(os.path.join(tmp, f"{name}.log"), "ab")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([BIN, "serve"], cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        for _ in range(150):
            if self.status("/healthz") == 200:
                return
            time.sleep(0.1)
        raise SystemExit(f"latchkey did not start on {self.base}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def status(self, path, cookie=None):
        req = urllib.request.Request(self.base + path, headers={"Cookie": cookie} if cookie else {})
        try:
            with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            return 0

    def browser(self):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        return jar, opener

    def post_form(self, opener, path, fields, form_page):
        page = opener.open(self.base + form_page, timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
        data = urllib.parse.urlencode(dict(fields, csrf_token=token)).encode()
        try:
            with opener.open(self.base + path, data=data, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def signup(self, username):
        jar, opener = self.browser()
        code = self.post_form(opener, "/signup", {"username": username, "email": f"{username}@example.com",
                                                   "password": PASSWORD, "password_confirm": PASSWORD}, "/signup")
        cookie = next((f"latchkey={c.value}" for c in jar if c.name == "latchkey"), None)
        return code, cookie


def wrk(base, path, cookie, conns, secs):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--timeout", "10s", "-s", STATUS_LUA,
                          "-H", f"Cookie: {cookie}", base + path], capture_output=True, text=True).stdout
    statuses = {int(m[0]): int(m[1]) for m in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    errors = sum(int(v) for v in re.findall(r"err_\w+=(\d+)", out))
    return statuses, errors


def part_load(tmp):
    print("1. load: /private at 256 connections", flush=True)
    site = Site(tmp, "load", {"DATABASE_URL": os.path.join(tmp, "load.db"), "LATCHKEY_JWT_SECRET": os.urandom(32).hex()})
    site.start()
    try:
        code, cookie = site.signup("loader")
        check(f"sign-up answered {code}", code == 303 and cookie)
        statuses, errors = wrk(site.base, "/private", cookie, 256, 6)
        total = sum(statuses.values())
        check(f"{total} requests at 256 connections: statuses {statuses}, socket errors {errors}",
              total >= 10_000 and set(statuses) == {200} and errors == 0)
    finally:
        site.stop()


def part_postgres_restart(tmp):
    print("2. PostgreSQL restarted during load", flush=True)
    db = "latchkey_faults_" + os.urandom(4).hex()
    subprocess.run(["psql", PG, "-qc", f"CREATE DATABASE {db}"], check=True, capture_output=True)
    site = Site(tmp, "pg", {"DATABASE_URL": PG.rsplit("/", 1)[0] + "/" + db,
                            "LATCHKEY_JWT_SECRET": os.urandom(32).hex(), "LATCHKEY_DATABASE_TIMEOUT_SECS": "2"})
    site.start()
    try:
        code, cookie = site.signup("steady")
        check(f"sign-up answered {code}", code == 303 and cookie)
        seen, private, slowest = {}, {}, {}
        lock = threading.Lock()
        stop = time.time() + 14

        def hammer(path, tally, cookie=None):
            while time.time() < stop:
                started = time.monotonic()
                s = site.status(path, cookie)
                took = time.monotonic() - started
                with lock:
                    tally[s] = tally.get(s, 0) + 1
                    slowest[(path, s)] = max(slowest.get((path, s), 0), took)
                time.sleep(0.01)

        threads = [threading.Thread(target=hammer, args=("/readyz", seen)) for _ in range(8)]
        threads += [threading.Thread(target=hammer, args=("/private", private, cookie)) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"], check=True)
        time.sleep(3)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        for t in threads:
            t.join()
        check(f"/readyz during the outage answered only 200 or 503: {seen}",
              set(seen) <= {200, 503} and seen.get(503, 0) > 0 and seen.get(200, 0) > 0)
        slow503 = slowest.get(("/readyz", 503), 0)
        check(f"every 503 from /readyz came at once (slowest {slow503 * 1000:.0f} ms)", slow503 < 0.25)
        check(f"/private with a valid cookie answered 200 from memory throughout: {private}",
              set(private) == {200})
        slow_private = slowest.get(("/private", 200), 0)
        check(f"and never hung (slowest {slow_private * 1000:.0f} ms)", slow_private < 0.25)
        deadline = time.time() + 15
        while time.time() < deadline and site.status("/readyz") != 200:
            time.sleep(0.2)
        check("ready again without restarting latchkey", site.status("/readyz") == 200)
        code, _ = site.signup("after")
        check(f"a sign-up after the restart answered {code}", code == 303)
        check("the session from before the outage still works", site.status("/private", cookie) == 200)
    finally:
        site.stop()
        subprocess.run(["psql", PG, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True)


def part_kill9(tmp):
    print("3. kill -9 during a sign-up flood on SQLite", flush=True)
    path = os.path.join(tmp, "kill.db")
    env = {"DATABASE_URL": path, "LATCHKEY_JWT_SECRET": os.urandom(32).hex(),
           "LATCHKEY_SIGNUP_PER_IP_PER_MINUTE": "1000000", "LATCHKEY_ARGON2_MEMORY_KIB": "1024",
           "LATCHKEY_ARGON2_ITERATIONS": "1"}
    site = Site(tmp, "kill", env)
    site.start()
    confirmed, lock, stop = [], threading.Lock(), threading.Event()

    def flood(worker):
        n = 0
        while not stop.is_set():
            name = f"w{worker}n{n}"
            n += 1
            try:
                code, _ = site.signup(name)
            except Exception:
                continue
            if code == 303:
                with lock:
                    confirmed.append(name)

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(4)
    site.proc.send_signal(signal.SIGKILL)
    site.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    check(f"{len(confirmed)} sign-ups were confirmed before the kill", len(confirmed) > 20)
    site.start()
    try:
        conn = sqlite3.connect(path)
        names = {row[0] for row in conn.execute("SELECT username FROM users")}
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        missing = [n for n in confirmed if n not in names]
        check(f"every confirmed sign-up is in the database ({len(names)} rows, {len(missing)} missing)", not missing)
        check(f"PRAGMA integrity_check: {integrity}", integrity == "ok")
        code, _ = site.signup("survivor")
        check(f"the restarted site signs up again ({code})", code == 303)
    finally:
        site.stop()


def main():
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    parts = {"load": part_load, "postgres": part_postgres_restart, "kill9": part_kill9}
    chosen = sys.argv[1:] or list(parts)
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            parts[name](tmp)
    passed = sum(results)
    print(f"\n{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
