//! `/userinfo` (OIDC Core §5.3) with a Bearer access token in the header (GET or POST) or
//! the form body (POST, RFC 6750 §2.2). Failures answer 401 with a `WWW-Authenticate`
//! challenge (RFC 6750 §3).

use super::{State, blocking, param, parse_form};
use crate::error::WebError;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};

pub async fn userinfo_get(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    match bearer(&req) {
        Ok(Some(token)) => answer(state, token).await,
        Ok(None) => Ok(challenge(None)),
        Err(e) => Ok(challenge(Some(&e))),
    }
}

pub async fn userinfo_post(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let from_body = parse_form(&body).and_then(|p| param(&p, "access_token").map(str::to_owned));
    match (bearer(&req), from_body) {
        (Ok(Some(_)), Some(_)) => {
            Ok(challenge(Some(&OAuthError::new(E::InvalidRequest, "send the token once, not in both the header and the body"))))
        }
        (Ok(Some(t)), None) | (Ok(None), Some(t)) => answer(state, t).await,
        (Ok(None), None) => Ok(challenge(None)),
        (Err(e), _) => Ok(challenge(Some(&e))),
    }
}

fn bearer(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let Some(v) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let bad = || OAuthError::new(E::InvalidRequest, "the Authorization header must be: Bearer <token>");
    let v = v.to_str().map_err(|_| bad())?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
        _ => Err(bad()),
    }
}

async fn answer(state: State, token: String) -> Result<HttpResponse, WebError> {
    let kw = state.kw.clone();
    match blocking(move || kw.userinfo(&token)).await.map_err(WebError::ApiInternal)? {
        Ok(claims) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .json(claims)),
        Err(e) => Ok(challenge(Some(&e))),
    }
}

/// 401 (400 for a malformed request) with the RFC 6750 §3 challenge.
fn challenge(error: Option<&OAuthError>) -> HttpResponse {
    let header = match error {
        None => "Bearer realm=\"keyward\"".to_owned(),
        Some(e) => format!("Bearer realm=\"keyward\", error=\"{}\", error_description=\"{}\"", e.code.as_str(), e.description),
    };
    let mut resp = match error {
        Some(e) if e.code == E::InvalidRequest => HttpResponse::BadRequest(),
        _ => HttpResponse::Unauthorized(),
    };
    resp.insert_header(("WWW-Authenticate", header))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    match error {
        Some(e) => resp.json(serde_json::json!({ "error": e.code.as_str(), "error_description": e.description })),
        None => resp.finish(),
    }
}
