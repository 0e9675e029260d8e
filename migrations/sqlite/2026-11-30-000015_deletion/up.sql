-- Account deletion (issue 12 item 7).
--
-- The audit trail stays append-only with one exception: personal data may be erased from a row
-- (a deleted account's rows keep their id, time, kind and user ids, a random UUID, but lose the
-- names, which become 'deleted user', the address, the browser and the detail). Any other update,
-- and every delete, is still refused by the database.
DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NEW.id IS NOT OLD.id
  OR NEW.at IS NOT OLD.at
  OR NEW.kind IS NOT OLD.kind
  OR NEW.actor_id IS NOT OLD.actor_id
  OR NEW.subject_id IS NOT OLD.subject_id
  OR (NEW.actor IS NOT OLD.actor AND NEW.actor IS NOT 'deleted user')
  OR (NEW.subject IS NOT OLD.subject AND NEW.subject IS NOT 'deleted user')
  OR (NEW.ip IS NOT OLD.ip AND NEW.ip IS NOT NULL)
  OR (NEW.user_agent IS NOT OLD.user_agent AND NEW.user_agent IS NOT NULL)
  OR (NEW.detail IS NOT OLD.detail AND NEW.detail IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- Sessions of deleted accounts: their rows go with the account (ON DELETE CASCADE), so every
-- instance's revocation list reads their ids from here instead, until they would have expired.
-- No user id, nothing personal: a session id and two times.
CREATE TABLE ended_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP NOT NULL
);
CREATE INDEX ended_sessions_ended_idx ON ended_sessions (ended_at);
