//! The consent page (DESIGN.md §3): shown before a code goes to an app that is not
//! `first_party`, listing what it asks for in plain words. Allow is remembered per person
//! and app; Don't allow answers the app with `access_denied`.

use super::login::{attempt_gone, see_other};
use super::{State, blocking, param, parse_form};
use crate::error::WebError;
use crate::pages::render;
use crate::{cookies, csrf};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

#[derive(serde::Deserialize)]
pub struct ConsentQuery {
    attempt: Option<String>,
}

/// GET /consent?attempt=…
pub async fn consent_page(req: HttpRequest, state: State, q: web::Query<ConsentQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let (a, b) = (attempt.clone(), browser_id.clone());
    let view = blocking(move || kw.consent_view(&a, &b)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
    let mut ctx = tera::Context::new();
    ctx.insert("attempt", &attempt);
    ctx.insert("client_name", &view.app_name);
    ctx.insert("scopes", &view.scopes);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &browser_id));
    Ok(render(StatusCode::OK, "consent.html", &ctx))
}

/// POST /consent: `decision=allow` or `decision=deny`.
pub async fn consent_submit(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let allow = match param(&form, "decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                "Please choose",
                "Choose Allow or Don't allow.",
                Some("Go back and press one of the two buttons."),
            ));
        }
    };
    let kw = state.kw.clone();
    let to = blocking(move || kw.decide_consent(&attempt, &browser_id, allow)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(&to.ok_or_else(attempt_gone)?))
}
