//! Consent (DESIGN.md §3): apps not marked `first_party` ask the person once per set of
//! scopes; the answer is remembered per person and app and can be withdrawn from the
//! account page, which also revokes that app's grants (and so its refresh tokens).

use crate::login::parse_request;
use crate::oidc::{self, Continue};
use crate::{Keyward, ServiceError};
use keyward_core::authorize::AuthorizationRequest;
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};
use keyward_core::scope::Scopes;
use keyward_core::secret::{constant_time_eq, hash_secret, random_token};
use keyward_store::models::{LoginAttempt, Session};
use keyward_store::{DbConnection, repo};

/// What the consent page shows.
pub struct ConsentView {
    pub app_name: String,
    /// Each scope in plain words.
    pub scopes: Vec<String>,
}

/// An app the person has consented to, for the account page.
pub struct ConsentSummary {
    pub client_id: String,
    pub app_name: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// A scope in words a person understands.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Know it's you when you come back (a stable, private identifier)".into(),
        "email" => "See your email address".into(),
        "profile" => "See your name".into(),
        "offline_access" => "Stay connected to your account while you're not using the app".into(),
        other => format!("Use the \"{other}\" permission"),
    }
}

const CONSENT_ATTEMPT_SECS: i64 = 15 * 60;

impl Keyward {
    /// Whether `request` needs the person's consent before a code is issued.
    pub(crate) fn needs_consent(&self, c: &mut DbConnection, request: &AuthorizationRequest, user_id: &str) -> Result<bool, ServiceError> {
        let config = self.config();
        let Some(client) = config.client(&request.client_id) else { return Ok(true) };
        if request.prompt_has("consent") {
            return Ok(true);
        }
        if client.first_party {
            return Ok(false);
        }
        // `claims` asks for claims by name: their scopes need consent like `scope` does.
        let asked = request.consent_scope();
        Ok(match repo::consents::find(c, user_id, &client.id)? {
            Some(given) => !asked.is_subset_of(&Scopes::parse_with(&given.scope, |_| true)),
            None => true,
        })
    }

    /// After a sign-in (or the passkey offer): a code for the app, or — when consent is
    /// needed — the attempt parked with the session and the browser sent to the consent page.
    pub(crate) fn answer_signed_in(
        &self,
        c: &mut DbConnection,
        attempt_id: &str,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<String, ServiceError> {
        if self.needs_consent(c, request, &session.user_id)? {
            repo::attempts::park_for_offer(c, attempt_id, &session.id_hash)?;
            return Ok(format!("/consent?attempt={attempt_id}"));
        }
        match oidc::issue_code(self, c, request, session)? {
            Continue::Redirect(to) => Ok(to),
            _ => Err(ServiceError::Corrupt("a live session could not answer its request".into())),
        }
    }

    /// A browser with a live session whose app needs consent: parks the request with the
    /// session as a finished attempt and returns its id for the consent page.
    pub fn begin_consent(&self, request: &AuthorizationRequest, browser_id: &str, session_hash: &str) -> Result<String, ServiceError> {
        let now = self.now();
        let id = random_token(&mut rand::rng());
        let row = LoginAttempt {
            id: id.clone(),
            browser_hash: hash_secret(browser_id),
            request_json: serde_json::to_string(request).map_err(|e| ServiceError::Corrupt(e.to_string()))?,
            created_at: now,
            expires_at: now + CONSENT_ATTEMPT_SECS,
            completed_at: Some(now),
            approval_number: None,
            approved_at: None,
            offer_session_hash: Some(session_hash.to_owned()),
            approved_challenge_id: None,
            approved_email: None,
        };
        repo::attempts::insert(&mut *self.conn()?, &row)?;
        Ok(id)
    }

    /// The consent page's content, for the browser the attempt belongs to.
    pub fn consent_view(&self, attempt_id: &str, browser_id: &str) -> Result<Option<ConsentView>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(attempt) = repo::attempts::find_parked(&mut conn, attempt_id, self.now())? else { return Ok(None) };
        if !constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
            return Ok(None);
        }
        let request = parse_request(&attempt)?;
        Ok(Some(ConsentView {
            app_name: self.client_name(&request.client_id),
            scopes: request.consent_scope().iter().map(describe_scope).collect(),
        }))
    }

    /// The person allowed or declined: remembers an allow and answers the app with a code,
    /// or answers `access_denied`. Once only; None when the attempt is gone or not this browser's.
    pub fn decide_consent(&self, attempt_id: &str, browser_id: &str, allow: bool) -> Result<Option<String>, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some((request, session)) = self.take_parked_sign_in(c, attempt_id, browser_id)? else { return Ok(None) };
            if !allow {
                self.audit(c, "consent_declined", Some(&session.user_id), serde_json::json!({ "client": request.client_id }))?;
                let err = OAuthError::new(E::AccessDenied, "the user declined to share their account with this app");
                return Ok(Some(self.error_redirect(&request, &err)));
            }
            let mut scope = repo::consents::find(c, &session.user_id, &request.client_id)?.map(|g| g.scope).unwrap_or_default();
            scope.push(' ');
            scope.push_str(&request.consent_scope().as_string());
            let scope = Scopes::parse_with(&scope, |_| true).as_string();
            repo::consents::grant(c, &session.user_id, &request.client_id, &scope, now)?;
            self.audit(c, "consent_given", Some(&session.user_id), serde_json::json!({ "client": request.client_id, "scope": scope }))?;
            match oidc::issue_code(self, c, &request, &session)? {
                Continue::Redirect(to) => Ok(Some(to)),
                _ => Ok(None),
            }
        })
    }

    /// The apps a person has consented to.
    pub(crate) fn consent_summaries(&self, c: &mut DbConnection, user_id: &str) -> Result<Vec<ConsentSummary>, ServiceError> {
        Ok(repo::consents::for_user(c, user_id)?
            .into_iter()
            .map(|g| ConsentSummary {
                app_name: self.client_name(&g.client_id),
                scopes: Scopes::parse_with(&g.scope, |_| true).iter().map(describe_scope).collect(),
                client_id: g.client_id,
                granted_at: g.granted_at,
            })
            .collect())
    }

    /// Withdraws consent to an app and revokes its grants (refresh tokens included).
    /// Returns false without a live session or when there was nothing to withdraw.
    pub fn revoke_consent(&self, session_token: &str, client_id: &str) -> Result<bool, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = self.session_user(c, session_token)? else { return Ok(false) };
            if !repo::consents::revoke(c, &user.id, client_id)? {
                return Ok(false);
            }
            let grants = repo::grants::revoke_for_user_client(c, &user.id, client_id, now)?;
            self.audit(c, "consent_revoked", Some(&user.id), serde_json::json!({ "client": client_id, "grants_revoked": grants }))?;
            Ok(true)
        })
    }
}
