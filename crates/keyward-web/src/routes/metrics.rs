//! `/metrics` on the private listener: the Prometheus counters.

use super::State;
use actix_web::HttpResponse;

/// GET /metrics: Prometheus counters.
pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.kw.render_metrics())
}
