//! Magic links (CHECKLIST D9): scanners that GET, HEAD or even POST a link get nothing and
//! burn nothing; the requesting browser completes its own sign-in; another device approves
//! only with the number the waiting browser shows, and gets no session itself.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page, link_in};

struct Waiting {
    app: TestApp,
    browser: Browser,
    attempt: String,
    csrf: String,
    link: String,
    state: String,
}

async fn waiting_for(email: &str) -> anyhow::Result<Waiting> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let (_, attempt, csrf) = open_login(&app, &browser, &req.url).await?;
    let mail = request_mail(&app, &browser, &attempt, &csrf, email).await?;
    let link = link_in(&mail.text)?;
    assert!(keyward_testkit::browser::unescape(&mail.html).contains(&link), "the HTML part carries the link too");
    assert!(
        mail.text.contains("Test App") && mail.text.contains("this computer (localhost)"),
        "the email names the app and where the request came from"
    );
    Ok(Waiting { app, browser, attempt, csrf, link, state: req.state })
}

fn approval_number(page: &Page) -> anyhow::Result<String> {
    let i = page.body.find("approval-number\">").ok_or_else(|| anyhow::anyhow!("no approval number on:\n{}", page.body))? + 17;
    Ok(page.body[i..i + 2].to_owned())
}

fn has_session_cookie(page: &Page) -> bool {
    page.set_cookies().iter().any(|c| c.starts_with("__Host-keyward_session=") && !c.contains("Max-Age=0"))
}

#[tokio::test]
async fn d9_scanners_that_get_head_or_post_the_link_burn_nothing_and_the_requesting_browser_signs_in() -> anyhow::Result<()> {
    let w = waiting_for("scanned@example.com").await?;
    // A scanner: no cookies of the requesting browser, fetches the link repeatedly.
    let scanner = Browser::new()?;
    for _ in 0..3 {
        let page = scanner.get(&w.link).await?;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Approve a sign-in on another device?"), "{}", page.body);
        assert!(!has_session_cookie(&page));
        assert_eq!(page.header("referrer-policy").as_deref(), Some("no-referrer"), "D11");
        assert_eq!(page.header("cache-control").as_deref(), Some("no-store"), "D11");
    }
    // HEAD is routed to the same side-effect-free page: 200, no body, no session.
    let head = scanner.http.head(&w.link).send().await?;
    assert_eq!(head.status(), 200);
    assert!(head.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap_or_default().starts_with("__Host-keyward_session=")));
    assert!(head.bytes().await?.is_empty(), "HEAD carries no body");
    // It submits the form as it found it (Outlook Safe Links does): no number, nothing happens.
    let form = scanner.get(&w.link).await?;
    let token = form.input("token")?;
    let posted = scanner.post_form(&w.app.url("/login/link"), &[("token", &token), ("csrf", &form.input("csrf")?)]).await?;
    assert_eq!(posted.status, 422, "{}", posted.body);
    assert!(!has_session_cookie(&posted) && posted.location.is_none());
    // A scanner without any cookie fails the CSRF check.
    let cookieless = reqwest::Client::new().post(w.app.url("/login/link")).form(&[("token", token.as_str()), ("csrf", "x")]).send().await?;
    assert_eq!(cookieless.status(), 403);

    // The person, in the browser that asked: a confirmation page, then straight to the app.
    let page = w.browser.get(&w.link).await?;
    assert!(page.body.contains("Continue signing in to Test App"), "{}", page.body);
    let done = w.browser.post_form(&w.app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?)]).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(has_session_cookie(&done));
    let callback = done.redirect_to(&w.app.issuer)?;
    assert!(callback.starts_with(CLIENT_REDIRECT));
    assert_eq!(param(&callback, "state")?, w.state);
    assert!(param(&callback, "code").is_ok());
    // Used once: the link is gone.
    assert_eq!(w.browser.get(&w.link).await?.status, 410);
    Ok(())
}

#[tokio::test]
async fn d3_a_used_code_kills_the_link() -> anyhow::Result<()> {
    let w = waiting_for("either@example.com").await?;
    let mails = w.app.smtp.messages();
    let code = keyward_testkit::browser::code_in(&mails.last().expect("mail").text)?;
    let done = submit_code(&w.app, &w.browser, &w.attempt, &w.csrf, &code).await?;
    assert_eq!(done.status, 303);
    assert_eq!(w.browser.get(&w.link).await?.status, 410, "the link died with the code");
    Ok(())
}

#[tokio::test]
async fn d9_cross_device_sign_in_with_the_right_number_continues_the_waiting_browser() -> anyhow::Result<()> {
    let w = waiting_for("two-devices@example.com").await?;
    let code_page = w.browser.get(&w.app.url(&format!("/login/code?attempt={}", w.attempt))).await?;
    let number = approval_number(&code_page)?;
    assert!(code_page.body.contains("/static/login.js"), "the waiting page polls by itself");
    let status = |b: &Browser| {
        let url = w.app.url(&format!("/login/status?attempt={}", w.attempt));
        let req = b.http.get(url);
        async move { anyhow::Ok(req.send().await?.json::<serde_json::Value>().await?) }
    };
    assert_eq!(status(&w.browser).await?["approved"], false);
    // Not approved yet: the no-JS continue button says so and changes nothing.
    let early = w.browser.post_form(&w.app.url("/login/continue"), &[("attempt", &w.attempt), ("csrf", &w.csrf)]).await?;
    assert_eq!(early.status, 409);

    let phone = Browser::new()?;
    let page = phone.get(&w.link).await?;
    assert!(page.body.contains("two-devices@example.com") && page.body.contains("Test App"), "the request's details are shown");
    let approved = phone
        .post_form(&w.app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?), ("number", &number)])
        .await?;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert!(approved.body.contains("Sign-in approved"));
    assert!(!has_session_cookie(&approved), "the approving device gets no session");

    assert_eq!(status(&w.browser).await?["approved"], true);
    let done = w.browser.post_form(&w.app.url("/login/continue"), &[("attempt", &w.attempt), ("csrf", &w.csrf)]).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(has_session_cookie(&done));
    let callback = done.redirect_to(&w.app.issuer)?;
    assert_eq!(param(&callback, "state")?, w.state);
    Ok(())
}

#[tokio::test]
async fn d10_an_attacker_who_requested_the_email_gets_nothing_when_the_victim_clicks() -> anyhow::Result<()> {
    // The attacker's browser asked for a sign-in email to the victim's address.
    let w = waiting_for("victim@example.com").await?;
    // The victim clicks the link on their own device; a click alone approves nothing.
    let victim = Browser::new()?;
    let page = victim.get(&w.link).await?;
    assert!(page.body.contains("Only approve if"), "the page warns");
    let clicked = victim.post_form(&w.app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?)]).await?;
    assert_eq!(clicked.status, 422);
    let continue_ = w.browser.post_form(&w.app.url("/login/continue"), &[("attempt", &w.attempt), ("csrf", &w.csrf)]).await?;
    assert_eq!(continue_.status, 409, "the attacker's browser is not signed in");
    // A guessed (wrong) number ends the attempt for good.
    let code_page = w.browser.get(&w.app.url(&format!("/login/code?attempt={}", w.attempt))).await?;
    let right: u32 = approval_number(&code_page)?.parse()?;
    let wrong = if right == 99 { 98 } else { right + 1 }.to_string();
    let guessed = victim
        .post_form(&w.app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?), ("number", &wrong)])
        .await?;
    assert_eq!(guessed.status, 403);
    assert!(guessed.body.contains("Sign-in cancelled"));
    let status: serde_json::Value =
        w.browser.http.get(w.app.url(&format!("/login/status?attempt={}", w.attempt))).send().await?.json().await?;
    assert_eq!(status["gone"], true);
    assert_eq!(victim.get(&w.link).await?.status, 410);
    let code = keyward_testkit::browser::code_in(&w.app.smtp.messages().last().expect("mail").text)?;
    let late = submit_code(&w.app, &w.browser, &w.attempt, &w.csrf, &code).await?;
    assert_ne!(late.status, 303, "the cancelled attempt cannot be finished with the code either");
    Ok(())
}

/// Issue 14, finding 17: the waiting page's poll can land while the browser, having typed a
/// correct code, is on its way to the app. For the browser that finished the attempt, the
/// status says `finished` (the script then stops, never reloads) and the code page says the
/// sign-in is complete — never "This sign-in has expired". Another browser still sees `gone`.
#[tokio::test]
async fn f17_an_attempt_finished_in_this_browser_is_finished_not_gone() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "finished@example.com").await?;
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    let status_url = app.url(&format!("/login/status?attempt={attempt}"));
    let status: serde_json::Value = browser.http.get(&status_url).send().await?.json().await?;
    assert_eq!(status["finished"], true, "{status}");
    assert_eq!(status["gone"], false, "a poll answered now must not make the page reload: {status}");
    let page = browser.get(&app.url(&format!("/login/code?attempt={attempt}"))).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("signed in") && !page.body.contains("has expired"), "{}", page.body);
    let stranger = Browser::new()?;
    let theirs: serde_json::Value = stranger.http.get(&status_url).send().await?.json().await?;
    assert_eq!(theirs["gone"], true, "another browser learns nothing about the attempt: {theirs}");
    Ok(())
}
