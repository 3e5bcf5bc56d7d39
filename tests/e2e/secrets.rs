//! Issue 14, finding 12: secrets stay out of the log. `serve` runs at TRACE with an SMTP
//! password (from the environment) and a database URL carrying a password, sends mail with
//! those credentials, and refuses a reload that changes the database password; neither
//! value ever appears in what it logged.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use std::time::{Duration, Instant};

const SMTP_PASSWORD: &str = "smtp-pass-f12-Wm9vcCBaaW5n";
const DB_PASSWORD: &str = "db-pass-f12-T3BlblNlc2FtZQ";
const NEW_DB_PASSWORD: &str = "db-pass-f12-bmV3LXBhc3N3b3Jk";

async fn wait_for_log(app: &TestApp, text: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while !app.log().contains(text) {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(15), "no {text:?} in the log:\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(50)).await; // poll: a line appears in the binary's log
    }
    Ok(())
}

#[tokio::test]
async fn f12_serve_logs_neither_the_smtp_password_nor_the_database_password() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(keyward_testkit::postgres::fresh_database_url).await??;
    // The test server trusts local connections: the password is carried, not checked.
    let with_password = url.replacen("postgres://keyward@", &format!("postgres://keyward:{DB_PASSWORD}@"), 1);
    anyhow::ensure!(with_password != url, "unexpected URL {url}");
    let env = [("KEYWARD_LOG", "trace"), ("KEYWARD_MAIL__SMTP__USERNAME", "keyward"), ("KEYWARD_MAIL__SMTP__PASSWORD", SMTP_PASSWORD)];
    let app = spawn_binary(AppOptions {
        database: Database::Postgres,
        database_url: Some(with_password.clone()),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    })
    .await?;

    // A sign-in email goes out through SMTP with the credentials (the sink offers no AUTH,
    // so sending fails, and the failure is logged).
    let browser = Browser::new()?;
    let rp = rp(&app, keyward_testkit::app::CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let form = [("attempt", attempt.as_str()), ("csrf", csrf.as_str()), ("email", "f12@example.com")];
    assert_eq!(browser.post_form(&app.url("/login/email"), &form).await?.status, 303);
    wait_for_log(&app, "email failed").await?;

    // A reload with a new database password is refused (the setting is named, not its value).
    let config = std::fs::read_to_string(app.config_path())?;
    std::fs::write(app.config_path(), config.replace(DB_PASSWORD, NEW_DB_PASSWORD))?;
    app.signal("HUP")?;
    wait_for_log(&app, "database.url can only change with a restart").await?;

    let log = app.log();
    assert!(log.contains("TRACE"), "the log is at TRACE:\n{log}");
    for secret in [SMTP_PASSWORD, DB_PASSWORD, NEW_DB_PASSWORD] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
    Ok(())
}
