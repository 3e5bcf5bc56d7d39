//! The OpenID Foundation Basic OP modules not covered elsewhere (docs/conformance.md maps
//! every module to its test): userinfo by GET, POST header and POST body; no nonce; scopes;
//! parameter order, unknown parameters, display and locales; prompt=none with a session;
//! id_token_hint; the claims parameter; request objects; acr_values; login_hint; prompt
//! values that show the sign-in page again.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::CoreJwsSigningAlgorithm as Alg;

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

/// A running app with a signed-in browser and its first token response.
async fn signed_in(email: &str) -> anyhow::Result<(TestApp, Browser, serde_json::Value)> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid email", &[]);
    let callback = sign_in(&app, &browser, &flow, email).await?;
    let (status, tokens) = exchange(&app, APP, &flow, &callback).await?;
    anyhow::ensure!(status == 200, "{tokens}");
    Ok((app, browser, tokens))
}

/// Runs `flow` with the live session and redeems the code.
async fn silent_tokens(app: &TestApp, browser: &Browser, flow: &Flow) -> anyhow::Result<serde_json::Value> {
    let callback = browser.get(&flow.url).await?.redirect_to(&app.issuer)?;
    assert_eq!(param(&callback, "state")?, flow.state);
    let (status, tokens) = exchange(app, APP, flow, &callback).await?;
    anyhow::ensure!(status == 200, "{tokens}");
    Ok(tokens)
}

#[tokio::test]
async fn oidcc_userinfo_get_post_header_and_post_body_answer_the_same_sub() -> anyhow::Result<()> {
    let (app, _, tokens) = signed_in("ui@example.com").await?;
    let at = s(&tokens, "access_token")?;
    let sub = jwt_payload(&s(&tokens, "id_token")?)?["sub"].clone();
    let http = reqwest::Client::new();
    let get: serde_json::Value = http.get(app.url("/userinfo")).bearer_auth(&at).send().await?.json().await?;
    let header: serde_json::Value = http.post(app.url("/userinfo")).bearer_auth(&at).send().await?.json().await?;
    let body: serde_json::Value = http.post(app.url("/userinfo")).form(&[("access_token", at.as_str())]).send().await?.json().await?;
    for (how, answer) in [("get", &get), ("post-header", &header), ("post-body", &body)] {
        assert_eq!(answer["sub"], sub, "oidcc-userinfo-{how}");
        assert_eq!(answer["email"], "ui@example.com", "oidcc-userinfo-{how}");
    }
    Ok(())
}

#[tokio::test]
async fn oidcc_nonce_scopes_parameter_order_unknown_parameters_display_and_locales_all_succeed() -> anyhow::Result<()> {
    let (app, browser, _) = signed_in("params@example.com").await?;

    // oidcc-ensure-request-without-nonce-succeeds-for-code-flow
    let mut flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    flow.url = flow.url.replace(&format!("&nonce={}", flow.nonce), "");
    let tokens = silent_tokens(&app, &browser, &flow).await?;
    assert!(jwt_payload(&s(&tokens, "id_token")?)?.get("nonce").is_none());

    // oidcc-scope-profile, -email, -address, -phone, -all: unsupported scopes are ignored.
    for scope in ["openid profile", "openid email", "openid address", "openid phone", "openid profile email address phone"] {
        let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, scope, &[]);
        let tokens = silent_tokens(&app, &browser, &flow).await?;
        let info: serde_json::Value =
            reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(s(&tokens, "access_token")?).send().await?.json().await?;
        assert_eq!(info["email"].is_string(), scope.contains("email"), "{scope}: {info}");
        assert!(info["sub"].is_string());
    }

    // oidcc-ensure-request-with-unknown-parameter-succeeds, -display-page/-popup,
    // -ui-locales, -claims-locales, -login-hint, -acr-values (a class any sign-in meets).
    for extra in [
        [("extra", "foobar")],
        [("display", "page")],
        [("display", "popup")],
        [("ui_locales", "se")],
        [("claims_locales", "se")],
        [("login_hint", "params@example.com")],
        [("acr_values", "1 2")],
    ] {
        let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &extra);
        silent_tokens(&app, &browser, &flow).await?;
    }

    // oidcc-alternate-happy-flow: the same request with its parameters in reverse order.
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "email openid", &[]);
    let (base, query) = flow.url.split_once('?').unwrap();
    let reversed: Vec<&str> = query.split('&').rev().collect();
    let reversed_flow = Flow { url: format!("{base}?{}", reversed.join("&")), ..flow };
    let tokens = silent_tokens(&app, &browser, &reversed_flow).await?;
    id_token_claims(&app, APP, CLIENT_REDIRECT, &s(&tokens, "id_token")?, Some(&reversed_flow.nonce), Alg::RsaSsaPkcs1V15Sha256).await?;
    Ok(())
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in_and_id_token_hint_keep_sub_and_auth_time() -> anyhow::Result<()> {
    let (app, browser, tokens) = signed_in("hint@example.com").await?;
    let first = jwt_payload(&s(&tokens, "id_token")?)?;

    // oidcc-prompt-none-logged-in
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none")]);
    let again = jwt_payload(&s(&silent_tokens(&app, &browser, &flow).await?, "id_token")?)?;
    assert_eq!((again["sub"].clone(), again["auth_time"].clone()), (first["sub"].clone(), first["auth_time"].clone()));

    // oidcc-id-token-hint
    let hint = s(&tokens, "id_token")?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none"), ("id_token_hint", &hint)]);
    let hinted = jwt_payload(&s(&silent_tokens(&app, &browser, &flow).await?, "id_token")?)?;
    assert_eq!(hinted["sub"], first["sub"]);
    // A hint Keyward did not issue to this client is an error, not a silent sign-in.
    let flow = authorize(&app, CLIENT2_ID, CLIENT2_REDIRECT, "openid", &[("prompt", "none"), ("id_token_hint", &hint)]);
    assert_eq!(param(&browser.get(&flow.url).await?.redirect_to(&app.issuer)?, "error")?, "invalid_request");

    // prompt=create and prompt=select_account show the sign-in page again.
    for prompt in ["create", "select_account"] {
        let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", prompt)]);
        assert!(browser.get(&flow.url).await?.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "prompt={prompt}");
    }
    Ok(())
}

#[tokio::test]
async fn oidcc_claims_essential_releases_the_named_claims_where_asked() -> anyhow::Result<()> {
    let (app, browser, _) = signed_in("claims@example.com").await?;
    let claims = r#"{"id_token":{"email":{"essential":true},"name":{"essential":true}},"userinfo":{"email_verified":null}}"#;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("claims", claims)]);
    let tokens = silent_tokens(&app, &browser, &flow).await?;
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    assert_eq!(id["email"], "claims@example.com", "asked for by name in the ID token, though the scope has no email");
    let info: serde_json::Value =
        reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(s(&tokens, "access_token")?).send().await?.json().await?;
    assert_eq!(info["email_verified"], true, "asked for in userinfo");
    assert!(info.get("email").is_none(), "only what was asked for: {info}");

    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("claims", "not json")]);
    assert_eq!(param(&browser.get(&flow.url).await?.redirect_to(&app.issuer)?, "error")?, "invalid_request");
    Ok(())
}

#[tokio::test]
async fn oidcc_request_objects_and_a_missing_response_type_are_answered_at_the_redirect_uri() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    for (name, code) in [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")] {
        let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[(name, "eyJhbGciOiJub25lIn0.e30.")]);
        let back = browser.get(&flow.url).await?.redirect_to(&app.issuer)?;
        assert!(back.starts_with(CLIENT_REDIRECT));
        assert_eq!((param(&back, "error")?, param(&back, "state")?), (code.to_string(), flow.state.clone()));
    }
    // oidcc-response-type-missing
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let back = browser.get(&flow.url.replace("response_type=code&", "")).await?.redirect_to(&app.issuer)?;
    assert!(back.starts_with(CLIENT_REDIRECT));
    assert_eq!(param(&back, "error")?, "invalid_request");
    Ok(())
}

#[tokio::test]
async fn e11_login_hint_fills_in_the_email_field_escaped() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("login_hint", "ada@example.com")]);
    let login = browser.get(&browser.get(&flow.url).await?.redirect_to(&app.issuer)?).await?;
    assert_eq!(login.input("email")?, "ada@example.com");
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("login_hint", "\"><script>x</script>")]);
    let login = browser.get(&browser.get(&flow.url).await?.redirect_to(&app.issuer)?).await?;
    assert!(!login.body.contains("<script>x"), "E11: reflected hints are escaped");
    Ok(())
}
