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
