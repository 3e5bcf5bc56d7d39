//! Sign-up policy and account administration from the CLI against a running server:
//! invitations for `invite_only`, disabled accounts that get no hint, and `mail test`.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs a CLI command off the test's runtime, which must keep serving the SMTP sink.
pub(crate) async fn keyward(app: &TestApp, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(app.config_path()).args(args).env_remove("KEYWARD_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("keyward runs")).await.expect("joined");
    // The CLI stamped what it wrote with the wall clock.
    app.clock.catch_up();
    out
}

async fn mails_to(app: &TestApp, email: &str) -> usize {
    app.mail_settled().await.expect("mail settles");
    app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t == email)).count()
}

#[tokio::test]
async fn invite_only_lets_invited_people_in_and_nobody_else() -> anyhow::Result<()> {
    let app = spawn(AppOptions { signup: "invite_only", ..Default::default() }).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    // A stranger gets the usual page, and no email.
    let browser = Browser::new()?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let sent =
        browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "stranger@example.com")]).await?;
    assert_eq!(sent.status, 303);
    assert_eq!(mails_to(&app, "stranger@example.com").await, 0);

    let out = keyward(&app, &["users", "invite", "bob@example.com"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let invitation = app.smtp.wait_for_mail_to("bob@example.com", 0, Duration::from_secs(10)).await?;
    assert!(invitation.subject.contains("invited") && invitation.text.contains(&app.issuer));
    let callback = sign_in_by_email(&app, &Browser::new()?, &auth_request(&rp).url, "bob@example.com").await?;
    assert!(callback.starts_with(CLIENT_REDIRECT));
    Ok(())
}

#[tokio::test]
async fn d8_disabled_accounts_cannot_sign_in_and_get_no_hint() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let browser = Browser::new()?;
    sign_in_by_email(&app, &browser, &auth_request(&rp).url, "alice@example.com").await?;
    let out = keyward(&app, &["users", "disable", "alice@example.com"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Her live session no longer counts: the login page again.
    let again = browser.get(&auth_request(&rp).url).await?;
    assert!(again.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "a disabled account's session is not used");
    // Asking for a code looks the same as for anyone, and no email goes out.
    let before = mails_to(&app, "alice@example.com").await;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let sent =
        browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "alice@example.com")]).await?;
    assert_eq!(sent.status, 303);
    let page = browser.get(&sent.redirect_to(&app.issuer)?).await?;
    assert!(page.body.contains("a code is on its way"));
    assert_eq!(mails_to(&app, "alice@example.com").await, before, "no code for a disabled account");

    let out = keyward(&app, &["users", "enable", "alice@example.com"]).await;
    assert!(out.status.success());
    sign_in_by_email(&app, &Browser::new()?, &auth_request(&rp).url, "alice@example.com").await?;
    let missing = keyward(&app, &["users", "disable", "nobody@example.com"]).await;
    assert_eq!(missing.status.code(), Some(1));
    Ok(())
}

#[tokio::test]
async fn mail_test_reports_what_the_mail_server_said() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let ok = keyward(&app, &["mail", "test", "ops@example.com"]).await;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("sent"));
    let got = app.smtp.wait_for_mail_to("ops@example.com", 0, Duration::from_secs(10)).await?;
    assert_eq!(got.subject, "Keyward test message");
    app.smtp.set_reject(true);
    let refused = keyward(&app, &["mail", "test", "ops@example.com"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("permanent failure"), "{}", String::from_utf8_lossy(&refused.stderr));
    Ok(())
}
