CREATE INDEX grants_expires ON grants (expires_at);
CREATE TABLE refresh_tokens_rowid (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
INSERT INTO refresh_tokens_rowid SELECT * FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_rowid RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE TABLE authorization_codes_rowid (
    code_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    revoked_at BIGINT,
    claims TEXT NOT NULL DEFAULT ''
);
INSERT INTO authorization_codes_rowid SELECT * FROM authorization_codes;
DROP TABLE authorization_codes;
ALTER TABLE authorization_codes_rowid RENAME TO authorization_codes;
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
