//! Re-authentication with a passkey: instead of an emailed code (and the only way for an
//! account with email sign-in off), the person signs a fresh challenge with one of the
//! account's own passkeys, user verification required. The ceremony is bound to the
//! session that opened it and its account, single use, five minutes; success moves the
//! session's `auth_time` as a code does, with the passkey's `amr`.

use crate::passkeys::{PasskeyChallenge, PasskeyRejected, passkey_of, to_json};
use crate::reauth::challenge_key;
use crate::{Keyward, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_core::secret::hash_secret;
use keyward_store::models::User;
use keyward_store::{DbConnection, repo};
use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential, WebauthnError};

const KIND: &str = "reauth";

impl Keyward {
    /// Opens a passkey confirmation for this session, allowing only the account's own
    /// passkeys. `None` without a live session; `Some(None)` when the account has none.
    pub fn start_passkey_reauth(&self, session_token: &str) -> Result<Option<Option<PasskeyChallenge>>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(user) = self.session_user(&mut conn, session_token)? else { return Ok(None) };
        let passkeys = repo::passkeys::for_user(&mut conn, &user.id)?.iter().map(passkey_of).collect::<Result<Vec<_>, _>>()?;
        if passkeys.is_empty() {
            return Ok(Some(None));
        }
        // webauthn-rs asks for user verification (`required`) on passkey authentication.
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| ServiceError::Internal(format!("passkey confirmation: {e}")))?;
        let bound_to = Some(challenge_key(&hash_secret(session_token)));
        Ok(Some(Some(self.open_ceremony(&mut conn, KIND, Some(user.id), bound_to, &state, &options)?)))
    }

    /// Verifies the assertion for the ceremony this session opened; on success the session's
    /// `auth_time` becomes now. `Gone` when the session ended meanwhile.
    pub fn finish_passkey_reauth(
        &self,
        session_token: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
    ) -> Result<Result<(), PasskeyRejected>, ServiceError> {
        let session_hash = hash_secret(session_token);
        let user = {
            let mut conn = self.conn()?;
            match self.session_user(&mut conn, session_token)? {
                Some(u) => u,
                None => return Ok(Err(PasskeyRejected::Gone)),
            }
        };
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(ceremony) = repo::passkeys::take_ceremony(c, ceremony_id, KIND, self.now())? else {
                return Ok(Err(PasskeyRejected::StaleChallenge));
            };
            let key = challenge_key(&session_hash);
            if ceremony.user_id.as_deref() != Some(user.id.as_str()) || ceremony.attempt_id.as_deref() != Some(key.as_str()) {
                return Ok(Err(PasskeyRejected::StaleChallenge));
            }
            let state: PasskeyAuthentication =
                serde_json::from_str(&ceremony.state_json).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
            let amr = match self.check_reauth_assertion(c, &user, credential, &state)? {
                Ok(amr) => amr,
                Err(rejected) => return Ok(Err(rejected)),
            };
            if !repo::sessions::reauthenticate(c, &session_hash, &user.id, amr, self.now())? {
                return Ok(Err(PasskeyRejected::Gone));
            }
            self.audit(c, "reauthenticated", Some(&user.id), serde_json::json!({ "method": "passkey" }))?;
            Ok(Ok(()))
        })
    }

    /// The assertion must verify against the ceremony (only this account's credentials were
    /// allowed; user verification required) and the stored credential, whose counter and
    /// backup state are then recorded. The `amr` of the proof.
    fn check_reauth_assertion(
        &self,
        c: &mut DbConnection,
        user: &User,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<Result<&'static str, PasskeyRejected>, ServiceError> {
        // As at sign-in: client data from a frame of another site is refused (CHECKLIST R4, A4).
        if crate::passkeys::framed(&credential.response.client_data_json) {
            tracing::info!("passkey confirmation refused: client data from a frame");
            return Ok(Err(PasskeyRejected::Invalid));
        }
        let result = match self.webauthn.finish_passkey_authentication(credential, state) {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    tracing::warn!(user = %user.id, "passkey counter regression: confirmation refused");
                    self.audit(c, "passkey_counter_regression", Some(&user.id), serde_json::json!({ "credential": credential.id }))?;
                } else {
                    tracing::info!(error = ?e, "passkey confirmation refused");
                }
                return Ok(Err(PasskeyRejected::Invalid));
            }
        };
        if !result.user_verified() {
            return Ok(Err(PasskeyRejected::Invalid));
        }
        let id = URL_SAFE_NO_PAD.encode::<&[u8]>(result.cred_id().as_ref());
        let Some(row) = repo::passkeys::find(c, &id)?.filter(|r| r.user_id == user.id) else {
            return Ok(Err(PasskeyRejected::Invalid));
        };
        let mut passkey = passkey_of(&row)?;
        if passkey.update_credential(&result).is_none() {
            return Ok(Err(PasskeyRejected::Invalid));
        }
        repo::passkeys::record_use(c, &row.credential_id, &to_json(&passkey)?, result.backup_state(), self.now())?;
        Ok(Ok(if result.backup_eligible() { "swk user" } else { "hwk user" }))
    }
}
