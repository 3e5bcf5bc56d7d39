//! Recovery codes: a set of ten made when the first passkey is added (a new set kills the
//! old one), each shown once, stored hashed and used up by a sign-in with one; wrong tries
//! count per address.

use crate::login::Proof;
use crate::metrics::Family;
use crate::notice::Notice;
use crate::{Keyward, ServiceError};
use keyward_core::recovery_code;
use keyward_core::secret::hash_secret;
use keyward_store::{DbConnection, repo};

impl Keyward {
    /// A new set of ten recovery codes (killing the old set), shown once. `None` without a
    /// session.
    pub fn regenerate_recovery_codes(&self, session_token: &str) -> Result<Option<(Vec<String>, Notice)>, ServiceError> {
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = self.session_user(c, session_token)? else { return Ok(None) };
            let codes = self.new_recovery_codes(c, &user.id, "regenerated")?;
            let notice = Notice {
                to: user.email,
                what: "New recovery codes were made for your account; the old ones no longer work.".into(),
                at: self.now(),
            };
            Ok(Some((codes, notice)))
        })
    }

    /// Stores a fresh set for the account and returns the codes for display (`XXXX-…`).
    pub(crate) fn new_recovery_codes(&self, c: &mut DbConnection, user_id: &str, why: &str) -> Result<Vec<String>, ServiceError> {
        let codes = recovery_code::generate_set(&mut rand::rng());
        let hashes: Vec<String> = codes.iter().map(|code| hash_secret(code)).collect();
        repo::recovery::replace_set(c, user_id, &hashes, self.now())?;
        self.audit(c, "recovery_codes_created", Some(user_id), serde_json::json!({ "reason": why }))?;
        Ok(codes.iter().map(|code| recovery_code::display(code)).collect())
    }

    /// Signs in with the address and one of its recovery codes (which is then used up). The
    /// sign-in is recorded, counted and announced by email.
    pub fn sign_in_with_recovery_code(
        &self,
        attempt_id: &str,
        browser_id: &str,
        email: &keyward_core::email::Email,
        typed: &str,
    ) -> Result<Result<(crate::login::SignedIn, Notice), crate::login::CodeRejected>, ServiceError> {
        use crate::login::CodeRejected;
        let now = self.now();
        let mut conn = self.conn()?;
        if self.attempt_for(&mut conn, attempt_id, browser_id)?.is_none() {
            return Ok(Err(CodeRejected::AttemptGone));
        }
        let Some(code) = recovery_code::normalize(typed) else { return Ok(Err(CodeRejected::Malformed)) };
        // Wrong tries count per address whether or not it has an account.
        let key = format!("recovery:address:{}", hash_secret(email.as_str()));
        if let Some(retry_after) = repo::limits::hit(&mut conn, &key, 3600, self.config().limits.code_tries_per_address_per_hour, now)? {
            return Ok(Err(CodeRejected::AddressLocked { retry_after }));
        }
        let result = keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let user = match repo::users::find_by_email(c, email.as_str())? {
                Some(u) if u.disabled_at.is_none() => u,
                _ => return Ok(Err(CodeRejected::Wrong { tries_left: 0 })),
            };
            if !repo::recovery::take(c, &user.id, &hash_secret(&code), now)? {
                self.audit(c, "recovery_code_rejected", Some(&user.id), serde_json::json!({}))?;
                return Ok(Err(CodeRejected::Wrong { tries_left: 0 }));
            }
            let left = repo::recovery::remaining(c, &user.id)?;
            self.audit(c, "recovery_code_used", Some(&user.id), serde_json::json!({ "codes_left": left }))?;
            let signed_in = match self.complete_sign_in_for(
                c,
                attempt_id,
                browser_id,
                &user,
                Proof { amr: "otp", method: "recovery_code", offer_passkey: false },
            )? {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            repo::limits::reset(c, &key)?;
            let notice = Notice {
                to: user.email.clone(),
                what: format!("Someone signed in to your account with a recovery code. {left} recovery codes are left."),
                at: now,
            };
            Ok::<_, ServiceError>(Ok((signed_in, notice)))
        })?;
        self.metrics.inc(Family::RecoveryCodeSignIns, "outcome", if result.is_ok() { "success" } else { "failure" });
        Ok(result)
    }
}
