//! Issue 14, findings 6, 11 and 22: what a refused or failed email sign-in may cost and
//! reveal. A refused request buys no Argon2 work and writes nothing; under a sign-up policy
//! that mails only known addresses, a failed email answers exactly as an unknown address does.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;

use crate::limits::{limits as limited, send};

/// The value of one Prometheus series on the private listener (0 when absent).
async fn metric(app: &TestApp, series: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{}/metrics", app.metrics)).await?.text().await?;
    Ok(text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0))
}

async fn rate_limit_rows(app: &TestApp) -> anyhow::Result<i64> {
    with_db(app, |c| {
        use diesel::prelude::*;
        Ok(keyward_store::schema::rate_limits::table.count().get_result(c)?)
    })
    .await
}

#[tokio::test]
async fn f6_f22_a_refused_code_request_costs_no_argon2_work_and_writes_nothing() -> anyhow::Result<()> {
    let app = spawn(limited("sends_per_ip = 2")).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    for i in 0..2 {
        assert_eq!(send(&app, &browser, &attempt, &csrf, &format!("first{i}@example.com")).await?.status, 303);
    }
    let hashes = r#"keyward_argon2_operations_total{op="hash"}"#;
    assert_eq!(metric(&app, hashes).await?, 2.0, "one Argon2 hash per accepted request");
    let rows = rate_limit_rows(&app).await?;
    assert_eq!(rows, 4, "two per-address windows, one per-network window, and the login-attempt window (finding 3)");

    // The network's limit is reached: every further request is refused, each for a new
    // address (an attacker's cheapest way to make the server work and store rows).
    for i in 0..20 {
        let page = send(&app, &browser, &attempt, &csrf, &format!("flood{i}@example.com")).await?;
        assert_eq!(page.status, 429, "{}", page.body);
    }
    assert_eq!(metric(&app, hashes).await?, 2.0, "finding 6: refused requests computed no Argon2 hash");
    assert_eq!(rate_limit_rows(&app).await?, rows, "finding 22: refused requests stored no rate-limit rows");
    Ok(())
}

/// Everything a person (or a prober) can see of an attempt's code page and status.
async fn what_the_prober_sees(app: &TestApp, browser: &Browser, attempt: &str, csrf: &str, email: &str) -> anyhow::Result<Vec<String>> {
    let code_page = browser.get(&app.url(&format!("/login/code?attempt={attempt}"))).await?;
    let status: serde_json::Value = browser.http.get(app.url(&format!("/login/status?attempt={attempt}"))).send().await?.json().await?;
    let wrong = submit_code(app, browser, attempt, csrf, "ZZZZ-ZZZZ").await?;
    let scrub = |body: &str| body.replace(attempt, "ATTEMPT").replace(csrf, "CSRF").replace(email, "EMAIL");
    let scrub_numbers = |body: String| {
        // The approval number is random per attempt.
        match body.find("approval-number\">") {
            Some(i) => format!("{}NN{}", &body[..i + 17], &body[i + 19..]),
            None => body,
        }
    };
    Ok(vec![
        code_page.status.to_string(),
        scrub_numbers(scrub(&code_page.body)),
        status.to_string(),
        wrong.status.to_string(),
        scrub_numbers(scrub(&wrong.body)),
    ])
}

/// Waits until the app has recorded how the email for `email` went.
async fn delivery_recorded(app: &TestApp, email: &str) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let e = email.to_owned();
        let delivery = with_db(app, move |c| {
            use diesel::prelude::*;
            use keyward_store::schema::email_challenges as ec;
            Ok(ec::table.filter(ec::email.eq(&e)).select(ec::delivery).first::<String>(c).optional()?)
        })
        .await?;
        match delivery.as_deref() {
            Some("pending") | None if std::time::Instant::now() < deadline => tokio::task::yield_now().await,
            Some(d) => return Ok(d.to_owned()),
            None => anyhow::bail!("no challenge for {email}"),
        }
    }
}

#[tokio::test]
async fn f11_under_invite_only_a_failed_email_answers_as_an_unknown_address_does() -> anyhow::Result<()> {
    let app = spawn(AppOptions { signup: "invite_only", ..Default::default() }).await?;
    let invited = crate::accounts::keyward(&app, &["users", "invite", "member@example.com"]).await;
    assert!(invited.status.success(), "{}", String::from_utf8_lossy(&invited.stderr));
    app.smtp.wait_for_mail_to("member@example.com", 0, std::time::Duration::from_secs(10)).await?;
    // The mail server now refuses everything: the member's sign-in email fails.
    app.smtp.set_reject(true);
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;

    let mut seen = Vec::new();
    for email in ["member@example.com", "stranger@example.com"] {
        let browser = Browser::new()?;
        let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
        let sent = send(&app, &browser, &attempt, &csrf, email).await?;
        assert_eq!(sent.status, 303);
        delivery_recorded(&app, email).await?;
        let view = what_the_prober_sees(&app, &browser, &attempt, &csrf, email).await?;
        assert!(!view[1].contains("t send the email"), "no failure notice for {email}:\n{}", view[1]);
        seen.push(view);
    }
    assert_eq!(seen[0], seen[1], "the member's failed email and the stranger's suppressed one look the same");
    Ok(())
}

#[tokio::test]
async fn f11_with_open_sign_up_a_failed_email_is_still_reported_to_the_person() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    app.smtp.set_reject(true);
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let browser = Browser::new()?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    assert_eq!(send(&app, &browser, &attempt, &csrf, "anyone@example.com").await?.status, 303);
    assert_eq!(delivery_recorded(&app, "anyone@example.com").await?, "failed");
    let page = browser.get(&app.url(&format!("/login/code?attempt={attempt}"))).await?;
    assert!(page.body.contains("t send the email"), "every address would have been mailed, so saying so reveals nothing:\n{}", page.body);
    Ok(())
}

/// A memory figure of the server from /proc (`VmHWM`: peak resident, `VmRSS`: resident now), in kB.
fn memory_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Issue 14, finding 21: a flood of code requests (each an Argon2 hash of 19 MiB) runs at
/// most one hash per core; past the gate's short queue requests are shed with 503 and
/// `Retry-After` (counted in `keyward_argon2_shed_total`), and peak memory stays bounded.
#[tokio::test]
async fn f21_a_flood_of_code_requests_is_shed_past_the_argon2_gate_and_memory_stays_bounded() -> anyhow::Result<()> {
    // The binary: its memory is measured from /proc.
    let app = spawn_binary(limited("sends_per_ip = 1000000\nsends_per_address = 1000000")).await?;
    let browser = Browser::fresh_connections()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let before = memory_kb(app.pid(), "VmHWM:");
    let (mut accepted, mut shed) = (0, 0);
    for wave in 0..4 {
        let emails: Vec<String> = (0..48).map(|i| format!("flood{wave}-{i}@example.com")).collect();
        let sends = emails.iter().map(|email| send(&app, &browser, &attempt, &csrf, email));
        for page in futures_util::future::join_all(sends).await {
            let page = page?;
            match page.status.as_u16() {
                303 => accepted += 1,
                503 => {
                    shed += 1;
                    assert_eq!(page.header("retry-after").as_deref(), Some("2"), "a shed request says when to retry");
                    assert!(page.body.contains("Keyward is busy"), "a friendly page: {}", page.body);
                }
                other => panic!("a code request answered {other}: {}", page.body),
            }
        }
    }
    let peak = memory_kb(app.pid(), "VmHWM:");
    // The memory freed after the flood goes back to the system: poll until it has.
    let mut idle = memory_kb(app.pid(), "VmRSS:");
    for _ in 0..100 {
        if idle < before + 24 * 1024 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // poll: RSS back near start-up
        idle = memory_kb(app.pid(), "VmRSS:");
    }
    println!(
        "f21: {accepted} accepted, {shed} shed; peak RSS {} MB, idle after {} MB (after start-up {} MB)",
        peak / 1024,
        idle / 1024,
        before / 1024
    );
    assert!(accepted > 0, "requests within the gate's capacity are served");
    assert!(shed > 0, "requests past the gate's capacity are shed");
    assert_eq!(metric(&app, r#"keyward_argon2_shed_total{op="hash"}"#).await?, f64::from(shed), "every shed request is counted");
    // One 19 MiB Argon2 buffer per core at most, and some slack for the requests themselves.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let bound = cores * 19 * 1024 + 32 * 1024;
    assert!(peak - before < bound, "peak RSS grew {} MB under a flood of Argon2 work (bound {} MB)", (peak - before) / 1024, bound / 1024);
    assert!(idle < before + 24 * 1024, "idle RSS {} MB after the flood (start-up {} MB)", idle / 1024, before / 1024);
    Ok(())
}
