-- When the session's owner last proved who they are: at sign-in, then at each "Confirm it's you"
-- (sudo mode). Sensitive actions need it within `sudo_window_secs`. Empty for sessions made from
-- an API key (a key is not a proof of the person) and for sessions older than this column.
ALTER TABLE sessions ADD COLUMN authenticated_at TIMESTAMP;
