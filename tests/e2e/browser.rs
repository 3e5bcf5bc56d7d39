//! Real-browser tests: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/`), against the real binary.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, link_in};
use openidconnect::{AuthorizationCode, TokenResponse};
use std::time::Duration;

#[tokio::test]
async fn cross_device_waiting_page_in_chromium_continues_by_itself() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let email = "laptop-and-phone@example.com";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/waiting_browser.mjs");
    let mut journey = Journey::start(script, &[&req.url, email, CLIENT_REDIRECT])?;
    let number = journey.next().await?["number"].as_str().unwrap_or_default().to_owned();
    assert_eq!(number.len(), 2, "the waiting page shows a two-digit number");

    // The phone: opens the link from the email and types the number.
    let mail = app.smtp.wait_for_mail_to(email, 0, Duration::from_secs(15)).await?;
    let phone = Browser::new()?;
    let page = phone.get(&link_in(&mail.text)?).await?;
    let approved = phone
        .post_form(&app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?), ("number", &number)])
        .await?;
    assert_eq!(approved.status, 200, "{}", approved.body);

    // The laptop's page noticed and went on to the app by itself.
    let done = journey.next().await?;
    assert_eq!(done["errors"], serde_json::json!([]), "no script or CSP errors in the page");
    let callback = done["callback"].as_str().unwrap_or_default().to_owned();
    assert!(callback.starts_with(CLIENT_REDIRECT), "{callback}");
    assert_eq!(param(&callback, "state")?, req.state);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&callback, "code")?))?
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http()?)
        .await?;
    let claims = tokens.id_token().expect("an ID token").claims(&rp.id_token_verifier(), &req.nonce)?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    assert!(journey.finish().await?, "the script ran to its end");
    Ok(())
}

/// Issue 4's journey: email sign-in, add a passkey, sign out, passkey autofill signs in.
#[tokio::test]
async fn passkey_journey_in_chromium_with_a_virtual_authenticator() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (req1, req2) = (auth_request(&rp), auth_request(&rp));
    let email = "chromium-passkey@example.com";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/passkey_journey.mjs");
    let mut journey = Journey::start(script, &[&req1.url, &req2.url, email, CLIENT_REDIRECT, &app.url("/account")])?;
    assert_eq!(journey.next().await?["step"], "code");
    let mail = app.smtp.wait_for_mail_to(email, 0, Duration::from_secs(15)).await?;
    let code = keyward_testkit::browser::code_in(&mail.text)?;
    journey.send(format!("{code}\n").as_bytes()).await?;
    assert_eq!(journey.next().await?["recovery_codes"], 10, "the first passkey comes with ten recovery codes");
    let first = journey.next().await?["callback1"].as_str().unwrap_or_default().to_owned();
    assert_eq!(param(&first, "state")?, req1.state);
    assert_eq!(journey.next().await?["passkeys"], 1, "the account page lists the new passkey");

    let done = journey.next().await?;
    assert_eq!(done["errors"], serde_json::json!([]), "no script or CSP errors");
    let second = done["callback2"].as_str().unwrap_or_default().to_owned();
    assert_eq!(param(&second, "state")?, req2.state);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&second, "code")?))?
        .set_pkce_verifier(req2.verifier)
        .request_async(&rp_http()?)
        .await?;
    let claims = tokens.id_token().expect("an ID token").claims(&rp.id_token_verifier(), &req2.nonce)?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    let amr: Vec<String> = claims.auth_method_refs().expect("amr").iter().map(|a| a.to_string()).collect();
    assert!(amr.contains(&"user".to_string()), "signed in with the passkey, not email: {amr:?}");
    assert!(journey.finish().await?, "the script ran to its end");
    Ok(())
}
