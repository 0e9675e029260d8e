DROP TABLE account_tokens;
DROP TABLE outbox;
ALTER TABLE users DROP COLUMN email_verified_at;
