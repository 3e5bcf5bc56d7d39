//! The built-in relying party at /try: a person clicks, signs in, and sees the verified
//! ID token, all through the public endpoints.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, code_in};

#[tokio::test]
async fn try_it_page_runs_a_verified_flow() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let index = browser.get(&app.url("/try")).await?;
    assert_eq!(index.status, 200);
    let started = browser.post_form(&app.url("/try/start"), &[("csrf", &index.input("csrf")?)]).await?;
    assert_eq!(started.status, 303, "{}", started.body);
    let authorize = started.redirect_to(&app.issuer)?;
    assert!(authorize.starts_with(&app.url("/authorize?")));
    let (_, attempt, csrf) = open_login(&app, &browser, &authorize).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "tryer@example.com").await?;
    let mail = app.smtp.messages().into_iter().last().expect("mail");
    assert_eq!(code_in(&mail.text)?, code);
    assert!(mail.text.contains("Try it"), "the email names the app");
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let callback = done.redirect_to(&app.issuer)?;
    assert!(callback.starts_with(&app.url("/try/callback")));
    let result = browser.get(&callback).await?;
    assert_eq!(result.status, 200, "{}", result.body);
    assert!(result.body.contains("tryer@example.com"), "the verified claims are shown");
    assert!(result.body.contains("RS256"), "the ID token header is shown");
    Ok(())
}

/// The README's first run: the dev mail transport writes the code to the outbox file.
#[tokio::test]
async fn readme_first_run_signs_in_with_the_code_from_the_outbox() -> anyhow::Result<()> {
    let app = spawn(AppOptions { dev_mail: true, ..Default::default() }).await?;
    let browser = Browser::new()?;
    let index = browser.get(&app.url("/try")).await?;
    let started = browser.post_form(&app.url("/try/start"), &[("csrf", &index.input("csrf")?)]).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &started.redirect_to(&app.issuer)?).await?;
    let sent =
        browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "newcomer@example.com")]).await?;
    assert_eq!(sent.status, 303);
    let outbox = app.dir.join("data").join("outbox.log");
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&outbox).unwrap_or_default();
        if text.contains("newcomer@example.com") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // poll: the dev transport writes the outbox file
    }
    let code = code_in(&text)?;
    assert!(app.smtp.messages().is_empty(), "nothing went over SMTP");
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let result = browser.get(&done.redirect_to(&app.issuer)?).await?;
    assert_eq!(result.status, 200, "{}", result.body);
    assert!(result.body.contains("newcomer@example.com"));
    Ok(())
}

/// Issue 14, finding 19: the callback's client mistakes (no sign-in in progress, a wrong
/// `state`, an `error` from the authorization step, a missing or refused `code`) answer 400,
/// not 502, and an `error_description` with CR/LF cannot forge a line in the server log.
#[tokio::test]
async fn f19_try_callback_answers_400_to_client_mistakes_and_cannot_forge_log_lines() -> anyhow::Result<()> {
    // The binary: the test reads its log.
    let app = spawn_binary(AppOptions::default()).await?;
    let stranger = Browser::new()?;
    let none = stranger.get(&app.url("/try/callback?code=c&state=s")).await?;
    assert_eq!(none.status, 400, "no sign-in in progress: {}", none.body);

    let browser = Browser::new()?;
    let index = browser.get(&app.url("/try")).await?;
    let started = browser.post_form(&app.url("/try/start"), &[("csrf", &index.input("csrf")?)]).await?;
    let state = param(&started.redirect_to(&app.issuer)?, "state")?;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let forged = "x\r\nFORGED 2026-01-01T00:00:00Z ERROR request failed error=\"forged\"\nFORGED-TOO";
    for (what, query) in [
        ("a wrong state", format!("code=c&state={}", enc("not-the-state"))),
        ("an error from the authorization step", format!("state={}&error=access_denied&error_description={}", enc(&state), enc(forged))),
        ("no code", format!("state={}", enc(&state))),
        ("an empty code", format!("code=&state={}", enc(&state))),
        ("a code the server never issued", format!("code=made-up&state={}", enc(&state))),
    ] {
        let page = browser.get(&app.url(&format!("/try/callback?{query}"))).await?;
        assert_eq!(page.status, 400, "{what}: {}", page.body);
        assert!(page.body.contains("The test sign-in did not complete"), "{what}: a friendly page: {}", page.body);
    }
    let log = app.log();
    assert!(log.contains(r"x\r\nFORGED"), "the error_description is logged, escaped:\n{log}");
    let forged_lines: Vec<&str> = log.lines().filter(|l| l.starts_with("FORGED")).collect();
    assert!(forged_lines.is_empty(), "forged log lines: {forged_lines:?}");
    Ok(())
}
