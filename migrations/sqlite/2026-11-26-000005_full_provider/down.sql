ALTER TABLE authorization_codes DROP COLUMN claims;
ALTER TABLE signing_keys DROP COLUMN unpublish_at;
ALTER TABLE signing_keys DROP COLUMN activates_at;
DROP TABLE client_assertion_jtis;
DROP TABLE logout_deliveries;
DROP TABLE consents;
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE grants;
