-- API keys no longer live forever (issue 11): an active key made without an expiry gets one,
-- 90 days from the upgrade, so its owner has time to replace it.
UPDATE api_keys SET expires_at = (now() AT TIME ZONE 'UTC') + INTERVAL '90 days'
WHERE expires_at IS NULL AND revoked_at IS NULL;
