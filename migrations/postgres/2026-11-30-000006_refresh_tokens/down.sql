ALTER TABLE sessions DROP COLUMN stolen;
DROP TABLE refresh_tokens;
