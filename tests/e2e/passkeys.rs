//! Passkeys over HTTP with webauthn-rs' software authenticator (CHECKLIST C): registration
//! for a signed-in person, username-less sign-in through an RP flow, `amr`, and refusals of
//! forged, stale, foreign or replayed ceremonies, one test per item. (The software authenticator
//! has no resident keys, so the test acts as the browser: it names the credential and puts
//! the user handle in the assertion, as a discoverable credential would.)

use crate::common::*;
use crate::passkey_steps::*;
use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::{AuthorizationCode, TokenResponse};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_rs_proto::{AllowCredentials, ResidentKeyRequirement, UserVerificationPolicy};

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
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    // Control: the owner's own handle signs in.
    let own = world.start_sign_in().await?;
    let answer = assertion(&mut authenticator, &world.origin, own.options_for(&passkey), &passkey)?;
    assert_eq!(world.finish_sign_in(&own, &answer).await?.0, 200);
    // A user handle that is not the credential's owner.
    let other = world.start_sign_in().await?;
    let mut answer = assertion(&mut authenticator, &world.origin, other.options_for(&passkey), &passkey)?;
    answer.response.user_handle = Some(uuid_bytes("00000000-0000-4000-8000-000000000000")?);
    assert_eq!(error_of(&world.finish_sign_in(&other, &answer).await?), NOT_ACCEPTED);
    Ok(())
}

fn uuid_bytes(s: &str) -> anyhow::Result<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    (0..hex.len()).step_by(2).map(|i| Ok(u8::from_str_radix(&hex[i..i + 2], 16)?)).collect()
}

// Negative ceremonies (CHECKLIST C). Every bad answer is refused with the same
// `passkey_not_accepted`; a challenge that is not live is `stale_challenge`.

#[tokio::test]
async fn r3_a_registration_from_another_origin_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r3@example.com").await?;
    let start = world.start_registration(&browser).await?;
    // The request itself comes from Keyward's origin; the client data names another.
    let credential = credential_from_origin(&mut SoftPasskey::new(true), EVIL_ORIGIN, start.for_soft_authenticator())?;
    let resp = world.finish_registration(&browser, &start.ceremony, &credential).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    assert_eq!(world.passkey_count(&browser).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a4_an_assertion_from_another_origin_is_refused() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    let sign_in = world.start_sign_in().await?;
    let assertion = assertion_from_origin(&mut authenticator, EVIL_ORIGIN, sign_in.options_for(&passkey), &passkey)?;
    let resp = world.finish_sign_in(&sign_in, &assertion).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    Ok(())
}

#[tokio::test]
async fn r2_an_expired_registration_challenge_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r2@example.com").await?;
    let start = world.start_registration(&browser).await?;
    let credential = SoftPasskey::new(true).do_registration(Url::parse(&world.origin)?, start.for_soft_authenticator())?;
    world.expire_ceremony(&start.ceremony, "register").await?;
    let resp = world.finish_registration(&browser, &start.ceremony, &credential).await?;
    assert_eq!(error_of(&resp), STALE_CHALLENGE, "{}", resp.1);
    assert_eq!(world.passkey_count(&browser).await?, 0);
    Ok(())
}

#[tokio::test]
async fn r2_a_registration_started_by_one_person_and_finished_by_another_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let alice = world.signed_in("alice@example.com").await?;
    let bob = world.signed_in("bob@example.com").await?;
    let start = world.start_registration(&alice).await?;
    let credential = SoftPasskey::new(true).do_registration(Url::parse(&world.origin)?, start.for_soft_authenticator())?;
    let resp = world.finish_registration(&bob, &start.ceremony, &credential).await?;
    assert_eq!(error_of(&resp), STALE_CHALLENGE, "{}", resp.1);
    assert_eq!((world.passkey_count(&alice).await?, world.passkey_count(&bob).await?), (0, 0));
    Ok(())
}

#[tokio::test]
async fn a4_an_expired_sign_in_challenge_is_refused() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    let sign_in = world.start_sign_in().await?;
    let assertion = assertion(&mut authenticator, &world.origin, sign_in.options_for(&passkey), &passkey)?;
    world.expire_ceremony(&sign_in.ceremony, "login").await?;
    let resp = world.finish_sign_in(&sign_in, &assertion).await?;
    assert_eq!(error_of(&resp), STALE_CHALLENGE, "{}", resp.1);
    Ok(())
}

#[tokio::test]
async fn r7_a_registration_without_user_verification_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r7@example.com").await?;
    let start = world.start_registration(&browser).await?;
    // `SoftPasskey::new(false)` does not pretend to verify the user: asked for `required` it
    // fails on the client, so it is asked with `discouraged` and answers with UP alone.
    let mut options = start.for_soft_authenticator();
    if let Some(s) = options.public_key.authenticator_selection.as_mut() {
        s.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    }
    let credential = SoftPasskey::new(false).do_registration(Url::parse(&world.origin)?, options)?;
    let resp = world.finish_registration(&browser, &start.ceremony, &credential).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    assert_eq!(world.passkey_count(&browser).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a5_an_assertion_without_user_verification_is_refused() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    let sign_in = world.start_sign_in().await?;
    // Asked with `discouraged`, the authenticator sets UP and leaves UV clear.
    let mut options = sign_in.options_for(&passkey);
    options.public_key.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let assertion = assertion(&mut authenticator, &world.origin, options, &passkey)?;
    let resp = world.finish_sign_in(&sign_in, &assertion).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    Ok(())
}

#[tokio::test]
async fn a7_a_flipped_signature_bit_is_refused_exactly_like_an_unknown_credential() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;

    let sign_in = world.start_sign_in().await?;
    let mut flipped = assertion(&mut authenticator, &world.origin, sign_in.options_for(&passkey), &passkey)?;
    *flipped.response.signature.last_mut().context("an empty signature")? ^= 0x01;
    let bad_signature = world.finish_sign_in(&sign_in, &flipped).await?;
    assert_eq!(error_of(&bad_signature), NOT_ACCEPTED, "{}", bad_signature.1);

    // No enumeration: a credential id Keyward never saw gets the very same answer.
    let sign_in = world.start_sign_in().await?;
    let mut unknown = assertion(&mut authenticator, &world.origin, sign_in.options_for(&passkey), &passkey)?;
    unknown.raw_id = rand::random::<[u8; 32]>().to_vec();
    unknown.id = URL_SAFE_NO_PAD.encode(&unknown.raw_id);
    let unknown_credential = world.finish_sign_in(&sign_in, &unknown).await?;
    assert_eq!(bad_signature, unknown_credential, "a bad signature and an unknown credential must be indistinguishable");
    Ok(())
}

#[tokio::test]
async fn r12_a_credential_already_registered_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let alice = world.signed_in("alice@example.com").await?;
    let start = world.start_registration(&alice).await?;
    let packed = SoftPasskey::new(true).do_registration(Url::parse(&world.origin)?, start.for_soft_authenticator())?;
    // Control: the credential presented through `same_credential_again` (a `none`
    // attestation) is accepted the first time, so the refusals below are about its id.
    let first = world.finish_registration(&alice, &start.ceremony, &same_credential_again(&packed, &start.options, &world.origin)?).await?;
    assert_eq!(first.0, 201, "{}", first.1);

    // The same person registers it again…
    let again = world.start_registration(&alice).await?;
    let resp = world.finish_registration(&alice, &again.ceremony, &same_credential_again(&packed, &again.options, &world.origin)?).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    // …and someone else claims it (the authenticator data carries no user handle).
    let bob = world.signed_in("bob@example.com").await?;
    let theirs = world.start_registration(&bob).await?;
    let resp = world.finish_registration(&bob, &theirs.ceremony, &same_credential_again(&packed, &theirs.options, &world.origin)?).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    assert_eq!((world.passkey_count(&alice).await?, world.passkey_count(&bob).await?), (1, 0));
    Ok(())
}

#[tokio::test]
async fn options_challenge_is_16_bytes_or_more_new_each_time_and_timeout_is_5_to_10_minutes() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("options@example.com").await?;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2 {
        let register = world.start_registration(&browser).await?.options.public_key;
        let sign_in = world.start_sign_in().await?.options.public_key;
        for (what, challenge, timeout) in
            [("registration", register.challenge, register.timeout), ("sign-in", sign_in.challenge, sign_in.timeout)]
        {
            assert!(challenge.len() >= 16, "{what} challenge of {} bytes", challenge.len());
            assert!(seen.insert(challenge), "a {what} challenge was issued twice");
            assert!(matches!(timeout, Some(300_000..=600_000)), "{what} timeout {timeout:?} ms is outside 300000..=600000");
        }
    }
    Ok(())
}

#[tokio::test]
async fn a8_an_assertion_with_a_lower_signature_counter_is_refused() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    // SoftPasskey cannot be cloned (its keys are private). A clone whose counter fell behind
    // is played by an assertion signed earlier (signCount 1) that arrives after a later one
    // (signCount 2) has signed in.
    let earlier = world.start_sign_in().await?;
    let from_the_clone = assertion(&mut authenticator, &world.origin, earlier.options_for(&passkey), &passkey)?;
    let later = world.start_sign_in().await?;
    let from_the_original = assertion(&mut authenticator, &world.origin, later.options_for(&passkey), &passkey)?;
    let (status, body) = world.finish_sign_in(&later, &from_the_original).await?;
    assert_eq!(status, 200, "{body}");

    let resp = world.finish_sign_in(&earlier, &from_the_clone).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "{}", resp.1);
    assert!(world.audit_kinds().await?.iter().any(|k| k == "passkey_counter_regression"), "the possible clone is in the audit log");
    Ok(())
}
