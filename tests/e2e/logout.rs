//! RP-Initiated Logout 1.0 (`/end_session`), Back-Channel Logout 1.0 and consent, over real
//! HTTP: the session and its grants end, bad hints and unregistered return addresses are
//! refused without a redirect, and a logout without a hint needs a confirming POST (CHECKLIST
//! E8, E9, the `oidcc-rp-initiated-logout*` modules).

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));
const SIGNED_OUT: &str = "http://localhost:9999/signed-out";

/// Signs in with `offline_access` and returns (browser, first token response).
async fn signed_in(app: &TestApp, email: &str) -> anyhow::Result<(Browser, serde_json::Value)> {
    let browser = Browser::new()?;
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid email offline_access", &[]);
    let callback = sign_in(app, &browser, &flow, email).await?;
    let (status, tokens) = exchange(app, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    Ok((browser, tokens))
}

fn end_session_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    app.url(&format!("/end_session?{}", q.finish()))
}

/// `prompt=none` for the app: the status and where it sends the browser.
async fn silent_authorize(app: &TestApp, browser: &Browser) -> anyhow::Result<String> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none")]);
    browser.get(&flow.url).await?.redirect_to(&app.issuer)
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_ends_the_session_and_its_grants_and_returns_with_state() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let (browser, tokens) = signed_in(&app, "out@example.com").await?;
    let id_token = s(&tokens, "id_token")?;
    assert!(param(&silent_authorize(&app, &browser).await?, "code").is_ok(), "signed in before");

    let page = browser
        .get(&end_session_url(&app, &[("id_token_hint", &id_token), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "bye 1")]))
        .await?;
    assert_eq!(page.status, 302, "{}", page.body);
    let back = page.redirect_to(&app.issuer)?;
    assert!(back.starts_with(SIGNED_OUT), "{back}");
    assert_eq!(param(&back, "state")?, "bye 1", "state is echoed");
    assert!(
        page.set_cookies().iter().any(|c| c.starts_with("__Host-keyward_session=;") || c.contains("Max-Age=0")),
        "the cookie is cleared"
    );

    let after = silent_authorize(&app, &browser).await?;
    assert_eq!(param(&after, "error")?, "login_required", "E9: prompt=none after logout");
    let (status, replay) = refresh(&app, APP, &s(&tokens, "refresh_token")?).await?;
    assert_eq!((status, s(&replay, "error")?.as_str()), (400, "invalid_grant"), "B17: logout revokes the refresh tokens");
    assert_eq!(userinfo_status(&app, &s(&tokens, "access_token")?).await?, 401);
    assert!(audit_log(&app).await?.iter().any(|(k, d)| k == "signed_out" && d["how"] == "rp_initiated"));
    Ok(())
}

#[tokio::test]
async fn e9_logout_without_an_id_token_hint_needs_a_confirming_post() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let (browser, _) = signed_in(&app, "confirm@example.com").await?;
    let page =
        browser.get(&end_session_url(&app, &[("client_id", CLIENT_ID), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "s")])).await?;
    assert_eq!(page.status, 200, "a confirmation page, no redirect");
    assert!(page.body.contains("Sign out?"));
    assert!(param(&silent_authorize(&app, &browser).await?, "code").is_ok(), "showing the page changed nothing");

    // A forged confirmation (no CSRF token, or one from another browser) is refused.
    let forged = browser
        .post_form(&app.url("/end_session"), &[("confirm", "yes"), ("client_id", CLIENT_ID), ("post_logout_redirect_uri", SIGNED_OUT)])
        .await?;
    assert_eq!(forged.status, 403);
    assert!(param(&silent_authorize(&app, &browser).await?, "code").is_ok(), "still signed in");

    let csrf = page.input("csrf")?;
    let done = browser
        .post_form(
            &app.url("/end_session"),
            &[("confirm", "yes"), ("csrf", &csrf), ("client_id", CLIENT_ID), ("post_logout_redirect_uri", SIGNED_OUT), ("state", "s")],
        )
        .await?;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(param(&done.redirect_to(&app.issuer)?, "state")?, "s");
    assert_eq!(param(&silent_authorize(&app, &browser).await?, "error")?, "login_required");
    Ok(())
}

#[tokio::test]
async fn e8_bad_hints_and_unregistered_return_addresses_are_refused_without_a_redirect() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let (browser, tokens) = signed_in(&app, "bad@example.com").await?;
    let id_token = s(&tokens, "id_token")?;
    let mut modified = id_token.clone();
    let flip = modified.len() - 5;
    let c = if modified.as_bytes()[flip] == b'A' { "B" } else { "A" };
    modified.replace_range(flip..flip + 1, c);
    for (what, params) in [
        ("unregistered uri", vec![("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", "https://evil.example/out")]),
        ("query added", vec![("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", "http://localhost:9999/signed-out?x=1")]),
        ("modified hint", vec![("id_token_hint", modified.as_str()), ("post_logout_redirect_uri", SIGNED_OUT)]),
        ("garbage hint", vec![("id_token_hint", "not-a-jwt"), ("post_logout_redirect_uri", SIGNED_OUT)]),
        (
            "other client's uri",
            vec![("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", "http://localhost:9998/signed-out")],
        ),
        ("uri without client", vec![("post_logout_redirect_uri", SIGNED_OUT)]),
    ] {
        let page = browser.get(&end_session_url(&app, &params)).await?;
        assert_eq!(page.status, 400, "{what}: {}", page.body);
        assert!(page.location.is_none(), "{what}: never redirected");
    }
    assert!(param(&silent_authorize(&app, &browser).await?, "code").is_ok(), "none of them signed the person out");
    Ok(())
}

#[tokio::test]
async fn backchannel_logout_token_is_signed_names_the_session_and_is_retried_until_delivered() -> anyhow::Result<()> {
    let receiver = Receiver::start(vec![500, 200]).await?;
    let extra = format!("backchannel_logout_uri = \"http://127.0.0.1:{}/backchannel\"", receiver.port);
    let app = spawn(AppOptions { client_extra: Some(extra), ..Default::default() }).await?;
    let (browser, tokens) = signed_in(&app, "bc@example.com").await?;
    let id = jwt_payload(&s(&tokens, "id_token")?)?;

    let page = browser.get(&end_session_url(&app, &[("id_token_hint", &s(&tokens, "id_token")?)])).await?;
    assert_eq!(page.status, 200, "signed out, no return address: a notice page");
    // The first delivery gets a 500; the retry (2 s later) is accepted.
    let bodies = receiver.wait_for_retry(&app, 2).await?;
    let token = form_urlencoded::parse(bodies[1].as_bytes()).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned()).unwrap();

    // Verify it as an RP would: signature by a key in the JWKS, then the claims (§2.6).
    let header = jsonwebtoken::decode_header(&token)?;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/jwks")).await?.json().await?;
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the signing key is published");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[&app.issuer]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &jsonwebtoken::DecodingKey::from_jwk(jwk)?, &validation)?.claims;
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sid"], id["sid"], "the logout token names the session the ID token did");
    assert!(claims["events"].get("http://schemas.openid.net/event/backchannel-logout").is_some());
    assert!(claims.get("nonce").is_none(), "a logout token never carries a nonce");
    assert!(claims["jti"].is_string());
    Ok(())
}

const THIRD_PARTY: &str = r#"
[[clients]]
id = "partner"
name = "Partner App"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["http://localhost:9996/callback"]
"#;
const PARTNER_REDIRECT: &str = "http://localhost:9996/callback";

#[tokio::test]
async fn consent_is_asked_once_remembered_declinable_and_revocable_with_the_apps_tokens() -> anyhow::Result<()> {
    let secret = "partner-secret-0123456789abcdefghijklmnopqrstuvw";
    let app = spawn(AppOptions {
        extra: Some(THIRD_PARTY.replace("SECRET_HASH", &keyward_core::secret::hash_secret(secret))),
        ..Default::default()
    })
    .await?;
    let partner = ("partner", Some(secret));
    let browser = Browser::new()?;

    // First visit: sign in, then the consent page lists the scopes in plain words.
    let flow = authorize(&app, "partner", PARTNER_REDIRECT, "openid email offline_access", &[]);
    let to_consent = sign_in(&app, &browser, &flow, "consent@example.com").await?;
    assert!(to_consent.starts_with(&app.url("/consent?attempt=")), "{to_consent}");
    let page = browser.get(&to_consent).await?;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Partner App") && page.body.contains("See your email address"), "{}", page.body);
    let (attempt, csrf) = (page.input("attempt")?, page.input("csrf")?);
    let forged = browser.post_form(&app.url("/consent"), &[("attempt", &attempt), ("decision", "allow")]).await?;
    assert_eq!(forged.status, 403, "E3: consent is CSRF-protected");
    let denied = browser.post_form(&app.url("/consent"), &[("attempt", &attempt), ("csrf", &csrf), ("decision", "deny")]).await?;
    let back = denied.redirect_to(&app.issuer)?;
    assert!(back.starts_with(PARTNER_REDIRECT));
    assert_eq!((param(&back, "error")?, param(&back, "state")?), ("access_denied".to_string(), flow.state.clone()));

    // prompt=none cannot ask: consent_required.
    let silent = authorize(&app, "partner", PARTNER_REDIRECT, "openid email", &[("prompt", "none")]);
    assert_eq!(param(&browser.get(&silent.url).await?.redirect_to(&app.issuer)?, "error")?, "consent_required");

    // Allow: a code, and the answer is remembered for the same scopes.
    let flow = authorize(&app, "partner", PARTNER_REDIRECT, "openid email offline_access", &[]);
    let page = browser.get(&browser.get(&flow.url).await?.redirect_to(&app.issuer)?).await?;
    let allowed = browser
        .post_form(&app.url("/consent"), &[("attempt", &page.input("attempt")?), ("csrf", &page.input("csrf")?), ("decision", "allow")])
        .await?;
    let (status, tokens) = exchange(&app, partner, &flow, &allowed.redirect_to(&app.issuer)?).await?;
    assert_eq!(status, 200, "{tokens}");
    let again = authorize(&app, "partner", PARTNER_REDIRECT, "openid email", &[("prompt", "none")]);
    assert!(param(&browser.get(&again.url).await?.redirect_to(&app.issuer)?, "code").is_ok(), "remembered");
    let wider = authorize(&app, "partner", PARTNER_REDIRECT, "openid email profile", &[("prompt", "none")]);
    assert_eq!(param(&browser.get(&wider.url).await?.redirect_to(&app.issuer)?, "error")?, "consent_required", "new scopes ask again");

    // The account page lists the app; removing it revokes its refresh tokens.
    let account = browser.get(&app.url("/account")).await?;
    assert!(account.body.contains("Partner App"), "{}", account.body);
    let removed = browser.post_form(&app.url("/account/apps/partner/revoke"), &[("csrf", &account.input("csrf")?)]).await?;
    assert_eq!(removed.status, 303);
    assert_eq!(refresh(&app, partner, &s(&tokens, "refresh_token")?).await?.0, 400, "the app's refresh token died with the consent");
    let after = authorize(&app, "partner", PARTNER_REDIRECT, "openid email", &[("prompt", "none")]);
    assert_eq!(param(&browser.get(&after.url).await?.redirect_to(&app.issuer)?, "error")?, "consent_required");
    let kinds: Vec<String> = audit_log(&app).await?.into_iter().map(|(k, _)| k).collect();
    for k in ["consent_declined", "consent_given", "consent_revoked"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    Ok(())
}

#[tokio::test]
async fn e9_account_page_lists_sessions_and_signs_out_everywhere_else() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let (here, _) = signed_in(&app, "two@example.com").await?;
    let (there, there_tokens) = signed_in(&app, "two@example.com").await?;

    let account = here.get(&app.url("/account")).await?;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("This browser") && account.body.contains("Another browser or device"), "{}", account.body);
    let forged = here.post_form(&app.url("/account/sessions/sign-out-others"), &[("csrf", "nope")]).await?;
    assert_eq!(forged.status, 403);
    let done = here.post_form(&app.url("/account/sessions/sign-out-others"), &[("csrf", &account.input("csrf")?)]).await?;
    assert_eq!(done.status, 303);

    assert_eq!(param(&silent_authorize(&app, &there).await?, "error")?, "login_required", "the other browser is signed out");
    assert_eq!(refresh(&app, APP, &s(&there_tokens, "refresh_token")?).await?.0, 400, "and its app grants are revoked");
    assert!(param(&silent_authorize(&app, &here).await?, "code").is_ok(), "this browser stays signed in");
    let account = here.get(&app.url("/account")).await?;
    assert!(!account.body.contains("Another browser or device"));
    Ok(())
}
