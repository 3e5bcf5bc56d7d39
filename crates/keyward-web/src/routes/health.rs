//! Liveness and readiness.

use super::{State, blocking};
use actix_web::HttpResponse;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// The database answers, its schema is current, and the process is not shutting down.
pub async fn readyz(state: State) -> HttpResponse {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "shutting down" }));
    }
    let kw = state.kw.clone();
    let ready = blocking(move || Ok(keyward_store::migrations_current(&mut *kw.conn()?)?)).await;
    match ready {
        Ok(true) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Ok(false) => HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "migrations pending" })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "database unavailable" }))
        }
    }
}
