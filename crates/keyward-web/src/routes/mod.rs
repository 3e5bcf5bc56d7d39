//! Handlers, one module per endpoint family. The route table is `crate::configure`.

pub mod account;
pub mod authorize;
pub mod consent;
pub mod discovery;
pub mod health;
pub mod home;
pub mod link;
pub mod login;
pub mod logout;
pub mod passkeys;
pub mod reauth;
pub mod token;
pub mod try_it;
pub mod userinfo;

use crate::WebState;
use actix_web::web;
use keyward_service::ServiceError;

pub type State = web::Data<WebState>;

/// Runs blocking service work (database, Argon2) on actix's blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static) -> Result<T, ServiceError> {
    web::block(f).await.map_err(|e| ServiceError::Internal(e.to_string()))?
}

/// `application/x-www-form-urlencoded` pairs, in order, duplicates kept.
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).ok()
}

/// The single value of `name`, or `None` when absent or empty.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A coarse description of the client's network (see `keyward_core::net`).
pub fn requested_from(req: &actix_web::HttpRequest) -> String {
    let trusted = req.app_data::<web::Data<WebState>>().map(|s| s.kw.config().trusted_proxies.clone()).unwrap_or_default();
    crate::client_ip(req, &trusted).map(keyward_core::net::coarse_ip).unwrap_or_else(|| "an unknown network".into())
}

/// Unix seconds as people read them.
pub fn human_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[day] [month repr:short] [year] [hour]:[minute] UTC")).ok())
        .unwrap_or_default()
}
