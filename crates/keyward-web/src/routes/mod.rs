//! Handlers, one module per endpoint family. The route table is `crate::configure`.

pub mod account;
pub mod api;
pub mod authorize;
pub mod consent;
pub mod discovery;
pub mod health;
pub mod home;
pub mod link;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod notices;
pub mod passkey_offer;
pub mod passkeys;
pub mod reauth;
pub mod recovery;
pub mod token;
pub mod try_it;
pub mod userinfo;

use crate::WebState;
use actix_web::web;
use keyward_service::ServiceError;

pub type State = web::Data<WebState>;

/// Runs blocking service work (database, Argon2) on actix's blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static) -> Result<T, ServiceError> {
    blocking_within(REQUEST_DEADLINE, f).await
}

/// How long a request's blocking work (database, Argon2) may take before it answers 503: a
/// connection checkout plus a statement. A database that hangs (frozen, not down) cannot hold
/// requests longer; their transaction rolls back instead of committing late.
pub const REQUEST_DEADLINE: std::time::Duration =
    std::time::Duration::from_secs(keyward_store::CHECKOUT_TIMEOUT.as_secs() + keyward_store::STATEMENT_TIMEOUT.as_secs());

/// [`blocking`] with its own deadline: past it the caller gets `TimedOut` (a 503), and a
/// write transaction still running rolls back instead of committing.
pub async fn blocking_within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let deadline = std::time::Instant::now() + limit;
    let job = web::block(move || keyward_store::with_deadline(deadline, f));
    match actix_web::rt::time::timeout(limit, job).await {
        Ok(done) => done.map_err(|e| ServiceError::Internal(e.to_string()))?,
        Err(_) => Err(ServiceError::Store(keyward_store::StoreError::TimedOut)),
    }
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
