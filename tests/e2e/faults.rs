//! Resilience (CHECKLIST F1, F2): while the database is down, liveness stays up, readiness
//! fails, protocol endpoints answer 503 `temporarily_unavailable` with `no-store`, pages say
//! what to do, and nothing half-made is left; when the database returns, service resumes by
//! itself and codes issued before the outage are still single-use.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use keyward_testkit::postgres::{PostgresServer, create_database};
use std::time::{Duration, Instant};

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

#[tokio::test]
async fn f1_f2_a_database_outage_is_answered_with_503_and_service_resumes_by_itself() -> anyhow::Result<()> {
    let pg = tokio::task::spawn_blocking(PostgresServer::start).await??;
    let url = create_database(&pg.server_url())?;
    let app = spawn(AppOptions { database: Database::Postgres, database_url: Some(url), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[]);
    let callback = sign_in(&app, &browser, &flow, "outage@example.com").await?;
    let (_, tokens) = exchange(&app, APP, &flow, &callback).await?;
    let rt = s(&tokens, "refresh_token")?;
    // A code issued before the outage and redeemed after it.
    let early = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let early_callback = browser.get(&early.url).await?.redirect_to(&app.issuer)?;

    let pg = std::sync::Arc::new(pg);
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.pause()).await??;

    let http = reqwest::Client::new();
    let stranger = Browser::new()?;
    let (with_session, without) =
        (authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]), authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]));
    let (healthz, readyz, token, refreshed, page, login) = tokio::join!(
        http.get(app.url("/healthz")).send(),
        http.get(app.url("/readyz")).send(),
        exchange(&app, APP, &early, &early_callback),
        refresh(&app, APP, &rt),
        browser.get(&with_session.url),
        stranger.get(&without.url),
    );
    assert_eq!(healthz?.status(), 200, "F2: liveness stays up");
    assert_eq!(readyz?.status(), 503, "F2: readiness fails");
    for (what, (status, body)) in [("token", token?), ("refresh", refreshed?)] {
        assert_eq!((status, s(&body, "error")?.as_str()), (503, "temporarily_unavailable"), "F1: {what}");
    }
    let (page, login) = (page?, login?);
    for p in [&page, &login] {
        assert_eq!(p.status, 503, "{}", p.body);
        assert!(p.body.contains("briefly unavailable") && p.body.contains("reload"), "the page says what to do: {}", p.body);
        assert!(p.location.is_none(), "no redirect, no code");
    }
    let direct = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let token_resp = direct
        .post(app.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
        .send()
        .await?;
    assert_eq!(token_resp.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.resume()).await??;
    let started = Instant::now();
    while http.get(app.url("/readyz")).send().await?.status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "readiness did not come back by itself");
        tokio::time::sleep(Duration::from_millis(200)).await; // poll: readiness returns once PostgreSQL resumes
    }
    // Service resumes: the early code works once, the refresh token still works.
    let (status, redeemed) = exchange(&app, APP, &early, &early_callback).await?;
    assert_eq!(status, 200, "the code survived the outage: {redeemed}");
    assert_eq!(exchange(&app, APP, &early, &early_callback).await?.0, 400, "and is still single-use");
    assert_eq!(refresh(&app, APP, &rt).await?.0, 200);
    Ok(())
}
