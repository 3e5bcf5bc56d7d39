//! Passkeys over HTTP with webauthn-rs' software authenticator (CHECKLIST C): registration
//! for a signed-in person, username-less sign-in through an RP flow, `amr`, and refusals of
//! a replayed assertion, a stale challenge and a wrong origin. (The software authenticator
//! has no resident keys, so the test acts as the browser: it names the credential and puts
//! the user handle in the assertion, as a discoverable credential would.)

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::{AuthorizationCode, TokenResponse};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_rs_proto::{AllowCredentials, ResidentKeyRequirement, UserVerificationPolicy};

async fn post_json(browser: &Browser, url: &str, origin: &str, body: serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
    let resp = browser.http.post(url).header("Origin", origin).json(&body).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or_default()))
}

#[tokio::test]
async fn passkey_registration_then_username_less_sign_in_through_an_rp() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let origin = app.issuer.clone();
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let http = rp_http()?;

    // First sign-in by email; the ID token's sub is the WebAuthn user handle.
    let laptop = Browser::new()?;
    let req = auth_request(&rp);
    let callback = sign_in_by_email(&app, &laptop, &req.url, "passkey-user@example.com").await?;
    let tokens =
        rp.exchange_code(AuthorizationCode::new(param(&callback, "code")?))?.set_pkce_verifier(req.verifier).request_async(&http).await?;
    let sub = tokens.id_token().expect("id token").claims(&rp.id_token_verifier(), &req.nonce)?.subject().as_str().to_owned();

    // Register a passkey.
    let (status, start) = post_json(&laptop, &app.url("/account/passkeys/register/start"), &origin, serde_json::json!({})).await?;
    assert_eq!(status, 200, "{start}");
    let mut ccr: CreationChallengeResponse = serde_json::from_value(start["options"].clone())?;
    let sel = ccr.public_key.authenticator_selection.clone().expect("authenticator selection");
    assert_eq!(sel.resident_key, Some(ResidentKeyRequirement::Required), "discoverable credentials are required");
    assert_eq!(sel.user_verification, UserVerificationPolicy::Required);
    assert_ne!(ccr.public_key.user.id.as_ref() as &[u8], b"passkey-user@example.com", "the user handle is not the email");
    assert!(ccr.public_key.challenge.len() >= 16);
    // The software authenticator cannot make resident keys; let it make a plain one.
    if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
        s.resident_key = Some(ResidentKeyRequirement::Discouraged);
        s.require_resident_key = false;
    }
    let mut authenticator = SoftPasskey::new(true);
    let credential = authenticator.do_registration(Url::parse(&origin)?, ccr)?;
    let cred_id = credential.raw_id.clone();
    let (status, created) = post_json(
        &laptop,
        &app.url("/account/passkeys/register/finish"),
        &origin,
        serde_json::json!({ "ceremony": start["ceremony"], "credential": credential, "name": "Test key" }),
    )
    .await?;
    assert_eq!(status, 201, "{created}");
    let list: serde_json::Value = laptop.http.get(app.url("/account/passkeys")).send().await?.json().await?;
    assert_eq!(list[0]["name"], "Test key");

    // A new browser signs in with the passkey: no email typed.
    let phone = Browser::new()?;
    let req = auth_request(&rp);
    let (_, attempt, _) = open_login(&app, &phone, &req.url).await?;
    let (status, start) = post_json(&phone, &app.url("/login/passkey/start"), &origin, serde_json::json!({ "attempt": attempt })).await?;
    assert_eq!(status, 200, "{start}");
    let mut rcr: RequestChallengeResponse = serde_json::from_value(start["options"].clone())?;
    assert!(rcr.public_key.allow_credentials.is_empty(), "discoverable: the server names no account");
    rcr.public_key.allow_credentials = vec![AllowCredentials { type_: "public-key".into(), id: cred_id.clone(), transports: None }];
    let mut assertion = authenticator.do_authentication(Url::parse(&origin)?, rcr)?;
    let handle = uuid_bytes(&sub)?;
    assertion.response.user_handle = Some(handle.clone());
    let finish = serde_json::json!({ "attempt": attempt, "ceremony": start["ceremony"], "credential": assertion });

    // Wrong origin: refused before anything is checked.
    let (status, body) = post_json(&phone, &app.url("/login/passkey/finish"), "https://evil.example", finish.clone()).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_origin")));

    let (status, done) = post_json(&phone, &app.url("/login/passkey/finish"), &origin, finish.clone()).await?;
    assert_eq!(status, 200, "{done}");
    let callback = done["redirect"].as_str().unwrap_or_default().to_owned();
    assert_eq!(param(&callback, "state")?, req.state);
    let tokens =
        rp.exchange_code(AuthorizationCode::new(param(&callback, "code")?))?.set_pkce_verifier(req.verifier).request_async(&http).await?;
    let claims = tokens.id_token().expect("id token").claims(&rp.id_token_verifier(), &req.nonce)?;
    assert_eq!(claims.subject().as_str(), sub, "the passkey signs in its owner");
    let amr: Vec<String> = claims.auth_method_refs().expect("amr").iter().map(|a| a.to_string()).collect();
    assert!(amr.contains(&"user".to_string()) && (amr.contains(&"hwk".to_string()) || amr.contains(&"swk".to_string())), "{amr:?}");

    // A9: the same assertion again is refused (its challenge was used).
    let (status, body) = post_json(&phone, &app.url("/login/passkey/finish"), &origin, finish).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("stale_challenge")));
    Ok(())
}

#[tokio::test]
async fn a2_an_assertion_naming_another_account_is_refused() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let origin = app.issuer.clone();
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let owner = Browser::new()?;
    sign_in_by_email(&app, &owner, &auth_request(&rp).url, "owner@example.com").await?;
    let (_, start) = post_json(&owner, &app.url("/account/passkeys/register/start"), &origin, serde_json::json!({})).await?;
    let mut ccr: CreationChallengeResponse = serde_json::from_value(start["options"].clone())?;
    if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
        s.resident_key = Some(ResidentKeyRequirement::Discouraged);
        s.require_resident_key = false;
    }
    let mut authenticator = SoftPasskey::new(true);
    let credential = authenticator.do_registration(Url::parse(&origin)?, ccr)?;
    let cred_id = credential.raw_id.clone();
    let (status, _) = post_json(
        &owner,
        &app.url("/account/passkeys/register/finish"),
        &origin,
        serde_json::json!({ "ceremony": start["ceremony"], "credential": credential }),
    )
    .await?;
    assert_eq!(status, 201);

    let other = Browser::new()?;
    let (_, attempt, _) = open_login(&app, &other, &auth_request(&rp).url).await?;
    let (_, start) = post_json(&other, &app.url("/login/passkey/start"), &origin, serde_json::json!({ "attempt": attempt })).await?;
    let mut rcr: RequestChallengeResponse = serde_json::from_value(start["options"].clone())?;
    rcr.public_key.allow_credentials = vec![AllowCredentials { type_: "public-key".into(), id: cred_id, transports: None }];
    let mut assertion = authenticator.do_authentication(Url::parse(&origin)?, rcr)?;
    // A user handle that is not the credential's owner.
    assertion.response.user_handle = Some(uuid_bytes("00000000-0000-4000-8000-000000000000")?);
    let (status, body) = post_json(
        &other,
        &app.url("/login/passkey/finish"),
        &origin,
        serde_json::json!({ "attempt": attempt, "ceremony": start["ceremony"], "credential": assertion }),
    )
    .await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("passkey_not_accepted")));
    Ok(())
}

fn uuid_bytes(s: &str) -> anyhow::Result<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    (0..hex.len()).step_by(2).map(|i| Ok(u8::from_str_radix(&hex[i..i + 2], 16)?)).collect()
}
