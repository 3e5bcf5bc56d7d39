//! Real-browser tests: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/`), against the real binary.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, link_in};
use openidconnect::{AuthorizationCode, TokenResponse};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn cross_device_waiting_page_in_chromium_continues_by_itself() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let email = "laptop-and-phone@example.com";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/waiting_browser.mjs");
    let mut node = tokio::process::Command::new("node")
        .args([script, &req.url, email, CLIENT_REDIRECT])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut next = async || -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??;
        Ok(serde_json::from_str(&line.unwrap_or_default())?)
    };
    let number = next().await?["number"].as_str().unwrap_or_default().to_owned();
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
    let done = next().await?;
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
    assert!(node.wait().await?.success());
    Ok(())
}
