-- Whether the sign-in that made the session passed two-factor (tokens say so in `amr`).
ALTER TABLE sessions ADD COLUMN two_factor BOOLEAN NOT NULL DEFAULT FALSE;
