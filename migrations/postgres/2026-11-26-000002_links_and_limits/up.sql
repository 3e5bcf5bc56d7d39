-- Magic links (SHA-256 of the link token), delivery outcome of each sign-in email, the
-- cross-device approval number of a login attempt, and database-backed rate limits that
-- hold across instances.
ALTER TABLE email_challenges ADD COLUMN link_hash TEXT;
ALTER TABLE email_challenges ADD COLUMN delivery TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE email_challenges ADD COLUMN requested_from TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX email_challenges_link ON email_challenges (link_hash);

ALTER TABLE login_attempts ADD COLUMN approval_number INTEGER;
ALTER TABLE login_attempts ADD COLUMN approved_at BIGINT;

CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
