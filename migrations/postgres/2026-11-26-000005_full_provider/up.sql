-- The OpenID Provider's grants (DESIGN.md §3): one row per authorization (a redeemed code or
-- a client_credentials grant); access tokens carry its id, refresh tokens rotate within it,
-- and revoking it (code replay, refresh-token reuse, logout, consent revoked) ends them all.
CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT,
    scope TEXT NOT NULL,
    claims TEXT NOT NULL DEFAULT '',
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_session ON grants (session_hash);
CREATE INDEX grants_user_client ON grants (user_id, client_id);
CREATE INDEX grants_expires ON grants (expires_at);

-- Refresh tokens: SHA-256 at rest; `used_at` is set when the token is rotated, so a second
-- use is recognised as reuse and revokes the grant (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens revoked one by one (RFC 7009), until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Consent per person and app: the scopes granted so far.
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Back-channel logout tokens waiting for delivery (OpenID Back-Channel Logout 1.0), retried
-- with backoff by whichever instance claims them.
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    logout_token TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    given_up_at BIGINT,
    last_error TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at);

-- `jti` of client assertions (private_key_jwt) seen, so none is accepted twice.
CREATE TABLE client_assertion_jtis (
    jti_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Key rotation: a key is published from `created_at`, signs from `activates_at`, stops
-- signing at `retired_at` and leaves the JWKS at `unpublish_at`.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN unpublish_at BIGINT;

-- Claims requested with the `claims` parameter travel with the code to the grant.
ALTER TABLE authorization_codes ADD COLUMN claims TEXT NOT NULL DEFAULT '';
