//! Rows as Rust structs. Field order matches `schema.rs`.

use crate::schema::*;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// False when the person turned email sign-in off (passkeys and recovery codes only).
    pub email_sign_in: bool,
    pub passkey_offer_declined_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys, treat_none_as_default_value = false)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_key_encrypted: String,
    pub created_at: i64,
    /// Stops signing from here (the next key took over); still published.
    pub retired_at: Option<i64>,
    /// Signs from here; published (in the JWKS) from `created_at`.
    pub activates_at: i64,
    /// Leaves the JWKS from here: no token it signed can still be live.
    pub unpublish_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_attempts, treat_none_as_default_value = false)]
pub struct LoginAttempt {
    pub id: String,
    pub browser_hash: String,
    pub request_json: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// The two-digit number a person types on another device to approve this attempt.
    pub approval_number: Option<i32>,
    pub approved_at: Option<i64>,
    /// Set while a finished sign-in shows the passkey offer: the session that will answer.
    pub offer_session_hash: Option<String>,
    /// The challenge another device approved (its link and number), and its address: continuing
    /// signs in exactly this address, once.
    pub approved_challenge_id: Option<String>,
    pub approved_email: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_challenges, treat_none_as_default_value = false)]
pub struct EmailChallenge {
    pub id: String,
    pub attempt_id: String,
    pub email: String,
    pub code_hash: String,
    pub failed_tries: i32,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// SHA-256 of the magic-link token sent with the code.
    pub link_hash: Option<String>,
    /// `pending`, `sent`, `failed`, or `suppressed` (no mail for this address; shown as sent).
    pub delivery: String,
    /// Coarse origin of the request, shown in the email and on the link page.
    pub requested_from: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes, treat_none_as_default_value = false)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub session_hash: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Claims asked for by name (the `claims` parameter), e.g. `id_token:email userinfo:name`.
    pub claims: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys, treat_none_as_default_value = false)]
pub struct PasskeyRow {
    /// base64url of the credential id.
    pub credential_id: String,
    pub user_id: String,
    pub passkey_json: String,
    pub name: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_ceremonies, treat_none_as_default_value = false)]
pub struct Ceremony {
    pub id: String,
    /// `register`, `login` or `reauth`.
    pub kind: String,
    pub user_id: Option<String>,
    pub attempt_id: Option<String>,
    pub state_json: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes, treat_none_as_default_value = false)]
pub struct RecoveryCode {
    pub code_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    /// JSON object with the event's details (never secrets).
    pub detail: String,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants, treat_none_as_default_value = false)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    /// None for a client_credentials grant (the client acts for itself).
    pub user_id: Option<String>,
    /// The browser session that signed in, so logout can end the grant.
    pub session_hash: Option<String>,
    pub scope: String,
    pub claims: String,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    /// No token of this grant is usable after this (absolute refresh-token lifetime).
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens, treat_none_as_default_value = false)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when the token was exchanged for its successor.
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents, treat_none_as_default_value = false)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = logout_deliveries, treat_none_as_default_value = false)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub given_up_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The one row `/readyz` rewrites to prove that writes succeed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = readiness_probe)]
pub struct ReadinessProbe {
    pub id: i32,
    pub checked_at: i64,
}
