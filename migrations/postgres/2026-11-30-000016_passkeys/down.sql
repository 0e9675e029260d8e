ALTER TABLE sessions DROP COLUMN passkey;
DROP TABLE passkey_ceremonies;
DROP TABLE passkeys;
