//! Issue 14, finding 4: sensitive account changes on an old sign-in need a fresh proof.

use crate::common::*;
use crate::grant_steps::authorize;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, code_in};
use std::time::Duration;

async fn api(app: &TestApp, browser: &Browser, path: &str, body: serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
    let resp = browser.http.post(app.url(path)).header("Origin", &app.issuer).json(&body).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
}

async fn silent_authorize(app: &TestApp, browser: &Browser) -> anyhow::Result<String> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none")]);
    browser.get(&flow.url).await?.redirect_to(&app.issuer)
}

#[tokio::test]
async fn f4_sensitive_account_changes_need_a_recent_sign_in_of_the_same_account() -> anyhow::Result<()> {
    let app = spawn(AppOptions { reauthentication_seconds: Some(2), ..Default::default() }).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let here = Browser::new()?;
    sign_in_by_email(&app, &here, &auth_request(&rp).url, "alice@example.com").await?;
    let there = Browser::new()?;
    sign_in_by_email(&app, &there, &auth_request(&rp).url, "alice@example.com").await?;
    let bob = Browser::new()?;
    sign_in_by_email(&app, &bob, &auth_request(&rp).url, "bob@example.com").await?;

    // Within the window a guarded call goes straight through (no such passkey: nothing changes).
    let (status, body) = api(&app, &here, "/account/api/passkeys/none/delete", serde_json::json!({})).await?;
    assert_eq!(status, 404, "a fresh sign-in needs no confirmation: {body}");

    // Past the window: the sign-in is older than reauthentication_seconds.
    app.clock.advance(Duration::from_secs(3));
    let (status, body) = api(&app, &here, "/account/api/passkeys/none/delete", serde_json::json!({})).await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "reauthentication_required", "{body}");
    assert_eq!(body["confirm_url"], "/account/confirm?next=%2Faccount%23passkeys", "back to the passkeys afterwards");

    // An old session changes nothing: every guarded action asks to confirm first.
    let csrf = here.get(&app.url("/account")).await?.input("csrf")?;
    for (path, form, section) in [
        ("/account/recovery-codes", vec![("csrf", csrf.as_str())], "recovery"),
        ("/account/email-sign-in", vec![("csrf", csrf.as_str()), ("on", "no")], "email-sign-in"),
        ("/account/passkeys/none/delete", vec![("csrf", csrf.as_str()), ("confirm", "yes")], "passkeys"),
        ("/account/sessions/sign-out-others", vec![("csrf", csrf.as_str())], "sessions"),
    ] {
        let page = here.post_form(&app.url(path), &form).await?;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert_eq!(page.location, Some(format!("/account/confirm?next=%2Faccount%23{section}")), "{path}");
    }
    for path in ["/account/passkeys/register/start"] {
        let (status, body) = api(&app, &here, path, serde_json::json!({})).await?;
        assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "{path}: {body}");
    }
    // A well-formed finish (so the JSON extractor lets it through): the guard refuses it.
    let credential = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" },
    });
    let finish = serde_json::json!({ "ceremony": "none", "credential": credential });
    let (status, body) = api(&app, &here, "/account/passkeys/register/finish", finish).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "register/finish: {body}");
    assert!(param(&silent_authorize(&app, &there).await?, "code").is_ok(), "the other session was not signed out");
    assert!(!app.smtp.messages().iter().any(|m| m.subject.contains("Security notice")), "no change, no notice");
    // The CSRF check still comes first.
    assert_eq!(here.post_form(&app.url("/account/confirm/email"), &[("csrf", "nope")]).await?.status, 403);

    // Bob's code (his own confirmation) does not count for Alice's session.
    let bob_csrf = bob.get(&app.url("/account/confirm")).await?.input("csrf")?;
    let bob_before = app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.contains("bob@"))).count();
    assert_eq!(bob.post_form(&app.url("/account/confirm/email"), &[("csrf", &bob_csrf)]).await?.status, 303);
    let bob_code = code_in(&app.smtp.wait_for_mail_about("bob@example.com", "confirmation", 0, Duration::from_secs(10)).await?.text)?;
    assert!(app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.contains("bob@"))).count() > bob_before);
    // A typed address is ignored: the code goes to the account's own address.
    assert_eq!(here.post_form(&app.url("/account/confirm/email"), &[("csrf", &csrf), ("email", "bob@example.com")]).await?.status, 303);
    let alice_mail = app.smtp.wait_for_mail_about("alice@example.com", "confirmation", 0, Duration::from_secs(10)).await?;
    assert_eq!(
        app.smtp.messages().iter().filter(|m| m.subject.contains("confirmation") && m.to.iter().any(|t| t.contains("bob@"))).count(),
        1
    );
    let page = here.post_form(&app.url("/account/confirm/code"), &[("csrf", &csrf), ("code", &bob_code)]).await?;
    assert_eq!(page.status, 422, "another account's code is refused: {}", page.body);
    let (status, _) = api(&app, &here, "/account/api/passkeys/none/delete", serde_json::json!({})).await?;
    assert_eq!(status, 403, "and the session is still old");

    // Alice's own code confirms; the change then goes through, and she is still Alice.
    let code = code_in(&alice_mail.text)?;
    let page =
        here.post_form(&app.url("/account/confirm/code"), &[("csrf", &csrf), ("code", &code), ("next", "/account#sessions")]).await?;
    assert_eq!(page.location.as_deref(), Some("/account?done=confirmed#sessions"), "back where the change was: {}", page.body);
    let done = here.post_form(&app.url("/account/sessions/sign-out-others"), &[("csrf", &csrf)]).await?;
    assert_eq!(done.location.as_deref(), Some("/account?done=others_out"), "{}", done.body);
    assert_eq!(param(&silent_authorize(&app, &there).await?, "error")?, "login_required", "the other session is signed out");
    assert!(here.get(&app.url("/account")).await?.body.contains("alice@example.com"));
    // The code works once.
    let again = here.post_form(&app.url("/account/confirm/code"), &[("csrf", &csrf), ("code", &code)]).await?;
    assert_eq!(again.status, 422);
    Ok(())
}

/// Moves every session's sign-in `days` into the past (gray-box: the app's database), as if
/// the cookie had been stolen that long ago.
pub async fn age_sessions(app: &TestApp, days: i64) -> anyhow::Result<()> {
    with_db(app, move |c| {
        use diesel::prelude::*;
        use keyward_store::schema::sessions as s;
        diesel::update(s::table).set(s::auth_time.eq(s::auth_time - days * 86_400)).execute(c)?;
        Ok(())
    })
    .await
}

/// The session rows (auth_time, revoked_at), gray-box.
async fn session_rows(app: &TestApp) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
    with_db(app, move |c| {
        use diesel::prelude::*;
        use keyward_store::schema::sessions as s;
        Ok(s::table.select((s::auth_time, s::revoked_at)).load::<(i64, Option<i64>)>(c)?)
    })
    .await
}

#[tokio::test]
async fn f4_a_week_old_session_cannot_plant_a_passkey_and_confirming_returns_to_the_change() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let thief = Browser::new()?;
    sign_in_by_email(&app, &thief, &auth_request(&rp).url, "victim@example.com").await?;
    // A ceremony opened while the sign-in was fresh...
    let (status, opened) = api(&app, &thief, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!(status, 200, "{opened}");
    age_sessions(&app, 7).await?;

    // ...cannot be finished a week later, and no new one opens: the JS is sent to confirm,
    // and comes back to adding the passkey.
    let (status, body) = api(&app, &thief, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "{body}");
    assert_eq!(body["confirm_url"], "/account/confirm?next=%2Faccount%3Fresume%3Dadd-passkey");
    let finish = serde_json::json!({ "ceremony": opened["ceremony"], "credential": {
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" } } });
    let (status, body) = api(&app, &thief, "/account/passkeys/register/finish", finish).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "{body}");
    let passkeys: serde_json::Value = thief.http.get(app.url("/account/passkeys")).send().await?.json().await?;
    assert_eq!(passkeys, serde_json::json!([]), "nothing was planted");

    // The confirmation page keeps a local `next` and drops any other.
    let page = thief.get(&app.url("/account/confirm?next=%2Faccount%3Fresume%3Dadd-passkey")).await?;
    assert_eq!(page.status, 200);
    assert_eq!(page.input("next")?, "/account?resume=add-passkey");
    for evil in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example%2Faccount", "%2Faccount%2F..%2Flogin"] {
        let page = thief.get(&app.url(&format!("/account/confirm?next={evil}"))).await?;
        assert_eq!((page.status.as_u16(), page.input("next")?.as_str()), (200, "/account"), "{evil}");
    }
    let csrf = page.input("csrf")?;
    let sent = thief.post_form(&app.url("/account/confirm/email"), &[("csrf", &csrf), ("next", "/account?resume=add-passkey")]).await?;
    assert_eq!(sent.location.as_deref(), Some("/account/confirm?next=%2Faccount%3Fresume%3Dadd-passkey"));
    let mail = app.smtp.wait_for_mail_about("victim@example.com", "confirmation", 0, Duration::from_secs(10)).await?;
    let form = [("csrf", csrf.as_str()), ("code", &code_in(&mail.text)?), ("next", "//evil.example/")];
    let done = thief.post_form(&app.url("/account/confirm/code"), &form).await?;
    assert_eq!(done.location.as_deref(), Some("/account?done=confirmed"), "a foreign next is never followed: {}", done.body);
    // Only the owner of the mailbox got that far; now the account page resumes the change.
    let account = thief.get(&app.url("/account?resume=add-passkey&done=confirmed")).await?;
    assert!(account.body.contains(r#"id="passkey-add" class="btn" data-resume="yes""#), "{}", account.body);
    let (status, body) = api(&app, &thief, "/account/passkeys/register/start", serde_json::json!({})).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

async fn postgres_app() -> anyhow::Result<TestApp> {
    spawn(AppOptions { database: Database::Postgres, ..Default::default() }).await
}

/// A signed-in browser whose sign-in is a week old, with a confirmation code sent:
/// (browser, csrf, code).
async fn old_session_with_code(app: &TestApp, rp: &Rp, email: &str) -> anyhow::Result<(Browser, String, String)> {
    let browser = Browser::new()?;
    sign_in_by_email(app, &browser, &auth_request(rp).url, email).await?;
    age_sessions(app, 7).await?;
    let csrf = browser.get(&app.url("/account/confirm")).await?.input("csrf")?;
    let before = app.smtp.messages().iter().filter(|m| m.subject.contains("confirmation") && m.to.iter().any(|t| t == email)).count();
    assert_eq!(browser.post_form(&app.url("/account/confirm/email"), &[("csrf", &csrf)]).await?.status, 303);
    let mail = app.smtp.wait_for_mail_about(email, "confirmation", before, Duration::from_secs(10)).await?;
    Ok((browser, csrf, code_in(&mail.text)?))
}

#[tokio::test]
async fn f4_two_confirmations_racing_with_one_code_on_postgres_exactly_one_succeeds() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    for round in 0..8 {
        let (browser, csrf, code) = old_session_with_code(&app, &rp, &format!("racer{round}@example.com")).await?;
        let (url, form) = (app.url("/account/confirm/code"), [("csrf", csrf.as_str()), ("code", code.as_str())]);
        let (a, b) = tokio::join!(browser.post_form(&url, &form), browser.post_form(&url, &form));
        let mut statuses = [a?.status.as_u16(), b?.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [303, 422], "round {round}: the code is single use");
    }
    let confirmed = with_db(&app, |c| {
        use diesel::prelude::*;
        use keyward_store::schema::audit_events as a;
        Ok(a::table.filter(a::kind.eq("reauthenticated")).count().get_result::<i64>(c)?)
    })
    .await?;
    assert_eq!(confirmed, 8, "one confirmation per code");
    Ok(())
}

#[tokio::test]
async fn f4_a_confirmation_racing_a_sign_out_never_refreshes_the_dead_session_on_postgres() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    for round in 0..8 {
        let email = format!("leaver{round}@example.com");
        let (browser, csrf, code) = old_session_with_code(&app, &rp, &email).await?;
        let logout_csrf =
            browser
                .get(&app.url(&format!(
                    "/end_session?client_id={CLIENT_ID}&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A9999%2Fsigned-out"
                )))
                .await?
                .input("csrf")?;
        let (confirm_url, confirm_form) = (app.url("/account/confirm/code"), [("csrf", csrf.as_str()), ("code", code.as_str())]);
        let confirm = browser.post_form(&confirm_url, &confirm_form);
        let sign_out_url = app.url("/end_session");
        let sign_out_form = [
            ("confirm", "yes"),
            ("csrf", logout_csrf.as_str()),
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", "http://localhost:9999/signed-out"),
        ];
        let sign_out = browser.post_form(&sign_out_url, &sign_out_form);
        let (confirmed, signed_out) = tokio::join!(confirm, sign_out);
        let (confirmed, signed_out) = (confirmed?, signed_out?);
        assert_eq!(signed_out.status, 303, "round {round}: {}", signed_out.body);
        // Either order is fine, as long as the session ends and a refresh never lands after it.
        assert!(matches!(confirmed.status.as_u16(), 303 | 401), "round {round}: {} {}", confirmed.status, confirmed.body);
        if confirmed.status == 303 {
            assert_eq!(confirmed.location.as_deref(), Some("/account?done=confirmed"));
        }
        assert_eq!(browser.get(&app.url("/account")).await?.status, 401, "round {round}: the session is over");
    }
    for (auth_time, revoked_at) in session_rows(&app).await? {
        let revoked_at = revoked_at.expect("every session was signed out");
        assert!(auth_time <= revoked_at, "no confirmation refreshed a session after its sign-out ({auth_time} > {revoked_at})");
    }
    Ok(())
}
