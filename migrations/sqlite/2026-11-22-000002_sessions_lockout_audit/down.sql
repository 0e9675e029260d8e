DROP TABLE audit_events;
DROP TABLE login_attempts;
DROP TABLE sessions;
