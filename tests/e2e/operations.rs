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
