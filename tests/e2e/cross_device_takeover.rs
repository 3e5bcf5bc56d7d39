//! Issue 14, finding 1: the cross-device continuation signs in exactly the address that
//! another device approved, never "the attempt's latest challenge". The attacker is alone: in
//! their own browser they ask for a code to the victim's address and one to their own, approve
//! their *own* link from a second device with the number their browser shows, and continue.
//! On PostgreSQL (SQLite's single writer hid it) that used to sign their browser in as the
//! victim. Each test below plays it a different way and proves the victim is never signed in.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page, link_in};
use std::time::Duration;

const VICTIM: &str = "victim@example.com";

/// What the attacker's browser ended up with.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// `POST /login/continue` signed the browser in; the RP's ID token names this address.
    SignedInAs(String),
    /// Nothing to continue (the attacker's own link was dead, or the approval withdrawn).
    NotSignedIn,
}

fn approval_number(page: &Page) -> anyhow::Result<String> {
    let i = page.body.find("approval-number\">").ok_or_else(|| anyhow::anyhow!("no approval number on:\n{}", page.body))? + 17;
    Ok(page.body[i..i + 2].to_owned())
}

/// One attacker's login attempt, opened in their browser.
struct Attempt {
    browser: Browser,
    rp: Rp,
    req: AuthRequest,
    attempt: String,
    csrf: String,
}

async fn open_attempt(app: &TestApp) -> anyhow::Result<Attempt> {
    let browser = Browser::new()?;
    let rp = rp(app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let req = auth_request(&rp);
    let (_, attempt, csrf) = open_login(app, &browser, &req.url).await?;
    Ok(Attempt { browser, rp, req, attempt, csrf })
}

/// POST /login/email from the attempt's browser, without waiting for the mail.
async fn ask_for_code(url: String, http: reqwest::Client, attempt: String, csrf: String, email: String) -> anyhow::Result<()> {
    let resp = http.post(url).form(&[("attempt", attempt.as_str()), ("csrf", csrf.as_str()), ("email", email.as_str())]).send().await?;
    let status = resp.status();
    anyhow::ensure!(status == 303, "asking for a code answered {status}: {}", resp.text().await.unwrap_or_default());
    Ok(())
}

/// The attacker's second device approves the link of the newest sign-in mail to `own` with
/// the number the attempt's page shows; then the attacker's browser continues.
async fn approve_own_link_and_continue(app: &TestApp, a: Attempt, own: &str, mails_before: usize) -> anyhow::Result<Outcome> {
    let mail = app.smtp.wait_for_mail_about(own, "sign-in code", mails_before, Duration::from_secs(15)).await?;
    let link = link_in(&mail.text)?;
    let code_page = a.browser.get(&app.url(&format!("/login/code?attempt={}", a.attempt))).await?;
    let number = approval_number(&code_page)?;
    let phone = Browser::new()?;
    let page = phone.get(&link).await?;
    if page.status == 200 {
        let posted = phone
            .post_form(&app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?), ("number", &number)])
            .await?;
        assert!(posted.status == 200 || posted.status == 410, "approving answered {}:\n{}", posted.status, posted.body);
    } else {
        assert_eq!(page.status, 410, "the attacker's own link is dead once a newer code replaced it:\n{}", page.body);
    }
    let done = a.browser.post_form(&app.url("/login/continue"), &[("attempt", &a.attempt), ("csrf", &a.csrf)]).await?;
    if done.status == 409 {
        return Ok(Outcome::NotSignedIn);
    }
    assert_eq!(done.status, 303, "continuing answered {}:\n{}", done.status, done.body);
    let callback = done.redirect_to(&app.issuer)?;
    let claims = redeem(&a.rp, &callback, a.req).await?;
    Ok(Outcome::SignedInAs(claims.email().map(|e| e.as_str().to_owned()).unwrap_or_default()))
}

fn sign_in_mails_to(app: &TestApp, to: &str) -> usize {
    app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject.contains("sign-in code")).count()
}

async fn postgres_app() -> anyhow::Result<TestApp> {
    // Many attempts from one address: the per-network send limit is out of the way.
    spawn(AppOptions {
        database: Database::Postgres,
        limits: Some("sends_per_ip = 100000\nsends_per_address = 100000\nsign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000".into()),
        ..Default::default()
    })
    .await
}

/// Live (unconsumed) challenges of the attempt, gray-box.
async fn live_challenges(app: &TestApp, attempt: &str) -> anyhow::Result<Vec<String>> {
    let id = attempt.to_owned();
    with_db(app, move |c| {
        use diesel::prelude::*;
        use keyward_store::schema::email_challenges as ec;
        Ok(ec::table.filter(ec::attempt_id.eq(&id)).filter(ec::consumed_at.is_null()).select(ec::email).load::<String>(c)?)
    })
    .await
}

#[tokio::test]
async fn f1_codes_for_two_addresses_in_the_same_second_never_sign_in_the_victim_on_postgres() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let mut same_second = 0;
    for i in 0..25 {
        let attacker = format!("attacker{i}@example.com");
        let a = open_attempt(&app).await?;
        let before = sign_in_mails_to(&app, &attacker);
        ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), VICTIM.into()).await?;
        ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), attacker.clone()).await?;
        let id = a.attempt.clone();
        let seconds = with_db(&app, move |c| {
            use diesel::prelude::*;
            use keyward_store::schema::email_challenges as ec;
            Ok(ec::table.filter(ec::attempt_id.eq(&id)).select(ec::created_at).load::<i64>(c)?)
        })
        .await?;
        if seconds.len() == 2 && seconds[0] == seconds[1] {
            same_second += 1;
        }
        assert_eq!(live_challenges(&app, &a.attempt).await?, vec![attacker.clone()], "only the newest code lives");
        let outcome = approve_own_link_and_continue(&app, a, &attacker, before).await?;
        assert_eq!(outcome, Outcome::SignedInAs(attacker), "the approved address is the one signed in, never the victim");
    }
    assert!(same_second >= 10, "most pairs were asked for within one second ({same_second} of 25)");
    Ok(())
}

#[tokio::test]
async fn f1_concurrent_codes_for_two_addresses_never_sign_in_the_victim_on_postgres() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let mut signed_in_as_attacker = 0;
    for i in 0..25 {
        let attacker = format!("racer{i}@example.com");
        let a = open_attempt(&app).await?;
        let before = sign_in_mails_to(&app, &attacker);
        let (victim_asked, attacker_asked) = tokio::join!(
            ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), VICTIM.into()),
            ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), attacker.clone()),
        );
        victim_asked?;
        attacker_asked?;
        assert_eq!(live_challenges(&app, &a.attempt).await?.len(), 1, "two concurrent requests leave one live challenge");
        match approve_own_link_and_continue(&app, a, &attacker, before).await? {
            Outcome::SignedInAs(email) => {
                assert_eq!(email, attacker, "the victim is never signed in");
                signed_in_as_attacker += 1;
            }
            Outcome::NotSignedIn => {}
        }
    }
    // Whichever request came second won: the attacker's own sign-in still works when theirs did.
    assert!(signed_in_as_attacker > 0, "a legitimate cross-device sign-in still works");
    Ok(())
}

/// Waits until `n` of the app's database sessions wait on a lock (the code requests queued
/// behind the row lock the test holds).
async fn until_waiting_on_locks(app: &TestApp, n: i64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = with_db(app, |c| {
            use diesel::prelude::*;
            Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database())",
            ))
            .get_result::<i64>(c)?)
        })
        .await?;
        if waiting >= n {
            return Ok(());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "only {waiting} of {n} requests reached the lock");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn f1_forced_interleaving_of_two_code_requests_leaves_one_live_code_and_never_signs_in_the_victim() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let attacker = "interleaver@example.com";
    let a = open_attempt(&app).await?;
    let before = sign_in_mails_to(&app, attacker);

    // The test holds the attempt's row lock, so both code requests run up to it and wait:
    // the deterministic version of two requests overlapping in the database.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = app.database_url.clone();
    let attempt_id = a.attempt.clone();
    let holder = std::thread::spawn(move || -> anyhow::Result<()> {
        use diesel::connection::SimpleConnection;
        let pool = keyward_store::connect(&url, 1)?;
        let mut conn = pool.get()?;
        let locked = conn
            .batch_execute(&format!("BEGIN; SELECT id FROM login_attempts WHERE id = '{}' FOR UPDATE;", attempt_id.replace('\'', "")))
            .map_err(anyhow::Error::from);
        let ok = locked.is_ok();
        locked_tx.send(locked).ok();
        if ok {
            release_rx.recv_timeout(Duration::from_secs(60)).ok();
            conn.batch_execute("COMMIT;")?;
        }
        Ok(())
    });
    locked_rx.recv_timeout(Duration::from_secs(20))??;

    // The attacker's own code first, the victim's in a later second (so that, as the old
    // ordering by time saw it, the victim's was the attempt's latest challenge).
    let first =
        tokio::spawn(ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), attacker.into()));
    until_waiting_on_locks(&app, 1).await?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() == started {
        tokio::task::yield_now().await;
    }
    let second =
        tokio::spawn(ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), VICTIM.into()));
    until_waiting_on_locks(&app, 2).await?;
    release_tx.send(())?;
    holder.join().map_err(|_| anyhow::anyhow!("the lock holder panicked"))??;
    first.await??;
    second.await??;

    assert_eq!(live_challenges(&app, &a.attempt).await?, vec![VICTIM.to_owned()], "the later request killed the earlier code");
    let outcome = approve_own_link_and_continue(&app, a, attacker, before).await?;
    assert_eq!(outcome, Outcome::NotSignedIn, "the attacker's dead link approves nothing, and the victim is never signed in");
    Ok(())
}

#[tokio::test]
async fn f1_a_new_code_request_withdraws_an_approval_given_for_the_previous_one() -> anyhow::Result<()> {
    let app = postgres_app().await?;
    let attacker = "approver@example.com";
    let a = open_attempt(&app).await?;
    let before = sign_in_mails_to(&app, attacker);
    ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), attacker.into()).await?;
    let mail = app.smtp.wait_for_mail_about(attacker, "sign-in code", before, Duration::from_secs(15)).await?;
    let code_page = a.browser.get(&app.url(&format!("/login/code?attempt={}", a.attempt))).await?;
    let number = approval_number(&code_page)?;
    let phone = Browser::new()?;
    let page = phone.get(&link_in(&mail.text)?).await?;
    let approved = phone
        .post_form(&app.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?), ("number", &number)])
        .await?;
    assert_eq!(approved.status, 200, "{}", approved.body);
    // Approved for the attacker's own address; now a code to the victim's before continuing.
    ask_for_code(app.url("/login/email"), a.browser.http.clone(), a.attempt.clone(), a.csrf.clone(), VICTIM.into()).await?;
    let done = a.browser.post_form(&app.url("/login/continue"), &[("attempt", &a.attempt), ("csrf", &a.csrf)]).await?;
    assert_eq!(done.status, 409, "the approval did not carry over to the new code:\n{}", done.body);
    let status: serde_json::Value =
        a.browser.http.get(app.url(&format!("/login/status?attempt={}", a.attempt))).send().await?.json().await?;
    assert_eq!(status["approved"], false);
    Ok(())
}
