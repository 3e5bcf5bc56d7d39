//! The token endpoint's grants and the token-management endpoints: authorization_code
//! (RFC 6749 §4.1.3, RFC 7636), refresh_token with rotation and reuse detection (RFC 6749
//! §6, RFC 9700 §4.14.2), client_credentials (§4.4), revocation (RFC 7009), introspection
//! (RFC 7662) and userinfo (OIDC Core §5.3). Every grant is a `grants` row; access tokens
//! carry its id, so revoking the grant ends every token it issued.

use crate::{Keyward, ServiceError};
use jsonwebtoken::Validation;
use keyward_core::claims::{AccessTokenClaims, IdTokenClaims, ProfileClaims, sid_for};
use keyward_core::client::{Client, GrantType, SigningAlg};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};
use keyward_core::redemption::{self, CodeRedemption, IssuedCode, IssuedRefresh};
use keyward_core::scope::Scopes;
use keyward_core::secret::{hash_secret, random_token};
use keyward_store::models::{Grant, RefreshToken, User};
use keyward_store::repo::codes::Redemption;
use keyward_store::{DbConnection, repo};
use serde::Serialize;

/// Access tokens are always ES256: fast to sign and verify, and only Keyward reads them.
const ACCESS_TOKEN_ALG: SigningAlg = SigningAlg::Es256;

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// What a grant decided, to be signed once its transaction has committed.
struct Issue {
    grant: Grant,
    user: Option<User>,
    scope: Scopes,
    nonce: Option<String>,
    refresh_token: Option<String>,
    id_token: bool,
}

type Answer<T> = Result<Result<T, OAuthError>, ServiceError>;

fn invalid<T>(msg: &str) -> Answer<T> {
    Ok(Err(OAuthError::new(E::InvalidGrant, msg)))
}

impl Keyward {
    fn access_token_lifetime(&self, client: &Client) -> i64 {
        client.lifetimes.access_token.unwrap_or(self.config().access_token_lifetime_seconds)
    }

    /// A new refresh token for `grant`, valid for the idle lifetime but never past the grant.
    fn new_refresh_token(&self, c: &mut DbConnection, client: &Client, grant: &Grant, now: i64) -> Result<String, ServiceError> {
        let token = random_token(&mut rand::rng());
        let idle = client.lifetimes.refresh_token_idle.unwrap_or(self.config().refresh_token_idle_seconds);
        repo::grants::insert_refresh(
            c,
            &RefreshToken {
                token_hash: hash_secret(&token),
                grant_id: grant.id.clone(),
                created_at: now,
                expires_at: (now + idle).min(grant.expires_at),
                used_at: None,
            },
        )?;
        Ok(token)
    }

    /// Signs the tokens a grant decided on (outside any transaction: signing takes time).
    fn mint(&self, client: &Client, issue: Issue) -> Result<TokenResponse, ServiceError> {
        let now = self.now();
        let issuer = &self.config().issuer;
        let Issue { grant, user, scope, nonce, refresh_token, id_token } = issue;
        let at_lifetime = self.access_token_lifetime(client);
        let sub = user.as_ref().map(|u| u.id.clone()).unwrap_or_else(|| client.id.clone());
        let person = user.is_some();
        let at_claims = AccessTokenClaims {
            iss: issuer.clone(),
            sub: sub.clone(),
            aud: format!("{issuer}/userinfo"),
            client_id: client.id.clone(),
            exp: now + at_lifetime,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.as_string(),
            auth_time: person.then_some(grant.auth_time),
            gid: grant.id.clone(),
        };
        let id_token = match (&user, id_token && scope.contains("openid")) {
            (Some(user), true) => {
                let claims = IdTokenClaims {
                    iss: issuer.clone(),
                    sub,
                    aud: client.id.clone(),
                    exp: now + client.lifetimes.id_token.unwrap_or(self.config().id_token_lifetime_seconds),
                    iat: now,
                    auth_time: grant.auth_time,
                    nonce,
                    amr: grant.amr.split(' ').filter(|a| !a.is_empty()).map(str::to_owned).collect(),
                    acr: keyward_core::authorize::acr_for_amr(&grant.amr).map(str::to_owned),
                    azp: client.id.clone(),
                    sid: grant.session_hash.as_deref().map(sid_for),
                    profile: ProfileClaims::release(
                        &scope,
                        &grant.claims,
                        "id_token",
                        &client.permitted_scope("email profile"),
                        &user.email,
                        user.email_verified,
                        user.name.as_deref(),
                    ),
                };
                Some(self.keys.sign(now, client.id_token_alg, "JWT", &claims)?)
            }
            _ => None,
        };
        self.metrics.inc(crate::metrics::Family::TokensIssued, "grant", if refresh_token.is_some() { "with_refresh" } else { "access" });
        Ok(TokenResponse {
            access_token: self.keys.sign(now, ACCESS_TOKEN_ALG, "at+jwt", &at_claims)?,
            token_type: "Bearer",
            expires_in: at_lifetime,
            id_token,
            refresh_token,
            scope: scope.as_string(),
        })
    }

    /// The authorization_code grant for an authenticated client.
    pub fn exchange_code(&self, client: &Client, code: &str, redirect_uri: Option<&str>, verifier: Option<&str>) -> Answer<TokenResponse> {
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Ok(Err(OAuthError::new(E::UnauthorizedClient, "this client may not use the authorization_code grant")));
        }
        let now = self.now();
        let decided = keyward_store::write_transaction(&mut *self.writer()?, |c| -> Answer<Issue> {
            let (row, user) = match repo::codes::redeem(c, &hash_secret(code), now)? {
                Redemption::Redeemed(row, user) => (row, user),
                Redemption::Replayed(grant_id) => {
                    tracing::warn!(client = %client.id, "authorization code replayed; its grant is revoked");
                    self.audit(c, "grant_revoked", None, serde_json::json!({ "grant": grant_id, "reason": "code_replayed" }))?;
                    self.metrics.inc(crate::metrics::Family::TokensRevoked, "reason", "code_replayed");
                    return invalid("the authorization code was already used");
                }
                Redemption::Invalid => return invalid("the authorization code is invalid or expired"),
            };
            // The code belongs to a sign-in: not after its session logged out or its account
            // was disabled. Both rows stay locked until the grant is stored, so a logout or a
            // disable at the same time either sees the grant (and revokes it) or wins here.
            if !repo::users::lock_enabled(c, &user.id)? {
                return invalid("the account behind this authorization code is disabled");
            }
            let idle = self.config().session_idle_seconds;
            if !repo::sessions::lock_unrevoked(c, &row.session_hash)?
                || repo::sessions::find_live_by_hash(c, &row.session_hash, now, idle)?.is_none()
            {
                return invalid("the sign-in behind this authorization code has ended");
            }
            let issued =
                IssuedCode { client_id: &row.client_id, redirect_uri: &row.redirect_uri, code_challenge: row.code_challenge.as_deref() };
            if let Err(e) =
                redemption::check_code(&issued, &CodeRedemption { client_id: &client.id, redirect_uri, code_verifier: verifier })
            {
                return Ok(Err(e));
            }
            let scope = Scopes::parse_with(&row.scope, |_| true);
            let refresh = client.issues_refresh_token(&scope);
            let lifetime = if refresh {
                client.lifetimes.refresh_token_max.unwrap_or(self.config().refresh_token_lifetime_seconds)
            } else {
                self.access_token_lifetime(client)
            };
            let grant = Grant {
                id: row.grant_id.clone(),
                client_id: client.id.clone(),
                user_id: Some(user.id.clone()),
                session_hash: Some(row.session_hash.clone()),
                scope: row.scope.clone(),
                claims: row.claims.clone(),
                auth_time: row.auth_time,
                amr: row.amr.clone(),
                created_at: now,
                expires_at: now + lifetime,
                revoked_at: None,
            };
            repo::grants::insert(c, &grant)?;
            let refresh_token = if refresh { Some(self.new_refresh_token(c, client, &grant, now)?) } else { None };
            Ok(Ok(Issue { grant, user: Some(*user), scope, nonce: row.nonce.clone(), refresh_token, id_token: true }))
        })?;
        match decided {
            Ok(issue) => Ok(Ok(self.mint(client, issue)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// The refresh_token grant: the presented token is spent and a successor issued. A token
    /// presented a second time means two parties hold it: the whole grant is revoked.
    pub fn refresh(&self, client: &Client, token: &str, scope: Option<&str>) -> Answer<TokenResponse> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(Err(OAuthError::new(E::UnauthorizedClient, "this client may not use the refresh_token grant")));
        }
        let now = self.now();
        let hash = hash_secret(token);
        let decided = keyward_store::write_transaction(&mut *self.writer()?, |c| -> Answer<Issue> {
            let Some((row, grant)) = repo::grants::find_refresh(c, &hash)? else {
                return invalid("the refresh token is invalid or expired");
            };
            let issued = IssuedRefresh {
                grant_client_id: &grant.client_id,
                grant_revoked: grant.revoked_at.is_some(),
                grant_expires_at: grant.expires_at,
                token_expires_at: row.expires_at,
            };
            if let Err(e) = redemption::check_refresh(&issued, &client.id, now) {
                return Ok(Err(e));
            }
            if row.used_at.is_some() {
                return self.refresh_token_reused(c, client, &grant, now);
            }
            let user = match &grant.user_id {
                Some(id) => match repo::users::find_by_id(c, id)? {
                    Some(u) if u.disabled_at.is_none() => Some(u),
                    _ => return invalid("the account behind this refresh token is disabled"),
                },
                None => None,
            };
            let granted = Scopes::parse_with(&grant.scope, |_| true);
            let scope = match redemption::refresh_scope(&granted, scope) {
                Ok(scope) => scope,
                Err(e) => return Ok(Err(e)),
            };
            // Spent last, so a refused request (wrong scope) does not spend the token; a
            // concurrent use that got here first makes this one a reuse.
            if !repo::grants::use_refresh(c, &hash, now)? {
                return self.refresh_token_reused(c, client, &grant, now);
            }
            let refresh_token = Some(self.new_refresh_token(c, client, &grant, now)?);
            Ok(Ok(Issue { grant, user, scope, nonce: None, refresh_token, id_token: true }))
        })?;
        match decided {
            Ok(issue) => Ok(Ok(self.mint(client, issue)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// A spent refresh token came back: two parties hold it, so the grant is revoked.
    fn refresh_token_reused(&self, c: &mut DbConnection, client: &Client, grant: &Grant, now: i64) -> Answer<Issue> {
        repo::grants::revoke(c, &grant.id, now)?;
        tracing::warn!(client = %client.id, grant = %grant.id, "refresh token reused; its grant is revoked");
        self.audit(
            c,
            "grant_revoked",
            grant.user_id.as_deref(),
            serde_json::json!({ "grant": grant.id, "client": client.id, "reason": "refresh_token_reused" }),
        )?;
        self.metrics.inc(crate::metrics::Family::TokensRevoked, "reason", "refresh_token_reused");
        invalid("the refresh token was already used; every token of this grant is now revoked")
    }

    /// The client_credentials grant (RFC 6749 §4.4): an access token for the client itself.
    pub fn client_credentials(&self, client: &Client, scope: Option<&str>) -> Answer<TokenResponse> {
        if !client.allows_grant(GrantType::ClientCredentials) || client.is_public() {
            return Ok(Err(OAuthError::new(E::UnauthorizedClient, "this client may not use the client_credentials grant")));
        }
        let requested = scope.unwrap_or("");
        let permitted = client.permitted_scope(requested);
        if let Err(e) = redemption::check_client_credentials_scope(requested, &permitted) {
            return Ok(Err(e));
        }
        // No person: OIDC scopes mean nothing here.
        let scope = Scopes::parse_with(&permitted.as_string(), |s| !keyward_core::scope::SUPPORTED.contains(&s));
        let now = self.now();
        let grant = Grant {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client.id.clone(),
            user_id: None,
            session_hash: None,
            scope: scope.as_string(),
            claims: String::new(),
            auth_time: now,
            amr: String::new(),
            created_at: now,
            expires_at: now + self.access_token_lifetime(client),
            revoked_at: None,
        };
        repo::grants::insert(&mut *self.conn()?, &grant)?;
        Ok(Ok(self.mint(client, Issue { grant, user: None, scope, nonce: None, refresh_token: None, id_token: false })?))
    }

    /// Verifies one of our access tokens (signature, issuer, audience, expiry).
    fn access_token_claims(&self, token: &str) -> Option<AccessTokenClaims> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&[&self.config().issuer]);
        validation.set_audience(&[format!("{}/userinfo", self.config().issuer)]);
        validation.leeway = 0;
        self.keys.verify::<AccessTokenClaims>(token, validation)
    }

    /// UserInfo (OIDC Core §5.3): claims for a valid, unrevoked access token of a person.
    pub fn userinfo(&self, access_token: &str) -> Answer<serde_json::Value> {
        let Some(claims) = self.access_token_claims(access_token) else {
            return Ok(Err(OAuthError::new(E::InvalidToken, "the access token is invalid or expired")));
        };
        let live = repo::grants::live_for_access_token(&mut *self.conn()?, &claims.gid, &claims.jti, self.now())?;
        let Some((grant, Some(user))) = live else {
            return Ok(Err(OAuthError::new(E::InvalidToken, "the access token was revoked")));
        };
        let scope = Scopes::parse_with(&claims.scope, |_| true);
        // A client removed from the config since has no scopes left to release claims for.
        let allowed = self.config().client(&claims.client_id).map(|c| c.permitted_scope("email profile")).unwrap_or_default();
        let released =
            ProfileClaims::release(&scope, &grant.claims, "userinfo", &allowed, &user.email, user.email_verified, user.name.as_deref());
        let mut out = serde_json::to_value(released).map_err(|e| ServiceError::Corrupt(e.to_string()))?;
        if let Some(map) = out.as_object_mut() {
            map.insert("sub".into(), user.id.into());
        }
        Ok(Ok(out))
    }

    /// Revocation (RFC 7009 §2.1): a refresh token ends its whole grant; an access token ends
    /// itself. Unknown or expired tokens are answered as success (§2.2). A token issued to
    /// another client is refused and left alone.
    pub fn revoke(&self, client: &Client, token: &str, hint: Option<&str>) -> Result<Result<(), OAuthError>, ServiceError> {
        let now = self.now();
        let other = || Ok(Err(OAuthError::new(E::UnauthorizedClient, "the token was issued to another client")));
        let mut conn = self.conn()?;
        if hint != Some("access_token")
            && let Some((_, grant)) = repo::grants::find_refresh(&mut conn, &hash_secret(token))?
        {
            if grant.client_id != client.id {
                return other();
            }
            keyward_store::write_transaction(&mut *self.writer()?, |c| -> Result<(), ServiceError> {
                if repo::grants::revoke(c, &grant.id, now)? {
                    self.audit(
                        c,
                        "grant_revoked",
                        grant.user_id.as_deref(),
                        serde_json::json!({ "grant": grant.id, "client": client.id, "reason": "revoked_by_client" }),
                    )?;
                    self.metrics.inc(crate::metrics::Family::TokensRevoked, "reason", "revoked_by_client");
                }
                Ok(())
            })?;
            return Ok(Ok(()));
        }
        if let Some(claims) = self.access_token_claims(token) {
            if claims.client_id != client.id {
                return other();
            }
            repo::grants::revoke_access_token(&mut conn, &claims.jti, claims.exp)?;
            self.metrics.inc(crate::metrics::Family::TokensRevoked, "reason", "access_token_revoked");
        }
        Ok(Ok(()))
    }

    /// Introspection (RFC 7662 §2.2) for the client a token was issued to. Anything else —
    /// unknown, expired, revoked, spent, or another client's — is `{"active": false}`.
    pub fn introspect(&self, client: &Client, token: &str, hint: Option<&str>) -> Result<serde_json::Value, ServiceError> {
        let now = self.now();
        let inactive = serde_json::json!({ "active": false });
        let mut conn = self.conn()?;
        if hint != Some("access_token")
            && let Some((row, grant)) = repo::grants::find_refresh(&mut conn, &hash_secret(token))?
        {
            let live = grant.client_id == client.id
                && grant.revoked_at.is_none()
                && row.used_at.is_none()
                && row.expires_at > now
                && grant.expires_at > now;
            if !live {
                return Ok(inactive);
            }
            let mut out = serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "scope": grant.scope,
                "iat": row.created_at,
                "exp": row.expires_at,
                "iss": self.config().issuer,
            });
            if let Some(user) = &grant.user_id {
                out["sub"] = user.clone().into();
                out["auth_time"] = grant.auth_time.into();
            }
            return Ok(out);
        }
        let Some(claims) = self.access_token_claims(token) else { return Ok(inactive) };
        if claims.client_id != client.id {
            return Ok(inactive);
        }
        let Some((grant, user)) = repo::grants::live_for_access_token(&mut conn, &claims.gid, &claims.jti, now)? else {
            return Ok(inactive);
        };
        let mut out = serde_json::json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": claims.client_id,
            "scope": claims.scope,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        });
        if let Some(user) = user {
            out["auth_time"] = grant.auth_time.into();
            out["username"] = user.email.into();
        }
        if let Some(h) = &grant.session_hash {
            out["sid"] = sid_for(h).into();
        }
        Ok(out)
    }

    /// Verifies an `id_token_hint` (our signature and issuer; expiry is not required, OIDC
    /// RP-Initiated Logout §2). None when it is not one of our ID tokens.
    pub fn verify_id_token_hint(&self, hint: &str) -> Option<IdTokenClaims> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[&self.config().issuer]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        self.keys.verify::<IdTokenClaims>(hint, validation)
    }
}
