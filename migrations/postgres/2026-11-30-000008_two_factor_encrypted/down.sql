-- Encrypted secrets stay encrypted: an older latchkey cannot read them, so after going back, the
-- users concerned set up two-factor again (an admin resets it).
COMMENT ON COLUMN two_factor.secret IS NULL;
