//! Re-authentication ("sudo mode") before sensitive account changes: adding or removing a
//! passkey, new recovery codes, turning email sign-in off and signing out elsewhere need a
//! session whose `auth_time` is within `login.reauthentication_seconds`. Otherwise the
//! person proves it again with a code emailed to the account's own address; success moves
//! the session's `auth_time` and `amr`, and never changes who is signed in.

use crate::login::CodeRejected;
use crate::{Keyward, ServiceError};
use keyward_core::email_code;
use keyward_core::secret::{hash_secret, random_token};
use keyward_store::models::EmailChallenge;
use keyward_store::repo;

/// Where a session stands for a sensitive change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recency {
    /// Signed in within the window: go ahead.
    Recent,
    /// Signed in, but too long ago: re-authenticate first.
    Stale,
}

/// A re-authentication code to email (off the request path) to the account's address.
pub struct ReauthMail {
    pub challenge_id: String,
    pub to: String,
    pub code_display: String,
    pub requested_from: String,
}

/// The answer to "email me a code to confirm it's me".
pub enum ReauthCodeRequest {
    Send(ReauthMail),
    /// Email sign-in is off for this account: only a passkey can confirm.
    EmailOff,
    Limited {
        retry_after: i64,
    },
}

/// What the re-authentication page shows.
pub struct ReauthView {
    pub email: String,
    pub email_sign_in: bool,
    pub has_passkey: bool,
    /// A code was sent and is still live.
    pub code_sent: bool,
    pub delivery_failed: bool,
}

/// Re-authentication challenges live in `email_challenges` under this key, one per session.
pub(crate) fn challenge_key(session_hash: &str) -> String {
    format!("reauth:{session_hash}")
}

impl Keyward {
    /// `None` without a live session.
    pub fn session_recency(&self, session_token: &str) -> Result<Option<Recency>, ServiceError> {
        let now = self.now();
        let found = repo::sessions::find_live(&mut *self.conn()?, &hash_secret(session_token), now, self.config().session_idle_seconds)?;
        Ok(found.map(|(s, _)| if s.auth_time > now - self.config().reauthentication_seconds { Recency::Recent } else { Recency::Stale }))
    }

    /// The re-authentication page's state; `None` without a live session.
    pub fn reauth_view(&self, session_token: &str) -> Result<Option<ReauthView>, ServiceError> {
        let now = self.now();
        let session_hash = hash_secret(session_token);
        let mut conn = self.conn()?;
        let Some(user) = self.session_user(&mut conn, session_token)? else { return Ok(None) };
        let has_passkey = repo::passkeys::count_for_user(&mut conn, &user.id)? > 0;
        let latest = repo::attempts::latest_challenge(&mut conn, &challenge_key(&session_hash))?;
        let live = latest.filter(|c| c.consumed_at.is_none() && c.expires_at > now);
        Ok(Some(ReauthView {
            email: user.email,
            email_sign_in: user.email_sign_in,
            has_passkey,
            code_sent: live.is_some(),
            delivery_failed: live.as_ref().is_some_and(|c| c.delivery == "failed"),
        }))
    }

    /// Creates a code for this session, to be emailed to the account's own address (never to
    /// a typed one), within the same send limits as sign-in codes. `None` without a session.
    pub fn request_reauth_code(&self, session_token: &str, requested_from: &str) -> Result<Option<ReauthCodeRequest>, ServiceError> {
        let now = self.now();
        let limits = &self.config().limits;
        let mut conn = self.conn()?;
        let Some(user) = self.session_user(&mut conn, session_token)? else { return Ok(None) };
        if !user.email_sign_in {
            return Ok(Some(ReauthCodeRequest::EmailOff));
        }
        // Admitted to the Argon2 gate, with a running slot, once the session is known and
        // before any limit is counted: a shed request costs nothing (finding 21). Admission
        // never waits; the slot is awaited without a pooled connection.
        let ticket = self.admit_argon2("hash")?;
        drop(conn);
        let slot = self.argon2_slot(&ticket, "hash")?;
        let mut conn = self.conn()?;
        let address_key = format!("send:address:{}", hash_secret(&user.email));
        let net_key = format!("send:net:{requested_from}");
        let window = limits.send_window_seconds;
        let keys = [(address_key.as_str(), window, limits.sends_per_address), (net_key.as_str(), window, limits.sends_per_ip)];
        if let Some((_, retry_after)) = repo::limits::hit_all(&mut conn, &keys, now)? {
            return Ok(Some(ReauthCodeRequest::Limited { retry_after }));
        }
        // Hashed only once the limits allow it, as for sign-in codes (issue 14, finding 6).
        drop(conn);
        let code = email_code::generate(&mut rand::rng());
        let code_hash = self.argon2_hash(&slot, &code)?;
        drop((slot, ticket));
        let row = EmailChallenge {
            id: random_token(&mut rand::rng()),
            attempt_id: challenge_key(&hash_secret(session_token)),
            email: user.email.clone(),
            code_hash,
            failed_tries: 0,
            created_at: now,
            expires_at: now + self.config().code_lifetime_seconds,
            consumed_at: None,
            // No magic link: re-authentication happens in the browser that asked.
            link_hash: None,
            delivery: "pending".into(),
            requested_from: requested_from.to_owned(),
        };
        keyward_store::write_transaction(&mut *self.writer()?, |c| repo::attempts::replace_reauth_challenge(c, &row))?;
        Ok(Some(ReauthCodeRequest::Send(ReauthMail {
            challenge_id: row.id,
            to: row.email,
            code_display: email_code::display(&code),
            requested_from: row.requested_from,
        })))
    }

    /// Checks a typed re-authentication code; on success the session's `auth_time` becomes
    /// now (`amr` "otp"). `Ok(Err(AttemptGone))` when the session is not live.
    pub fn verify_reauth_code(&self, session_token: &str, typed: &str) -> Result<Result<(), CodeRejected>, ServiceError> {
        let now = self.now();
        let session_hash = hash_secret(session_token);
        let Some(user) = self.session_user(&mut *self.conn()?, session_token)? else { return Ok(Err(CodeRejected::AttemptGone)) };
        // Admitted to the Argon2 gate, with a running slot, before a try is taken: a shed
        // request costs no try (finding 21).
        let ticket = self.admit_argon2("verify")?;
        let slot = self.argon2_slot(&ticket, "verify")?;
        let (user, challenge) = {
            let mut conn = self.conn()?;
            // The code must have gone to this account's address (it changes only by an admin).
            let belongs = |ch: &EmailChallenge| ch.email == user.email && user.email_sign_in;
            match self.take_code_try(&mut conn, &challenge_key(&session_hash), typed, belongs)? {
                Ok(ch) => (user, ch),
                Err(rejected) => return Ok(Err(rejected)),
            }
        };
        let matched = self.code_matches(&slot, &challenge, typed);
        drop((slot, ticket));
        if let Err(rejected) = matched {
            return Ok(Err(rejected));
        }
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            if !self.consume_code(c, &challenge)? {
                return Ok(Err(CodeRejected::NoLiveCode));
            }
            if !repo::sessions::reauthenticate(c, &session_hash, &user.id, "otp", now)? {
                return Ok(Err(CodeRejected::AttemptGone));
            }
            self.audit(c, "reauthenticated", Some(&user.id), serde_json::json!({ "method": "email_code" }))?;
            Ok(Ok(()))
        })
    }
}
