//! The "sign in faster next time" passkey offer after an email sign-in (`/login/passkey-offer`):
//! add a passkey now, continue to the app, or never be asked again.

use super::login::{AttemptQuery, attempt_gone, see_other};
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// GET /login/passkey-offer?attempt=…: "Sign in faster next time", after an email sign-in.
pub async fn offer_page(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let a = attempt.clone();
    let client_name =
        blocking(move || kw.passkey_offer(&a, &browser_id)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
    let mut ctx = tera::Context::new();
    ctx.insert("attempt", &attempt);
    ctx.insert("client_name", &client_name);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(&req, cookies::BROWSER).unwrap_or_default()));
    Ok(render(StatusCode::OK, "passkey_offer.html", &ctx))
}

/// POST /login/passkey-offer: continue to the app (`choice=never` also stops the offer).
pub async fn offer_submit(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let decline = param(&form, "choice") == Some("never");
    let kw = state.kw.clone();
    let to = blocking(move || kw.continue_after_offer(&attempt, &browser_id, decline)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(&to.ok_or_else(attempt_gone)?))
}
