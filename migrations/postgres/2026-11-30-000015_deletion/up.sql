-- Account deletion (issue 12 item 7).
--
-- The audit trail stays append-only with one exception: personal data may be erased from a row
-- (a deleted account's rows keep their id, time, kind and user ids, a random UUID, but lose the
-- names, which become 'deleted user', the address, the browser and the detail). Any other update,
-- and every delete, is still refused by the database.
DROP TRIGGER audit_events_no_change ON audit_events;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE FUNCTION audit_events_erase_only() RETURNS trigger AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.at IS DISTINCT FROM OLD.at
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.actor_id IS DISTINCT FROM OLD.actor_id
       OR NEW.subject_id IS DISTINCT FROM OLD.subject_id
       OR (NEW.actor IS DISTINCT FROM OLD.actor AND NEW.actor IS DISTINCT FROM 'deleted user')
       OR (NEW.subject IS DISTINCT FROM OLD.subject AND NEW.subject IS DISTINCT FROM 'deleted user')
       OR (NEW.ip IS DISTINCT FROM OLD.ip AND NEW.ip IS NOT NULL)
       OR (NEW.user_agent IS DISTINCT FROM OLD.user_agent AND NEW.user_agent IS NOT NULL)
       OR (NEW.detail IS DISTINCT FROM OLD.detail AND NEW.detail IS NOT NULL) THEN
        RAISE EXCEPTION 'audit_events is append-only';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_erase_only BEFORE UPDATE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_erase_only();

-- Sessions of deleted accounts: their rows go with the account (ON DELETE CASCADE), so every
-- instance's revocation list reads their ids from here instead, until they would have expired.
-- No user id, nothing personal: a session id and two times.
CREATE TABLE ended_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP NOT NULL
);
CREATE INDEX ended_sessions_ended_idx ON ended_sessions (ended_at);
