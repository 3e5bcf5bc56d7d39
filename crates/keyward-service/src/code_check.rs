//! The steps every emailed code goes through, for sign-in (`login.rs`) and re-authentication
//! (`reauth.rs`) alike: the latest challenge under its key must be live and delivered, the
//! typed code well formed, the address's hourly try window open and a try taken from the
//! challenge before the Argon2 check (so parallel guesses cannot exceed the limit, CHECKLIST
//! D4); a correct code is consumed once, under a row update, and resets the address window.

use crate::argon2_gate::Slot;
use crate::login::CodeRejected;
use crate::{Keyward, ServiceError};
use keyward_core::email_code::{self, MAX_ATTEMPTS};
use keyward_core::secret::hash_secret;
use keyward_store::models::EmailChallenge;
use keyward_store::{DbConnection, repo};

fn tries_key(email: &str) -> String {
    format!("tries:address:{}", hash_secret(email))
}

impl Keyward {
    /// Takes a try from the latest challenge of `key` for `typed`, after the checks that
    /// need no hashing. `belongs` may refuse a challenge (as expired) before any try is taken.
    pub(crate) fn take_code_try(
        &self,
        conn: &mut DbConnection,
        key: &str,
        typed: &str,
        belongs: impl FnOnce(&EmailChallenge) -> bool,
    ) -> Result<Result<EmailChallenge, CodeRejected>, ServiceError> {
        let now = self.now();
        let Some(ch) = repo::attempts::latest_challenge(conn, key)? else { return Ok(Err(CodeRejected::NoLiveCode)) };
        if ch.delivery == "failed" {
            return Ok(Err(CodeRejected::MailFailed));
        }
        if ch.consumed_at.is_some() || ch.expires_at <= now || !belongs(&ch) {
            return Ok(Err(CodeRejected::NoLiveCode));
        }
        if email_code::normalize(typed).is_none() {
            return Ok(Err(CodeRejected::Malformed));
        }
        let limit = self.config().limits.code_tries_per_address_per_hour;
        if let Some(retry_after) = repo::limits::hit(conn, &tries_key(&ch.email), 3600, limit, now)? {
            return Ok(Err(CodeRejected::AddressLocked { retry_after }));
        }
        if !repo::attempts::take_try(conn, &ch.id, MAX_ATTEMPTS, now)? {
            return Ok(Err(CodeRejected::TooManyTries));
        }
        Ok(Ok(ch))
    }

    /// The Argon2 check of `typed` against a challenge whose try was taken (no connection
    /// is held meanwhile), in an Argon2 slot taken before the try (finding 21).
    pub(crate) fn code_matches(&self, slot: &Slot<'_>, challenge: &EmailChallenge, typed: &str) -> Result<(), CodeRejected> {
        let normalized = email_code::normalize(typed).unwrap_or_default();
        if self.argon2_verify(slot, &normalized, &challenge.code_hash) {
            return Ok(());
        }
        let tries_left = MAX_ATTEMPTS - (challenge.failed_tries + 1);
        Err(if tries_left <= 0 { CodeRejected::TooManyTries } else { CodeRejected::Wrong { tries_left } })
    }

    /// Inside the caller's write transaction: uses a matched code, once. False when another
    /// request used it first (the update finds it consumed, also after waiting for the row).
    pub(crate) fn consume_code(&self, c: &mut DbConnection, challenge: &EmailChallenge) -> Result<bool, ServiceError> {
        if !repo::attempts::consume_challenge(c, &challenge.id, self.now())? {
            return Ok(false);
        }
        repo::limits::reset(c, &tries_key(&challenge.email))?;
        Ok(true)
    }
}
