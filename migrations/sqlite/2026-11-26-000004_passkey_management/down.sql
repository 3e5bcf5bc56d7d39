DROP TABLE audit_events;
DROP TABLE recovery_codes;
ALTER TABLE login_attempts DROP COLUMN offer_session_hash;
ALTER TABLE users DROP COLUMN passkey_offer_declined_at;
ALTER TABLE users DROP COLUMN email_sign_in;
