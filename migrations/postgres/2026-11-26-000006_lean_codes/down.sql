CREATE INDEX grants_expires ON grants (expires_at);
DROP INDEX authorization_codes_created;
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
ALTER TABLE authorization_codes ADD CONSTRAINT authorization_codes_grant_id_key UNIQUE (grant_id);
