//! The landing page, the stylesheet and the not-found page.

use super::State;
use crate::error::WebError;
use crate::pages::{LOGIN_SCRIPT, PASSKEY_SCRIPT, STYLESHEET, render};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

pub async fn home(state: State) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("issuer", &state.kw.config().issuer);
    ctx.insert("try_enabled", &state.try_it.is_some());
    render(StatusCode::OK, "home.html", &ctx)
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").insert_header(("Cache-Control", "public, max-age=3600")).body(STYLESHEET)
}

pub async fn login_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(LOGIN_SCRIPT)
}

pub async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(PASSKEY_SCRIPT)
}

/// No icon: an empty answer browsers cache, instead of a 404 on every page.
pub async fn favicon() -> HttpResponse {
    HttpResponse::NoContent().insert_header(("Cache-Control", "public, max-age=86400")).finish()
}

pub async fn not_found() -> Result<HttpResponse, WebError> {
    Err(WebError::page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
        Some("Check the link, or go back to the app you came from."),
    ))
}
