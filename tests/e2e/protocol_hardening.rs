//! Protocol findings of the hardening review (issue 14), each proven over real HTTP against
//! the real binary: the test names carry the finding's number.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;

const SECRET: &str = "hardening-secret-0123456789abcdefghijklmnopqrstu";

/// Two apps that ask for consent: one allowed only `openid`, one allowed `openid email`.
const CLAIMS_CLIENTS: &str = r#"
[[clients]]
id = "bare"
name = "Bare App"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["http://localhost:9981/callback"]
scopes = ["openid"]

[[clients]]
id = "mailer"
name = "Mailer App"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["http://localhost:9982/callback"]
scopes = ["openid", "email"]
"#;

async fn userinfo(app: &TestApp, access_token: &str) -> anyhow::Result<serde_json::Value> {
    let http = reqwest::Client::new();
    Ok(http.get(app.url("/userinfo")).bearer_auth(access_token).send().await?.json().await?)
}

/// Allows on the consent page the browser was sent to; returns the app's callback.
async fn allow(app: &TestApp, browser: &Browser, consent_url: &str) -> anyhow::Result<(String, String)> {
    let page = browser.get(consent_url).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    let allowed = browser
        .post_form(&app.url("/consent"), &[("attempt", &page.input("attempt")?), ("csrf", &page.input("csrf")?), ("decision", "allow")])
        .await?;
    Ok((page.body, allowed.redirect_to(&app.issuer)?))
}

#[tokio::test]
async fn f2_claims_parameter_never_bypasses_consent_or_client_scopes() -> anyhow::Result<()> {
    let app = spawn(AppOptions {
        extra: Some(CLAIMS_CLIENTS.replace("SECRET_HASH", &keyward_core::secret::hash_secret(SECRET))),
        ..Default::default()
    })
    .await?;
    let browser = Browser::new()?;
    let claims = r#"{"id_token":{"email":{"essential":true},"email_verified":null},"userinfo":{"email":null,"email_verified":null}}"#;

    // A client allowed only `openid`: the consent page does not mention email, and neither
    // the ID token nor userinfo carries it.
    let bare = "http://localhost:9981/callback";
    let flow = authorize(&app, "bare", bare, "openid", &[("claims", claims)]);
    let to_consent = sign_in(&app, &browser, &flow, "claims@example.com").await?;
    assert!(to_consent.starts_with(&app.url("/consent?attempt=")), "{to_consent}");
    let (page, callback) = allow(&app, &browser, &to_consent).await?;
    assert!(!page.contains("See your email address"), "the consent page offers nothing the app may not have:\n{page}");
    let (status, tokens) = exchange(&app, ("bare", Some(SECRET)), &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    assert!(id.get("email").is_none() && id.get("email_verified").is_none(), "ID token: {id}");
    let info = userinfo(&app, &s(&tokens, "access_token")?).await?;
    assert!(info.get("email").is_none() && info.get("email_verified").is_none(), "userinfo: {info}");
    // prompt=none (consent for openid given) still never adds the claim.
    let silent = authorize(&app, "bare", bare, "openid", &[("claims", claims), ("prompt", "none")]);
    let back = browser.get(&silent.url).await?.redirect_to(&app.issuer)?;
    let (status, tokens) = exchange(&app, ("bare", Some(SECRET)), &silent, &back).await?;
    assert_eq!(status, 200, "{tokens}");
    assert!(jwt_payload(&s(&tokens, "id_token")?)?.get("email").is_none());

    // A client allowed `email`, consented to `openid` only: asking for email through
    // `claims` with prompt=none needs consent; without prompt=none the page lists email,
    // and after the person allows it the claim is released.
    let mailer = "http://localhost:9982/callback";
    let flow = authorize(&app, "mailer", mailer, "openid", &[]);
    let (_, callback) = allow(&app, &browser, &browser.get(&flow.url).await?.redirect_to(&app.issuer)?).await?;
    let (status, tokens) = exchange(&app, ("mailer", Some(SECRET)), &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    assert!(jwt_payload(&s(&tokens, "id_token")?)?.get("email").is_none());
    let silent = authorize(&app, "mailer", mailer, "openid", &[("claims", claims), ("prompt", "none")]);
    let back = browser.get(&silent.url).await?.redirect_to(&app.issuer)?;
    assert_eq!(param(&back, "error")?, "consent_required", "{back}");
    let flow = authorize(&app, "mailer", mailer, "openid", &[("claims", claims)]);
    let (page, callback) = allow(&app, &browser, &browser.get(&flow.url).await?.redirect_to(&app.issuer)?).await?;
    assert!(page.contains("See your email address"), "{page}");
    let (status, tokens) = exchange(&app, ("mailer", Some(SECRET)), &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    assert_eq!(id["email"], "claims@example.com", "{id}");
    assert_eq!(userinfo(&app, &s(&tokens, "access_token")?).await?["email"], "claims@example.com");
    Ok(())
}

const LOOPBACK_CLIENT: &str = r#"
[[clients]]
id = "native"
name = "Native App"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["http://127.0.0.1:3000/callback"]
first_party = true
"#;

#[tokio::test]
async fn f18_loopback_redirect_uris_match_as_strings_and_never_500() -> anyhow::Result<()> {
    let app = spawn(AppOptions {
        extra: Some(LOOPBACK_CLIENT.replace("SECRET_HASH", &keyward_core::secret::hash_secret(SECRET))),
        ..Default::default()
    })
    .await?;
    let browser = Browser::new()?;
    let registered = "http://127.0.0.1:3000/callback";
    let bad = [
        "http://127.0.0.1:3000/callback\r\nSet-Cookie: x=1",
        "http://127.0.0.1:3000/callback\n",
        "http://127.0.0.1:3000/callback\0",
        "http://0x7f.1:3000\\callback",
        "http://127.0.0.1:3000\\callback",
        "http://127.0.0.1:3000/%63allback",
    ];
    let refused = |page: &keyward_testkit::browser::Page, uri: &str| {
        assert_eq!(page.status, 400, "{uri:?}: {}", page.body);
        assert!(page.location.is_none(), "no redirect for {uri:?}");
        assert!(page.body.contains("not registered"), "the page says why");
    };
    // Without a session: the error page, never a 500.
    for uri in bad {
        refused(&browser.get(&authorize(&app, "native", uri, "openid", &[]).url).await?, uri);
    }
    // With a session: still the page, and no code is issued for such a URI.
    let flow = authorize(&app, "native", registered, "openid", &[]);
    let callback = sign_in(&app, &browser, &flow, "native@example.com").await?;
    assert!(callback.starts_with(&format!("{registered}?code=")), "{callback}");
    for uri in bad {
        refused(&browser.get(&authorize(&app, "native", uri, "openid", &[]).url).await?, uri);
    }
    // RFC 8252 §7.3: another port on the loopback address is answered on that port.
    let other_port = authorize(&app, "native", "http://127.0.0.1:51004/callback", "openid", &[]);
    let back = browser.get(&other_port.url).await?.redirect_to(&app.issuer)?;
    assert!(back.starts_with("http://127.0.0.1:51004/callback?code="), "{back}");
    let (status, tokens) = exchange(&app, ("native", Some(SECRET)), &other_port, &back).await?;
    assert_eq!(status, 200, "{tokens}");
    Ok(())
}

const SIGNED_OUT: &str = "http://localhost:9999/signed-out";
const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

fn end_session_url(app: &TestApp, id_token: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", SIGNED_OUT)
        .finish();
    app.url(&format!("/end_session?{q}"))
}

/// Signs in with `offline_access`: (browser, first tokens).
async fn signed_in(app: &TestApp, email: &str) -> anyhow::Result<(Browser, serde_json::Value)> {
    let browser = Browser::new()?;
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[]);
    let callback = sign_in(app, &browser, &flow, email).await?;
    let (status, tokens) = exchange(app, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    Ok((browser, tokens))
}

/// A code for the signed-in browser (single sign-on), not yet redeemed: (flow, callback).
async fn sso_code(app: &TestApp, browser: &Browser) -> anyhow::Result<(Flow, String)> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[("prompt", "none")]);
    let callback = browser.get(&flow.url).await?.redirect_to(&app.issuer)?;
    assert!(param(&callback, "code").is_ok(), "{callback}");
    Ok((flow, callback))
}

async fn cli(app: &TestApp, args: &[&str]) {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--config").arg(app.config_path()).args(args).env_remove("KEYWARD_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("keyward runs")).await.expect("joined");
    app.clock.catch_up();
    assert!(out.status.success(), "keyward {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn invalid_grant(answer: &(u16, serde_json::Value)) -> bool {
    answer.0 == 400 && answer.1["error"] == "invalid_grant"
}

#[tokio::test]
async fn f9_codes_and_refresh_die_with_a_logged_out_session_or_a_disabled_user() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;

    // A code issued to a session that then logs out does not redeem.
    let (browser, tokens) = signed_in(&app, "leaver@example.com").await?;
    let (flow, callback) = sso_code(&app, &browser).await?;
    let out = browser.get(&end_session_url(&app, &s(&tokens, "id_token")?)).await?;
    assert_eq!(out.status, 302, "{}", out.body);
    let late = exchange(&app, APP, &flow, &callback).await?;
    assert!(invalid_grant(&late), "a code of a logged-out session: {late:?}");

    // Disabling an account: its unredeemed code does not redeem, its refresh tokens are
    // revoked (and stay revoked when it is enabled again).
    let (browser, tokens) = signed_in(&app, "gone@example.com").await?;
    let (flow, callback) = sso_code(&app, &browser).await?;
    cli(&app, &["users", "disable", "gone@example.com"]).await;
    let late = exchange(&app, APP, &flow, &callback).await?;
    assert!(invalid_grant(&late), "a code of a disabled account: {late:?}");
    let refreshed = refresh(&app, APP, &s(&tokens, "refresh_token")?).await?;
    assert!(invalid_grant(&refreshed), "{refreshed:?}");
    cli(&app, &["users", "enable", "gone@example.com"]).await;
    let refreshed = refresh(&app, APP, &s(&tokens, "refresh_token")?).await?;
    assert!(invalid_grant(&refreshed), "disabling revoked the refresh family: {refreshed:?}");
    assert_eq!(userinfo_status(&app, &s(&tokens, "access_token")?).await?, 401);
    Ok(())
}

#[tokio::test]
async fn f9_a_code_redeemed_while_its_session_logs_out_never_outlives_the_logout_on_postgres() -> anyhow::Result<()> {
    let app = spawn(AppOptions { database: Database::Postgres, ..Default::default() }).await?;
    for round in 0..4 {
        let (browser, tokens) = signed_in(&app, &format!("racer{round}@example.com")).await?;
        let id_token = s(&tokens, "id_token")?;
        let (a, b, c) = (sso_code(&app, &browser).await?, sso_code(&app, &browser).await?, sso_code(&app, &browser).await?);
        let logout = end_session_url(&app, &id_token);
        // The codes redeemed at once, while the session logs out.
        let (ra, rb, rc, out) = tokio::join!(
            exchange(&app, APP, &a.0, &a.1),
            exchange(&app, APP, &b.0, &b.1),
            exchange(&app, APP, &c.0, &c.1),
            browser.get(&logout)
        );
        assert_eq!(out?.status, 302);
        for answer in [ra?, rb?, rc?] {
            if answer.0 == 200 {
                // Redeemed before the logout: the logout revoked what it got.
                let after = refresh(&app, APP, &s(&answer.1, "refresh_token")?).await?;
                assert!(invalid_grant(&after), "a grant outlived its session's logout: {after:?}");
            } else {
                assert!(invalid_grant(&answer), "{answer:?}");
            }
        }
    }
    Ok(())
}

fn logout_token_claims(body: &str) -> anyhow::Result<serde_json::Value> {
    let token = form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned());
    jwt_payload(&token.unwrap_or_default())
}

#[tokio::test]
async fn f10_every_backchannel_logout_attempt_carries_a_fresh_logout_token() -> anyhow::Result<()> {
    let receiver = Receiver::start(vec![500, 200]).await?;
    let extra = format!("backchannel_logout_uri = \"http://127.0.0.1:{}/backchannel\"", receiver.port);
    let app = spawn(AppOptions { client_extra: Some(extra), ..Default::default() }).await?;
    let (browser, tokens) = signed_in(&app, "retry@example.com").await?;
    let page = browser.get(&app.url(&format!("/end_session?id_token_hint={}", s(&tokens, "id_token")?))).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    // The first attempt gets a 500; the worker retries when the row is due (2 s later).
    let bodies = receiver.wait_for_retry(&app, 2).await?;
    let (first, retry) = (logout_token_claims(&bodies[0])?, logout_token_claims(&bodies[1])?);
    assert_ne!(first["jti"], retry["jti"], "a new jti per attempt");
    let (iat1, iat2) = (first["iat"].as_i64().unwrap_or_default(), retry["iat"].as_i64().unwrap_or_default());
    assert!(iat2 >= iat1 + 2, "the retry's token is minted at the retry: {first} then {retry}");
    assert_eq!(retry["exp"].as_i64().unwrap_or_default(), iat2 + 120, "{retry}");
    assert_eq!((&retry["sub"], &retry["sid"], &retry["aud"]), (&first["sub"], &first["sid"], &first["aud"]));
    Ok(())
}

#[tokio::test]
async fn f23_an_over_long_id_token_hint_and_hidden_characters_in_emails_are_refused() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let long_hint = format!("eyJ{}", "A".repeat(8_200));

    // /authorize: invalid_request naming the parameter, on the verified redirect URI.
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("id_token_hint", &long_hint)]);
    let back = browser.get(&flow.url).await?.redirect_to(&app.issuer)?;
    assert!(back.starts_with(CLIENT_REDIRECT), "{back}");
    assert_eq!(param(&back, "error")?, "invalid_request");
    assert!(param(&back, "error_description")?.contains("id_token_hint"), "{back}");
    assert_eq!(param(&back, "state")?, flow.state);

    // /end_session: the error page.
    let page = browser.get(&app.url(&format!("/end_session?id_token_hint={long_hint}"))).await?;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.location.is_none() && page.body.contains("too long"), "{}", page.body);

    // Invisible or bidi control characters in an address: refused with a clear message, no mail.
    let (_, attempt, csrf) = open_login(&app, &browser, &authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]).url).await?;
    for email in ["a\u{202e}@example.com", "ad\u{200b}a@example.com", "\u{feff}ada@example.com"] {
        let sent = browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", email)]).await?;
        assert!(sent.status.is_client_error(), "{email:?}: {} {}", sent.status, sent.body);
        assert!(sent.body.contains("hidden characters"), "{email:?}: {}", sent.body);
    }
    assert!(app.smtp.messages().is_empty(), "nothing was mailed");
    Ok(())
}
