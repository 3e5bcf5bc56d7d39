DROP TABLE rate_limits;
DROP INDEX email_challenges_link;
ALTER TABLE login_attempts DROP COLUMN approved_at;
ALTER TABLE login_attempts DROP COLUMN approval_number;
ALTER TABLE email_challenges DROP COLUMN requested_from;
ALTER TABLE email_challenges DROP COLUMN delivery;
ALTER TABLE email_challenges DROP COLUMN link_hash;
