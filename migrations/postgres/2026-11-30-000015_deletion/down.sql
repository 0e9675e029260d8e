DROP TABLE ended_sessions;
DROP TRIGGER audit_events_erase_only ON audit_events;
DROP FUNCTION audit_events_erase_only();
DROP TRIGGER audit_events_no_delete ON audit_events;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
