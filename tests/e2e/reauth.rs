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

    // Wait until the sign-in is older than the window (the condition, polled).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = api(&app, &here, "/account/api/passkeys/none/delete", serde_json::json!({})).await?;
        if status == 403 {
            assert_eq!(body["error"], "reauthentication_required", "{body}");
            assert_eq!(body["confirm_url"], "/account/confirm");
            break;
        }
        assert_eq!(status, 404, "{body}");
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the session never became old");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An old session changes nothing: every guarded action asks to confirm first.
    let csrf = here.get(&app.url("/account")).await?.input("csrf")?;
    for (path, form) in [
        ("/account/recovery-codes", vec![("csrf", csrf.as_str())]),
        ("/account/email-sign-in", vec![("csrf", csrf.as_str()), ("on", "no")]),
        ("/account/passkeys/none/delete", vec![("csrf", csrf.as_str()), ("confirm", "yes")]),
        ("/account/sessions/sign-out-others", vec![("csrf", csrf.as_str())]),
    ] {
        let page = here.post_form(&app.url(path), &form).await?;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/account/confirm"), "{path}");
    }
    for path in ["/account/passkeys/register/start"] {
        let (status, body) = api(&app, &here, path, serde_json::json!({})).await?;
        assert_eq!((status, body["error"].as_str()), (403, Some("reauthentication_required")), "{path}: {body}");
    }
    let (status, body) = api(&app, &here, "/account/passkeys/register/finish", serde_json::json!({})).await?;
    assert!(status == 403 || status == 400, "{path}: {status} {body}", path = "register/finish");
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
    let page = here.post_form(&app.url("/account/confirm/code"), &[("csrf", &csrf), ("code", &code)]).await?;
    assert_eq!(page.location.as_deref(), Some("/account?done=confirmed"), "{}", page.body);
    let done = here.post_form(&app.url("/account/sessions/sign-out-others"), &[("csrf", &csrf)]).await?;
    assert_eq!(done.location.as_deref(), Some("/account?done=others_out"), "{}", done.body);
    assert_eq!(param(&silent_authorize(&app, &there).await?, "error")?, "login_required", "the other session is signed out");
    assert!(here.get(&app.url("/account")).await?.body.contains("alice@example.com"));
    // The code works once.
    let again = here.post_form(&app.url("/account/confirm/code"), &[("csrf", &csrf), ("code", &code)]).await?;
    assert_eq!(again.status, 422);
    Ok(())
}
