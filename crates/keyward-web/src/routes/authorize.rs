//! `/authorize` (GET and POST, OIDC Core §3.1.2.1). The request is checked by
//! `keyward_core::authorize`; with a live session the browser goes straight back to the
//! client with a code, otherwise to the login page with the request parked as a login
//! attempt bound to this browser.

use super::{State, blocking, parse_form};
use crate::cookies;
use crate::error::WebError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::authorize::{AuthorizeRejection, validate_authorization_request};
use keyward_service::oidc::Continue;

pub async fn authorize_get(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    authorize(req.query_string().as_bytes(), &req, state, StatusCode::FOUND).await
}

pub async fn authorize_post(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    // After a POST, 303 makes the browser follow with GET (RFC 9700 §4.12).
    authorize(&body, &req, state, StatusCode::SEE_OTHER).await
}

fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    HttpResponse::build(status).insert_header(("Location", location)).insert_header(("Cache-Control", "no-store")).finish()
}

async fn authorize(raw: &[u8], req: &HttpRequest, state: State, status: StatusCode) -> Result<HttpResponse, WebError> {
    let Some(params) = parse_form(raw) else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is broken",
            "The link that brought you here is malformed.",
            Some("Go back to the app and try signing in again."),
        ));
    };
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
            let url = keyward_service::oidc::redirect_url(
                &redirect_uri,
                &config.issuer,
                &[("error", error.code.as_str()), ("error_description", &error.description)],
                st.as_deref(),
            );
            return Ok(redirect(status, &url));
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
        Continue::LoginRequired => {
            let (browser_id, new_cookie) = cookies::browser_id(req);
            let kw = state.kw.clone();
            let attempt = blocking(move || kw.begin_login(&request, &browser_id)).await.map_err(WebError::PageInternal)?;
            let mut resp = redirect(status, &format!("/login?attempt={attempt}"));
            if let Some(c) = new_cookie {
                resp.add_cookie(&c).map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
            }
            Ok(resp)
        }
    }
}
