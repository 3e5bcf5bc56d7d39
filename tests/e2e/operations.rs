//! Running Keyward (issue 6): Prometheus metrics and the probes on a private listener apart
//! from the public one; graceful shutdown; configuration reload on SIGHUP.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

#[tokio::test]
async fn metrics_and_probes_are_served_on_the_private_listener_only() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[]);
    let (_, attempt, csrf) = open_login(&app, &browser, &flow.url).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "metrics@example.com").await?;
    assert_eq!(submit_code(&app, &browser, &attempt, &csrf, "ZZZZ-ZZZZ").await?.status, 422);
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let (status, tokens) = exchange(&app, APP, &flow, &done.redirect_to(&app.issuer)?).await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(refresh(&app, APP, &s(&tokens, "refresh_token")?).await?.0, 200);

    assert_eq!(reqwest::get(app.url("/metrics")).await?.status(), 404, "not on the public listener");
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(reqwest::get(format!("{}{probe}", app.metrics)).await?.status(), 200, "{probe} on the private listener");
    }
    let text = reqwest::get(format!("{}/metrics", app.metrics)).await?.text().await?;
    let expect = [
        ("keyward_http_request_duration_seconds_count{endpoint=\"/token\",method=\"POST\",status=\"200\"}", 2.0),
        ("keyward_http_request_duration_seconds_count{endpoint=\"/login/code\",method=\"POST\",status=\"422\"}", 1.0),
        ("keyward_sign_ins_total{method=\"email_code\"}", 1.0),
        ("keyward_sign_in_failures_total{reason=\"wrong_code\"}", 1.0),
        ("keyward_emails_total{outcome=\"sent\"}", 1.0),
        ("keyward_tokens_issued_total{grant=\"with_refresh\"}", 2.0),
        ("keyward_db_pool_max_connections", 4.0),
    ];
    for (series, want) in expect {
        assert_eq!(metric(&text, series), Some(want), "{series} in:\n{text}");
    }
    assert!(text.contains("# TYPE keyward_rate_limited_total counter"), "declared before the first event");
    assert!(metric(&text, "keyward_db_pool_open_connections").is_some_and(|n| n >= 1.0));
    Ok(())
}

#[tokio::test]
async fn f4_sigterm_drains_requests_and_email_then_exits_0_and_nothing_issued_is_lost() -> anyhow::Result<()> {
    use std::time::Duration;
    let mut app = spawn_binary(AppOptions::default()).await?;
    let browser = Browser::new()?;
    // A refresh token issued before the shutdown, to use after the restart (F5).
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[]);
    let callback = sign_in(&app, &browser, &flow, "before@example.com").await?;
    let (_, tokens) = exchange(&app, APP, &flow, &callback).await?;
    let rt = s(&tokens, "refresh_token")?;

    // A sign-in email still being sent when the signal arrives (the mail server is slow).
    app.smtp.set_delay(Duration::from_millis(1500));
    let other = Browser::new()?;
    let pending = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let (_, attempt, csrf) = open_login(&app, &other, &pending.url).await?;
    let sent =
        other.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "during@example.com")]).await?;
    assert_eq!(sent.status, 303);

    // Load while the signal arrives, checking readiness first as a load balancer would: every
    // request sent gets a whole, right answer, and readiness turns 503 while Keyward still serves.
    let load = {
        let (url, ready) = (app.url("/.well-known/openid-configuration"), format!("{}/readyz", app.metrics));
        tokio::spawn(async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            for ok in 0..2000 {
                if !http.get(&ready).send().await.is_ok_and(|r| r.status() == 200) {
                    // Draining: readiness is 503 but the public listener still answers.
                    let late = http.get(&url).send().await.expect("still serving during the shutdown delay");
                    assert_eq!(late.status(), 200);
                    return ok + 1;
                }
                let r = http.get(&url).send().await.expect("no broken answer");
                assert_eq!(r.status(), 200, "a request that got an answer got the right one");
                let body: serde_json::Value = r.json().await.expect("a whole JSON body");
                assert!(body["issuer"].is_string());
                tokio::time::sleep(Duration::from_millis(5)).await; // poll: requests keep flowing until readiness turns 503
            }
            panic!("readiness never turned 503");
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // black-box: requests are in flight when the binary gets SIGTERM
    app.signal("TERM")?;
    let status = app.wait_exit(Duration::from_secs(25)).await?;
    assert!(status.success(), "a clean exit after draining: {status}");
    assert!(load.await? > 0);
    // The email in flight was sent before the process exited.
    let mail = app.smtp.wait_for_mail_to("during@example.com", 0, Duration::from_secs(1)).await?;
    let code = keyward_testkit::browser::code_in(&mail.text)?;
    assert!(app.log().contains("Keyward stopped"));

    // Restart on the same database: the emailed code and the old refresh token still work.
    let again = spawn_binary(AppOptions {
        database_url: Some(app.database_url.clone()),
        master_key: Some(master_key_of(&app)?),
        port: Some(url::Url::parse(&app.issuer)?.port().unwrap()),
        ..Default::default()
    })
    .await?;
    let done = submit_code(&again, &other, &attempt, &csrf, &code).await?;
    assert_eq!(done.status, 303, "the code sent during shutdown signs in after the restart: {}", done.body);
    assert_eq!(refresh(&again, APP, &rt).await?.0, 200, "F5: refresh tokens survive a restart");
    Ok(())
}

/// The master key in a test app's config file.
fn master_key_of(app: &TestApp) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(app.config_path())?;
    let line = text.lines().find(|l| l.starts_with("master_key = ")).ok_or_else(|| anyhow::anyhow!("no master key"))?;
    Ok(line.trim_start_matches("master_key = ").trim_matches('"').to_owned())
}

#[tokio::test]
async fn sighup_reloads_clients_without_dropping_requests_and_a_bad_file_keeps_the_old_config() -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let app = spawn_binary(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let late = |app: &TestApp| authorize(app, "late", "http://localhost:9995/callback", "openid", &[]);
    assert_eq!(browser.get(&late(&app).url).await?.status, 400, "not registered yet");

    // Requests keep flowing during the reloads.
    let load = {
        let url = app.url("/jwks");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..200 {
                let r = http.get(&url).send().await.expect("no request is dropped");
                assert_eq!(r.status(), 200);
                tokio::time::sleep(Duration::from_millis(10)).await; // poll: requests keep flowing during the reload
            }
        })
    };
    let original = std::fs::read_to_string(app.config_path())?;
    let added = format!(
        "{original}\n[[clients]]\nid = \"late\"\nname = \"Late App\"\nsecret_hashes = [\"{}\"]\nredirect_uris = [\"http://localhost:9995/callback\"]\nfirst_party = true\n",
        keyward_core::secret::hash_secret("late-secret-0123456789abcdefghijklmnopqrstuvwxyz")
    );
    std::fs::write(app.config_path(), &added)?;
    let out = std::process::Command::new(bin()).args(["--config"]).arg(app.config_path()).args(["config", "reload"]).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started = Instant::now();
    while browser.get(&late(&app).url).await?.status == 400 {
        assert!(started.elapsed() < Duration::from_secs(5), "the new client was not loaded; log:\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(50)).await; // poll: the reloaded client answers
    }
    assert!(browser.get(&late(&app).url).await?.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")));

    // A bad file: refused with config check's message, and the running config stays.
    std::fs::write(app.config_path(), format!("colour = \"blue\"\n{added}"))?;
    app.signal("HUP")?;
    let started = Instant::now();
    while !app.log().contains("configuration not reloaded") {
        assert!(started.elapsed() < Duration::from_secs(5), "no refusal logged:\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(50)).await; // poll: the binary logs the refusal
    }
    assert!(app.log().contains("colour") && app.log().contains("fix:"), "the message names the key and the fix, as config check does");
    // A setting that needs a restart is refused too.
    std::fs::write(app.config_path(), added.replace(&app.issuer, "http://localhost:1"))?;
    app.signal("HUP")?;
    let started = Instant::now();
    while !app.log().contains("can only change with a restart") {
        assert!(started.elapsed() < Duration::from_secs(5), "no refusal logged:\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(50)).await; // poll: the binary logs the refusal
    }
    assert!(browser.get(&late(&app).url).await?.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "still serving");
    assert_eq!(reqwest::get(format!("{}/readyz", app.metrics)).await?.status(), 200);
    load.await?;
    Ok(())
}
