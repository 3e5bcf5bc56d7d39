//! `/token` (RFC 6749 §3.2): the authorization_code, refresh_token and client_credentials
//! grants; `/revoke` (RFC 7009) and `/introspect` (RFC 7662). Parameters must not repeat
//! (§3.1), the client authenticates once (§2.3), and every answer is `no-store`.

use super::{State, blocking, param, parse_form};
use crate::error::WebError;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use keyward_core::client::Client;
use keyward_core::client_auth::{AuthMethod, PresentedCredentials, authenticate_client};
use keyward_core::oauth_error::OAuthErrorCode as E;
use std::sync::Arc;

type Params = Vec<(String, String)>;

/// The form body of a back-channel request: url-encoded, no parameter twice.
pub(crate) fn form(req: &HttpRequest, body: &[u8]) -> Result<Params, WebError> {
    let form_type =
        req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = match parse_form(body) {
        Some(p) if form_type => p,
        _ => return Err(WebError::oauth(E::InvalidRequest, "send the parameters as application/x-www-form-urlencoded")),
    };
    if let Some(dup) = params.iter().enumerate().find_map(|(i, (k, _))| params[..i].iter().any(|(p, _)| p == k).then_some(k)) {
        return Err(WebError::oauth(E::InvalidRequest, &format!("the {dup} parameter is repeated")));
    }
    Ok(params)
}

/// Client authentication (RFC 6749 §2.3, OIDC Core §9), the same for every back-channel endpoint.
async fn authenticate(req: &HttpRequest, state: &State, params: &Params) -> Result<Arc<Client>, WebError> {
    let creds = PresentedCredentials {
        basic: basic_credentials(req).map_err(|()| WebError::OAuth {
            error: keyward_core::OAuthError::new(E::InvalidClient, "the Authorization header is malformed"),
            basic: true,
        })?,
        form_client_id: param(params, "client_id").map(str::to_owned),
        form_client_secret: param(params, "client_secret").map(str::to_owned),
        assertion_type: param(params, "client_assertion_type").map(str::to_owned),
        assertion: param(params, "client_assertion").map(str::to_owned),
    };
    let config = &state.kw.config();
    let (client, method) = match authenticate_client(&creds, |id| config.client(id)) {
        Ok((client, method)) => (config.clients.get(&client.id).cloned(), method),
        Err((error, method)) => return Err(WebError::OAuth { error, basic: method == AuthMethod::ClientSecretBasic }),
    };
    let client = client.ok_or_else(|| WebError::oauth(E::InvalidClient, "client authentication failed"))?;
    if method == AuthMethod::PrivateKeyJwt {
        let kw = state.kw.clone();
        let (c, assertion) = (client.clone(), creds.assertion.unwrap_or_default());
        let endpoint = format!("{}{}", config.issuer, req.path());
        if let Err(error) = kw.verify_client_assertion(&c, &assertion, &endpoint).await.map_err(WebError::ApiInternal)? {
            return Err(WebError::OAuth { error, basic: false });
        }
    }
    Ok(client)
}

fn no_store(mut resp: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    resp.insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    resp
}

pub async fn token(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let params = form(&req, &body)?;
    let grant_type = match param(&params, "grant_type") {
        None => return Err(WebError::oauth(E::InvalidRequest, "grant_type is required")),
        Some(g @ ("authorization_code" | "refresh_token" | "client_credentials")) => g.to_owned(),
        Some(_) => {
            return Err(WebError::oauth(
                E::UnsupportedGrantType,
                "supported grants: authorization_code, refresh_token, client_credentials",
            ));
        }
    };
    let client = authenticate(&req, &state, &params).await?;
    let get = |name: &str| param(&params, name).map(str::to_owned);
    let kw = state.kw.clone();
    let answer = match grant_type.as_str() {
        "authorization_code" => {
            let code = get("code").ok_or_else(|| WebError::oauth(E::InvalidRequest, "code is required"))?;
            let (redirect_uri, verifier) = (get("redirect_uri"), get("code_verifier"));
            blocking(move || kw.exchange_code(&client, &code, redirect_uri.as_deref(), verifier.as_deref())).await
        }
        "refresh_token" => {
            let token = get("refresh_token").ok_or_else(|| WebError::oauth(E::InvalidRequest, "refresh_token is required"))?;
            let scope = get("scope");
            blocking(move || kw.refresh(&client, &token, scope.as_deref())).await
        }
        _ => {
            let scope = get("scope");
            blocking(move || kw.client_credentials(&client, scope.as_deref())).await
        }
    }
    .map_err(WebError::ApiInternal)?;
    match answer {
        Ok(tokens) => Ok(no_store(HttpResponse::Ok()).json(tokens)),
        Err(error) => Err(WebError::OAuth { error, basic: false }),
    }
}

/// POST /revoke (RFC 7009 §2): 200 with an empty body whether or not the token was known.
pub async fn revoke(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let params = form(&req, &body)?;
    let client = authenticate(&req, &state, &params).await?;
    let token = param(&params, "token").ok_or_else(|| WebError::oauth(E::InvalidRequest, "token is required"))?.to_owned();
    let hint = param(&params, "token_type_hint").map(str::to_owned);
    let kw = state.kw.clone();
    match blocking(move || kw.revoke(&client, &token, hint.as_deref())).await.map_err(WebError::ApiInternal)? {
        Ok(()) => Ok(no_store(HttpResponse::Ok()).finish()),
        Err(error) => Err(WebError::OAuth { error, basic: false }),
    }
}

/// POST /introspect (RFC 7662 §2): the token's state for the client it was issued to.
pub async fn introspect(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let params = form(&req, &body)?;
    let client = authenticate(&req, &state, &params).await?;
    if client.is_public() {
        return Err(WebError::oauth(E::InvalidClient, "public clients cannot introspect tokens"));
    }
    let token = param(&params, "token").ok_or_else(|| WebError::oauth(E::InvalidRequest, "token is required"))?.to_owned();
    let hint = param(&params, "token_type_hint").map(str::to_owned);
    let kw = state.kw.clone();
    let answer = blocking(move || kw.introspect(&client, &token, hint.as_deref())).await.map_err(WebError::ApiInternal)?;
    Ok(no_store(HttpResponse::Ok()).json(answer))
}

/// `Authorization: Basic` → (client_id, secret), each form-url-decoded (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ()> {
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
