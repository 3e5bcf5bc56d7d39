//! Liveness and readiness probes (`/healthz`, `/readyz`), on both listeners.

use super::{State, blocking_within};
use crate::error::WebError;
use actix_web::HttpResponse;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// How long readiness waits for the database before it answers 503.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// The database answers within [`READY_DEADLINE`], its schema is current, a write commits,
/// and the process is not shutting down.
pub async fn readyz(state: State) -> Result<HttpResponse, WebError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(WebError::NotReady("shutting down"));
    }
    let kw = state.kw.clone();
    let ready = blocking_within(READY_DEADLINE, move || kw.check_ready()).await;
    match ready {
        Ok(true) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Ok(false) => Err(WebError::NotReady("migrations pending")),
        Err(e) => {
            // An outage is logged once by the pool; probes come every few seconds.
            tracing::debug!(error = %e, "not ready");
            Err(WebError::NotReady("database unavailable or not writable"))
        }
    }
}
