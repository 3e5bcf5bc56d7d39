-- Account settings for passkeys: whether email sign-in stays available (a person with a
-- passkey may turn it off), and when the "sign in faster next time" offer was declined.
ALTER TABLE users ADD COLUMN email_sign_in BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN passkey_offer_declined_at BIGINT;

-- A finished email sign-in that shows the passkey offer before answering the app: the new
-- session waits here until the person continues (then the column is cleared, once).
ALTER TABLE login_attempts ADD COLUMN offer_session_hash TEXT;

-- Recovery codes: ten per account, SHA-256 at rest (80 random bits each), single use.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Security events (DESIGN.md §6): sign-ins, passkey and recovery changes, anomalies.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    detail TEXT NOT NULL,
    client_addr TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, at);
