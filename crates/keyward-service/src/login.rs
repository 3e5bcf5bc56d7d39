//! Signing in by email (DESIGN.md §4): a login attempt holds the pending authorization
//! request and is bound to the browser that started it. One email carries a code and a
//! magic link for it; sends and wrong tries are limited in the database so the limits hold
//! across instances; a correct code turns into an account, a session and an authorization
//! code in one transaction. Magic links and cross-device approval are in `link.rs`.

use crate::{Keyward, ServiceError};
use keyward_core::authorize::AuthorizationRequest;
use keyward_core::config::SignupPolicy;
use keyward_core::email::Email;
use keyward_core::email_code;
use keyward_core::secret::{constant_time_eq, hash_secret, random_token};
use keyward_store::models::{EmailChallenge, LoginAttempt, Session, User};
use keyward_store::{DbConnection, repo};
use rand::Rng;
use std::net::IpAddr;

/// A login attempt lives an hour: long enough to fetch a code from another device.
const ATTEMPT_LIFETIME_SECS: i64 = 3600;

/// The answer to "start signing in" (a new login attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStart {
    /// The attempt's id, for the login page's URL.
    Started(String),
    /// Too many new attempts from this network; retry after this many seconds.
    Limited { retry_after: i64 },
}

/// The rate-limit key for new attempts from `client`: the address as
/// [`keyward_core::net::limit_key`] cuts it (IPv4 as itself, IPv6 per /64).
fn attempts_key(client: Option<IpAddr>) -> String {
    match client {
        Some(ip) => format!("attempts:ip:{}", keyward_core::net::limit_key(ip)),
        None => "attempts:ip:unknown".into(),
    }
}

/// A mail the web layer sends off the request path, then reports back on.
pub struct CodeMail {
    pub challenge_id: String,
    pub to: String,
    pub code_display: String,
    pub link_token: String,
    pub app_name: String,
    pub requested_from: String,
}

/// The answer to "email me a code".
pub enum CodeRequest {
    /// Send this mail. The person sees the same page as for `Suppressed`.
    Send(CodeMail),
    /// Nothing is sent (the address may not sign in), and nobody can tell.
    Suppressed,
    /// Too many sends for this address or network; retry after this many seconds.
    Limited {
        retry_after: i64,
    },
    AttemptGone,
}

/// Why a code was not accepted, each with its own message for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRejected {
    /// The attempt is unknown, finished, expired, or belongs to another browser.
    AttemptGone,
    /// No live code: expired, used, or never requested.
    NoLiveCode,
    /// The email could not be sent, so its code was withdrawn.
    MailFailed,
    Malformed,
    Wrong {
        tries_left: i32,
    },
    TooManyTries,
    /// Too many wrong codes for this address lately; retry after this many seconds.
    AddressLocked {
        retry_after: i64,
    },
    /// The app asked for a passkey (`acr_values`); this method does not satisfy it.
    PasskeyRequired,
}

/// How a person proved who they are, as a finished sign-in records it.
pub(crate) struct Proof<'a> {
    /// RFC 8176 values, space-separated.
    pub amr: &'a str,
    /// The method's name in logs, audit events and metrics.
    pub method: &'static str,
    /// The browser can make a passkey: offer one before answering the app.
    pub offer_passkey: bool,
}

/// A finished sign-in: the new session's cookie value and where to send the browser.
pub struct SignedIn {
    pub session_token: String,
    pub redirect_to: String,
}

/// The attempt as its own browser sees it.
pub struct AttemptView {
    pub request: AuthorizationRequest,
    pub email: Option<String>,
    pub delivery: Option<String>,
    pub approval_number: Option<i32>,
    pub approved: bool,
}

impl Keyward {
    /// Stores the validated request as a login attempt for this browser, counted against the
    /// per-network limit on new attempts (`limits.login_attempts_per_ip_per_minute`, in the
    /// database so every instance shares it; issue 14, finding 3). A refused attempt stores
    /// nothing. Only browsers without a usable session get here: SSO is never counted.
    pub fn begin_login(
        &self,
        request: &AuthorizationRequest,
        browser_id: &str,
        client: Option<IpAddr>,
    ) -> Result<LoginStart, ServiceError> {
        let now = self.now();
        let id = random_token(&mut rand::rng());
        let row = LoginAttempt {
            id: id.clone(),
            browser_hash: hash_secret(browser_id),
            request_json: serde_json::to_string(request).map_err(|e| ServiceError::Corrupt(e.to_string()))?,
            created_at: now,
            expires_at: now + ATTEMPT_LIFETIME_SECS,
            completed_at: None,
            approval_number: None,
            approved_at: None,
            offer_session_hash: None,
            approved_challenge_id: None,
            approved_email: None,
        };
        let key = attempts_key(client);
        let limit = [(key.as_str(), 60, self.config().limits.login_attempts_per_ip_per_minute)];
        match repo::limits::hit_all_then(&mut *self.writer()?, &limit, now, |c| repo::attempts::insert(c, &row))? {
            Ok(()) => Ok(LoginStart::Started(id)),
            Err((_, retry_after)) => {
                tracing::debug!(limit = "login_attempts_per_ip", "login attempt limit reached");
                Ok(LoginStart::Limited { retry_after })
            }
        }
    }

    /// The live attempt if it belongs to this browser.
    pub fn find_attempt(&self, attempt_id: &str, browser_id: &str) -> Result<Option<AuthorizationRequest>, ServiceError> {
        Ok(self.attempt_for(&mut *self.conn()?, attempt_id, browser_id)?.map(|(_, r)| r))
    }

    /// The attempt, its latest email and its cross-device state, for its own browser.
    pub fn attempt_view(&self, attempt_id: &str, browser_id: &str) -> Result<Option<AttemptView>, ServiceError> {
        let mut conn = self.conn()?;
        let Some((attempt, request)) = self.attempt_for(&mut conn, attempt_id, browser_id)? else { return Ok(None) };
        let latest = repo::attempts::latest_challenge(&mut conn, attempt_id)?;
        Ok(Some(AttemptView {
            request,
            email: latest.as_ref().map(|c| c.email.clone()),
            delivery: latest.map(|c| c.delivery),
            approval_number: attempt.approval_number,
            approved: attempt.approved_at.is_some(),
        }))
    }

    pub(crate) fn attempt_for(
        &self,
        conn: &mut DbConnection,
        attempt_id: &str,
        browser_id: &str,
    ) -> Result<Option<(LoginAttempt, AuthorizationRequest)>, ServiceError> {
        let Some(attempt) = repo::attempts::find_live(conn, attempt_id, self.now())? else { return Ok(None) };
        if !constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
            return Ok(None);
        }
        let request = parse_request(&attempt)?;
        Ok(Some((attempt, request)))
    }

    pub(crate) fn client_name(&self, client_id: &str) -> String {
        self.config().client(client_id).map(|c| c.name.clone()).unwrap_or_else(|| "the app".into())
    }

    /// Creates a code and a magic link for the attempt (killing earlier ones), after the
    /// per-address and per-network send limits. Unknown addresses count too, so nobody can
    /// flood an inbox or learn which addresses have accounts.
    pub fn request_email_code(
        &self,
        attempt_id: &str,
        browser_id: &str,
        email: &Email,
        requested_from: &str,
    ) -> Result<CodeRequest, ServiceError> {
        let now = self.now();
        let limits = &self.config().limits;
        // Admitted to the Argon2 gate, with a running slot, once the attempt is known and before
        // any limit is counted: a shed request costs nothing, and a request for no attempt
        // never takes a place (finding 21).
        if self.attempt_for(&mut *self.conn()?, attempt_id, browser_id)?.is_none() {
            return Ok(CodeRequest::AttemptGone);
        }
        let ticket = self.admit_argon2("hash")?;
        let slot = self.argon2_slot(&ticket, "hash")?;
        // The attempt and the send limits come first, so a refused request costs no Argon2
        // work (issue 14, finding 6), and a refused request writes nothing: the limits are
        // counted together or not at all (finding 22).
        let (attempt, request, deliverable) = {
            let mut conn = self.conn()?;
            let Some((attempt, request)) = self.attempt_for(&mut conn, attempt_id, browser_id)? else {
                return Ok(CodeRequest::AttemptGone);
            };
            let window = limits.send_window_seconds;
            let address_key = format!("send:address:{}", hash_secret(email.as_str()));
            let net_key = format!("send:net:{requested_from}");
            let keys = [(address_key.as_str(), window, limits.sends_per_address), (net_key.as_str(), window, limits.sends_per_ip)];
            if let Some((which, retry_after)) = repo::limits::hit_all(&mut conn, &keys, now)? {
                let limit = if which == 0 { "address" } else { "net" };
                tracing::info!(limit, "sign-in email limit reached");
                return Ok(CodeRequest::Limited { retry_after });
            }
            let deliverable = match repo::users::find_by_email(&mut conn, email.as_str())? {
                Some(u) => u.disabled_at.is_none() && u.email_sign_in && !request.requires_passkey(),
                None => self.signup_allowed(email) && !request.requires_passkey(),
            };
            (attempt, request, deliverable)
        };
        // Hashed for every address, deliverable or not, so the answer takes the same time.
        let code = email_code::generate(&mut rand::rng());
        let code_hash = self.argon2_hash(&slot, &code)?;
        drop((slot, ticket));
        let link_token = random_token(&mut rand::rng());
        let row = EmailChallenge {
            id: random_token(&mut rand::rng()),
            attempt_id: attempt.id.clone(),
            email: email.as_str().to_owned(),
            code_hash,
            failed_tries: 0,
            created_at: now,
            expires_at: now + self.config().code_lifetime_seconds,
            consumed_at: None,
            link_hash: Some(hash_secret(&link_token)),
            delivery: if deliverable { "pending" } else { "suppressed" }.into(),
            requested_from: requested_from.to_owned(),
        };
        let number = rand::rng().random_range(10..100);
        let replaced = keyward_store::write_transaction(&mut *self.writer()?, |c| repo::attempts::replace_challenge(c, &row, number))?;
        if !replaced {
            return Ok(CodeRequest::AttemptGone);
        }
        if !deliverable {
            return Ok(CodeRequest::Suppressed);
        }
        Ok(CodeRequest::Send(CodeMail {
            challenge_id: row.id,
            to: row.email,
            code_display: email_code::display(&code),
            link_token,
            app_name: self.client_name(&request.client_id),
            requested_from: row.requested_from,
        }))
    }

    /// Records the outcome of sending a challenge's email; a failure withdraws its code and link.
    /// Where the sign-up policy would not have mailed an unknown address (invite only, a domain
    /// outside the allowed ones), telling the person the email failed would tell them that the
    /// address has an account (issue 14, finding 11): there the failed challenge is recorded
    /// as suppressed, which answers exactly as an unknown address does, and the failure is
    /// only logged and counted.
    pub fn record_delivery(&self, challenge_id: &str, delivered: bool) -> Result<(), ServiceError> {
        let mut conn = self.conn()?;
        let status = if delivered {
            "sent"
        } else {
            let email = repo::attempts::challenge_email(&mut conn, challenge_id)?;
            match email.as_deref().map(Email::parse) {
                Some(Ok(e)) if !self.signup_allowed(&e) => {
                    tracing::warn!("sign-in email failed; the person is told nothing, as for an address without an account");
                    "suppressed"
                }
                _ => "failed",
            }
        };
        repo::attempts::set_delivery(&mut conn, challenge_id, status, self.now())?;
        Ok(())
    }

    /// True when this browser finished the attempt (signed in with it): a late page load or
    /// status poll for it is not an error (issue 14, finding 17).
    pub fn attempt_finished_here(&self, attempt_id: &str, browser_id: &str) -> Result<bool, ServiceError> {
        let Some(attempt) = repo::attempts::find(&mut *self.conn()?, attempt_id)? else { return Ok(false) };
        // A cancelled attempt is expired as well (`repo::attempts::cancel`): that one is gone.
        Ok(attempt.completed_at.is_some()
            && attempt.expires_at > self.now()
            && constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)))
    }

    pub(crate) fn signup_allowed(&self, email: &Email) -> bool {
        match self.config().signup {
            SignupPolicy::Open => true,
            SignupPolicy::InviteOnly => false,
            SignupPolicy::AllowedDomains => self.config().allowed_domains.iter().any(|d| d == email.domain()),
        }
    }

    /// Checks a typed code; on success signs the person in and answers the attempt's request.
    /// `offer_passkey`: the browser said it has a platform authenticator, so a person without
    /// a passkey is offered one before going back to the app.
    pub fn verify_email_code(
        &self,
        attempt_id: &str,
        browser_id: &str,
        typed: &str,
        offer_passkey: bool,
    ) -> Result<Result<SignedIn, CodeRejected>, ServiceError> {
        if self.attempt_for(&mut *self.conn()?, attempt_id, browser_id)?.is_none() {
            return Ok(Err(CodeRejected::AttemptGone));
        }
        // Admitted to the Argon2 gate, with a running slot, before a try is taken: a shed
        // request costs no try (finding 21).
        let ticket = self.admit_argon2("verify")?;
        let slot = self.argon2_slot(&ticket, "verify")?;
        let challenge = match self.take_code_try(&mut *self.conn()?, attempt_id, typed, |_| true)? {
            Ok(ch) => ch,
            Err(rejected) => return Ok(Err(rejected)),
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
            self.complete_sign_in(c, attempt_id, browser_id, &challenge.email, "email_code", offer_passkey)
        })
    }

    /// Inside the caller's transaction, after it consumed a challenge for `email`: finds or
    /// creates the account, then finishes the sign-in with [`Self::complete_sign_in_for`].
    pub(crate) fn complete_sign_in(
        &self,
        c: &mut DbConnection,
        attempt_id: &str,
        browser_id: &str,
        email: &str,
        method: &'static str,
        offer_passkey: bool,
    ) -> Result<Result<SignedIn, CodeRejected>, ServiceError> {
        let now = self.now();
        let email = Email::parse(email).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        let user = match repo::users::find_by_email(c, email.as_str())? {
            Some(u) if u.disabled_at.is_some() || !u.email_sign_in => return Ok(Err(CodeRejected::NoLiveCode)),
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
                    email_sign_in: true,
                    passkey_offer_declined_at: None,
                };
                repo::users::insert(c, &u)?;
                tracing::info!(user = %u.id, "account created by email sign-in");
                u
            }
            None => return Ok(Err(CodeRejected::NoLiveCode)),
        };
        self.complete_sign_in_for(c, attempt_id, browser_id, &user, Proof { amr: "otp", method, offer_passkey })
    }

    /// Ends the attempt, opens a session with a fresh id and the proof's `amr` and answers
    /// the attempt's authorization request — or, when the proof offers a passkey to someone
    /// without one who has not declined it, parks the answer behind the "sign in faster next
    /// time" page.
    pub(crate) fn complete_sign_in_for(
        &self,
        c: &mut DbConnection,
        attempt_id: &str,
        browser_id: &str,
        user: &User,
        proof: Proof<'_>,
    ) -> Result<Result<SignedIn, CodeRejected>, ServiceError> {
        let Proof { amr, method, offer_passkey } = proof;
        let now = self.now();
        let Some((_, request)) = self.attempt_for(c, attempt_id, browser_id)? else {
            return Ok(Err(CodeRejected::AttemptGone));
        };
        if user.disabled_at.is_some() {
            return Ok(Err(CodeRejected::NoLiveCode));
        }
        if !request.satisfied_by(amr) {
            return Ok(Err(CodeRejected::PasskeyRequired));
        }
        if !repo::attempts::complete(c, attempt_id, now)? {
            return Ok(Err(CodeRejected::AttemptGone));
        }
        let session_token = random_token(&mut rand::rng());
        let session = Session {
            id_hash: hash_secret(&session_token),
            user_id: user.id.clone(),
            auth_time: now,
            amr: amr.into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.config().session_lifetime_seconds,
            revoked_at: None,
        };
        repo::sessions::insert(c, &session)?;
        self.audit(c, "signed_in", Some(&user.id), serde_json::json!({ "method": method, "client": request.client_id }))?;
        self.metrics.inc(crate::metrics::Family::SignIns, "method", method);
        tracing::info!(user = %user.id, method, "signed in");
        if offer_passkey && user.passkey_offer_declined_at.is_none() && repo::passkeys::count_for_user(c, &user.id)? == 0 {
            repo::attempts::park_for_offer(c, attempt_id, &session.id_hash)?;
            return Ok(Ok(SignedIn { session_token, redirect_to: format!("/login/passkey-offer?attempt={attempt_id}") }));
        }
        let redirect_to = self.answer_signed_in(c, attempt_id, &request, &session)?;
        Ok(Ok(SignedIn { session_token, redirect_to }))
    }

    /// The app's name if this browser's sign-in waits on the passkey offer.
    pub fn passkey_offer(&self, attempt_id: &str, browser_id: &str) -> Result<Option<String>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(attempt) = repo::attempts::find_parked(&mut conn, attempt_id, self.now())? else { return Ok(None) };
        if !constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
            return Ok(None);
        }
        Ok(Some(self.client_name(&parse_request(&attempt)?.client_id)))
    }

    /// Leaves the passkey offer (after creating a passkey, or skipping it, which `decline`
    /// remembers) and answers the app with the session the sign-in opened. Once only.
    pub fn continue_after_offer(&self, attempt_id: &str, browser_id: &str, decline: bool) -> Result<Option<String>, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some((request, session)) = self.take_parked_sign_in(c, attempt_id, browser_id)? else { return Ok(None) };
            if decline {
                repo::users::decline_passkey_offer(c, &session.user_id, now)?;
            }
            Ok(Some(self.answer_signed_in(c, attempt_id, &request, &session)?))
        })
    }
}

impl Keyward {
    /// Takes a sign-in parked behind a page (passkey offer, consent) for the browser it
    /// belongs to, once: its authorization request and the live session that will answer it.
    pub(crate) fn take_parked_sign_in(
        &self,
        c: &mut DbConnection,
        attempt_id: &str,
        browser_id: &str,
    ) -> Result<Option<(AuthorizationRequest, Session)>, ServiceError> {
        let now = self.now();
        let Some(attempt) = repo::attempts::find_parked(c, attempt_id, now)? else { return Ok(None) };
        if !constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
            return Ok(None);
        }
        let Some(taken) = repo::attempts::take_parked(c, attempt_id, now)? else { return Ok(None) };
        let session_hash = taken.offer_session_hash.clone().unwrap_or_default();
        let Some(session) = repo::sessions::find_live_by_hash(c, &session_hash, now, self.config().session_idle_seconds)? else {
            return Ok(None);
        };
        Ok(Some((parse_request(&taken)?, session)))
    }
}

pub(crate) fn parse_request(attempt: &LoginAttempt) -> Result<AuthorizationRequest, ServiceError> {
    serde_json::from_str(&attempt.request_json).map_err(|e| ServiceError::Corrupt(e.to_string()))
}
