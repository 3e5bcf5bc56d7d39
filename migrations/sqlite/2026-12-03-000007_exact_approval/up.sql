-- Cross-device approval records exactly which email challenge (and so which address) another
-- device approved; continuing signs in that address and nothing else (issue 14, finding 1).
ALTER TABLE login_attempts ADD COLUMN approved_challenge_id TEXT;
ALTER TABLE login_attempts ADD COLUMN approved_email TEXT;
