//! Issue 14, finding 4: confirming "it's you" with one of the account's own passkeys (user
//! verification required), also when email sign-in is off, over HTTP with webauthn-rs'
//! software authenticator.

use crate::passkey_steps::*;
use crate::reauth::age_sessions;
use keyward_testkit::browser::Browser;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{RequestChallengeResponse, Url};
use webauthn_rs_proto::AllowCredentials;

/// Opens a passkey confirmation in `browser`: (ceremony, options).
async fn start(world: &World, browser: &Browser) -> anyhow::Result<(String, RequestChallengeResponse)> {
    let (status, body) = world.post(browser, "/account/confirm/passkey/start", serde_json::json!({})).await?;
    anyhow::ensure!(status == 200, "confirmation start answered {status}: {body}");
    Ok((body["ceremony"].as_str().unwrap_or_default().to_owned(), serde_json::from_value(body["options"].clone())?))
}

async fn finish(
    world: &World,
    browser: &Browser,
    ceremony: &str,
    assertion: &webauthn_rs::prelude::PublicKeyCredential,
    next: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    world
        .post(
            browser,
            "/account/confirm/passkey/finish",
            serde_json::json!({ "ceremony": ceremony, "credential": assertion, "next": next }),
        )
        .await
}

/// The assertion a browser makes for `options` with `passkey` (the allow list is the server's).
fn sign(
    authenticator: &mut SoftPasskey,
    origin: &str,
    options: RequestChallengeResponse,
) -> anyhow::Result<webauthn_rs::prelude::PublicKeyCredential> {
    Ok(authenticator.do_authentication(Url::parse(origin)?, options)?)
}

#[tokio::test]
async fn f4_a_passkey_of_the_account_confirms_it_is_you_even_with_email_sign_in_off() -> anyhow::Result<()> {
    let world = World::start().await?;
    let owner = world.signed_in("owner@example.com").await?;
    let mut authenticator = SoftPasskey::new(true);
    let passkey = world.register(&owner, &mut authenticator).await?;
    let csrf = owner.get(&world.app.url("/account")).await?.input("csrf")?;
    let off = owner.post_form(&world.app.url("/account/email-sign-in"), &[("csrf", &csrf), ("on", "no")]).await?;
    assert_eq!(off.location.as_deref(), Some("/account?done=email_off"), "{}", off.body);
    // Someone else with a passkey of their own.
    let other = world.signed_in("other@example.com").await?;
    let mut other_authenticator = SoftPasskey::new(true);
    let other_passkey = world.register(&other, &mut other_authenticator).await?;
    age_sessions(&world.app, 7).await?;

    // Stale: adding a passkey asks to confirm; the page offers the passkey (email is off).
    let (status, body) = world.post(&owner, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "{body}");
    let page = owner.get(&world.app.url(body["confirm_url"].as_str().unwrap_or_default())).await?;
    assert!(
        page.body.contains("Confirm with a passkey") && page.body.contains(r#"data-next="&#x2F;account?resume=add-passkey""#),
        "{}",
        page.body
    );
    let emailed = owner.post_form(&world.app.url("/account/confirm/email"), &[("csrf", &csrf)]).await?;
    assert_eq!(emailed.status, 422, "no code while email sign-in is off");

    // The challenge names only the owner's passkey and requires user verification.
    let (ceremony, options) = start(&world, &owner).await?;
    let allowed: Vec<_> = options.public_key.allow_credentials.iter().map(|c| c.id.clone()).collect();
    assert_eq!(allowed, vec![passkey.credential.raw_id.clone()]);
    assert_eq!(serde_json::to_value(options.public_key.user_verification)?, "required");

    // Another account's passkey does not confirm the owner's session.
    let mut forged = options.clone();
    forged.public_key.allow_credentials =
        vec![AllowCredentials { type_: "public-key".into(), id: other_passkey.credential.raw_id.clone(), transports: None }];
    let foreign = sign(&mut other_authenticator, &world.origin, forged)?;
    assert_eq!(error_of(&finish(&world, &owner, &ceremony, &foreign, "/account").await?), NOT_ACCEPTED);
    // The ceremony was used up by that try; a ceremony of another session does not count either.
    let assertion = sign(&mut authenticator, &world.origin, options.clone())?;
    assert_eq!(error_of(&finish(&world, &owner, &ceremony, &assertion, "/account").await?), STALE_CHALLENGE);
    let (other_ceremony, other_options) = start(&world, &other).await?;
    let mut swapped = other_options.clone();
    swapped.public_key.allow_credentials = options.public_key.allow_credentials.clone();
    let assertion = sign(&mut authenticator, &world.origin, swapped)?;
    assert_eq!(error_of(&finish(&world, &owner, &other_ceremony, &assertion, "/account").await?), STALE_CHALLENGE);
    let (status, _) = world.post(&owner, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!(status, 403, "still not confirmed");

    // The owner's own passkey confirms, and the browser goes back to adding a passkey.
    let (ceremony, options) = start(&world, &owner).await?;
    let assertion = sign(&mut authenticator, &world.origin, options)?;
    let (status, body) = finish(&world, &owner, &ceremony, &assertion, "/account?resume=add-passkey").await?;
    assert_eq!((status, body["redirect"].as_str()), (200, Some("/account?resume=add-passkey&done=confirmed")), "{body}");
    assert_eq!(error_of(&finish(&world, &owner, &ceremony, &assertion, "/account").await?), STALE_CHALLENGE, "single use");
    let mut second = SoftPasskey::new(true);
    world.register(&owner, &mut second).await?;
    assert_eq!(world.passkey_count(&owner).await?, 2, "the change went through");
    let (status, _) = world.post(&other, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!(status, 403, "the other account's session is still old");
    assert!(world.audit_kinds().await?.iter().any(|k| k == "reauthenticated"));
    // Without a session there is nothing to confirm.
    let (status, body) = world.post(&Browser::new()?, "/account/confirm/passkey/start", serde_json::json!({})).await?;
    assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")));
    let (status, body) = post_json(&owner, &world.app.url("/account/confirm/passkey/start"), EVIL_ORIGIN, serde_json::json!({})).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_origin")));
    Ok(())
}
