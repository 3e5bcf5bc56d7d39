//! Cookie names and attributes (CHECKLIST E1). Keyward only runs on https or on loopback
//! (the config refuses anything else), and browsers treat both as secure contexts, so every
//! cookie is `Secure` with the `__Host-` prefix: no `Domain`, `Path=/`.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// The signed-in session (SameSite=Lax so `/authorize` from an RP sees it).
pub const SESSION: &str = "__Host-keyward_session";
/// A random id for this browser: binds login attempts and CSRF tokens to it.
pub const BROWSER: &str = "__Host-keyward_browser";
/// The try-it relying party's own state.
pub const TRY_IT: &str = "__Host-keyward_try";

pub fn build(name: &'static str, value: String, max_age: Duration, same_site: SameSite) -> Cookie<'static> {
    Cookie::build(name, value).path("/").secure(true).http_only(true).same_site(same_site).max_age(max_age).finish()
}

pub fn session(value: String, lifetime_secs: i64) -> Cookie<'static> {
    build(SESSION, value, Duration::seconds(lifetime_secs), SameSite::Lax)
}

pub fn browser(value: String) -> Cookie<'static> {
    build(BROWSER, value, Duration::days(30), SameSite::Lax)
}

pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = build(name, String::new(), Duration::ZERO, SameSite::Lax);
    c.make_removal();
    c
}

pub fn get(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty() && v.len() <= 1024)
}

/// This browser's id, and the cookie to set when it is new.
pub fn browser_id(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match get(req, BROWSER) {
        Some(id) => (id, None),
        None => {
            let id = keyward_core::secret::random_token(&mut rand::rng());
            (id.clone(), Some(browser(id)))
        }
    }
}
