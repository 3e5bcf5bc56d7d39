//! `/userinfo` (OIDC Core §5.3) with a Bearer access token in the header (GET or POST) or
//! the form body (POST, RFC 6750 §2.2). Failures answer 401 with a `WWW-Authenticate`
//! challenge (RFC 6750 §3), answered by `WebError::Bearer`.

use super::{State, blocking, param, parse_form};
use crate::error::WebError;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};

pub async fn userinfo_get(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    match bearer(&req) {
        Ok(Some(token)) => answer(state, token).await,
        Ok(None) => Err(WebError::Bearer(None)),
        Err(e) => Err(WebError::Bearer(Some(e))),
    }
}

pub async fn userinfo_post(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let from_body = parse_form(&body).and_then(|p| param(&p, "access_token").map(str::to_owned));
    match (bearer(&req), from_body) {
        (Ok(Some(_)), Some(_)) => {
            Err(WebError::Bearer(Some(OAuthError::new(E::InvalidRequest, "send the token once, not in both the header and the body"))))
        }
        (Ok(Some(t)), None) | (Ok(None), Some(t)) => answer(state, t).await,
        (Ok(None), None) => Err(WebError::Bearer(None)),
        (Err(e), _) => Err(WebError::Bearer(Some(e))),
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
        Err(e) => Err(WebError::Bearer(Some(e))),
    }
}
