//! The account side of passkeys over HTTP: recovery codes (ten with the first passkey,
//! single use, announced by email, regenerable), managing passkeys by form and by JSON
//! (rename, remove; the last one only with confirmation and while email sign-in is on),
//! the "sign in faster next time" offer, `acr_values` that only a passkey satisfies, the
//! audit log and the Prometheus counters.

use crate::common::*;
use crate::passkey_steps::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthenticationContextClass, CsrfToken, Nonce, PkceCodeChallenge, Scope};
use std::time::Duration;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::Url;

/// Waits until a received mail contains `text` (notices are sent off the request path).
async fn wait_for_text(world: &World, text: &str) -> anyhow::Result<()> {
    for _ in 0..150 {
        if world.app.smtp.messages().iter().any(|m| m.text.contains(text)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll: a notice arrives at the sink
    }
    anyhow::bail!("no mail says {text:?}")
}

/// Registers a passkey and returns Keyward's answer (which carries the recovery codes).
async fn register_with_answer(world: &World, browser: &Browser, authenticator: &mut SoftPasskey) -> anyhow::Result<serde_json::Value> {
    let start = world.start_registration(browser).await?;
    let credential = authenticator.do_registration(Url::parse(&world.origin)?, start.for_soft_authenticator())?;
    let (status, body) = world.finish_registration(browser, &start.ceremony, &credential).await?;
    assert_eq!(status, 201, "{body}");
    Ok(body)
}

/// A form page's CSRF token, for a browser that has one.
async fn account_csrf(world: &World, browser: &Browser) -> anyhow::Result<String> {
    browser.get(&world.app.url("/account")).await?.input("csrf")
}

/// Signs in with a recovery code through the RP in a fresh browser; the login page answer.
async fn recovery_sign_in(world: &World, email: &str, code: &str) -> anyhow::Result<(keyward_testkit::browser::Page, AuthRequest)> {
    let browser = Browser::new()?;
    let req = auth_request(&world.rp);
    let (_, attempt, _) = open_login(&world.app, &browser, &req.url).await?;
    let page = browser.get(&world.app.url(&format!("/login/recovery?attempt={attempt}"))).await?;
    assert_eq!(page.status, 200);
    let csrf = page.input("csrf")?;
    let done = browser
        .post_form(&world.app.url("/login/recovery"), &[("attempt", &attempt), ("csrf", &csrf), ("email", email), ("code", code)])
        .await?;
    Ok((done, req))
}

#[tokio::test]
async fn d12_recovery_codes_come_with_the_first_passkey_sign_in_once_are_announced_and_regenerate() -> anyhow::Result<()> {
    let world = World::start().await?;
    let email = "recover@example.com";
    let owner = world.signed_in(email).await?;
    let first = register_with_answer(&world, &owner, &mut SoftPasskey::new(true)).await?;
    let codes: Vec<String> = serde_json::from_value(first["recovery_codes"].clone())?;
    assert_eq!(codes.len(), 10, "{first}");
    assert!(codes.iter().all(|c| c.len() == 19 && c.matches('-').count() == 3), "{codes:?}");
    let second = register_with_answer(&world, &owner, &mut SoftPasskey::new(true)).await?;
    assert!(second["recovery_codes"].is_null(), "only the first passkey makes codes: {second}");
    let added = world.app.smtp.wait_for_mail_to(email, 1, Duration::from_secs(15)).await?;
    assert!(added.text.contains("was added to your account"), "{}", added.text);

    // A code signs in once, typed the way people type (lower case, no dashes)...
    let typed = codes[3].replace('-', "").to_lowercase();
    let (done, req) = recovery_sign_in(&world, email, &typed).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    let callback = done.redirect_to(&world.app.issuer)?;
    let claims = redeem(&world.rp, &callback, req).await?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    wait_for_text(&world, "signed in to your account with a recovery code. 9 recovery codes are left").await?;
    // ...and never again; nor for another address.
    let (again, _) = recovery_sign_in(&world, email, &codes[3]).await?;
    assert_eq!(again.status, 422);
    assert!(again.body.contains("don&#x27;t match an unused code") || again.body.contains("don't match an unused code"), "{}", again.body);
    let (other, _) = recovery_sign_in(&world, "someone-else@example.com", &codes[4]).await?;
    assert_eq!(other.status, 422);

    // New codes kill the old set.
    let csrf = account_csrf(&world, &owner).await?;
    let page = owner.post_form(&world.app.url("/account/recovery-codes"), &[("csrf", &csrf)]).await?;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<li><code>").count(), 10, "the new set is shown once");
    assert!(page.body.contains("download=\"keyward-recovery-codes.txt\""));
    let (old, _) = recovery_sign_in(&world, email, &codes[5]).await?;
    assert_eq!(old.status, 422, "an old code after regeneration");
    let shown = owner.get(&world.app.url("/account")).await?;
    assert!(shown.body.contains("10 unused recovery codes"), "{}", shown.body);

    let kinds = world.audit_kinds().await?;
    for kind in ["passkey_added", "recovery_codes_created", "recovery_code_used", "recovery_code_rejected"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in the audit log: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| *k == "recovery_codes_created").count(), 2);
    Ok(())
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_by_form_and_json_and_the_last_needs_confirmation_and_email_sign_in() -> anyhow::Result<()> {
    let world = World::start().await?;
    let email = "manage@example.com";
    let owner = world.signed_in(email).await?;
    register_with_answer(&world, &owner, &mut SoftPasskey::new(true)).await?;
    register_with_answer(&world, &owner, &mut SoftPasskey::new(true)).await?;
    let list: serde_json::Value = owner.http.get(world.app.url("/account/passkeys")).send().await?.json().await?;
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    let enc = |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();

    // JSON: rename; from another origin nothing happens.
    let rename = |id: &str| format!("/account/api/passkeys/{}/rename", enc(id));
    let (status, _) = world.post(&owner, &rename(&ids[0]), serde_json::json!({ "name": "Work laptop" })).await?;
    assert_eq!(status, 204);
    let (status, body) = post_json(&owner, &world.app.url(&rename(&ids[0])), EVIL_ORIGIN, serde_json::json!({ "name": "Evil" })).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_origin")));
    // Form: rename, with CSRF.
    let csrf = account_csrf(&world, &owner).await?;
    let done = owner
        .post_form(&world.app.url(&format!("/account/passkeys/{}/rename", enc(&ids[1]))), &[("csrf", &csrf), ("name", "Phone")])
        .await?;
    assert_eq!((done.status.as_u16(), done.header("location").as_deref()), (303, Some("/account?done=renamed")));
    let forged = owner
        .post_form(&world.app.url(&format!("/account/passkeys/{}/rename", enc(&ids[1]))), &[("csrf", "forged"), ("name", "X")])
        .await?;
    assert_eq!(forged.status, 403);
    let page = owner.get(&world.app.url("/account")).await?;
    assert!(page.body.contains("Work laptop") && page.body.contains("Phone") && !page.body.contains(">X<"), "{}", page.body);

    // Remove one by JSON; the last one needs a confirmation.
    let delete = |id: &str| format!("/account/api/passkeys/{}/delete", enc(id));
    let (status, _) = world.post(&owner, &delete(&ids[0]), serde_json::json!({})).await?;
    assert_eq!(status, 204);
    let (status, body) = world.post(&owner, &delete(&ids[1]), serde_json::json!({})).await?;
    assert_eq!((status, body["error"].as_str()), (409, Some("confirmation_required")));
    let unconfirmed = owner.post_form(&world.app.url(&format!("/account/passkeys/{}/delete", enc(&ids[1]))), &[("csrf", &csrf)]).await?;
    assert_eq!(unconfirmed.header("location").as_deref(), Some("/account?problem=confirm"));

    // With email sign-in off, the last passkey cannot go at all.
    let off = owner.post_form(&world.app.url("/account/email-sign-in"), &[("csrf", &csrf), ("on", "no")]).await?;
    assert_eq!(off.header("location").as_deref(), Some("/account?done=email_off"));
    let (status, body) = world.post(&owner, &delete(&ids[1]), serde_json::json!({ "confirm": true })).await?;
    assert_eq!((status, body["error"].as_str()), (409, Some("would_lock_out")));
    // Meanwhile no sign-in email goes to the address (the page looks the same).
    let before = world.app.smtp.messages().len();
    let stranger = Browser::new()?;
    let (_, attempt, login_csrf) = open_login(&world.app, &stranger, &auth_request(&world.rp).url).await?;
    let sent =
        stranger.post_form(&world.app.url("/login/email"), &[("attempt", &attempt), ("csrf", &login_csrf), ("email", email)]).await?;
    assert_eq!(sent.status, 303);
    world.app.mail_settled().await?;
    let codes_sent = world.app.smtp.messages()[before..].iter().filter(|m| m.subject.contains("sign-in code")).count();
    assert_eq!(codes_sent, 0, "email sign-in is off for this account");

    let on = owner.post_form(&world.app.url("/account/email-sign-in"), &[("csrf", &csrf), ("on", "yes")]).await?;
    assert_eq!(on.header("location").as_deref(), Some("/account?done=email_on"));
    let confirmed = owner
        .post_form(&world.app.url(&format!("/account/passkeys/{}/delete", enc(&ids[1]))), &[("csrf", &csrf), ("confirm", "yes")])
        .await?;
    assert_eq!(confirmed.header("location").as_deref(), Some("/account?done=removed"));
    assert_eq!(world.passkey_count(&owner).await?, 0);
    // Without a passkey email sign-in cannot be turned off.
    let refused = owner.post_form(&world.app.url("/account/email-sign-in"), &[("csrf", &csrf), ("on", "no")]).await?;
    assert_eq!(refused.header("location").as_deref(), Some("/account?problem=needs_passkey"));

    wait_for_text(&world, "\"Work laptop\" was removed from your account").await?;
    let kinds = world.audit_kinds().await?;
    assert_eq!(kinds.iter().filter(|k| *k == "passkey_renamed").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "passkey_deleted").count(), 2, "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "email_sign_in_off") && kinds.iter().any(|k| k == "email_sign_in_on"));
    Ok(())
}

#[tokio::test]
async fn the_passkey_offer_after_an_email_sign_in_can_be_declined_for_good() -> anyhow::Result<()> {
    let world = World::start().await?;
    let email = "offer@example.com";
    // A device with a platform authenticator (the page's script says so) sees the offer.
    let sign_in = |platform: &'static str| {
        let world = &world;
        async move {
            let browser = Browser::new()?;
            let req = auth_request(&world.rp);
            let (_, attempt, csrf) = open_login(&world.app, &browser, &req.url).await?;
            let code = request_code(&world.app, &browser, &attempt, &csrf, email).await?;
            let done = browser
                .post_form(
                    &world.app.url("/login/code"),
                    &[("attempt", &attempt), ("csrf", &csrf), ("code", &code), ("platform_authenticator", platform)],
                )
                .await?;
            anyhow::Ok((browser, attempt, csrf, done, req))
        }
    };
    let (_, _, _, without, _) = sign_in("").await?;
    assert!(
        without.redirect_to(&world.app.issuer)?.starts_with(keyward_testkit::app::CLIENT_REDIRECT),
        "no platform authenticator: no offer"
    );

    let (browser, attempt, csrf, done, req) = sign_in("1").await?;
    assert_eq!(done.header("location"), Some(format!("/login/passkey-offer?attempt={attempt}")));
    let offer = browser.get(&world.app.url(&format!("/login/passkey-offer?attempt={attempt}"))).await?;
    assert!(offer.body.contains("Sign in faster next time") && offer.body.contains("id=\"passkey-offer-create\""));
    let stranger = Browser::new()?;
    let foreign = stranger.get(&world.app.url(&format!("/login/passkey-offer?attempt={attempt}"))).await?;
    assert_eq!(foreign.status, 400, "the offer belongs to the browser that signed in");
    let declined =
        browser.post_form(&world.app.url("/login/passkey-offer"), &[("attempt", &attempt), ("csrf", &csrf), ("choice", "never")]).await?;
    assert_eq!(declined.status, 303);
    let callback = declined.redirect_to(&world.app.issuer)?;
    assert_eq!(param(&callback, "state")?, req.state);
    redeem(&world.rp, &callback, req).await?;
    let twice = browser
        .post_form(&world.app.url("/login/passkey-offer"), &[("attempt", &attempt), ("csrf", &csrf), ("choice", "continue")])
        .await?;
    assert_eq!(twice.status, 400, "the parked answer is given once");

    let (_, _, _, after, _) = sign_in("1").await?;
    assert!(after.redirect_to(&world.app.issuer)?.starts_with(keyward_testkit::app::CLIENT_REDIRECT), "declined for good");
    Ok(())
}

#[tokio::test]
async fn acr_values_phr_is_satisfied_only_by_a_passkey() -> anyhow::Result<()> {
    let (world, mut authenticator, passkey) = World::with_a_passkey().await?;
    let phr_request = || {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = world
            .rp
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_auth_context_value(AuthenticationContextClass::new("phr".into()))
            .set_pkce_challenge(challenge)
            .url();
        AuthRequest { url: url.to_string(), state: state.secret().clone(), nonce, verifier }
    };
    let disco: serde_json::Value = reqwest::get(world.app.url("/.well-known/openid-configuration")).await?.json().await?;
    assert_eq!(disco["acr_values_supported"], serde_json::json!(["phr", "phrh"]));

    // A session from an email sign-in does not satisfy it: the person is asked for a passkey.
    let emailed = world.signed_in("owner@example.com").await?;
    let req = phr_request();
    let login_url = emailed.get(&req.url).await?.redirect_to(&world.app.issuer)?;
    let attempt = param(&login_url, "attempt")?;
    let page = emailed.get(&login_url).await?;
    let csrf = emailed.get(&world.app.url(&format!("/login/recovery?attempt={attempt}"))).await?.input("csrf")?;
    assert!(page.body.contains("asks you to sign in with a passkey") && !page.body.contains("action=\"/login/email\""), "{}", page.body);
    let before = world.app.smtp.messages().len();
    let sent = emailed
        .post_form(&world.app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "owner@example.com")])
        .await?;
    assert_eq!(sent.status, 303);
    world.app.mail_settled().await?;
    assert_eq!(world.app.smtp.messages().len(), before, "no code is sent for a passkey-only request");
    let none = emailed.get(&format!("{}&prompt=none", phr_request().url)).await?;
    assert_eq!(param(&none.redirect_to(&world.app.issuer)?, "error")?, "login_required");

    // A passkey does, and the ID token says so.
    let browser = Browser::new()?;
    let attempt = param(&browser.get(&req.url).await?.redirect_to(&world.app.issuer)?, "attempt")?;
    let (status, start) = world.post(&browser, "/login/passkey/start", serde_json::json!({ "attempt": attempt })).await?;
    assert_eq!(status, 200);
    let sign_in = SignIn {
        browser,
        attempt,
        ceremony: start["ceremony"].as_str().unwrap().to_owned(),
        options: serde_json::from_value(start["options"].clone())?,
    };
    let answer = assertion(&mut authenticator, &world.origin, sign_in.options_for(&passkey), &passkey)?;
    let (status, done) = world.finish_sign_in(&sign_in, &answer).await?;
    assert_eq!(status, 200, "{done}");
    let callback = done["redirect"].as_str().unwrap().to_owned();
    let claims = redeem(&world.rp, &callback, req).await?;
    let acr = claims.auth_context_ref().map(|a| a.to_string());
    assert!(matches!(acr.as_deref(), Some("phr") | Some("phrh")), "{acr:?}");

    let metrics = reqwest::get(format!("{}/metrics", world.app.metrics)).await?.text().await?;
    assert!(metrics.contains("keyward_passkey_registrations_total{outcome=\"success\"} 1"), "{metrics}");
    assert!(metrics.contains("keyward_passkey_sign_ins_total{outcome=\"success\"} 1"), "{metrics}");
    assert!(metrics.contains("keyward_sign_ins_total{method=\"passkey\"} 1"), "{metrics}");
    Ok(())
}
