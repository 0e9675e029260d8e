-- One row per user who set up an authenticator app. `enabled_at` is NULL while the setup waits
-- for its first code. `last_step` is the last 30-second step accepted, so a code works once.
CREATE TABLE two_factor (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    enabled_at TIMESTAMP,
    last_step  BIGINT NOT NULL DEFAULT 0
);
-- Single-use recovery codes, stored as SHA-256 hashes.
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);
