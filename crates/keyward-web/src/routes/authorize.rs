//! `/authorize` (GET and POST, OIDC Core §3.1.2.1). The request is checked by
//! `keyward_core::authorize`; with a live session the browser goes straight back to the
//! client with a code, otherwise to the login page with the request parked as a login
//! attempt bound to this browser. Requests are bounded (each parameter, the whole request)
//! and new attempts are limited per network; SSO with a live session is never limited.

use super::{State, blocking, parse_form};
use crate::cookies;
use crate::error::WebError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::authorize::{AuthorizationRequest, AuthorizeRejection, MAX_AUTHORIZATION_REQUEST_BYTES, validate_authorization_request};
use keyward_service::login::LoginStart;
use keyward_service::metrics::Family;
use keyward_service::oidc::Continue;

pub async fn authorize_get(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    authorize(req.query_string().as_bytes(), &req, state, StatusCode::FOUND).await
}

pub async fn authorize_post(req: HttpRequest, state: State, body: web::Payload) -> Result<HttpResponse, WebError> {
    // A GET's query is bounded by `limit_request_head` (414); a POST's form here, before it is
    // read whole (issue 14, finding 3).
    let body = match body.to_bytes_limited(MAX_AUTHORIZATION_REQUEST_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(broken_link()),
        // The rest of the body is left unread: the connection cannot carry another request.
        Err(_) => return Err(WebError::RequestTooLarge),
    };
    // After a POST, 303 makes the browser follow with GET (RFC 9700 §4.12).
    authorize(&body, &req, state, StatusCode::SEE_OTHER).await
}

fn broken_link() -> WebError {
    WebError::page(
        StatusCode::BAD_REQUEST,
        "This sign-in link is broken",
        "The link that brought you here is malformed.",
        Some("Go back to the app and try signing in again."),
    )
}

fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status).insert_header(("Location", location)).insert_header(("Cache-Control", "no-store")).finish()
}

async fn authorize(raw: &[u8], req: &HttpRequest, state: State, status: StatusCode) -> Result<HttpResponse, WebError> {
    let Some(params) = parse_form(raw) else { return Err(broken_link()) };
    let config = &state.kw.config();
    let request = match validate_authorization_request(&params, |id| config.client(id)) {
        Ok((request, _client)) => request,
        Err(AuthorizeRejection::Untrusted(why)) => {
            tracing::info!(reason = ?why, "authorization request refused without redirect");
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                "We can't sign you in to this app",
                why.explain(),
                Some("Go back to the app and try again. If it keeps happening, let the app's developers know."),
            ));
        }
        Err(AuthorizeRejection::Redirect { redirect_uri, state: st, error }) => {
            return Err(WebError::to_client(status, &redirect_uri, &config.issuer, st.as_deref(), &error));
        }
    };
    let session = cookies::get(req, cookies::SESSION);
    let kw = state.kw.clone();
    let r = request.clone();
    match blocking(move || kw.authorize_with_session(&r, session.as_deref())).await.map_err(WebError::PageInternal)? {
        Continue::Redirect(url) => Ok(redirect(status, &url)),
        Continue::ConsentRequired { session_hash } => {
            let (browser_id, new_cookie) = cookies::browser_id(req);
            let kw = state.kw.clone();
            let attempt = blocking(move || kw.begin_consent(&request, &browser_id, &session_hash)).await.map_err(WebError::PageInternal)?;
            let mut resp = redirect(status, &format!("/consent?attempt={attempt}"));
            if let Some(c) = new_cookie {
                resp.add_cookie(&c).map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
            }
            Ok(resp)
        }
        Continue::LoginRequired => begin_login(request, req, &state, status).await,
    }
}

/// A new login attempt, within the per-network limit on new attempts; a refused one answers
/// 429 with `Retry-After` and stores nothing (issue 14, finding 3).
async fn begin_login(
    request: AuthorizationRequest,
    req: &HttpRequest,
    state: &State,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let (browser_id, new_cookie) = cookies::browser_id(req);
    let client = crate::client_ip(req, &state.kw.config().trusted_proxies);
    let kw = state.kw.clone();
    let attempt = match blocking(move || kw.begin_login(&request, &browser_id, client)).await.map_err(WebError::PageInternal)? {
        LoginStart::Started(attempt) => attempt,
        LoginStart::Limited { retry_after } => {
            state.kw.metrics.inc(Family::RateLimited, "limit", "login_attempts_per_ip");
            return Err(super::login::too_many_with(
                retry_after,
                "Many sign-ins were started from your network in a short time.",
                "If you already have a sign-in page open, you can finish it there.",
            ));
        }
    };
    let mut resp = redirect(status, &format!("/login?attempt={attempt}"));
    if let Some(c) = new_cookie {
        resp.add_cookie(&c).map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
    }
    Ok(resp)
}
