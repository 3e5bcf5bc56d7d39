//! Passkey JSON endpoints for the page scripts: registration for the signed-in person
//! (`/account/passkeys…`) and username-less sign-in for a login attempt (`/login/passkey…`).
//! JSON requests carry no CSRF token; they must come from our own origin (DESIGN.md §5).

use super::{State, blocking};
use crate::cookies;
use crate::error::WebError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_service::passkeys::{PasskeyChallenge, PasskeyRejected};
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub(crate) fn json_error(status: StatusCode, error: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).insert_header(("Cache-Control", "no-store")).json(serde_json::json!({ "error": error, "message": message }))
}

/// Refuses requests whose `Origin` is not the issuer (cross-site requests, or a proxy that
/// rewrites the host: the error names both origins so the operator can fix it).
pub(crate) fn check_origin(req: &HttpRequest, state: &State) -> Result<(), HttpResponse> {
    let expected = &state.kw.config().issuer;
    match req.headers().get("origin").and_then(|v| v.to_str().ok()) {
        Some(o) if o == expected => Ok(()),
        observed => Err(json_error(
            StatusCode::FORBIDDEN,
            "wrong_origin",
            &format!("this request must come from {expected}; it came from {}", observed.unwrap_or("no origin")),
        )),
    }
}

pub(crate) fn challenge(c: PasskeyChallenge) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "ceremony": c.ceremony, "options": c.options }))
}

pub(crate) fn rejected(r: PasskeyRejected) -> HttpResponse {
    match r {
        PasskeyRejected::StaleChallenge => {
            json_error(StatusCode::BAD_REQUEST, "stale_challenge", "This passkey request expired or was already used. Try again.")
        }
        PasskeyRejected::Invalid => json_error(
            StatusCode::BAD_REQUEST,
            "passkey_not_accepted",
            "That passkey wasn't accepted. Try again, or sign in with your email.",
        ),
        PasskeyRejected::Gone => {
            json_error(StatusCode::GONE, "sign_in_over", "This sign-in is no longer valid. Go back to the app and start again.")
        }
    }
}

fn not_signed_in() -> HttpResponse {
    json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "Sign in first.")
}

pub async fn register_start(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    if let Err(resp) = check_origin(&req, &state) {
        return Ok(resp);
    }
    let Some(session) = cookies::get(&req, cookies::SESSION) else { return Ok(not_signed_in()) };
    if let Some(resp) = super::reauth::json_guard(&state, &session, "/account?resume=add-passkey").await? {
        return Ok(resp);
    }
    let kw = state.kw.clone();
    Ok(match blocking(move || kw.start_passkey_registration(&session)).await.map_err(WebError::ApiInternal)? {
        Some(c) => challenge(c),
        None => not_signed_in(),
    })
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
}

pub async fn register_finish(req: HttpRequest, state: State, body: web::Json<RegisterFinish>) -> Result<HttpResponse, WebError> {
    if let Err(resp) = check_origin(&req, &state) {
        return Ok(resp);
    }
    let Some(session) = cookies::get(&req, cookies::SESSION) else { return Ok(not_signed_in()) };
    if let Some(resp) = super::reauth::json_guard(&state, &session, "/account?resume=add-passkey").await? {
        return Ok(resp);
    }
    let kw = state.kw.clone();
    let b = body.into_inner();
    Ok(
        match blocking(move || kw.finish_passkey_registration(&session, &b.ceremony, &b.credential, b.name.as_deref()))
            .await
            .map_err(WebError::ApiInternal)?
        {
            Ok(added) => {
                super::account::send_notice(&state, added.notice);
                HttpResponse::Created()
                    .insert_header(("Cache-Control", "no-store"))
                    .json(serde_json::json!({ "passkey": added.passkey, "recovery_codes": added.recovery_codes }))
            }
            Err(r) => rejected(r),
        },
    )
}

pub async fn list(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let Some(session) = cookies::get(&req, cookies::SESSION) else { return Ok(not_signed_in()) };
    let kw = state.kw.clone();
    Ok(match blocking(move || kw.list_passkeys(&session)).await.map_err(WebError::ApiInternal)? {
        Some(list) => HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(list),
        None => not_signed_in(),
    })
}

#[derive(Deserialize)]
pub struct LoginStart {
    attempt: String,
}

pub async fn login_start(req: HttpRequest, state: State, body: web::Json<LoginStart>) -> Result<HttpResponse, WebError> {
    if let Err(resp) = check_origin(&req, &state) {
        return Ok(resp);
    }
    let browser = cookies::get(&req, cookies::BROWSER).unwrap_or_default();
    let kw = state.kw.clone();
    let attempt = body.into_inner().attempt;
    Ok(match blocking(move || kw.start_passkey_login(&attempt, &browser)).await.map_err(WebError::ApiInternal)? {
        Some(c) => challenge(c),
        None => rejected(PasskeyRejected::Gone),
    })
}

#[derive(Deserialize)]
pub struct LoginFinish {
    attempt: String,
    ceremony: String,
    credential: PublicKeyCredential,
}

pub async fn login_finish(req: HttpRequest, state: State, body: web::Json<LoginFinish>) -> Result<HttpResponse, WebError> {
    if let Err(resp) = check_origin(&req, &state) {
        return Ok(resp);
    }
    let browser = cookies::get(&req, cookies::BROWSER).unwrap_or_default();
    let kw = state.kw.clone();
    let b = body.into_inner();
    Ok(
        match blocking(move || kw.finish_passkey_login(&b.attempt, &browser, &b.ceremony, &b.credential))
            .await
            .map_err(WebError::ApiInternal)?
        {
            Ok(signed_in) => {
                let mut resp = HttpResponse::Ok()
                    .insert_header(("Cache-Control", "no-store"))
                    .json(serde_json::json!({ "redirect": signed_in.redirect_to }));
                let cookie = cookies::session(signed_in.session_token, state.kw.config().session_lifetime_seconds);
                resp.add_cookie(&cookie).map_err(|e| WebError::ApiInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
                resp
            }
            Err(r) => rejected(r),
        },
    )
}
