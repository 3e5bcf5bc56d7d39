//! The OpenID Provider's answers: codes for a signed-in person, the token endpoint's
//! authorization_code grant, userinfo and the discovery document.

use crate::{Keyward, ServiceError};
use keyward_core::authorize::AuthorizationRequest;
use keyward_core::claims::AUTHORIZATION_CODE_LIFETIME_SECS;
use keyward_core::oauth_error::OAuthError;
use keyward_core::secret::{hash_secret, random_token};
use keyward_core::session_reuse::{self, SessionFacts};
use keyward_store::models::{AuthorizationCode, Session};
use keyward_store::{DbConnection, repo};

/// What to do with an authorization request for a browser.
pub enum Continue {
    /// Send the browser here (the client's redirect URI with a code or an error).
    Redirect(String),
    /// The person must sign in first.
    LoginRequired,
    /// Signed in, but the app needs the person's consent first; this session will answer.
    ConsentRequired { session_hash: String },
}

/// The redirect for an authorization response or error: `iss` always (RFC 9207).
pub fn redirect_url(redirect_uri: &str, issuer: &str, params: &[(&str, &str)], state: Option<&str>) -> String {
    let mut url = redirect_uri.to_owned();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    if let Some(s) = state {
        query.append_pair("state", s);
    }
    query.append_pair("iss", issuer);
    url.push(if redirect_uri.contains('?') { '&' } else { '?' });
    url.push_str(&query.finish());
    url
}

/// Issues a code for `request` on behalf of the session's user.
pub fn issue_code(
    kw: &Keyward,
    conn: &mut DbConnection,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<Continue, ServiceError> {
    let now = kw.now();
    let code = random_token(&mut rand::rng());
    let row = AuthorizationCode {
        code_hash: hash_secret(&code),
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: session.user_id.clone(),
        session_hash: session.id_hash.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        created_at: now,
        expires_at: now + AUTHORIZATION_CODE_LIFETIME_SECS,
        consumed_at: None,
        revoked_at: None,
        claims: request.claims.clone(),
    };
    repo::codes::insert(conn, &row)?;
    Ok(Continue::Redirect(redirect_url(&request.redirect_uri, &kw.config().issuer, &[("code", &code)], request.state.as_deref())))
}

impl Keyward {
    /// Answers a validated request from a browser that may carry a session cookie.
    pub fn authorize_with_session(&self, request: &AuthorizationRequest, session_token: Option<&str>) -> Result<Continue, ServiceError> {
        let now = self.now();
        let redirect_error = |e: OAuthError| Ok(Continue::Redirect(self.error_redirect(request, &e)));
        // The hint names who the app expects; it must be one of our ID tokens for this app.
        let hinted_sub = match request.id_token_hint.as_deref() {
            None => None,
            Some(hint) => {
                let checked = self
                    .verify_id_token_hint(hint)
                    .ok_or_else(session_reuse::hint_refused)
                    .and_then(|claims| session_reuse::check_hint_audience(&claims.aud, &request.client_id).map(|()| claims.sub));
                match checked {
                    Ok(sub) => Some(sub),
                    Err(e) => return redirect_error(e),
                }
            }
        };
        let not_signed_in = || match session_reuse::sign_in_allowed(request) {
            Err(e) => redirect_error(e),
            Ok(()) => Ok(Continue::LoginRequired),
        };
        let Some(token) = session_token else { return not_signed_in() };
        // With a session cookie this nearly always ends in writing a code: read and write on
        // the writer connection, whose page cache the write leaves warm.
        let mut conn = self.writer()?;
        let live = repo::sessions::find_live(&mut conn, &hash_secret(token), now, self.config().session_idle_seconds)?;
        let usable = live.filter(|(s, _)| {
            let facts = SessionFacts { user_id: &s.user_id, auth_time: s.auth_time, amr: &s.amr };
            session_reuse::may_reuse(request, &facts, hinted_sub.as_deref(), now)
        });
        let Some((session, _user)) = usable else { return not_signed_in() };
        if self.needs_consent(&mut conn, request, &session.user_id)? {
            if let Err(e) = session_reuse::consent_page_allowed(request) {
                return redirect_error(e);
            }
            return Ok(Continue::ConsentRequired { session_hash: session.id_hash });
        }
        keyward_store::write_transaction(&mut conn, |c| {
            repo::sessions::touch(c, &session, now)?;
            issue_code(self, c, request, &session)
        })
    }

    pub fn error_redirect(&self, request: &AuthorizationRequest, error: &OAuthError) -> String {
        redirect_url(
            &request.redirect_uri,
            &self.config().issuer,
            &[("error", error.code.as_str()), ("error_description", &error.description)],
            request.state.as_deref(),
        )
    }

    /// OpenID Provider Metadata (OIDC Discovery §3), built once at start.
    pub fn discovery_document(&self) -> serde_json::Value {
        let i = &self.config().issuer;
        serde_json::json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "userinfo_endpoint": format!("{i}/userinfo"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "revocation_endpoint": format!("{i}/revoke"),
            "introspection_endpoint": format!("{i}/introspect"),
            "end_session_endpoint": format!("{i}/end_session"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": keyward_core::scope::SUPPORTED,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "sid", "email", "email_verified", "name"],
            "acr_values_supported": [keyward_core::authorize::ACR_PHR, keyward_core::authorize::ACR_PHRH],
            "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": true,
            "ui_locales_supported": ["en"],
        })
    }
}
