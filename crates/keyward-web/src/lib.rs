//! Keyward over HTTP: one route table, the hosted pages (tera templates from `ui/`),
//! cookies, CSRF, security headers, and the one place where errors become responses.

mod cookies;
mod csrf;
mod error;
mod pages;
mod routes;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use keyward_mail::{MailTemplates, Mailer};
use keyward_service::Keyward;
use std::sync::Arc;

pub use error::WebError;

/// Shared by every worker.
pub struct WebState {
    pub kw: Arc<Keyward>,
    pub mailer: Mailer,
    pub mail_templates: MailTemplates,
    discovery_json: String,
    try_it: Option<routes::try_it::TryIt>,
}

impl WebState {
    pub fn new(kw: Arc<Keyward>, mailer: Mailer) -> Result<WebState, String> {
        pages::Pages::new()?;
        let discovery_json = kw.discovery_document().to_string();
        let try_it =
            kw.config.try_it_client.clone().map(|client_id| routes::try_it::TryIt::new(&kw.config.issuer, client_id)).transpose()?;
        Ok(WebState { mail_templates: MailTemplates::new().map_err(|e| e.to_string())?, discovery_json, try_it, kw, mailer })
    }
}

/// Headers for every response (CHECKLIST E4, E5, E7; DESIGN.md §5). Scripts are not used
/// only come from our own origin (no inline script).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

/// The route table: every endpoint Keyward serves.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::*;
    cfg.route("/", web::get().to(home::home))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/keyward.css", web::get().to(home::stylesheet))
        .route("/static/login.js", web::get().to(home::login_script))
        .route("/.well-known/openid-configuration", web::get().to(discovery::openid_configuration))
        .route("/jwks", web::get().to(discovery::jwks))
        .route("/authorize", web::get().to(authorize::authorize_get))
        .route("/authorize", web::post().to(authorize::authorize_post))
        .route("/token", web::post().to(token::token))
        .route("/token", web::method(actix_web::http::Method::OPTIONS).to(discovery::preflight))
        .route("/userinfo", web::get().to(userinfo::userinfo_get))
        .route("/userinfo", web::post().to(userinfo::userinfo_post))
        .route("/userinfo", web::method(actix_web::http::Method::OPTIONS).to(discovery::preflight))
        .route("/login", web::get().to(login::login_page))
        .route("/login/email", web::post().to(login::submit_email))
        .route("/login/code", web::get().to(login::code_page))
        .route("/login/code", web::post().to(login::submit_code))
        .route("/login/status", web::get().to(link::status))
        .route("/login/continue", web::post().to(link::continue_approved))
        .route("/login/link", web::get().to(link::link_page))
        .route("/login/link", web::post().to(link::submit_link))
        .route("/try", web::get().to(try_it::index))
        .route("/try/start", web::post().to(try_it::start))
        .route("/try/callback", web::get().to(try_it::callback))
        .default_service(web::to(home::not_found));
}
