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
async fn a9_passkey_registration_then_username_less_sign_in_through_an_rp() -> anyhow::Result<()> {
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
async fn c_options_challenge_is_16_bytes_or_more_new_each_time_and_timeout_is_5_to_10_minutes() -> anyhow::Result<()> {
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

// Forged ceremonies (CHECKLIST R1, R4–R6, R8–R11, A6): the forging authenticator signs
// whatever a test asks for, so each refusal below is about the one thing changed; each test
// ends with the unchanged answer accepted (the control).

/// Keyward's RP ID: the issuer's host.
const RP_ID: &str = "localhost";
/// The flags a passkey that verified its user sets.
const GOOD: u8 = UP | UV;

fn create_data(world: &World, extra: serde_json::Value) -> impl FnOnce(&[u8]) -> Vec<u8> + '_ {
    move |challenge| client_data_with("webauthn.create", challenge, &world.origin, extra)
}

/// Opens a registration in `browser` and answers it with `forger`'s key: its authenticator
/// data for `rp_id` with `flags`, and the client data `client` makes for the challenge.
/// Returns Keyward's answer and the user handle of the ceremony.
async fn register_forged(
    world: &World,
    browser: &Browser,
    forger: &Forger,
    (rp_id, flags): (&str, u8),
    client: impl FnOnce(&[u8]) -> Vec<u8>,
) -> anyhow::Result<((u16, serde_json::Value), Vec<u8>)> {
    let start = world.start_registration(browser).await?;
    let credential = forger.registration(&forger.auth_data(rp_id, flags, true), &client(&start.options.public_key.challenge))?;
    Ok((world.finish_registration(browser, &start.ceremony, &credential).await?, start.options.public_key.user.id.to_vec()))
}

/// The control: a well-formed forged registration is accepted, so the refusals before it
/// were about what they changed. Ends with the number of passkeys the person has.
async fn control_registration(world: &World, browser: &Browser) -> anyhow::Result<usize> {
    let (resp, _) = register_forged(world, browser, &Forger::p256()?, (RP_ID, GOOD), create_data(world, serde_json::json!({}))).await?;
    assert_eq!(resp.0, 201, "the control registration: {}", resp.1);
    world.passkey_count(browser).await
}

/// Opens a sign-in in a fresh browser and answers it with `forger`: `flags`, and client
/// data of `type_` from Keyward's origin with `extra`.
async fn sign_in_forged(
    world: &World,
    forger: &mut Forger,
    user_handle: &[u8],
    flags: u8,
    extra: serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let sign_in = world.start_sign_in().await?;
    let client_data = client_data_with("webauthn.get", &sign_in.options.public_key.challenge, &world.origin, extra);
    let assertion = forger.assertion(RP_ID, flags, &client_data, user_handle)?;
    world.finish_sign_in(&sign_in, &assertion).await
}

#[tokio::test]
async fn r1_a_registration_whose_client_data_type_is_not_webauthn_create_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r1@example.com").await?;
    for type_ in ["webauthn.get", "payment.get", "webauthn.create ", ""] {
        let client = |c: &[u8]| client_data_with(type_, c, &world.origin, serde_json::json!({}));
        let (resp, _) = register_forged(&world, &browser, &Forger::p256()?, (RP_ID, GOOD), client).await?;
        assert_eq!(error_of(&resp), NOT_ACCEPTED, "type {type_:?}: {}", resp.1);
    }
    assert_eq!(control_registration(&world, &browser).await?, 1);
    Ok(())
}

#[tokio::test]
async fn r4_a4_cross_origin_or_top_origin_client_data_is_refused_at_registration_and_sign_in() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r4@example.com").await?;
    let framed = [
        serde_json::json!({ "crossOrigin": true }),
        serde_json::json!({ "crossOrigin": true, "topOrigin": EVIL_ORIGIN }),
        serde_json::json!({ "crossOrigin": false, "topOrigin": EVIL_ORIGIN }),
        serde_json::json!({ "topOrigin": EVIL_ORIGIN }),
    ];
    for extra in &framed {
        let (resp, _) = register_forged(&world, &browser, &Forger::p256()?, (RP_ID, GOOD), create_data(&world, extra.clone())).await?;
        assert_eq!(error_of(&resp), NOT_ACCEPTED, "registration with {extra}: {}", resp.1);
    }
    assert_eq!(control_registration(&world, &browser).await?, 1);

    // Sign-in (A4): a registered key answers from a frame.
    let mut forger = Forger::p256()?;
    let (resp, handle) = register_forged(&world, &browser, &forger, (RP_ID, GOOD), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(resp.0, 201, "{}", resp.1);
    for extra in framed {
        let resp = sign_in_forged(&world, &mut forger, &handle, GOOD, extra.clone()).await?;
        assert_eq!(error_of(&resp), NOT_ACCEPTED, "sign-in with {extra}: {}", resp.1);
    }
    let resp = sign_in_forged(&world, &mut forger, &handle, GOOD, serde_json::json!({ "crossOrigin": false })).await?;
    assert_eq!(resp.0, 200, "the control sign-in (crossOrigin false, no topOrigin): {}", resp.1);
    Ok(())
}

/// The same for confirming "it's you" before a sensitive change (issue 14, finding 4): a
/// framed assertion of the account's own passkey does not refresh the session.
#[tokio::test]
async fn r4_a4_a_confirmation_with_client_data_from_a_frame_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r4-confirm@example.com").await?;
    let mut forger = Forger::p256()?;
    let (resp, handle) = register_forged(&world, &browser, &forger, (RP_ID, GOOD), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(resp.0, 201, "{}", resp.1);
    crate::reauth::age_sessions(&world.app, 7).await?;
    let mut confirm = async |extra: serde_json::Value| -> anyhow::Result<(u16, serde_json::Value)> {
        let (status, body) = world.post(&browser, "/account/confirm/passkey/start", serde_json::json!({})).await?;
        anyhow::ensure!(status == 200, "confirmation start answered {status}: {body}");
        let options: RequestChallengeResponse = serde_json::from_value(body["options"].clone())?;
        let client_data = client_data_with("webauthn.get", &options.public_key.challenge, &world.origin, extra);
        let assertion = forger.assertion(RP_ID, GOOD, &client_data, &handle)?;
        let finish = serde_json::json!({ "ceremony": body["ceremony"], "credential": assertion, "next": "/account" });
        world.post(&browser, "/account/confirm/passkey/finish", finish).await
    };
    for extra in [serde_json::json!({ "topOrigin": EVIL_ORIGIN }), serde_json::json!({ "crossOrigin": true })] {
        let resp = confirm(extra.clone()).await?;
        assert_eq!(error_of(&resp), NOT_ACCEPTED, "confirmation with {extra}: {}", resp.1);
    }
    let resp = confirm(serde_json::json!({ "crossOrigin": false })).await?;
    assert_eq!(resp.0, 200, "the control confirmation: {}", resp.1);
    Ok(())
}

#[tokio::test]
async fn r5_a_registration_whose_rp_id_hash_is_another_rp_id_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r5@example.com").await?;
    for rp_id in ["evil.example", "localhost.evil.example", "example.com"] {
        let (resp, _) =
            register_forged(&world, &browser, &Forger::p256()?, (rp_id, GOOD), create_data(&world, serde_json::json!({}))).await?;
        assert_eq!(error_of(&resp), NOT_ACCEPTED, "rpIdHash of {rp_id}: {}", resp.1);
    }
    assert_eq!(control_registration(&world, &browser).await?, 1);
    Ok(())
}

#[tokio::test]
async fn r6_a_registration_without_user_presence_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r6@example.com").await?;
    let (resp, _) = register_forged(&world, &browser, &Forger::p256()?, (RP_ID, UV), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "UP clear: {}", resp.1);
    assert_eq!(control_registration(&world, &browser).await?, 1);
    Ok(())
}

#[tokio::test]
async fn r8_a_registration_backed_up_but_not_backup_eligible_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r8@example.com").await?;
    let (resp, _) =
        register_forged(&world, &browser, &Forger::p256()?, (RP_ID, GOOD | BS), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "BS without BE: {}", resp.1);
    // BS with BE (a synced passkey) is fine.
    let (resp, _) =
        register_forged(&world, &browser, &Forger::p256()?, (RP_ID, GOOD | BE | BS), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(resp.0, 201, "BE and BS: {}", resp.1);
    assert_eq!(control_registration(&world, &browser).await?, 2);
    Ok(())
}

#[tokio::test]
async fn r9_a_key_whose_alg_is_not_in_pub_key_cred_params_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r9@example.com").await?;
    let offered: Vec<i64> =
        world.start_registration(&browser).await?.options.public_key.pub_key_cred_params.iter().map(|p| p.alg).collect();
    assert!(offered.contains(&-7) && !offered.contains(&-36), "pubKeyCredParams {offered:?}");
    // A well-formed ES512 (P-521) key, which the options did not offer.
    let (resp, _) = register_forged(&world, &browser, &Forger::p521()?, (RP_ID, GOOD), create_data(&world, serde_json::json!({}))).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "ES512: {}", resp.1);
    assert_eq!(control_registration(&world, &browser).await?, 1);
    Ok(())
}

#[tokio::test]
async fn r10_options_ask_for_no_attestation_and_a_bad_attestation_statement_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r10@example.com").await?;
    let mut authenticator = SoftPasskey::new(true);
    let start = world.start_registration(&browser).await?;
    let options = serde_json::to_value(&start.options)?;
    assert_eq!(options["publicKey"]["attestation"], "none", "passkeys ask for no attestation: {options}");
    // A packed self-attestation whose signature has one bit flipped.
    let mut credential = authenticator.do_registration(Url::parse(&world.origin)?, start.for_soft_authenticator())?;
    flip_packed_signature_bit(&mut credential.response.attestation_object)?;
    let resp = world.finish_registration(&browser, &start.ceremony, &credential).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "a bad packed signature: {}", resp.1);
    assert_eq!(world.passkey_count(&browser).await?, 0);
    // Control: the same authenticator's unchanged packed attestation.
    world.register(&browser, &mut authenticator).await?;
    assert_eq!(world.passkey_count(&browser).await?, 1);
    Ok(())
}

/// Flips the last bit of the `sig` of a packed attestation statement.
fn flip_packed_signature_bit(attestation_object: &mut [u8]) -> anyhow::Result<()> {
    let key = b"\x63sig";
    let at = attestation_object.windows(key.len()).position(|w| w == key).context("no sig in the attestation statement")? + key.len();
    let (&[0x58, len], _) = attestation_object[at..].split_at(2) else { anyhow::bail!("sig is not a short byte string") };
    *attestation_object.get_mut(at + 1 + usize::from(len)).context("sig is cut short")? ^= 0x01;
    Ok(())
}

#[tokio::test]
async fn r11_a_credential_id_over_1023_bytes_is_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("r11@example.com").await?;
    for (len, accepted) in [(1024, false), (4096, false), (1023, true)] {
        let mut forger = Forger::p256()?;
        forger.cred_id = (0..len).map(|i| (i % 251) as u8).collect();
        let (resp, _) = register_forged(&world, &browser, &forger, (RP_ID, GOOD), create_data(&world, serde_json::json!({}))).await?;
        if accepted {
            assert_eq!(resp.0, 201, "a {len}-byte credential id: {}", resp.1);
        } else {
            assert_eq!(error_of(&resp), NOT_ACCEPTED, "a {len}-byte credential id: {}", resp.1);
        }
    }
    assert_eq!(world.passkey_count(&browser).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a6_backup_flags_on_sign_in_must_agree_with_the_registered_credential() -> anyhow::Result<()> {
    let world = World::start().await?;
    let browser = world.signed_in("a6@example.com").await?;
    let no_extra = || serde_json::json!({});
    // A device-bound passkey (BE clear) that claims to be backed up (BS without BE).
    let mut bound = Forger::p256()?;
    let (resp, bound_handle) = register_forged(&world, &browser, &bound, (RP_ID, GOOD), create_data(&world, no_extra())).await?;
    assert_eq!(resp.0, 201, "{}", resp.1);
    let resp = sign_in_forged(&world, &mut bound, &bound_handle, GOOD | BS, no_extra()).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "BS without BE: {}", resp.1);
    // A synced passkey (BE set at registration) that is suddenly not backup-eligible.
    let mut synced = Forger::p256()?;
    let (resp, synced_handle) =
        register_forged(&world, &browser, &synced, (RP_ID, GOOD | BE | BS), create_data(&world, no_extra())).await?;
    assert_eq!(resp.0, 201, "{}", resp.1);
    let resp = sign_in_forged(&world, &mut synced, &synced_handle, GOOD, no_extra()).await?;
    assert_eq!(error_of(&resp), NOT_ACCEPTED, "BE dropped: {}", resp.1);
    // Controls: flags that agree with the registration sign in.
    assert_eq!(sign_in_forged(&world, &mut bound, &bound_handle, GOOD, no_extra()).await?.0, 200);
    assert_eq!(sign_in_forged(&world, &mut synced, &synced_handle, GOOD | BE | BS, no_extra()).await?.0, 200);
    assert_eq!(sign_in_forged(&world, &mut synced, &synced_handle, GOOD | BE, no_extra()).await?.0, 200, "BS may change");
    Ok(())
}

#[tokio::test]
async fn i15_a_passkey_body_that_is_not_json_answers_the_json_api_error_shape() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let url = app.url("/login/passkey/start");
    let malformed =
        browser.http.post(&url).header("Origin", &app.issuer).header("Content-Type", "application/json").body("{not json").send().await?;
    assert_eq!(malformed.status().as_u16(), 400);
    assert_eq!(malformed.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body: serde_json::Value = malformed.json().await?;
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");

    let wrong_type = browser.http.post(&url).header("Origin", &app.issuer).header("Content-Type", "text/plain").body("{}").send().await?;
    assert_eq!(wrong_type.status().as_u16(), 400);
    let body: serde_json::Value = wrong_type.json().await?;
    assert_eq!(body["error"], "invalid_request", "{body}");
    Ok(())
}
