//! CSRF protection for form POSTs (CHECKLIST E3): the token is an HMAC of this browser's
//! id under a key derived from the master key, so every instance can check it with no
//! shared state (OWASP's signed double-submit pattern). A request marked
//! `Sec-Fetch-Site: cross-site` is refused whatever it carries.

use crate::cookies;
use actix_web::HttpRequest;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn token(key: &[u8; 32], browser_id: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    URL_SAFE_NO_PAD.encode(hmac::sign(&k, format!("csrf:{browser_id}").as_bytes()))
}

/// True when the POST carries this browser's cookie and the matching token.
pub fn check(req: &HttpRequest, key: &[u8; 32], presented: &str) -> bool {
    if req.headers().get("sec-fetch-site").is_some_and(|v| v == "cross-site") {
        return false;
    }
    let Some(browser_id) = cookies::get(req, cookies::BROWSER) else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
        return false;
    };
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&k, format!("csrf:{browser_id}").as_bytes(), &tag).is_ok()
}
