//! `/token` (RFC 6749 §3.2, §4.1.3): the authorization_code grant. Parameters must not
//! repeat (§3.1), the client authenticates once (§2.3), and every answer is `no-store`.

use super::{State, blocking, param, parse_form};
use crate::error::{WebError, oauth_json};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use keyward_core::client_auth::{AuthMethod, PresentedCredentials, authenticate_client};
use keyward_core::oauth_error::OAuthErrorCode as E;

pub async fn token(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form_type =
        req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = match parse_form(&body) {
        Some(p) if form_type => p,
        _ => {
            return Err(WebError::oauth(E::InvalidRequest, "send the parameters as application/x-www-form-urlencoded"));
        }
    };
    if let Some((dup, _)) = params.iter().enumerate().find_map(|(i, (k, _))| params[..i].iter().any(|(p, _)| p == k).then_some((k, ()))) {
        return Err(WebError::oauth(E::InvalidRequest, &format!("the {dup} parameter is repeated")));
    }
    match param(&params, "grant_type") {
        None => return Err(WebError::oauth(E::InvalidRequest, "grant_type is required")),
        Some("authorization_code") => {}
        Some(_) => {
            return Err(WebError::oauth(E::UnsupportedGrantType, "only the authorization_code grant is supported"));
        }
    }
    let creds = PresentedCredentials {
        basic: match basic_credentials(&req) {
            Ok(b) => b,
            Err(()) => {
                return Err(WebError::OAuth {
                    error: keyward_core::OAuthError::new(E::InvalidClient, "the Authorization header is malformed"),
                    basic: true,
                });
            }
        },
        form_client_id: param(&params, "client_id").map(str::to_owned),
        form_client_secret: param(&params, "client_secret").map(str::to_owned),
    };
    let config = &state.kw.config;
    let client = match authenticate_client(&creds, |id| config.client(id)) {
        Ok((client, _)) => config.clients.get(&client.id).cloned(),
        Err((error, method)) => {
            return Err(WebError::OAuth { error, basic: method == AuthMethod::ClientSecretBasic });
        }
    };
    let Some(client) = client else {
        return Err(WebError::oauth(E::InvalidClient, "client authentication failed"));
    };
    let Some(code) = param(&params, "code").map(str::to_owned) else {
        return Err(WebError::oauth(E::InvalidRequest, "code is required"));
    };
    let redirect_uri = param(&params, "redirect_uri").map(str::to_owned);
    let verifier = param(&params, "code_verifier").map(str::to_owned);
    let kw = state.kw.clone();
    let answer = blocking(move || kw.exchange_code(&client, &code, redirect_uri.as_deref(), verifier.as_deref()))
        .await
        .map_err(WebError::ApiInternal)?;
    match answer {
        Ok(tokens) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"))
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .json(tokens)),
        Err(error) => Ok(oauth_json(&error)),
    }
}

/// `Authorization: Basic` → (client_id, secret), each form-url-decoded (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ()> {
    let Some(value) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    let unescape =
        |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().map(|c| c.into_owned()).map_err(|_| ());
    Ok(Some((unescape(id)?, unescape(secret)?)))
}
