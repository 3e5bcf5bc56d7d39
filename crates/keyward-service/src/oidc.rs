//! The OpenID Provider's answers: codes for a signed-in person, the token endpoint's
//! authorization_code grant, userinfo and the discovery document.

use crate::{Keyward, ServiceError};
use diesel::Connection;
use jsonwebtoken::Validation;
use keyward_core::authorize::AuthorizationRequest;
use keyward_core::claims::{AUTHORIZATION_CODE_LIFETIME_SECS, AccessTokenClaims, IdTokenClaims, ProfileClaims};
use keyward_core::client::{Client, SigningAlg};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};
use keyward_core::pkce;
use keyward_core::scope::Scopes;
use keyward_core::secret::{hash_secret, random_token};
use keyward_store::models::{AuthorizationCode, Session};
use keyward_store::repo::codes::Redemption;
use keyward_store::{DbConnection, repo};
use serde::Serialize;

/// Access tokens are always ES256: fast to sign and verify, and only Keyward reads them.
const ACCESS_TOKEN_ALG: SigningAlg = SigningAlg::Es256;

/// What to do with an authorization request for a browser.
pub enum Continue {
    /// Send the browser here (the client's redirect URI with a code or an error).
    Redirect(String),
    /// The person must sign in first.
    LoginRequired,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
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
    };
    repo::codes::insert(conn, &row)?;
    Ok(Continue::Redirect(redirect_url(&request.redirect_uri, &kw.config.issuer, &[("code", &code)], request.state.as_deref())))
}

impl Keyward {
    /// Answers a validated request from a browser that may carry a session cookie.
    pub fn authorize_with_session(&self, request: &AuthorizationRequest, session_token: Option<&str>) -> Result<Continue, ServiceError> {
        let now = self.now();
        let live = match session_token {
            None => None,
            Some(t) => repo::sessions::find_live(&mut *self.conn()?, &hash_secret(t), now, self.config.session_idle_seconds)?,
        };
        let fresh_enough = |s: &Session| request.max_age.is_none_or(|max| now - s.auth_time <= max);
        let usable = live.filter(|(s, _)| fresh_enough(s) && !request.prompt_has("login") && request.satisfied_by(&s.amr));
        let Some((session, _user)) = usable else {
            if request.prompt_has("none") {
                let err = OAuthError::new(E::LoginRequired, "the user is not signed in");
                return Ok(Continue::Redirect(self.error_redirect(request, &err)));
            }
            return Ok(Continue::LoginRequired);
        };
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            repo::sessions::touch(c, &session.id_hash, now)?;
            issue_code(self, c, request, &session)
        })
    }

    pub fn error_redirect(&self, request: &AuthorizationRequest, error: &OAuthError) -> String {
        redirect_url(
            &request.redirect_uri,
            &self.config.issuer,
            &[("error", error.code.as_str()), ("error_description", &error.description)],
            request.state.as_deref(),
        )
    }

    /// The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6) for an authenticated client.
    pub fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Result<TokenResponse, OAuthError>, ServiceError> {
        let now = self.now();
        let invalid = |msg: &str| Ok(Err(OAuthError::new(E::InvalidGrant, msg)));
        let mut conn = self.conn()?;
        let redemption = conn.transaction(|c| repo::codes::redeem(c, &hash_secret(code), now))?;
        let (row, user) = match redemption {
            Redemption::Redeemed(row, user) => (row, user),
            Redemption::Replayed => {
                tracing::warn!(client = %client.id, "authorization code replayed; its grant is revoked");
                return invalid("the authorization code was already used");
            }
            Redemption::Invalid => return invalid("the authorization code is invalid or expired"),
        };
        // RFC 6749 §4.1.3: bound to the client and the redirect URI.
        if row.client_id != client.id {
            return invalid("the authorization code was issued to another client");
        }
        if redirect_uri != Some(row.redirect_uri.as_str()) {
            return invalid("redirect_uri does not match the authorization request");
        }
        match (row.code_challenge.as_deref(), verifier) {
            (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => {}
            (Some(_), _) => return invalid("the PKCE code_verifier is missing or wrong"),
            // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
            (None, Some(_)) => {
                return invalid("code_verifier sent for a request without code_challenge");
            }
            (None, None) => {}
        }
        let scope = Scopes::parse_supported(&row.scope);
        let issuer = &self.config.issuer;
        let id_claims = IdTokenClaims {
            iss: issuer.clone(),
            sub: user.id.clone(),
            aud: client.id.clone(),
            exp: now + self.config.id_token_lifetime_seconds,
            iat: now,
            auth_time: row.auth_time,
            nonce: row.nonce.clone(),
            amr: row.amr.split(' ').map(str::to_owned).collect(),
            acr: keyward_core::authorize::acr_for_amr(&row.amr).map(str::to_owned),
            azp: client.id.clone(),
            profile: ProfileClaims::for_scope(&scope, &user.email, user.email_verified, user.name.as_deref()),
        };
        let at_claims = AccessTokenClaims {
            iss: issuer.clone(),
            sub: user.id.clone(),
            aud: format!("{issuer}/userinfo"),
            client_id: client.id.clone(),
            exp: now + self.config.access_token_lifetime_seconds,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: row.scope.clone(),
            auth_time: row.auth_time,
            gid: row.grant_id.clone(),
        };
        Ok(Ok(TokenResponse {
            access_token: self.keys.sign(ACCESS_TOKEN_ALG, "at+jwt", &at_claims)?,
            token_type: "Bearer",
            expires_in: self.config.access_token_lifetime_seconds,
            id_token: self.keys.sign(client.id_token_alg, "JWT", &id_claims)?,
            scope: row.scope,
        }))
    }

    /// UserInfo (OIDC Core §5.3): claims for a valid, unrevoked access token.
    pub fn userinfo(&self, access_token: &str) -> Result<Result<serde_json::Value, OAuthError>, ServiceError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[format!("{}/userinfo", self.config.issuer)]);
        validation.leeway = 0;
        let Some(claims) = self.keys.verify::<AccessTokenClaims>(access_token, validation) else {
            return Ok(Err(OAuthError::new(E::InvalidToken, "the access token is invalid or expired")));
        };
        let Some(user) = repo::codes::live_grant_user(&mut *self.conn()?, &claims.gid)? else {
            return Ok(Err(OAuthError::new(E::InvalidToken, "the access token was revoked")));
        };
        let scope = Scopes::parse_supported(&claims.scope);
        let mut out = serde_json::to_value(ProfileClaims::for_scope(&scope, &user.email, user.email_verified, user.name.as_deref()))
            .map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        if let Some(map) = out.as_object_mut() {
            map.insert("sub".into(), user.id.into());
        }
        Ok(Ok(out))
    }

    /// OpenID Provider Metadata (OIDC Discovery §3), built once at start.
    pub fn discovery_document(&self) -> serde_json::Value {
        let i = &self.config.issuer;
        serde_json::json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "userinfo_endpoint": format!("{i}/userinfo"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": keyward_core::scope::SUPPORTED,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "email", "email_verified", "name"],
            "acr_values_supported": [keyward_core::authorize::ACR_PHR, keyward_core::authorize::ACR_PHRH],
            "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
        })
    }
}
