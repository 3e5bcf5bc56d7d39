//! Outages that are not a clean stop (issue 14, findings 13, 14, 16): a hung PostgreSQL, a
//! database that refuses writes, and what the log says meanwhile. Every wait is bounded by a
//! timeout or a condition.

use crate::common::*;
use crate::grant_steps::*;
use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use keyward_testkit::postgres::{PostgresServer, create_database, fresh_database_url};
use std::future::Future;
use std::time::{Duration, Instant};

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

/// Runs `f` with an upper bound; the elapsed time and its output (an error if it hung).
async fn timed<T>(bound: Duration, f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<(Duration, T)> {
    let started = Instant::now();
    let out = tokio::time::timeout(bound, f).await.map_err(|_| anyhow::anyhow!("no answer within {bound:?}"))??;
    Ok((started.elapsed(), out))
}

/// Polls `/readyz` until it answers `want`, for at most `bound`.
async fn wait_ready_status(app: &TestApp, want: u16, bound: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", app.metrics)).send().await
            && r.status().as_u16() == want
        {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < bound, "/readyz did not answer {want} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await; // poll: readiness changes when the database does
    }
}

#[tokio::test]
async fn f13_a_hung_postgresql_answers_503_within_bounded_time_and_commits_nothing_late() -> anyhow::Result<()> {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PostgresServer::start).await??);
    let url = create_database(&pg.server_url())?;
    let app = spawn_binary(AppOptions { database: Database::Postgres, database_url: Some(url), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let callback = sign_in(&app, &browser, &flow, "hung@example.com").await.map_err(|e| anyhow::anyhow!("{e}; log:\n{}", app.log()))?;
    assert_eq!(exchange(&app, APP, &flow, &callback).await?.0, 200);
    // A code issued before the hang; redeeming it during the hang must not consume it.
    let early = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let early_callback = browser.get(&early.url).await?.redirect_to(&app.issuer)?;
    let with_session = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.freeze()).await??;
    let http = reqwest::Client::new();
    let bound = Duration::from_secs(15);
    let (readyz, token, page) = tokio::join!(
        timed(bound, async { Ok(http.get(format!("{}/readyz", app.metrics)).send().await?.status().as_u16()) }),
        timed(bound, exchange(&app, APP, &early, &early_callback)),
        timed(bound, browser.get(&with_session.url)),
    );
    // Whatever happens, the server must run again before the asserts can fail.
    let p = pg.clone();
    let thawed = tokio::task::spawn_blocking(move || p.thaw()).await?;
    let (readyz, token, page) = (readyz?, token?, page?);
    thawed?;

    assert_eq!(readyz.1, 503, "readiness fails while the database hangs");
    assert!(readyz.0 < Duration::from_millis(3_000), "readiness answers within ~2 s, took {:?}", readyz.0);
    let (status, body) = &token.1;
    assert_eq!((*status, s(body, "error")?.as_str()), (503, "temporarily_unavailable"), "token: {body}");
    assert!(token.0 < Duration::from_secs(10), "the token request answered within 10 s, took {:?}", token.0);
    assert_eq!(page.1.status, 503, "{}", page.1.body);
    assert!(page.1.body.contains("briefly unavailable"), "the outage page: {}", page.1.body);
    assert!(page.0 < Duration::from_secs(10), "the page answered within 10 s, took {:?}", page.0);

    wait_ready_status(&app, 200, Duration::from_secs(30)).await?;
    // The request answered 503 committed nothing after the database resumed: the code is
    // still unused, and still single-use.
    let (status, redeemed) = exchange(&app, APP, &early, &early_callback).await?;
    assert_eq!(status, 200, "the code answered 503 during the hang was not consumed: {redeemed}");
    assert_eq!(exchange(&app, APP, &early, &early_callback).await?.0, 400);
    Ok(())
}

/// Sets `default_transaction_read_only` on the app's database and ends its sessions, so the
/// pool reconnects into read-only sessions (PostgreSQL answers writes with 25006).
fn set_read_only(database_url: &str, on: bool) -> anyhow::Result<()> {
    let parsed = url::Url::parse(database_url)?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    let mut admin_url = parsed.clone();
    admin_url.set_path("/postgres");
    let mut admin = PgConnection::establish(admin_url.as_str())?;
    diesel::sql_query(format!("ALTER DATABASE {name} SET default_transaction_read_only = {}", if on { "on" } else { "off" }))
        .execute(&mut admin)?;
    diesel::sql_query(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).execute(&mut admin)?;
    Ok(())
}

#[tokio::test]
async fn f14_a_read_only_database_is_an_outage_503_and_not_ready() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(fresh_database_url).await??;
    let app = spawn_binary(AppOptions { database: Database::Postgres, database_url: Some(url.clone()), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let callback = sign_in(&app, &browser, &flow, "readonly@example.com").await.map_err(|e| anyhow::anyhow!("{e}; log:\n{}", app.log()))?;
    let with_session = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);

    let u = url.clone();
    tokio::task::spawn_blocking(move || set_read_only(&u, true)).await??;
    wait_ready_status(&app, 503, Duration::from_secs(10)).await?;
    let (token, page) = tokio::join!(exchange(&app, APP, &flow, &callback), browser.get(&with_session.url));
    let (status, body) = token?;
    assert_eq!((status, s(&body, "error")?.as_str()), (503, "temporarily_unavailable"), "token: {body}");
    let page = page?;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("briefly unavailable") && page.body.contains("reload"), "the outage page: {}", page.body);

    let u = url.clone();
    tokio::task::spawn_blocking(move || set_read_only(&u, false)).await??;
    wait_ready_status(&app, 200, Duration::from_secs(10)).await?;
    assert_eq!(exchange(&app, APP, &flow, &callback).await?.0, 200, "writes work again");
    assert!(!app.log().contains(" ERROR "), "an outage is not an error per request:\n{}", app.log());
    Ok(())
}

#[tokio::test]
async fn f16_a_postgresql_outage_is_logged_once_and_its_end_once() -> anyhow::Result<()> {
    let pg = std::sync::Arc::new(tokio::task::spawn_blocking(PostgresServer::start).await??);
    let url = create_database(&pg.server_url())?;
    let app = spawn_binary(AppOptions { database: Database::Postgres, database_url: Some(url), ..Default::default() }).await?;
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.pause()).await??;
    // Requests and probes during the outage, while the pool keeps trying to reconnect: until
    // 40 requests were refused and the pool has failed to connect several times.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).redirect(reqwest::redirect::Policy::none()).build()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let started = Instant::now();
    let mut refused = 0;
    while refused < 30 || started.elapsed() < Duration::from_secs(6) {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "requests did not get their 503s in time");
        let mut pages = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (http, url) = (http.clone(), flow.url.clone());
            pages.spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) });
        }
        assert_eq!(http.get(format!("{}/readyz", app.metrics)).send().await?.status(), 503);
        while let Some(status) = pages.join_next().await {
            assert_eq!(status??, 503, "log:\n{}", app.log());
            refused += 1;
        }
    }
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.resume()).await??;
    wait_ready_status(&app, 200, Duration::from_secs(30)).await?;

    let log = app.log();
    let lines = |level: &str| log.lines().filter(|l| l.contains(level)).count();
    let down = log.lines().filter(|l| l.contains("database unreachable")).count();
    let back = log.lines().filter(|l| l.contains("database reachable again")).count();
    assert_eq!(lines(" ERROR "), 0, "no ERROR line per reconnect or per request:\n{log}");
    assert_eq!((down, back), (1, 1), "the outage is logged once, and its end once:\n{log}");
    assert!(lines(" WARN ") <= 3, "a few WARN lines at most:\n{log}");
    Ok(())
}
