//! Abuse limits (CHECKLIST D4, D5) and mail failures (F8): sends per address and per
//! network with 429 + Retry-After, wrong codes per address, a per-IP request limit, limits
//! that hold across two Keyward processes on one PostgreSQL database, and a failed email
//! that leaves no usable code behind.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page, code_in, unescape};

pub(crate) fn limits(body: &str) -> AppOptions {
    AppOptions {
        limits: Some(format!("{body}\nsign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000\n")),
        ..Default::default()
    }
}

pub(crate) async fn send(app: &TestApp, browser: &Browser, attempt: &str, csrf: &str, email: &str) -> anyhow::Result<Page> {
    browser.post_form(&app.url("/login/email"), &[("attempt", attempt), ("csrf", csrf), ("email", email)]).await
}

/// Polls the attempt's status, as the waiting page does, until the email is reported failed
/// (true) or 15 s pass (false).
async fn mail_failed(app: &TestApp, browser: &Browser, attempt: &str) -> anyhow::Result<bool> {
    let status_url = app.url(&format!("/login/status?attempt={attempt}"));
    for _ in 0..150 {
        let s: serde_json::Value = browser.http.get(&status_url).send().await?.json().await?;
        if s["mail_failed"] == true {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // poll: the status page reports the failed send
    }
    Ok(false)
}

fn retry_after(page: &Page) -> i64 {
    page.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn d5_sends_are_limited_per_address_and_per_network_with_429_and_retry_after() -> anyhow::Result<()> {
    let app = spawn(limits("sends_per_address = 3\nsends_per_ip = 5")).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    for _ in 0..3 {
        assert_eq!(send(&app, &browser, &attempt, &csrf, "flood@example.com").await?.status, 303);
    }
    let limited = send(&app, &browser, &attempt, &csrf, "flood@example.com").await?;
    assert_eq!(limited.status, 429);
    assert!(retry_after(&limited) > 0 && retry_after(&limited) <= 900, "Retry-After: {:?}", limited.header("retry-after"));
    assert!(limited.body.contains("try again in"), "the page says when");
    // Another address is still fine, until the network's limit (5 sends) is reached.
    assert_eq!(send(&app, &browser, &attempt, &csrf, "other@example.com").await?.status, 303);
    assert_eq!(send(&app, &browser, &attempt, &csrf, "third@example.com").await?.status, 303);
    assert_eq!(send(&app, &browser, &attempt, &csrf, "fourth@example.com").await?.status, 429);
    Ok(())
}

#[tokio::test]
async fn d4_wrong_codes_are_limited_per_address_across_codes() -> anyhow::Result<()> {
    let app = spawn(limits("code_tries_per_address_per_hour = 3")).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "guessed@example.com").await?;
    for _ in 0..3 {
        assert_eq!(submit_code(&app, &browser, &attempt, &csrf, "ZZZZ-ZZZZ").await?.status, 422);
    }
    // A fresh code does not reset the address's count: the next try is refused outright.
    let fresh = request_code(&app, &browser, &attempt, &csrf, "guessed@example.com").await?;
    assert_ne!(fresh, code);
    let locked = submit_code(&app, &browser, &attempt, &csrf, &fresh).await?;
    assert_eq!(locked.status, 429);
    assert!(retry_after(&locked) > 0);
    Ok(())
}

#[tokio::test]
async fn d5_per_ip_request_limit_answers_429() -> anyhow::Result<()> {
    let opts =
        AppOptions { limits: Some("sign_in_requests_per_ip_per_minute = 6\nsign_in_burst_per_ip = 3\n".into()), ..Default::default() };
    let app = spawn(opts).await?;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(http.get(app.url("/login/code?attempt=x")).send().await?.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Protocol endpoints are not behind the sign-in limiter.
    assert_eq!(http.get(app.url("/jwks")).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn limits_and_try_counts_hold_across_two_instances_on_one_postgres() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(keyward_testkit::postgres::fresh_database_url).await??;
    let key = random_master_key();
    let shared =
        |l: &str| AppOptions { database: Database::Postgres, database_url: Some(url.clone()), master_key: Some(key.clone()), ..limits(l) };
    let a = spawn(shared("sends_per_address = 4")).await?;
    let b = spawn(shared("sends_per_address = 4")).await?;
    // One browser, alternating between the two instances for every request.
    let browser = Browser::new()?;
    let rp = rp(&a, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&a, &browser, &auth_request(&rp).url).await?;
    let email = "shared@example.com";
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let page = send(app, &browser, &attempt, &csrf, email).await?;
        assert_eq!(page.status, 303, "send {i}: {}", page.body);
    }
    assert_eq!(send(&a, &browser, &attempt, &csrf, email).await?.status, 429, "the fifth send is refused whichever instance counts it");
    assert_eq!(send(&b, &browser, &attempt, &csrf, email).await?.status, 429);

    // The latest code went out through instance b; brute-force it on both.
    let mail = b.smtp.wait_for_mail_to(email, 1, std::time::Duration::from_secs(15)).await?;
    let code = code_in(&mail.text)?;
    for (i, app) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let page = submit_code(app, &browser, &attempt, &csrf, "ZZZZ-ZZZZ").await?;
        assert_eq!(page.status, 422, "guess {i}");
    }
    let right = submit_code(&b, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(right.status, 422, "after five wrong guesses across both instances the code is dead");
    assert!(right.body.contains("Too many wrong tries"));
    Ok(())
}

#[tokio::test]
async fn f8_a_mail_that_cannot_be_sent_leaves_no_usable_code() -> anyhow::Result<()> {
    let app = spawn_binary(AppOptions::default()).await?;
    app.smtp.set_reject(true);
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let sent = send(&app, &browser, &attempt, &csrf, "bounce@example.com").await?;
    assert_eq!(sent.status, 303, "the answer does not wait for the mail server");
    assert!(mail_failed(&app, &browser, &attempt).await?, "the waiting page learns that the email failed");
    let page = browser.get(&app.url(&format!("/login/code?attempt={attempt}"))).await?;
    assert!(unescape(&page.body).contains("We couldn't send the email"), "{}", page.body);
    assert!(!page.body.contains("approval-number"), "no cross-device number for a mail that never left");
    let tried = submit_code(&app, &browser, &attempt, &csrf, "ABCD-EFGH").await?;
    assert!(unescape(&tried.body).contains("We couldn't send the email"));
    assert!(!app.log().contains("bounce@example.com"), "addresses stay out of the log");
    // The mail server recovers: a new code goes out and works.
    app.smtp.set_reject(false);
    let code = request_code(&app, &browser, &attempt, &csrf, "bounce@example.com").await?;
    assert_eq!(submit_code(&app, &browser, &attempt, &csrf, &code).await?.status, 303);
    Ok(())
}

#[tokio::test]
async fn f8_an_unreachable_mail_server_is_retried_then_reported() -> anyhow::Result<()> {
    // A port nothing listens on: every connection is refused (a transient failure).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let app = spawn_binary(AppOptions { smtp_port: Some(closed), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let started = std::time::Instant::now();
    assert_eq!(send(&app, &browser, &attempt, &csrf, "outage@example.com").await?.status, 303);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "the page does not wait for the retries");
    assert!(mail_failed(&app, &browser, &attempt).await?, "the failure is reported once the retries are spent");
    assert!(started.elapsed() >= std::time::Duration::from_millis(2400), "two backoff pauses (0.5 s, 2 s) came first");
    assert_eq!(app.log().matches("retrying").count(), 2, "three tries in all:\n{}", app.log());
    let page = browser.get(&app.url(&format!("/login/code?attempt={attempt}"))).await?;
    assert!(unescape(&page.body).contains("We couldn't send the email"));
    Ok(())
}
