//! Passkeys (webauthn-rs): registration for a signed-in person and username-less
//! (discoverable) sign-in. Ceremony state is a database row, taken once, valid five
//! minutes; resident keys and user verification are required; `amr` records `user` and
//! `swk` for synced (backup-eligible) passkeys or `hwk` for device-bound ones (RFC 8176).

use crate::login::{CodeRejected, SignedIn};
use crate::{Keyward, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::Connection;
use keyward_core::secret::{hash_secret, random_token};
use keyward_store::models::{Ceremony, PasskeyRow, User};
use keyward_store::repo;
use webauthn_rs::prelude::*;
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

const CEREMONY_LIFETIME_SECS: i64 = 300;

/// Options for `navigator.credentials.create/get`, and the id to send back with the answer.
pub struct PasskeyChallenge {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// A registered passkey as the account page and API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub synced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyRejected {
    /// Unknown, expired or already used challenge.
    StaleChallenge,
    /// The browser's answer did not verify (origin, signature, flags, unknown credential…).
    Invalid,
    /// The sign-in attempt is over, or the account cannot sign in.
    Gone,
}

pub(crate) fn build_webauthn(issuer: &str) -> Result<Webauthn, ServiceError> {
    let origin = Url::parse(issuer).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let rp_id = origin.host_str().ok_or_else(|| ServiceError::Internal("the issuer has no host".into()))?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Keyward").build())
        .map_err(|e| ServiceError::Internal(format!("WebAuthn settings from the issuer: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ServiceError> {
    serde_json::to_string(v).map_err(|e| ServiceError::Corrupt(e.to_string()))
}

fn passkey_of(row: &PasskeyRow) -> Result<Passkey, ServiceError> {
    serde_json::from_str(&row.passkey_json).map_err(|e| ServiceError::Corrupt(e.to_string()))
}

impl Keyward {
    fn signed_in_user(&self, conn: &mut keyward_store::DbConnection, session_token: &str) -> Result<Option<User>, ServiceError> {
        Ok(repo::sessions::find_live(conn, &hash_secret(session_token), self.now(), self.config.session_idle_seconds)?.map(|(_, u)| u))
    }

    /// Starts registering a passkey for the signed-in person; `None` without a live session.
    pub fn start_passkey_registration(&self, session_token: &str) -> Result<Option<PasskeyChallenge>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(user) = self.signed_in_user(&mut conn, session_token)? else { return Ok(None) };
        let handle = Uuid::parse_str(&user.id).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        let existing = repo::passkeys::for_user(&mut conn, &user.id)?
            .iter()
            .map(|r| passkey_of(r).map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let display = user.name.clone().unwrap_or_else(|| user.email.clone());
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(handle, &user.email, &display, Some(existing))
            .map_err(|e| ServiceError::Internal(format!("passkey registration: {e}")))?;
        // Username-less sign-in needs a discoverable credential; webauthn-rs asks for
        // `discouraged` by default (CRATES.md).
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.resident_key = Some(ResidentKeyRequirement::Required);
            sel.require_resident_key = true;
            sel.user_verification = UserVerificationPolicy::Required;
        }
        let now = self.now();
        let ceremony = Ceremony {
            id: random_token(&mut rand::rng()),
            kind: "register".into(),
            user_id: Some(user.id),
            attempt_id: None,
            state_json: to_json(&state)?,
            created_at: now,
            expires_at: now + CEREMONY_LIFETIME_SECS,
        };
        repo::passkeys::save_ceremony(&mut conn, &ceremony)?;
        Ok(Some(PasskeyChallenge {
            ceremony: ceremony.id,
            options: serde_json::to_value(&options).map_err(|e| ServiceError::Corrupt(e.to_string()))?,
        }))
    }

    /// Verifies the browser's answer and stores the passkey.
    pub fn finish_passkey_registration(
        &self,
        session_token: &str,
        ceremony_id: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
    ) -> Result<Result<PasskeySummary, PasskeyRejected>, ServiceError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let Some(user) = self.signed_in_user(&mut conn, session_token)? else { return Ok(Err(PasskeyRejected::Gone)) };
        let Some(ceremony) = repo::passkeys::take_ceremony(&mut conn, ceremony_id, "register", now)? else {
            return Ok(Err(PasskeyRejected::StaleChallenge));
        };
        if ceremony.user_id.as_deref() != Some(user.id.as_str()) {
            return Ok(Err(PasskeyRejected::StaleChallenge));
        }
        let state: PasskeyRegistration = serde_json::from_str(&ceremony.state_json).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        let passkey = match self.webauthn.finish_passkey_registration(credential, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return Ok(Err(PasskeyRejected::Invalid));
            }
        };
        let id = URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref());
        if repo::passkeys::find(&mut conn, &id)?.is_some() {
            return Ok(Err(PasskeyRejected::Invalid));
        }
        let name: String = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("Passkey").chars().take(64).collect();
        // The credential's flags at registration: backup-eligible means it syncs.
        let synced = passkey_is_synced(&passkey);
        let row = PasskeyRow {
            credential_id: id.clone(),
            user_id: user.id.clone(),
            passkey_json: to_json(&passkey)?,
            name: name.clone(),
            backup_eligible: synced,
            backup_state: synced,
            created_at: now,
            last_used_at: None,
        };
        repo::passkeys::insert(&mut conn, &row)?;
        tracing::info!(user = %user.id, "passkey registered");
        Ok(Ok(PasskeySummary { id, name, created_at: now, last_used_at: None, synced }))
    }

    /// The signed-in person's passkeys.
    pub fn list_passkeys(&self, session_token: &str) -> Result<Option<Vec<PasskeySummary>>, ServiceError> {
        Ok(self.account(session_token)?.map(|(_, list)| list))
    }

    /// The signed-in person's address and passkeys, for the account page.
    pub fn account(&self, session_token: &str) -> Result<Option<(String, Vec<PasskeySummary>)>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(user) = self.signed_in_user(&mut conn, session_token)? else { return Ok(None) };
        let rows = repo::passkeys::for_user(&mut conn, &user.id)?;
        let list = rows
            .into_iter()
            .map(|r| PasskeySummary {
                id: r.credential_id,
                name: r.name,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                synced: r.backup_eligible,
            })
            .collect();
        Ok(Some((user.email, list)))
    }

    /// Starts a username-less sign-in for a login attempt of this browser.
    pub fn start_passkey_login(&self, attempt_id: &str, browser_id: &str) -> Result<Option<PasskeyChallenge>, ServiceError> {
        let mut conn = self.conn()?;
        if self.attempt_for(&mut conn, attempt_id, browser_id)?.is_none() {
            return Ok(None);
        }
        let (options, state) =
            self.webauthn.start_discoverable_authentication().map_err(|e| ServiceError::Internal(format!("passkey sign-in: {e}")))?;
        let now = self.now();
        let ceremony = Ceremony {
            id: random_token(&mut rand::rng()),
            kind: "login".into(),
            user_id: None,
            attempt_id: Some(attempt_id.to_owned()),
            state_json: to_json(&state)?,
            created_at: now,
            expires_at: now + CEREMONY_LIFETIME_SECS,
        };
        repo::passkeys::save_ceremony(&mut conn, &ceremony)?;
        Ok(Some(PasskeyChallenge {
            ceremony: ceremony.id,
            options: serde_json::to_value(&options).map_err(|e| ServiceError::Corrupt(e.to_string()))?,
        }))
    }

    /// Verifies a discoverable assertion and signs in whoever the credential belongs to.
    pub fn finish_passkey_login(
        &self,
        attempt_id: &str,
        browser_id: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Result<SignedIn, PasskeyRejected>, ServiceError> {
        let now = self.now();
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let Some(ceremony) = repo::passkeys::take_ceremony(c, ceremony_id, "login", now)? else {
                return Ok(Err(PasskeyRejected::StaleChallenge));
            };
            if ceremony.attempt_id.as_deref() != Some(attempt_id) {
                return Ok(Err(PasskeyRejected::StaleChallenge));
            }
            let state: DiscoverableAuthentication =
                serde_json::from_str(&ceremony.state_json).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
            // The user handle names the account; it must own the credential (CHECKLIST A2).
            let Ok((handle, cred_id)) = self.webauthn.identify_discoverable_authentication(credential) else {
                return Ok(Err(PasskeyRejected::Invalid));
            };
            let Some(row) = repo::passkeys::find(c, &URL_SAFE_NO_PAD.encode(cred_id))? else {
                return Ok(Err(PasskeyRejected::Invalid));
            };
            if row.user_id != handle.to_string() {
                return Ok(Err(PasskeyRejected::Invalid));
            }
            let mut passkey = passkey_of(&row)?;
            let result = match self.webauthn.finish_discoverable_authentication_v2(credential, state, &passkey) {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!(error = %e, "passkey sign-in refused");
                    return Ok(Err(PasskeyRejected::Invalid));
                }
            };
            if passkey.update_credential(&result) == Some(false) {
                return Ok(Err(PasskeyRejected::Invalid));
            }
            repo::passkeys::record_use(c, &row.credential_id, &to_json(&passkey)?, result.backup_state(), now)?;
            let Some(user) = repo::users::find_by_id(c, &row.user_id)? else { return Ok(Err(PasskeyRejected::Gone)) };
            let amr = if result.backup_eligible() { "swk user" } else { "hwk user" };
            Ok(match self.complete_sign_in_for(c, attempt_id, browser_id, &user, amr, "passkey")? {
                Ok(signed_in) => Ok(signed_in),
                Err(CodeRejected::AttemptGone) | Err(_) => Err(PasskeyRejected::Gone),
            })
        })
    }
}

/// Backup eligibility as recorded at registration (webauthn-rs keeps it in the credential).
fn passkey_is_synced(passkey: &Passkey) -> bool {
    serde_json::to_value(passkey).ok().and_then(|v| v.pointer("/cred/backup_eligible").and_then(|b| b.as_bool())).unwrap_or(false)
}
