-- Every refresh value a session was given, stored only as a SHA-256 hash. The current one has no
-- `superseded_at`; older ones stay until the session is pruned, so a superseded value presented
-- again is recognised as reuse (theft) and ends the session.
CREATE TABLE refresh_tokens (
    token_hash    TEXT PRIMARY KEY NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at     TIMESTAMP NOT NULL,
    superseded_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- A session ended because a replaced refresh value came back: its other holder is told why.
ALTER TABLE sessions ADD COLUMN stolen BOOLEAN NOT NULL DEFAULT FALSE;
