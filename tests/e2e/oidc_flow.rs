//! The authorization code flow end to end, validated by the `openidconnect` crate: discovery,
//! PKCE, email-code sign-in, ID token checks (signature against the JWKS, iss, aud, nonce,
//! exp), userinfo, and single sign-on for a second client — on SQLite and on PostgreSQL.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{AuthType, AuthorizationCode, OAuth2TokenResponse, TokenResponse};

async fn happy_flow(database: Database) -> anyhow::Result<()> {
    let app = spawn(AppOptions { database, ..Default::default() }).await?;
    let http = rp_http()?;
    let browser = Browser::new()?;
    let email = "Ada.Lovelace@Example.com";

    // Client 1: client_secret_basic, RS256.
    let rp1 = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp1);
    let callback = sign_in_by_email(&app, &browser, &req.url, email).await?;
    assert!(callback.starts_with(CLIENT_REDIRECT), "{callback}");
    assert_eq!(param(&callback, "state")?, req.state, "state is echoed");
    assert_eq!(param(&callback, "iss")?, app.issuer, "RFC 9207 iss");
    let tokens =
        rp1.exchange_code(AuthorizationCode::new(param(&callback, "code")?))?.set_pkce_verifier(req.verifier).request_async(&http).await?;
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token.claims(&rp1.id_token_verifier(), &req.nonce)?;
    assert_eq!(claims.issuer().as_str(), app.issuer);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), CLIENT_ID);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ada.lovelace@example.com"));
    assert_eq!(claims.email_verified(), Some(true));
    assert!(claims.auth_time().is_some(), "auth_time is always present");
    assert_eq!(claims.authorized_party().map(|a| a.as_str()), Some(CLIENT_ID));
    let amr: Vec<String> = claims.auth_method_refs().expect("amr").iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, vec!["otp".to_string()]);
    let sub = claims.subject().clone();
    assert!(uuid_like(sub.as_str()), "sub is an opaque id, not the email: {}", sub.as_str());
    let header = id_token.to_string();
    assert!(jwt_header(&header)?["kid"].is_string(), "ID tokens carry a kid");
    assert_eq!(jwt_header(&header)?["alg"], "RS256");

    let info: CoreUserInfoClaims = rp1.user_info(tokens.access_token().clone(), Some(sub.clone()))?.request_async(&http).await?;
    assert_eq!(info.email().map(|e| e.as_str()), Some("ada.lovelace@example.com"));

    // Client 2: client_secret_post, ES256, and the live session skips the login page.
    let rp2 = rp(&app, CLIENT2_ID, Some(CLIENT2_SECRET), CLIENT2_REDIRECT).await?.set_auth_type(AuthType::RequestBody);
    let req2 = auth_request(&rp2);
    let sso = browser.get(&req2.url).await?;
    assert_eq!(sso.status, 302, "a live session answers at once: {}", sso.body);
    let callback2 = sso.redirect_to(&app.issuer)?;
    assert!(callback2.starts_with(CLIENT2_REDIRECT), "no login page with a live session: {callback2}");
    let tokens2 = rp2
        .exchange_code(AuthorizationCode::new(param(&callback2, "code")?))?
        .set_pkce_verifier(req2.verifier)
        .request_async(&http)
        .await?;
    let verifier = rp2.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims2 = tokens2.id_token().expect("an ID token").claims(&verifier, &req2.nonce)?;
    assert_eq!(claims2.subject(), &sub, "the same person has the same sub at every client");
    assert_eq!(claims2.auth_time(), claims.auth_time(), "SSO keeps the original auth_time");
    Ok(())
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

fn jwt_header(jwt: &str) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap_or_default();
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?)?)
}

#[tokio::test]
async fn oidcc_server_happy_flow_on_sqlite() -> anyhow::Result<()> {
    happy_flow(Database::Sqlite).await
}

#[tokio::test]
async fn oidcc_server_happy_flow_on_postgres() -> anyhow::Result<()> {
    happy_flow(Database::Postgres).await
}

#[tokio::test]
async fn public_client_signs_in_with_pkce_and_no_secret() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, PUBLIC_ID, None, PUBLIC_REDIRECT).await?;
    let req = auth_request(&rp);
    let callback = sign_in_by_email(&app, &browser, &req.url, "spa-user@example.org").await?;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&callback, "code")?))?
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http()?)
        .await?;
    let claims = tokens.id_token().expect("an ID token").claims(&rp.id_token_verifier(), &req.nonce)?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some("spa-user@example.org"));
    Ok(())
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let pairs = query(&req.url)?;
    let form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let posted = browser.post_form(&app.url("/authorize"), &form).await?;
    assert_eq!(posted.status, 303, "B20: a POST is answered with 303: {}", posted.body);
    let login = posted.redirect_to(&app.issuer)?;
    assert!(login.starts_with(&app.url("/login?attempt=")));
    // Finish the sign-in from the login page the POST led to.
    let page = browser.get(&login).await?;
    let (attempt, csrf) = (page.input("attempt")?, page.input("csrf")?);
    let code = request_code(&app, &browser, &attempt, &csrf, "poster@example.com").await?;
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(param(&done.redirect_to(&app.issuer)?, "state")?, req.state);
    Ok(())
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in_returns_login_required() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let url = format!("{}&prompt=none", auth_request(&rp).url);
    let page = Browser::new()?.get(&url).await?;
    assert_eq!(page.status, 302);
    let to = page.redirect_to(&app.issuer)?;
    assert!(to.starts_with(CLIENT_REDIRECT), "no login UI: {to}");
    assert_eq!(param(&to, "error")?, "login_required");
    assert!(param(&to, "state").is_ok() && param(&to, "iss")? == app.issuer);
    Ok(())
}

#[tokio::test]
async fn oidcc_prompt_login_and_max_age_force_a_fresh_sign_in() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    sign_in_by_email(&app, &browser, &auth_request(&rp).url, "fresh@example.com").await?;
    // With a live session, prompt=none answers silently …
    let silent = browser.get(&format!("{}&prompt=none", auth_request(&rp).url)).await?;
    assert!(param(&silent.redirect_to(&app.issuer)?, "code").is_ok(), "oidcc-prompt-none-logged-in");
    // … max_age=10000 does not ask again …
    let recent = browser.get(&format!("{}&max_age=10000", auth_request(&rp).url)).await?;
    assert!(param(&recent.redirect_to(&app.issuer)?, "code").is_ok(), "oidcc-max-age-10000");
    // … but prompt=login and an exceeded max_age send the person to the login page.
    let again = browser.get(&format!("{}&prompt=login", auth_request(&rp).url)).await?;
    assert!(again.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "oidcc-prompt-login");
    app.clock.advance(std::time::Duration::from_secs(2));
    let stale = browser.get(&format!("{}&max_age=0", auth_request(&rp).url)).await?;
    assert!(stale.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "oidcc-max-age-1");
    Ok(())
}
