//! `/try`: a built-in relying party for trying Keyward out. It is an ordinary public client
//! using the `openidconnect` crate over HTTP against this server's own public endpoints:
//! discovery, authorization code + PKCE, ID token verification against the JWKS, userinfo.
//! Its state (CSRF state, nonce, PKCE verifier) lives in its own cookie, as an RP's would.

use super::State;
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::cookie::SameSite;
use actix_web::cookie::time::Duration;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use tera::Context;

pub struct TryIt {
    issuer: String,
    client_id: String,
    http: openidconnect::reqwest::Client,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

impl TryIt {
    pub fn new(issuer: &str, client_id: String) -> Result<TryIt, String> {
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(TryIt { issuer: issuer.to_owned(), client_id, http })
    }

    async fn client(&self) -> Result<impl std::ops::Deref<Target = ConfiguredClient>, String> {
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| format!("discovery failed: {e}"))?;
        let redirect = RedirectUrl::new(format!("{}/try/callback", self.issuer)).map_err(|e| e.to_string())?;
        Ok(Box::new(CoreClient::from_provider_metadata(metadata, ClientId::new(self.client_id.clone()), None).set_redirect_uri(redirect)))
    }
}

type ConfiguredClient = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn disabled() -> WebError {
    WebError::page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "The try-it page is turned off on this server.",
        Some("Set try_it.enabled = true in the config to use it."),
    )
}

/// The built-in RP could not reach or use this server (discovery, a network failure): 502.
/// The detail may quote what the server answered, so it is logged escaped (`?`).
fn rp_failed(detail: String) -> WebError {
    tracing::warn!(detail = ?detail, "try-it relying party failed");
    WebError::Page {
        status: StatusCode::BAD_GATEWAY,
        title: "The test sign-in did not complete",
        message: format!("The built-in test app could not finish: {detail}"),
        hint: Some("Start again from the try-it page."),
    }
}

/// The callback itself is wrong (no sign-in in progress, a wrong `state`, an `error` from
/// the authorization step, a missing or refused `code`): the client's mistake, 400.
/// Everything in `detail` may come from the query string, so it is logged escaped (`?`).
fn rp_refused(detail: String) -> WebError {
    tracing::info!(detail = ?detail, "try-it callback refused");
    WebError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "The test sign-in did not complete",
        message: format!("The built-in test app could not finish: {detail}"),
        hint: Some("Start again from the try-it page."),
    }
}

/// A token request the server answered with an OAuth error (a wrong or used `code`) is the
/// callback's fault (400); anything else (no answer, a broken answer) is a 502.
fn token_failed<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: openidconnect::RequestTokenError<RE, T>,
) -> WebError {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => rp_refused(format!("the token request was refused: {r}")),
        other => rp_failed(format!("token request failed: {other}")),
    }
}

pub async fn index(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let try_it = state.try_it.as_ref().ok_or_else(disabled)?;
    let (browser_id, new_cookie) = cookies::browser_id(&req);
    let mut ctx = Context::new();
    ctx.insert("issuer", &try_it.issuer);
    ctx.insert("client_id", &try_it.client_id);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &browser_id));
    let mut resp = render(StatusCode::OK, "try_index.html", &ctx);
    if let Some(c) = new_cookie {
        let _ = resp.add_cookie(&c);
    }
    Ok(resp)
}

pub async fn start(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let try_it = state.try_it.as_ref().ok_or_else(disabled)?;
    let form = super::parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, super::param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let client = try_it.client().await.map_err(rp_failed)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending { state: csrf_state.secret().clone(), nonce: nonce.secret().clone(), verifier: verifier.secret().clone() };
    let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&pending).unwrap_or_default());
    let cookie = cookies::build(cookies::TRY_IT, value, Duration::minutes(30), SameSite::Lax);
    let mut resp = HttpResponse::SeeOther().insert_header(("Location", url.as_str())).finish();
    let _ = resp.add_cookie(&cookie);
    Ok(resp)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(req: HttpRequest, state: State, q: web::Query<Callback>) -> Result<HttpResponse, WebError> {
    let try_it = state.try_it.as_ref().ok_or_else(disabled)?;
    let q = q.into_inner();
    let pending: Pending = cookies::get(&req, cookies::TRY_IT)
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| rp_refused("this browser has no test sign-in in progress".into()))?;
    if !keyward_core::secret::constant_time_eq(q.state.as_deref().unwrap_or(""), &pending.state) {
        return Err(rp_refused("the state parameter does not match".into()));
    }
    if let Some(err) = q.error {
        return Err(rp_refused(format!("Keyward answered {err}: {}", q.error_description.unwrap_or_default())));
    }
    let code = q.code.filter(|c| !c.is_empty()).ok_or_else(|| rp_refused("no code in the callback".into()))?;
    let client = try_it.client().await.map_err(rp_failed)?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| rp_failed(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&try_it.http)
        .await
        .map_err(token_failed)?;
    let id_token = tokens.id_token().ok_or_else(|| rp_failed("no ID token in the token response".into()))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| rp_failed(format!("ID token rejected: {e}")))?;
    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .map_err(|e| rp_failed(e.to_string()))?
        .request_async(&try_it.http)
        .await
        .map_err(|e| rp_failed(format!("userinfo failed: {e}")))?;
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let jwt_part = |jwt: &str, i: usize| -> serde_json::Value {
        jwt.split('.').nth(i).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    };
    let id_jwt = id_token.to_string();
    let mut ctx = Context::new();
    ctx.insert("issuer", &try_it.issuer);
    ctx.insert("id_token_header", &pretty(jwt_part(&id_jwt, 0)));
    ctx.insert("id_token_claims", &pretty(serde_json::to_value(claims).unwrap_or_default()));
    ctx.insert("userinfo", &pretty(serde_json::to_value(&userinfo).unwrap_or_default()));
    ctx.insert("access_token_claims", &pretty(jwt_part(tokens.access_token().secret(), 1)));
    let mut resp = render(StatusCode::OK, "try_result.html", &ctx);
    let _ = resp.add_cookie(&cookies::removal(cookies::TRY_IT));
    Ok(resp)
}
