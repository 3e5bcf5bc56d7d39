//! Discovery (OIDC Discovery §4) and the JWKS: documents built once at start and served as
//! they are, readable from any origin.

use super::State;
use actix_web::HttpResponse;

pub async fn openid_configuration(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(state.discovery_json.clone())
}

pub async fn jwks(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(state.kw.keys.jwks_json().to_string())
}

/// CORS preflight for the endpoints browsers call directly (token, userinfo). No cookies
/// are involved there, so any origin may call them.
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Access-Control-Allow-Methods", "GET, POST"))
        .insert_header(("Access-Control-Allow-Headers", "Authorization, Content-Type"))
        .insert_header(("Access-Control-Max-Age", "86400"))
        .finish()
}
