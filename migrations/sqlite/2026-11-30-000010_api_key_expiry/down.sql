-- Irreversible by design: the expiry given to keys that had none is not undone.
SELECT 1;
