-- Passkeys (WebAuthn credentials). `credential_id` is the authenticator's credential id
-- (base64url), unique across all accounts: one credential never signs in two people. `passkey`
-- is webauthn-rs's record of it (public key, signature counter, flags) as JSON: public data, no
-- secret. The WebAuthn user handle is the account's id (a random UUID, no personal data).
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- A passkey ceremony between its two steps: the challenge and what the server expects, as
-- webauthn-rs's state JSON, for five minutes and one use (deleted as it is read), so any
-- instance can finish what another began. `user_id` is empty for a sign-in with no name typed.
CREATE TABLE passkey_ceremonies (
    id         TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX passkey_ceremonies_expires_idx ON passkey_ceremonies (expires_at);

-- Whether a passkey proved the sign-in that made the session (tokens say `hwk` in `amr`).
ALTER TABLE sessions ADD COLUMN passkey BOOLEAN NOT NULL DEFAULT FALSE;
