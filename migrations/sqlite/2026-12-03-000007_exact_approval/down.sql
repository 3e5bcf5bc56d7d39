ALTER TABLE login_attempts DROP COLUMN approved_email;
ALTER TABLE login_attempts DROP COLUMN approved_challenge_id;
