-- Browsers that signed in to an account (OWASP's device cookies). The cookie names the account
-- and this row's nonce; while the row is trusted (no `revoked_at`), an attempt from that browser
-- is judged by the device's own failures only, not by the account's lockout or the address limit.
CREATE TABLE trusted_devices (
    nonce        TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    window_start TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX trusted_devices_user_idx ON trusted_devices (user_id);

-- Per-address request counters shared by every instance: one row per kind (login, signup),
-- address and fixed window (its start, in Unix seconds). Old windows are pruned.
CREATE TABLE rate_counters (
    kind         TEXT NOT NULL,
    address      TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (kind, address, window_start)
);
