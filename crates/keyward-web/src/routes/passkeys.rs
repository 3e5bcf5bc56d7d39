//! Passkey JSON endpoints for the page scripts: registration for the signed-in person
//! (`/account/passkeys…`) and username-less sign-in for a login attempt (`/login/passkey…`).
//! JSON requests carry no CSRF token; they must come from our own origin (`super::api`).

use super::api::{challenge, check_origin, not_signed_in, rejected, same_origin_session};
use super::{State, blocking};
use crate::cookies;
use crate::error::WebError;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_service::passkeys::PasskeyRejected;
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub async fn register_start(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let session = same_origin_session(&req, &state)?;
    super::reauth::json_guard(&state, &session, "/account?resume=add-passkey").await?;
    let kw = state.kw.clone();
    match blocking(move || kw.start_passkey_registration(&session)).await.map_err(WebError::JsonInternal)? {
        Some(c) => Ok(challenge(c)),
        None => Err(not_signed_in()),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
}

pub async fn register_finish(req: HttpRequest, state: State, body: web::Json<RegisterFinish>) -> Result<HttpResponse, WebError> {
    let session = same_origin_session(&req, &state)?;
    super::reauth::json_guard(&state, &session, "/account?resume=add-passkey").await?;
    let kw = state.kw.clone();
    let b = body.into_inner();
    let added = blocking(move || kw.finish_passkey_registration(&session, &b.ceremony, &b.credential, b.name.as_deref()))
        .await
        .map_err(WebError::JsonInternal)?
        .map_err(rejected)?;
    super::notices::send_notice(&state, added.notice);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "passkey": added.passkey, "recovery_codes": added.recovery_codes })))
}

pub async fn list(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let session = super::api::session(&req)?;
    let kw = state.kw.clone();
    let list = blocking(move || kw.list_passkeys(&session)).await.map_err(WebError::JsonInternal)?.ok_or_else(not_signed_in)?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(list))
}

#[derive(Deserialize)]
pub struct LoginStart {
    attempt: String,
}

pub async fn login_start(req: HttpRequest, state: State, body: web::Json<LoginStart>) -> Result<HttpResponse, WebError> {
    check_origin(&req, &state)?;
    let browser = cookies::get(&req, cookies::BROWSER).unwrap_or_default();
    let kw = state.kw.clone();
    let attempt = body.into_inner().attempt;
    match blocking(move || kw.start_passkey_login(&attempt, &browser)).await.map_err(WebError::JsonInternal)? {
        Some(c) => Ok(challenge(c)),
        None => Err(rejected(PasskeyRejected::Gone)),
    }
}

#[derive(Deserialize)]
pub struct LoginFinish {
    attempt: String,
    ceremony: String,
    credential: PublicKeyCredential,
}

pub async fn login_finish(req: HttpRequest, state: State, body: web::Json<LoginFinish>) -> Result<HttpResponse, WebError> {
    check_origin(&req, &state)?;
    let browser = cookies::get(&req, cookies::BROWSER).unwrap_or_default();
    let kw = state.kw.clone();
    let b = body.into_inner();
    let signed_in = blocking(move || kw.finish_passkey_login(&b.attempt, &browser, &b.ceremony, &b.credential))
        .await
        .map_err(WebError::JsonInternal)?
        .map_err(rejected)?;
    let mut resp =
        HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(serde_json::json!({ "redirect": signed_in.redirect_to }));
    let cookie = cookies::session(signed_in.session_token, state.kw.config().session_lifetime_seconds);
    resp.add_cookie(&cookie).map_err(|e| WebError::JsonInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
    Ok(resp)
}
