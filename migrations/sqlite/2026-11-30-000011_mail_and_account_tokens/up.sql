-- When the user proved they read mail at their address (a verification link, an invitation, an
-- email change confirmed from the new address). Empty: not verified.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP;

-- Mail waiting to be sent, and a record of mail sent. The body (text and HTML, which may carry a
-- reset or invitation link) is sealed with a key from the keyring and wiped once sent. Instances
-- claim rows (claimed_by/claimed_until, with FOR UPDATE SKIP LOCKED on PostgreSQL) so each mail is
-- sent once; a failed attempt sets next_attempt_at further out, until max attempts mark it failed.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    user_id         TEXT,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_by      TEXT,
    claimed_until   TIMESTAMP,
    sent_at         TIMESTAMP,
    failed_at       TIMESTAMP,
    last_error      TEXT
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_user_idx ON outbox (user_id);
CREATE INDEX outbox_created_idx ON outbox (created_at);

-- Single-use links sent by mail or handed out by an admin: password resets, address
-- verification, email changes and their undo, invitations. Only a SHA-256 of the token is stored.
-- `email` is the address the link is about (the new address of a change, the old one for an undo,
-- the invited address); `role` is an invitation's role.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT,
    role       TEXT,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_email_idx ON account_tokens (email, purpose);
