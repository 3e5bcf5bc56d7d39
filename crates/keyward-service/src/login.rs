//! Signing in by emailed code (DESIGN.md §4): a login attempt holds the pending
//! authorization request and is bound to the browser that started it; a code is sent for
//! it, checked with a try limit taken *before* the comparison, and, when right, turns into
//! an account, a session and an authorization code in one transaction.

use crate::oidc::{self, Continue};
use crate::{Keyward, ServiceError};
use argon2::{PasswordHasher, PasswordVerifier};
use diesel::Connection;
use keyward_core::authorize::AuthorizationRequest;
use keyward_core::config::SignupPolicy;
use keyward_core::email::Email;
use keyward_core::email_code::{self, MAX_ATTEMPTS};
use keyward_core::secret::{constant_time_eq, hash_secret, random_token};
use keyward_store::models::{EmailChallenge, LoginAttempt, Session, User};
use keyward_store::repo;

/// A login attempt lives an hour: long enough to fetch a code from another device.
const ATTEMPT_LIFETIME_SECS: i64 = 3600;

/// A mail the web layer sends off the request path.
pub struct CodeMail {
    pub to: String,
    pub code_display: String,
    pub app_name: String,
}

/// Why a code was not accepted, each with its own message for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRejected {
    /// The attempt is unknown, finished, expired, or belongs to another browser.
    AttemptGone,
    /// No live code: expired, used, or never requested.
    NoLiveCode,
    Malformed,
    Wrong {
        tries_left: i32,
    },
    TooManyTries,
}

/// A finished sign-in: the new session's cookie value and where to send the browser.
pub struct SignedIn {
    pub session_token: String,
    pub redirect_to: String,
}

impl Keyward {
    /// Stores the validated request as a login attempt for this browser; returns its id.
    pub fn begin_login(
        &self,
        request: &AuthorizationRequest,
        browser_id: &str,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let id = random_token(&mut rand::rng());
        let row = LoginAttempt {
            id: id.clone(),
            browser_hash: hash_secret(browser_id),
            request_json: serde_json::to_string(request)
                .map_err(|e| ServiceError::Corrupt(e.to_string()))?,
            created_at: now,
            expires_at: now + ATTEMPT_LIFETIME_SECS,
            completed_at: None,
        };
        repo::attempts::insert(&mut *self.conn()?, &row)?;
        Ok(id)
    }

    /// The live attempt if it belongs to this browser.
    pub fn find_attempt(
        &self,
        attempt_id: &str,
        browser_id: &str,
    ) -> Result<Option<AuthorizationRequest>, ServiceError> {
        let mut conn = self.conn()?;
        Ok(self
            .attempt_for(&mut conn, attempt_id, browser_id)?
            .map(|(_, r)| r))
    }

    fn attempt_for(
        &self,
        conn: &mut keyward_store::DbConnection,
        attempt_id: &str,
        browser_id: &str,
    ) -> Result<Option<(LoginAttempt, AuthorizationRequest)>, ServiceError> {
        let Some(attempt) = repo::attempts::find_live(conn, attempt_id, self.now())? else {
            return Ok(None);
        };
        if !constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
            return Ok(None);
        }
        let request = serde_json::from_str(&attempt.request_json)
            .map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        Ok(Some((attempt, request)))
    }

    /// Creates a code for the attempt (killing earlier ones). Returns the mail to send, or
    /// `None` when nothing may be sent (unknown address under a closed sign-up policy); the
    /// caller answers the same either way. `Err(AttemptGone)` when the attempt is not this
    /// browser's.
    pub fn request_email_code(
        &self,
        attempt_id: &str,
        browser_id: &str,
        email: &Email,
    ) -> Result<Result<Option<CodeMail>, CodeRejected>, ServiceError> {
        // Hash first, with no connection held: Argon2 is the slow part.
        let code = email_code::generate(&mut rand::rng());
        let code_hash = self
            .argon2
            .hash_password(code.as_bytes())
            .map_err(|e| ServiceError::Crypto(e.to_string()))?
            .to_string();
        let now = self.now();
        let mut conn = self.conn()?;
        let Some((attempt, request)) = self.attempt_for(&mut conn, attempt_id, browser_id)? else {
            return Ok(Err(CodeRejected::AttemptGone));
        };
        let user = repo::users::find_by_email(&mut conn, email.as_str())?;
        let deliverable = match &user {
            Some(u) => u.disabled_at.is_none(),
            None => self.signup_allowed(email),
        };
        let row = EmailChallenge {
            id: random_token(&mut rand::rng()),
            attempt_id: attempt.id,
            email: email.as_str().to_owned(),
            code_hash,
            failed_tries: 0,
            created_at: now,
            expires_at: now + self.config.code_lifetime_seconds,
            consumed_at: None,
        };
        conn.transaction(|c| repo::attempts::replace_challenge(c, &row))?;
        let app_name = self
            .config
            .client(&request.client_id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        Ok(Ok(deliverable.then(|| CodeMail {
            to: email.as_str().to_owned(),
            code_display: email_code::display(&code),
            app_name,
        })))
    }

    /// The address the attempt's live code was sent to, for the "check your email" page.
    pub fn pending_code_email(
        &self,
        attempt_id: &str,
        browser_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        let mut conn = self.conn()?;
        if self
            .attempt_for(&mut conn, attempt_id, browser_id)?
            .is_none()
        {
            return Ok(None);
        }
        Ok(repo::attempts::current_challenge(&mut conn, attempt_id)?.map(|c| c.email))
    }

    fn signup_allowed(&self, email: &Email) -> bool {
        match self.config.signup {
            SignupPolicy::Open => true,
            SignupPolicy::InviteOnly => false,
            SignupPolicy::AllowedDomains => self
                .config
                .allowed_domains
                .iter()
                .any(|d| d == email.domain()),
        }
    }

    /// Checks a typed code; on success signs the person in and answers the attempt's request.
    pub fn verify_email_code(
        &self,
        attempt_id: &str,
        browser_id: &str,
        typed: &str,
    ) -> Result<Result<SignedIn, CodeRejected>, ServiceError> {
        let now = self.now();
        let challenge = {
            let mut conn = self.conn()?;
            if self
                .attempt_for(&mut conn, attempt_id, browser_id)?
                .is_none()
            {
                return Ok(Err(CodeRejected::AttemptGone));
            }
            let Some(ch) = repo::attempts::current_challenge(&mut conn, attempt_id)? else {
                return Ok(Err(CodeRejected::NoLiveCode));
            };
            if ch.expires_at <= now {
                return Ok(Err(CodeRejected::NoLiveCode));
            }
            let Some(_) = email_code::normalize(typed) else {
                return Ok(Err(CodeRejected::Malformed));
            };
            if !repo::attempts::take_try(&mut conn, &ch.id, MAX_ATTEMPTS, now)? {
                return Ok(Err(CodeRejected::TooManyTries));
            }
            ch
        };
        let normalized = email_code::normalize(typed).unwrap_or_default();
        if self
            .argon2
            .verify_password(normalized.as_bytes(), challenge.code_hash.as_str())
            .is_err()
        {
            let tries_left = MAX_ATTEMPTS - (challenge.failed_tries + 1);
            return Ok(Err(if tries_left <= 0 {
                CodeRejected::TooManyTries
            } else {
                CodeRejected::Wrong { tries_left }
            }));
        }
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            if !repo::attempts::consume_challenge(c, &challenge.id, now)? {
                return Ok(Err(CodeRejected::NoLiveCode));
            }
            let Some((_, request)) = self.attempt_for(c, attempt_id, browser_id)? else {
                return Ok(Err(CodeRejected::AttemptGone));
            };
            let email =
                Email::parse(&challenge.email).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
            let user = match repo::users::find_by_email(c, email.as_str())? {
                Some(u) if u.disabled_at.is_some() => return Ok(Err(CodeRejected::NoLiveCode)),
                Some(u) => {
                    if !u.email_verified {
                        repo::users::mark_email_verified(c, &u.id)?;
                    }
                    u
                }
                None if self.signup_allowed(&email) => {
                    let u = User {
                        id: uuid::Uuid::new_v4().to_string(),
                        email: email.as_str().to_owned(),
                        email_verified: true,
                        name: None,
                        created_at: now,
                        disabled_at: None,
                    };
                    repo::users::insert(c, &u)?;
                    tracing::info!(user = %u.id, "account created by email sign-in");
                    u
                }
                None => return Ok(Err(CodeRejected::NoLiveCode)),
            };
            repo::attempts::complete(c, attempt_id, now)?;
            let session_token = random_token(&mut rand::rng());
            let session = Session {
                id_hash: hash_secret(&session_token),
                user_id: user.id.clone(),
                auth_time: now,
                amr: "otp".into(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + self.config.session_lifetime_seconds,
                revoked_at: None,
            };
            repo::sessions::insert(c, &session)?;
            let Continue::Redirect(redirect_to) = oidc::issue_code(self, c, &request, &session)?
            else {
                return Err(ServiceError::Corrupt(
                    "a fresh session could not answer its request".into(),
                ));
            };
            tracing::info!(user = %user.id, method = "email_code", "signed in");
            Ok(Ok(SignedIn {
                session_token,
                redirect_to,
            }))
        })
    }
}
