//! Protocol failures seen from a client: code reuse, PKCE, client authentication, redirect
//! URI checks, error redirects. Raw HTTP, so every status, header and body is checked.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page};

/// Signs in through client `app` and returns (app, browser, code, verifier).
async fn signed_in_code(database: Database) -> anyhow::Result<(TestApp, Browser, String, String)> {
    let app = spawn(AppOptions { database, ..Default::default() }).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let callback = sign_in_by_email(&app, &browser, &req.url, "grace@example.com").await?;
    Ok((app, browser, param(&callback, "code")?, req.verifier.secret().clone()))
}

async fn redeem(app: &TestApp, code: &str, verifier: &str, secret: &str) -> anyhow::Result<Page> {
    let http = reqwest::Client::new();
    let resp = http
        .post(app.url("/token"))
        .basic_auth(CLIENT_ID, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CLIENT_REDIRECT), ("code_verifier", verifier)])
        .send()
        .await?;
    Page::read(resp).await
}

fn json(page: &Page) -> serde_json::Value {
    serde_json::from_str(&page.body).unwrap_or_default()
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> anyhow::Result<(u16, Option<String>)> {
    let resp = reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(access_token).send().await?;
    let www = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((resp.status().as_u16(), www))
}

async fn b11_code_single_use(database: Database) -> anyhow::Result<()> {
    let (app, _, code, verifier) = signed_in_code(database).await?;
    let first = redeem(&app, &code, &verifier, CLIENT_SECRET).await?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("cache-control").as_deref(), Some("no-store"), "B14");
    let body = json(&first);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0));
    let access_token = body["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(userinfo_status(&app, &access_token).await?.0, 200);

    let second = redeem(&app, &code, &verifier, CLIENT_SECRET).await?;
    assert_eq!(second.status, 400);
    assert_eq!(json(&second)["error"], "invalid_grant");
    let (status, www) = userinfo_status(&app, &access_token).await?;
    assert_eq!(status, 401, "tokens issued from a replayed code stop working");
    assert!(www.unwrap_or_default().contains("error=\"invalid_token\""), "B15: RFC 6750 challenge");
    Ok(())
}

#[tokio::test]
async fn b11_code_single_use_and_replay_revokes_tokens() -> anyhow::Result<()> {
    b11_code_single_use(Database::Sqlite).await
}

#[tokio::test]
async fn b11_code_single_use_and_replay_revokes_tokens_on_postgres() -> anyhow::Result<()> {
    b11_code_single_use(Database::Postgres).await
}

#[tokio::test]
async fn b11_concurrent_redemptions_exactly_one_wins() -> anyhow::Result<()> {
    let (app, _, code, verifier) = signed_in_code(Database::Sqlite).await?;
    let (a, b) = tokio::join!(redeem(&app, &code, &verifier, CLIENT_SECRET), redeem(&app, &code, &verifier, CLIENT_SECRET));
    let mut statuses = [a?.status.as_u16(), b?.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    Ok(())
}

#[tokio::test]
async fn b8_wrong_pkce_verifier_is_invalid_grant() -> anyhow::Result<()> {
    let (app, _, code, _) = signed_in_code(Database::Sqlite).await?;
    let wrong = "x".repeat(43);
    let page = redeem(&app, &code, &wrong, CLIENT_SECRET).await?;
    assert_eq!(page.status, 400);
    assert_eq!(json(&page)["error"], "invalid_grant");
    Ok(())
}

#[tokio::test]
async fn b15_wrong_client_secret_is_401_invalid_client_with_challenge() -> anyhow::Result<()> {
    let (app, _, code, verifier) = signed_in_code(Database::Sqlite).await?;
    let page = redeem(&app, &code, &verifier, "not-the-secret").await?;
    assert_eq!(page.status, 401);
    assert_eq!(json(&page)["error"], "invalid_client");
    assert!(page.header("www-authenticate").unwrap_or_default().starts_with("Basic"));
    // The failed attempt did not burn the code: the real client can still redeem it.
    let ok = redeem(&app, &code, &verifier, CLIENT_SECRET).await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    Ok(())
}

#[tokio::test]
async fn b15_token_endpoint_errors_are_rfc6749_json() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let http = reqwest::Client::new();
    let post = |form: Vec<(&'static str, &'static str)>| {
        let req = http.post(app.url("/token")).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(&form);
        async move { Page::read(req.send().await?).await }
    };
    let unsupported = post(vec![("grant_type", "password")]).await?;
    assert_eq!((unsupported.status.as_u16(), json(&unsupported)["error"].clone()), (400, "unsupported_grant_type".into()));
    let missing = post(vec![]).await?;
    assert_eq!(json(&missing)["error"], "invalid_request");
    let repeated = post(vec![("grant_type", "authorization_code"), ("code", "a"), ("code", "b")]).await?;
    assert_eq!(json(&repeated)["error"], "invalid_request", "B15: duplicated parameter");
    let unknown = post(vec![("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", CLIENT_REDIRECT)]).await?;
    assert_eq!((unknown.status.as_u16(), json(&unknown)["error"].clone()), (400, "invalid_grant".into()));
    assert_eq!(unknown.header("cache-control").as_deref(), Some("no-store"));
    Ok(())
}

#[tokio::test]
async fn b2_unregistered_redirect_uri_shows_a_page_and_never_redirects() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    for redirect in ["https://evil.example/callback", "http://localhost:9999/callback/", "http://localhost:9999/callback?x=1"] {
        let url = format!(
            "{}?client_id={CLIENT_ID}&response_type=code&scope=openid&state=s&code_challenge={}&code_challenge_method=S256&redirect_uri={}",
            app.url("/authorize"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        );
        let page = browser.get(&url).await?;
        assert_eq!(page.status, 400, "{redirect}");
        assert!(page.location.is_none(), "no redirect for {redirect}");
        assert!(page.body.contains("not registered"), "the page says why");
    }
    let unknown_client =
        browser.get(&format!("{}?client_id=ghost&response_type=code&redirect_uri=https://evil.example/cb", app.url("/authorize"))).await?;
    assert_eq!(unknown_client.status, 400);
    assert!(unknown_client.location.is_none());
    Ok(())
}

#[tokio::test]
async fn b3_b4_other_errors_redirect_with_error_state_and_iss() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    // No PKCE challenge (B7), plain PKCE (B10): invalid_request at the registered URI.
    for extra in ["", "&code_challenge=abc&code_challenge_method=plain"] {
        let url = format!(
            "{}?client_id={CLIENT_ID}&response_type=code&scope=openid&state=st%20ate&redirect_uri={CLIENT_REDIRECT}{extra}",
            app.url("/authorize")
        );
        let page = browser.get(&url).await?;
        assert_eq!(page.status, 302);
        let to = page.redirect_to(&app.issuer)?;
        assert!(to.starts_with(CLIENT_REDIRECT));
        assert_eq!(param(&to, "error")?, "invalid_request");
        assert_eq!(param(&to, "state")?, "st ate", "B19: state echoed byte for byte");
        assert_eq!(param(&to, "iss")?, app.issuer);
        assert!(!param(&to, "error_description")?.contains(['\r', '\n', '\t']));
    }
    let page = browser
        .get(&format!("{}?client_id={CLIENT_ID}&response_type=token&scope=openid&redirect_uri={CLIENT_REDIRECT}", app.url("/authorize")))
        .await?;
    assert_eq!(param(&page.redirect_to(&app.issuer)?, "error")?, "unsupported_response_type");
    Ok(())
}

#[tokio::test]
async fn b15_userinfo_without_or_with_a_bad_token_is_401() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let http = reqwest::Client::new();
    let none = http.get(app.url("/userinfo")).send().await?;
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let bad = http.get(app.url("/userinfo")).bearer_auth("eyJhbGciOiJFUzI1NiJ9.e30.AAAA").send().await?;
    assert_eq!(bad.status(), 401);
    Ok(())
}

#[tokio::test]
async fn b6_oidcc_discovery_and_jwks_describe_the_provider() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let d: serde_json::Value = reqwest::get(app.url("/.well-known/openid-configuration")).await?.json().await?;
    assert_eq!(d["issuer"], app.issuer);
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]), "B6");
    assert_eq!(d["authorization_response_iss_parameter_supported"], true, "B4");
    assert!(d["id_token_signing_alg_values_supported"].as_array().is_some_and(|a| a.contains(&"RS256".into())));
    assert!(!d["id_token_signing_alg_values_supported"].as_array().is_some_and(|a| a.contains(&"none".into())));
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await?.json().await?;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let kids: std::collections::HashSet<_> = keys.iter().map(|k| k["kid"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kids.len(), keys.len(), "distinct kids");
    for k in &keys {
        assert_eq!(k["use"], "sig");
        assert!(k["alg"] == "RS256" || k["alg"] == "ES256" || k["alg"] == "EdDSA");
        assert!(k.get("d").is_none() && k.get("p").is_none(), "no private material in the JWKS");
    }
    let algs: std::collections::BTreeSet<_> = keys.iter().filter_map(|k| k["alg"].as_str()).collect();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"].into_iter().collect(), "one key per algorithm on a fresh start");
    let okp = keys.iter().find(|k| k["alg"] == "EdDSA").unwrap();
    assert_eq!((okp["kty"].as_str(), okp["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    for endpoint in ["revocation_endpoint", "introspection_endpoint", "end_session_endpoint"] {
        assert!(d[endpoint].as_str().is_some_and(|u| u.starts_with(&app.issuer)), "{endpoint} in discovery");
    }
    Ok(())
}
