//! Signing-key rotation (CHECKLIST F6, OIDC Core §10.1.1): `keyward keys rotate` publishes the
//! next key before it signs, the running server picks it up from the database, and tokens
//! signed before and after the switch both validate against the JWKS; EdDSA ID tokens for
//! clients that ask for them.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::CoreJwsSigningAlgorithm as Alg;
use std::time::{Duration, Instant};

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

async fn jwks_kids(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await?.json().await?;
    Ok(jwks["keys"].as_array().cloned().unwrap_or_default().iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect())
}

/// A fresh RS256 ID token through the live session.
async fn id_token(app: &TestApp, browser: &Browser) -> anyhow::Result<(String, String)> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let callback = browser.get(&flow.url).await?.redirect_to(&app.issuer)?;
    let (status, tokens) = exchange(app, APP, &flow, &callback).await?;
    anyhow::ensure!(status == 200, "{tokens}");
    Ok((s(&tokens, "id_token")?, flow.nonce))
}

fn kid(jwt: &str) -> String {
    jwt_header(jwt).ok().and_then(|h| h["kid"].as_str().map(str::to_owned)).unwrap_or_default()
}

#[tokio::test]
async fn f6_keys_rotate_mid_way_published_before_use_and_every_token_still_validates() -> anyhow::Result<()> {
    let app = spawn(AppOptions { keys: Some("publish_ahead_seconds = 4\nreload_seconds = 1\n".into()), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let callback = sign_in(&app, &browser, &flow, "rotate@example.com").await?;
    let (_, first) = exchange(&app, APP, &flow, &callback).await?;
    let (before, before_nonce) = (s(&first, "id_token")?, flow.nonce.clone());
    let old_kid = kid(&before);

    let started = Instant::now();
    let out = std::process::Command::new(bin())
        .args(["--config"])
        .arg(app.config_path())
        .args(["keys", "rotate", "--alg", "RS256", "--json"])
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The CLI dated the new key by the wall clock.
    app.clock.catch_up();
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let new_kid = rotated[0]["kid"].as_str().expect("a new kid").to_owned();
    assert_ne!(new_kid, old_kid);

    // Published first: the running server shows the new key within a reload (polled)…
    while !jwks_kids(&app).await?.contains(&new_kid) {
        assert!(started.elapsed() < Duration::from_secs(3), "the new key was not published within a reload");
        tokio::time::sleep(Duration::from_millis(100)).await; // poll: the key reload runs every reload_seconds
    }
    // …while it still signs with the old one (the app's clock has not reached its time).
    let (during, during_nonce) = id_token(&app, &browser).await?;
    assert_eq!(kid(&during), old_kid, "a published key does not sign before its time");

    // After the switch: the new key signs, the old one stays published.
    app.clock.advance(Duration::from_secs(5));
    let (after, after_nonce) = id_token(&app, &browser).await?;
    assert_eq!(kid(&after), new_kid, "the new key signs after publish_ahead_seconds");
    let kids = jwks_kids(&app).await?;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "both keys are in the JWKS: {kids:?}");

    // A relying party with a fresh JWKS validates tokens from before, during and after.
    for (token, nonce) in [(&before, &before_nonce), (&during, &during_nonce), (&after, &after_nonce)] {
        id_token_claims(&app, APP, CLIENT_REDIRECT, token, Some(nonce), Alg::RsaSsaPkcs1V15Sha256).await?;
    }

    let list = std::process::Command::new(bin()).args(["--config"]).arg(app.config_path()).args(["keys", "list", "--json"]).output()?;
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout)?;
    // The CLI labels states by the wall clock; the schedule it lists is what the app followed
    // on its own clock: the new key signs now, the old one is retired but still published.
    let row = |k: &str| keys.as_array().unwrap().iter().find(|r| r["kid"] == k).cloned().expect("listed");
    let (new, old, now) = (row(&new_kid), row(&old_kid), app.clock.unix());
    assert!(new["activates_at"].as_i64().is_some_and(|t| t <= now) && new["retired_at"].is_null(), "signing: {new}");
    assert!(old["retired_at"].as_i64().is_some_and(|t| t <= now), "retired: {old}");
    assert!(old["unpublish_at"].as_i64().is_some_and(|t| t > now), "still verifies: {old}");
    Ok(())
}

#[tokio::test]
async fn eddsa_id_tokens_for_clients_that_ask_for_them_validate_with_the_rp_library() -> anyhow::Result<()> {
    let app = spawn(AppOptions { client_extra: Some("id_token_signing_alg = \"EdDSA\"".into()), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid email", &[]);
    let callback = sign_in(&app, &browser, &flow, "ed@example.com").await?;
    let (status, tokens) = exchange(&app, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    let token = s(&tokens, "id_token")?;
    assert_eq!(jwt_header(&token)?["alg"], "EdDSA");
    let claims = id_token_claims(&app, APP, CLIENT_REDIRECT, &token, Some(&flow.nonce), Alg::EdDsa).await?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ed@example.com"));
    Ok(())
}
