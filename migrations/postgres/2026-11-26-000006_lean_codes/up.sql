-- grant_id is a fresh UUIDv4 per code and is never looked up: no unique index to maintain.
-- The expiry index was never read; the cleanup sweep filters on created_at.
ALTER TABLE authorization_codes DROP CONSTRAINT authorization_codes_grant_id_key;
DROP INDEX authorization_codes_expires;
CREATE INDEX authorization_codes_created ON authorization_codes (created_at);
-- Nothing used grants_expires: the sweep's `expires_at < ? OR revoked_at < ?` does not use
-- it, and lookups go by id, session or user. One index fewer to write per grant.
DROP INDEX grants_expires;
