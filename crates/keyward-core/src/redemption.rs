//! The token endpoint's redemption rules: what a presented authorization code (RFC 6749
//! §4.1.3, RFC 7636 §4.6, RFC 9700 §4.8.2) or refresh token (RFC 6749 §6) must satisfy
//! before tokens are issued, as pure checks over the stored row. The service loads the row
//! (the single-use and expiry of codes are enforced by the store's redeem), calls these, and
//! writes the grant.

use crate::oauth_error::{OAuthError, OAuthErrorCode as E};
use crate::pkce;
use crate::scope::Scopes;

fn invalid_grant(msg: &str) -> OAuthError {
    OAuthError::new(E::InvalidGrant, msg)
}

/// What an issued authorization code was bound to when it was issued.
#[derive(Debug, Clone, Copy)]
pub struct IssuedCode<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
}

/// What the token request presented with the code.
#[derive(Debug, Clone, Copy)]
pub struct CodeRedemption<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// Every rule a live, unspent code must pass, in order: its client, its redirect URI, then
/// PKCE (`check_code_client`, `check_code_redirect_uri`, `check_pkce`).
pub fn check_code(code: &IssuedCode<'_>, presented: &CodeRedemption<'_>) -> Result<(), OAuthError> {
    check_code_client(code.client_id, presented.client_id)?;
    check_code_redirect_uri(code.redirect_uri, presented.redirect_uri)?;
    check_pkce(code.code_challenge, presented.code_verifier)
}

/// RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated
/// confidential client, or if the client is public, ensure that the code was issued to
/// `client_id` in the request".
pub fn check_code_client(issued_to: &str, client_id: &str) -> Result<(), OAuthError> {
    if issued_to != client_id {
        return Err(invalid_grant("the authorization code was issued to another client"));
    }
    Ok(())
}

/// RFC 6749 §4.1.3: the `redirect_uri` is required when the authorization request carried
/// one (Keyward's always do, OIDC Core §3.1.2.1) and must be identical to it.
pub fn check_code_redirect_uri(issued_for: &str, presented: Option<&str>) -> Result<(), OAuthError> {
    if presented != Some(issued_for) {
        return Err(invalid_grant("redirect_uri does not match the authorization request"));
    }
    Ok(())
}

/// RFC 7636 §4.6: a code issued with an S256 `code_challenge` needs the `code_verifier` that
/// hashes to it. RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a PKCE
/// downgrade attempt and is refused too.
pub fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => Ok(()),
        (Some(_), _) => Err(invalid_grant("the PKCE code_verifier is missing or wrong")),
        (None, Some(_)) => Err(invalid_grant("code_verifier sent for a request without code_challenge")),
        (None, None) => Ok(()),
    }
}

/// A stored refresh token and the grant it belongs to, as far as the rules need them.
#[derive(Debug, Clone, Copy)]
pub struct IssuedRefresh<'a> {
    pub grant_client_id: &'a str,
    pub grant_revoked: bool,
    pub grant_expires_at: i64,
    pub token_expires_at: i64,
}

/// RFC 6749 §6: the refresh token must have been issued to the authenticated client, and be
/// valid (the grant unrevoked, neither the grant nor the token expired at `now`). Whether it
/// was already spent is the caller's next question (reuse revokes the grant).
pub fn check_refresh(token: &IssuedRefresh<'_>, client_id: &str, now: i64) -> Result<(), OAuthError> {
    if token.grant_client_id != client_id {
        return Err(invalid_grant("the refresh token was issued to another client"));
    }
    if token.grant_revoked || token.grant_expires_at <= now || token.token_expires_at <= now {
        return Err(invalid_grant("the refresh token is invalid or expired"));
    }
    Ok(())
}

/// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
/// resource owner, and if omitted is treated as equal to the scope originally granted."
pub fn refresh_scope(granted: &Scopes, requested: Option<&str>) -> Result<Scopes, OAuthError> {
    let Some(requested) = requested else { return Ok(granted.clone()) };
    let asked = Scopes::parse_with(requested, |_| true);
    if !asked.is_subset_of(granted) {
        return Err(OAuthError::new(E::InvalidScope, "a refresh cannot widen the scope of the original grant"));
    }
    Ok(asked)
}

/// RFC 6749 §4.4.2 and §3.3: a client_credentials request may only ask for scopes the client
/// is permitted (`permitted`, what the client may hold of the requested ones).
pub fn check_client_credentials_scope(requested: &str, permitted: &Scopes) -> Result<(), OAuthError> {
    if !Scopes::parse_with(requested, |_| true).is_subset_of(permitted) {
        return Err(OAuthError::new(E::InvalidScope, "the client may not ask for one of these scopes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(challenge: Option<&'static str>) -> IssuedCode<'static> {
        IssuedCode { client_id: "app", redirect_uri: "https://app.example/cb", code_challenge: challenge }
    }

    fn presented(client: &'static str, uri: Option<&'static str>, verifier: Option<&'static str>) -> CodeRedemption<'static> {
        CodeRedemption { client_id: client, redirect_uri: uri, code_verifier: verifier }
    }

    fn refused(r: Result<(), OAuthError>) -> (E, String) {
        let e = r.expect_err("refused");
        (e.code, e.description)
    }

    #[test]
    fn code_is_accepted_with_its_client_uri_and_verifier() {
        assert_eq!(check_code(&code(Some(CHALLENGE)), &presented("app", Some("https://app.example/cb"), Some(VERIFIER))), Ok(()));
        assert_eq!(check_code(&code(None), &presented("app", Some("https://app.example/cb"), None)), Ok(()));
    }

    #[test]
    fn code_client_binding_refuses_another_client() {
        assert_eq!(check_code_client("app", "app"), Ok(()));
        let (code_, msg) = refused(check_code_client("app", "other"));
        assert_eq!(code_, E::InvalidGrant);
        assert_eq!(msg, "the authorization code was issued to another client");
        // The client is checked before anything else.
        let (_, msg) = refused(check_code(&code(Some(CHALLENGE)), &presented("other", None, None)));
        assert_eq!(msg, "the authorization code was issued to another client");
    }

    #[test]
    fn code_redirect_uri_must_be_identical_and_present() {
        assert_eq!(check_code_redirect_uri("https://app.example/cb", Some("https://app.example/cb")), Ok(()));
        for wrong in [None, Some("https://app.example/cb/"), Some("https://app.example/CB"), Some("")] {
            let (code_, msg) = refused(check_code_redirect_uri("https://app.example/cb", wrong));
            assert_eq!(code_, E::InvalidGrant, "{wrong:?}");
            assert_eq!(msg, "redirect_uri does not match the authorization request");
        }
    }

    #[test]
    fn pkce_needs_the_matching_verifier() {
        assert_eq!(check_pkce(Some(CHALLENGE), Some(VERIFIER)), Ok(()));
        for wrong in [None, Some("x".repeat(43).leak() as &str)] {
            let (code_, msg) = refused(check_pkce(Some(CHALLENGE), wrong));
            assert_eq!(code_, E::InvalidGrant);
            assert_eq!(msg, "the PKCE code_verifier is missing or wrong");
        }
    }

    #[test]
    fn pkce_downgrade_is_refused() {
        assert_eq!(check_pkce(None, None), Ok(()));
        let (code_, msg) = refused(check_pkce(None, Some(VERIFIER)));
        assert_eq!(code_, E::InvalidGrant);
        assert_eq!(msg, "code_verifier sent for a request without code_challenge");
    }

    fn token(client: &'static str, revoked: bool, grant_exp: i64, token_exp: i64) -> IssuedRefresh<'static> {
        IssuedRefresh { grant_client_id: client, grant_revoked: revoked, grant_expires_at: grant_exp, token_expires_at: token_exp }
    }

    #[test]
    fn refresh_is_bound_to_its_client() {
        assert_eq!(check_refresh(&token("app", false, 200, 150), "app", 100), Ok(()));
        let (code_, msg) = refused(check_refresh(&token("app", false, 200, 150), "other", 100));
        assert_eq!(code_, E::InvalidGrant);
        assert_eq!(msg, "the refresh token was issued to another client");
        // Another client's token is named as such even when it is also expired.
        let (_, msg) = refused(check_refresh(&token("app", true, 0, 0), "other", 100));
        assert_eq!(msg, "the refresh token was issued to another client");
    }

    #[test]
    fn refresh_must_be_live() {
        for (t, why) in [
            (token("app", true, 200, 150), "grant revoked"),
            (token("app", false, 100, 150), "grant expired at now"),
            (token("app", false, 200, 100), "token expired at now"),
            (token("app", false, 200, 99), "token expired before now"),
        ] {
            let (code_, msg) = refused(check_refresh(&t, "app", 100));
            assert_eq!(code_, E::InvalidGrant, "{why}");
            assert_eq!(msg, "the refresh token is invalid or expired", "{why}");
        }
        assert_eq!(check_refresh(&token("app", false, 101, 101), "app", 100), Ok(()));
    }

    #[test]
    fn refresh_scope_may_narrow_but_not_widen() {
        let granted = Scopes::parse_with("openid email offline_access", |_| true);
        assert_eq!(refresh_scope(&granted, None), Ok(granted.clone()));
        assert_eq!(refresh_scope(&granted, Some("openid")).map(|s| s.as_string()), Ok("openid".into()));
        assert_eq!(refresh_scope(&granted, Some("email  openid")).map(|s| s.as_string()), Ok("email openid".into()));
        let e = refresh_scope(&granted, Some("openid profile")).expect_err("widened");
        assert_eq!(e.code, E::InvalidScope);
        assert_eq!(e.description, "a refresh cannot widen the scope of the original grant");
    }

    #[test]
    fn client_credentials_scope_stays_within_the_permitted() {
        let permitted = Scopes::parse_with("reports.read", |_| true);
        assert_eq!(check_client_credentials_scope("", &permitted), Ok(()));
        assert_eq!(check_client_credentials_scope("reports.read", &permitted), Ok(()));
        let (code_, msg) = refused(check_client_credentials_scope("reports.read reports.write", &permitted));
        assert_eq!(code_, E::InvalidScope);
        assert_eq!(msg, "the client may not ask for one of these scopes");
    }
}
