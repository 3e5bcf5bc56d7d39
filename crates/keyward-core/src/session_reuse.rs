//! When an authorization request may be answered from the browser's existing session, and
//! which error a `prompt=none` request gets when it may not (OIDC Core §3.1.2.1 `prompt`,
//! `max_age`, `acr_values`, `id_token_hint`; §3.1.2.6 error codes). Pure: the service loads
//! the session and asks these.

use crate::authorize::AuthorizationRequest;
use crate::oauth_error::{OAuthError, OAuthErrorCode as E};

/// The session facts the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    pub user_id: &'a str,
    /// When the person last authenticated (seconds).
    pub auth_time: i64,
    /// How they did (RFC 8176 values, space-separated).
    pub amr: &'a str,
}

/// OIDC Core §3.1.2.1: a verified `id_token_hint` must have been issued to the requesting
/// client; otherwise the request is refused with `invalid_request`.
pub fn check_hint_audience(hint_aud: &str, client_id: &str) -> Result<(), OAuthError> {
    if hint_aud != client_id {
        return Err(hint_refused());
    }
    Ok(())
}

/// The refusal of an `id_token_hint` that is not one of our ID tokens for this client.
pub fn hint_refused() -> OAuthError {
    OAuthError::new(E::InvalidRequest, "id_token_hint is not an ID token this provider issued to this client")
}

/// OIDC Core §3.1.2.1: `max_age` — the session's authentication is at most `max_age`
/// seconds old.
pub fn fresh_enough(max_age: Option<i64>, auth_time: i64, now: i64) -> bool {
    max_age.is_none_or(|max| now - auth_time <= max)
}

/// OIDC Core §3.1.2.1 (and Initiating User Registration §4, `create`): `prompt=login`,
/// `create` and `select_account` all show the sign-in page again.
pub fn wants_sign_in_page(request: &AuthorizationRequest) -> bool {
    request.prompt_has("login") || request.prompt_has("create") || request.prompt_has("select_account")
}

/// Whether `session` answers `request` without a new sign-in: fresh enough for `max_age`, no
/// prompt asking for the page, `acr_values` satisfied by its `amr`, and the person the
/// `id_token_hint` names (`hinted_sub`), if any.
pub fn may_reuse(request: &AuthorizationRequest, session: &SessionFacts<'_>, hinted_sub: Option<&str>, now: i64) -> bool {
    fresh_enough(request.max_age, session.auth_time, now)
        && !wants_sign_in_page(request)
        && request.satisfied_by(session.amr)
        && hinted_sub.is_none_or(|sub| sub == session.user_id)
}

/// OIDC Core §3.1.2.6: with `prompt=none`, a request that needs the person to sign in is
/// answered `login_required` instead of showing a page.
pub fn sign_in_allowed(request: &AuthorizationRequest) -> Result<(), OAuthError> {
    if request.prompt_has("none") {
        return Err(OAuthError::new(E::LoginRequired, "the user is not signed in"));
    }
    Ok(())
}

/// OIDC Core §3.1.2.6: with `prompt=none`, a request that needs consent is answered
/// `consent_required` instead of showing the consent page.
pub fn consent_page_allowed(request: &AuthorizationRequest) -> Result<(), OAuthError> {
    if request.prompt_has("none") {
        return Err(OAuthError::new(E::ConsentRequired, "the user has not consented to this app yet"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &[&str], max_age: Option<i64>, acr: &[&str]) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: prompt.iter().map(|p| (*p).to_owned()).collect(),
            max_age,
            login_hint: None,
            acr_values: acr.iter().map(|a| (*a).to_owned()).collect(),
            id_token_hint: None,
            claims: String::new(),
        }
    }

    const SESSION: SessionFacts<'static> = SessionFacts { user_id: "u1", auth_time: 1000, amr: "otp" };

    #[test]
    fn plain_request_reuses_the_session() {
        assert!(may_reuse(&request(&[], None, &[]), &SESSION, None, 5000));
        assert!(may_reuse(&request(&["consent"], None, &[]), &SESSION, None, 5000));
    }

    #[test]
    fn max_age_refuses_an_older_authentication() {
        assert!(fresh_enough(None, 0, i64::MAX / 2));
        assert!(fresh_enough(Some(60), 1000, 1060));
        assert!(!fresh_enough(Some(60), 1000, 1061));
        assert!(fresh_enough(Some(0), 1000, 1000));
        assert!(!may_reuse(&request(&[], Some(60), &[]), &SESSION, None, 1061));
        assert!(may_reuse(&request(&[], Some(60), &[]), &SESSION, None, 1060));
    }

    #[test]
    fn prompt_login_create_select_account_show_the_page() {
        for p in ["login", "create", "select_account"] {
            assert!(wants_sign_in_page(&request(&[p], None, &[])), "{p}");
            assert!(!may_reuse(&request(&[p], None, &[]), &SESSION, None, 1000), "{p}");
        }
        assert!(!wants_sign_in_page(&request(&["none"], None, &[])));
    }

    #[test]
    fn acr_values_need_a_passkey_session() {
        let phr = request(&[], None, &["phr"]);
        assert!(!may_reuse(&phr, &SESSION, None, 1000));
        assert!(may_reuse(&phr, &SessionFacts { amr: "user swk", ..SESSION }, None, 1000));
    }

    #[test]
    fn id_token_hint_must_name_the_signed_in_person() {
        assert!(may_reuse(&request(&[], None, &[]), &SESSION, Some("u1"), 1000));
        assert!(!may_reuse(&request(&[], None, &[]), &SESSION, Some("u2"), 1000));
        assert_eq!(check_hint_audience("app", "app"), Ok(()));
        let e = check_hint_audience("other", "app").expect_err("another client's hint");
        assert_eq!(e.code, E::InvalidRequest);
        assert_eq!(e.description, "id_token_hint is not an ID token this provider issued to this client");
    }

    #[test]
    fn prompt_none_gets_login_required_or_consent_required() {
        let none = request(&["none"], None, &[]);
        assert_eq!(sign_in_allowed(&none).map_err(|e| e.code), Err(E::LoginRequired));
        assert_eq!(consent_page_allowed(&none).map_err(|e| e.code), Err(E::ConsentRequired));
        let plain = request(&[], None, &[]);
        assert_eq!(sign_in_allowed(&plain), Ok(()));
        assert_eq!(consent_page_allowed(&plain), Ok(()));
    }
}
