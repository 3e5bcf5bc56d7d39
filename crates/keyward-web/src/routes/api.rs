//! What the page scripts' JSON endpoints share: the same-origin check, the session of a
//! JSON request, the passkey challenge answer and the `{error, message}` errors for a
//! refused passkey. JSON requests carry no CSRF token; they must come from our own origin
//! (DESIGN.md §5).

use super::State;
use crate::cookies;
use crate::error::WebError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use keyward_service::passkeys::{PasskeyChallenge, PasskeyRejected};

/// Refuses requests whose `Origin` is not the issuer (cross-site requests, or a proxy that
/// rewrites the host: the error names both origins so the operator can fix it).
pub(crate) fn check_origin(req: &HttpRequest, state: &State) -> Result<(), WebError> {
    let expected = &state.kw.config().issuer;
    match req.headers().get("origin").and_then(|v| v.to_str().ok()) {
        Some(o) if o == expected => Ok(()),
        observed => Err(WebError::api(
            StatusCode::FORBIDDEN,
            "wrong_origin",
            format!("this request must come from {expected}; it came from {}", observed.unwrap_or("no origin")),
        )),
    }
}

/// 401 `not_signed_in`.
pub(crate) fn not_signed_in() -> WebError {
    WebError::api(StatusCode::UNAUTHORIZED, "not_signed_in", "Sign in first.")
}

/// The session cookie of a JSON request, or 401 `not_signed_in`.
pub(crate) fn session(req: &HttpRequest) -> Result<String, WebError> {
    cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in)
}

/// The session of a JSON request from our own origin.
pub(crate) fn same_origin_session(req: &HttpRequest, state: &State) -> Result<String, WebError> {
    check_origin(req, state)?;
    session(req)
}

pub(crate) fn challenge(c: PasskeyChallenge) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "ceremony": c.ceremony, "options": c.options }))
}

pub(crate) fn rejected(r: PasskeyRejected) -> WebError {
    match r {
        PasskeyRejected::StaleChallenge => {
            WebError::api(StatusCode::BAD_REQUEST, "stale_challenge", "This passkey request expired or was already used. Try again.")
        }
        PasskeyRejected::Invalid => WebError::api(
            StatusCode::BAD_REQUEST,
            "passkey_not_accepted",
            "That passkey wasn't accepted. Try again, or sign in with your email.",
        ),
        PasskeyRejected::Gone => {
            WebError::api(StatusCode::GONE, "sign_in_over", "This sign-in is no longer valid. Go back to the app and start again.")
        }
    }
}
