//! Passkeys (webauthn-rs): registration for a signed-in person and username-less
//! (discoverable) sign-in. Ceremony state is a database row, taken once, valid five
//! minutes; resident keys and user verification are required; `amr` records `user` and
//! `swk` for synced (backup-eligible) passkeys or `hwk` for device-bound ones (RFC 8176).

use crate::login::{CodeRejected, Proof, SignedIn};
use crate::metrics::Family;
use crate::notice::Notice;
use crate::{Keyward, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_core::secret::random_token;
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

/// A passkey added to the account; the first one comes with recovery codes (shown once).
pub struct PasskeyAdded {
    pub passkey: PasskeySummary,
    pub recovery_codes: Option<Vec<String>>,
    pub notice: Notice,
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

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ServiceError> {
    serde_json::to_string(v).map_err(|e| ServiceError::Corrupt(e.to_string()))
}

pub(crate) fn passkey_of(row: &PasskeyRow) -> Result<Passkey, ServiceError> {
    serde_json::from_str(&row.passkey_json).map_err(|e| ServiceError::Corrupt(e.to_string()))
}

impl Keyward {
    fn signed_in_user(&self, conn: &mut keyward_store::DbConnection, session_token: &str) -> Result<Option<User>, ServiceError> {
        self.session_user(conn, session_token)
    }

    pub(crate) fn passkey_summaries(
        &self,
        c: &mut keyward_store::DbConnection,
        user_id: &str,
    ) -> Result<Vec<PasskeySummary>, ServiceError> {
        Ok(repo::passkeys::for_user(c, user_id)?
            .into_iter()
            .map(|r| PasskeySummary {
                id: r.credential_id,
                name: r.name,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                synced: r.backup_eligible,
            })
            .collect())
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
        self.open_ceremony(&mut conn, "register", Some(user.id), None, &state, &options).map(Some)
    }

    /// Verifies the browser's answer and stores the passkey; the first passkey of an account
    /// comes with a set of recovery codes.
    pub fn finish_passkey_registration(
        &self,
        session_token: &str,
        ceremony_id: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
    ) -> Result<Result<PasskeyAdded, PasskeyRejected>, ServiceError> {
        self.counted(Family::PasskeyRegistrations, self.finish_registration_inner(session_token, ceremony_id, credential, name))
    }

    /// Counts a ceremony's outcome in `family` and passes it on.
    fn counted<T>(
        &self,
        family: Family,
        result: Result<Result<T, PasskeyRejected>, ServiceError>,
    ) -> Result<Result<T, PasskeyRejected>, ServiceError> {
        self.metrics.inc(family, "outcome", if matches!(result, Ok(Ok(_))) { "success" } else { "failure" });
        result
    }

    fn finish_registration_inner(
        &self,
        session_token: &str,
        ceremony_id: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
    ) -> Result<Result<PasskeyAdded, PasskeyRejected>, ServiceError> {
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
        let Some(passkey) = self.verify_registration(credential, &state) else { return Ok(Err(PasskeyRejected::Invalid)) };
        let id = URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref());
        let name: String =
            name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("Passkey").chars().filter(|c| !c.is_control()).take(64).collect();
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
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            // R12: a credential id is registered once, whoever holds it.
            if repo::passkeys::find(c, &id)?.is_some() {
                return Ok(Err(PasskeyRejected::Invalid));
            }
            repo::passkeys::insert(c, &row)?;
            self.audit(c, "passkey_added", Some(&user.id), serde_json::json!({ "credential": id, "name": name, "synced": synced }))?;
            let first = repo::passkeys::count_for_user(c, &user.id)? == 1;
            let recovery_codes = if first { Some(self.new_recovery_codes(c, &user.id, "first passkey")?) } else { None };
            tracing::info!(user = %user.id, "passkey registered");
            let what = if first {
                format!("A passkey named \"{name}\" was added to your account, and recovery codes were made for it.")
            } else {
                format!("A passkey named \"{name}\" was added to your account.")
            };
            Ok(Ok(PasskeyAdded {
                passkey: PasskeySummary { id: id.clone(), name: name.clone(), created_at: now, last_used_at: None, synced },
                recovery_codes,
                notice: Notice { to: user.email.clone(), what, at: now },
            }))
        })
    }

    /// The signed-in person's passkeys.
    pub fn list_passkeys(&self, session_token: &str) -> Result<Option<Vec<PasskeySummary>>, ServiceError> {
        Ok(self.account_view(session_token)?.map(|v| v.passkeys))
    }

    /// Stores a ceremony's state (single use, five minutes) and returns the browser's options
    /// with the ceremony's id.
    pub(crate) fn open_ceremony(
        &self,
        conn: &mut keyward_store::DbConnection,
        kind: &str,
        user_id: Option<String>,
        attempt_id: Option<String>,
        state: &impl serde::Serialize,
        options: &impl serde::Serialize,
    ) -> Result<PasskeyChallenge, ServiceError> {
        let now = self.now();
        let ceremony = Ceremony {
            id: random_token(&mut rand::rng()),
            kind: kind.into(),
            user_id,
            attempt_id,
            state_json: to_json(state)?,
            created_at: now,
            expires_at: now + CEREMONY_LIFETIME_SECS,
        };
        repo::passkeys::save_ceremony(conn, &ceremony)?;
        Ok(PasskeyChallenge {
            ceremony: ceremony.id,
            options: serde_json::to_value(options).map_err(|e| ServiceError::Corrupt(e.to_string()))?,
        })
    }

    /// Starts a username-less sign-in for a login attempt of this browser.
    pub fn start_passkey_login(&self, attempt_id: &str, browser_id: &str) -> Result<Option<PasskeyChallenge>, ServiceError> {
        let mut conn = self.conn()?;
        if self.attempt_for(&mut conn, attempt_id, browser_id)?.is_none() {
            return Ok(None);
        }
        let (options, state) =
            self.webauthn.start_discoverable_authentication().map_err(|e| ServiceError::Internal(format!("passkey sign-in: {e}")))?;
        self.open_ceremony(&mut conn, "login", None, Some(attempt_id.to_owned()), &state, &options).map(Some)
    }

    /// Verifies a discoverable assertion and signs in whoever the credential belongs to.
    pub fn finish_passkey_login(
        &self,
        attempt_id: &str,
        browser_id: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Result<SignedIn, PasskeyRejected>, ServiceError> {
        self.counted(Family::PasskeySignIns, self.finish_login_inner(attempt_id, browser_id, ceremony_id, credential))
    }

    fn finish_login_inner(
        &self,
        attempt_id: &str,
        browser_id: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Result<SignedIn, PasskeyRejected>, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
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
            if framed(&credential.response.client_data_json) {
                tracing::info!("passkey sign-in refused: client data from a frame");
                return Ok(Err(PasskeyRejected::Invalid));
            }
            let result = match self.webauthn.finish_discoverable_authentication_v2(credential, state, &passkey) {
                Ok(r) => r,
                Err(WebauthnError::CredentialPossibleCompromise) => {
                    // A8: the signature counter did not advance, so the credential may have
                    // been cloned. Refuse, and leave a trace for the person and the operator.
                    tracing::warn!(user = %row.user_id, "passkey counter regression: sign-in refused");
                    self.audit(
                        c,
                        "passkey_counter_regression",
                        Some(&row.user_id),
                        serde_json::json!({ "credential": row.credential_id }),
                    )?;
                    return Ok(Err(PasskeyRejected::Invalid));
                }
                Err(e) => {
                    tracing::info!(error = ?e, "passkey sign-in refused");
                    return Ok(Err(PasskeyRejected::Invalid));
                }
            };
            // `None` means the result is for another credential; `Some(false)` only means
            // nothing changed (synced passkeys report a zero counter), which is fine.
            if passkey.update_credential(&result).is_none() {
                return Ok(Err(PasskeyRejected::Invalid));
            }
            repo::passkeys::record_use(c, &row.credential_id, &to_json(&passkey)?, result.backup_state(), now)?;
            let Some(user) = repo::users::find_by_id(c, &row.user_id)? else { return Ok(Err(PasskeyRejected::Gone)) };
            let amr = if result.backup_eligible() { "swk user" } else { "hwk user" };
            Ok(
                match self.complete_sign_in_for(c, attempt_id, browser_id, &user, Proof { amr, method: "passkey", offer_passkey: false })? {
                    Ok(signed_in) => Ok(signed_in),
                    Err(CodeRejected::AttemptGone) | Err(_) => Err(PasskeyRejected::Gone),
                },
            )
        })
    }
}

impl Keyward {
    /// webauthn-rs' registration checks, and two it does not make: client data from a frame
    /// (CHECKLIST R4) and a credential id over 1023 bytes (R11; webauthn-rs allows 4096).
    fn verify_registration(&self, credential: &RegisterPublicKeyCredential, state: &PasskeyRegistration) -> Option<Passkey> {
        if framed(&credential.response.client_data_json) {
            tracing::info!("passkey registration refused: client data from a frame");
            return None;
        }
        match self.webauthn.finish_passkey_registration(credential, state) {
            Ok(p) if p.cred_id().len() <= MAX_CREDENTIAL_ID_BYTES => Some(p),
            Ok(p) => {
                tracing::info!(bytes = p.cred_id().len(), "passkey registration refused: credential id too long");
                None
            }
            Err(e) => {
                tracing::info!(error = ?e, "passkey registration refused");
                None
            }
        }
    }
}

/// WebAuthn L3 §6.5.1: `credentialIdLength` "MUST be <= 1023".
const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// Whether client data says the ceremony ran in a frame of another origin: a `topOrigin`,
/// or a `crossOrigin` other than `false` (WebAuthn L3 §7.1 step 9–10). Keyward's pages are
/// never framed (`frame-ancestors 'none'`), so no such ceremony is expected. Unreadable
/// client data counts as framed; webauthn-rs would refuse it anyway.
pub(crate) fn framed(client_data_json: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(client_data_json) {
        Ok(v) => v.get("topOrigin").is_some() || v.get("crossOrigin").is_some_and(|c| *c != serde_json::Value::Bool(false)),
        Err(_) => true,
    }
}

/// Backup eligibility as recorded at registration (webauthn-rs keeps it in the credential).
fn passkey_is_synced(passkey: &Passkey) -> bool {
    serde_json::to_value(passkey).ok().and_then(|v| v.pointer("/cred/backup_eligible").and_then(|b| b.as_bool())).unwrap_or(false)
}
