CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    remember     BOOLEAN NOT NULL,
    user_agent   TEXT NOT NULL,
    ip           TEXT NOT NULL,
    revoked_at   TIMESTAMP
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE login_attempts (
    login_key       TEXT PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    lockouts        INTEGER NOT NULL,
    locked_until    TIMESTAMP,
    last_failure_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at         TIMESTAMP NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT,
    actor      TEXT,
    subject_id TEXT,
    subject    TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
