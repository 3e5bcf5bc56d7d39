//! Issue 14, finding 3: unauthenticated requests may not grow the database without bound.
//! Every `/authorize` parameter has a bound (refused with `invalid_request` naming it, on the
//! verified redirect URI), the whole request is capped, and new login attempts are limited per
//! network in the database (shared by every instance; a refused one stores nothing) — while a
//! signed-in browser's SSO is never counted.

use crate::common::*;
use keyward_core::authorize::{MAX_AUTHORIZATION_REQUEST_BYTES, PARAMETER_LIMITS};
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page};

/// The number of rows in `login_attempts`.
pub(crate) async fn attempt_rows(app: &TestApp) -> anyhow::Result<i64> {
    with_db(app, |c| {
        use diesel::prelude::*;
        Ok(keyward_store::schema::login_attempts::table.count().get_result(c)?)
    })
    .await
}

/// A valid authorization request's parameters for the test client, with `name` set to `value`
/// (replacing the default one, if any).
fn request_with(name: &str, value: &str) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", CLIENT_REDIRECT),
        ("scope", "openid email"),
        ("state", "st-f3"),
        ("nonce", "n-f3"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    p.retain(|(k, _)| k != name);
    p.push((name.to_owned(), value.to_owned()));
    p
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// The limits table with the per-process request limit out of the way and `body` added.
fn limits(body: &str) -> AppOptions {
    AppOptions {
        limits: Some(format!("{body}\nsign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000\n")),
        ..Default::default()
    }
}

/// Why `page` is not the app's redirect with `invalid_request` naming `name` and echoing
/// `state`; `None` when it is.
fn not_refused_naming(app: &TestApp, page: &Page, name: &str, state: &str) -> Option<String> {
    let back = page.redirect_to(&app.issuer).unwrap_or_default();
    let got = |p: &str| param(&back, p).unwrap_or_default();
    let refused = matches!(page.status.as_u16(), 302 | 303)
        && back.starts_with(CLIENT_REDIRECT)
        && got("error") == "invalid_request"
        && got("error_description").starts_with(&format!("{name} is too long"))
        && got("state") == state;
    (!refused).then(|| format!("{name}: {} to {:.160}", page.status, back))
}

#[tokio::test]
async fn f3_an_over_long_authorize_parameter_of_each_kind_is_refused_naming_it_and_stores_nothing() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let mut not_refused = Vec::new();
    for &(name, max) in PARAMETER_LIMITS {
        let over = "a".repeat(max + 1);
        let params = request_with(name, &over);
        let state = if name == "state" { over.as_str() } else { "st-f3" };
        let got = browser.get(&app.url(&format!("/authorize?{}", encode(&params)))).await?;
        not_refused.extend(not_refused_naming(&app, &got, name, state).map(|why| format!("GET {why}")));
        let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let posted = browser.post_form(&app.url("/authorize"), &form).await?;
        not_refused.extend(not_refused_naming(&app, &posted, name, state).map(|why| format!("POST {why}")));
    }
    assert!(not_refused.is_empty(), "not refused with invalid_request naming the parameter:\n{}", not_refused.join("\n"));
    assert_eq!(attempt_rows(&app).await?, 0, "no refused request stored a login attempt");

    // At the bounds, the request is fine and parks one attempt.
    let at_bounds = [("state", "s".repeat(2048)), ("nonce", "n".repeat(512)), ("acr_values", "phr ".repeat(128).trim_end().to_owned())];
    let mut params = request_with("state", &at_bounds[0].1);
    for (k, v) in &at_bounds[1..] {
        params.retain(|(name, _)| name != k);
        params.push(((*k).to_owned(), v.clone()));
    }
    let page = browser.get(&app.url(&format!("/authorize?{}", encode(&params)))).await?;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.redirect_to(&app.issuer)?.starts_with(&app.url("/login?attempt=")), "{:?}", page.location);
    assert_eq!(attempt_rows(&app).await?, 1);
    Ok(())
}

#[tokio::test]
async fn f3_the_whole_authorization_request_is_capped_for_get_and_post() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    // Padding in a parameter Keyward ignores: only the cap on the whole request applies.
    let mut params = request_with("state", "st-f3");
    params.push(("padding".into(), "p".repeat(MAX_AUTHORIZATION_REQUEST_BYTES)));
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for _ in 0..5 {
        // Each time on the connection the previous answer came on, if it is kept: the unread
        // rest of a refused body must never break the next request.
        let posted = browser.post_form(&app.url("/authorize"), &form).await?;
        assert_eq!(posted.status, 413, "{}", posted.body);
        assert!(posted.body.contains("too large"), "a page for the person: {}", posted.body);
        assert_eq!(posted.header("connection").as_deref(), Some("close"), "the unread body ends the connection");
        assert_eq!(browser.post_form(&app.url("/authorize"), &[("client_id", "nobody")]).await?.status, 400);
    }
    let got = browser.get(&app.url(&format!("/authorize?{}", encode(&params)))).await?;
    assert_eq!(got.status, 414, "{}", got.body);
    assert_eq!(attempt_rows(&app).await?, 0, "nothing was stored");

    // Just under the cap, a POST is read and answered as usual.
    params.pop();
    let base = encode(&params).len() + "&padding=".len();
    params.push(("padding".into(), "p".repeat(MAX_AUTHORIZATION_REQUEST_BYTES - base)));
    let form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let posted = browser.post_form(&app.url("/authorize"), &form).await?;
    assert_eq!(posted.status, 303, "{}", posted.body);
    assert_eq!(attempt_rows(&app).await?, 1);
    Ok(())
}

/// A new browser's `/authorize` without a session.
async fn start_sign_in(app: &TestApp, forwarded_for: Option<&str>) -> anyhow::Result<Page> {
    let browser = Browser::new()?;
    let url = app.url(&format!("/authorize?{}", encode(&request_with("state", "st-f3"))));
    let mut req = browser.http.get(url);
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    Page::read(req.send().await?).await
}

fn to_login(app: &TestApp, page: &Page) -> bool {
    page.status == 302 && page.location.as_deref().is_some_and(|l| app.url(l).starts_with(&app.url("/login?attempt=")))
}

fn assert_limited(page: &Page) {
    assert_eq!(page.status, 429, "{}", page.body);
    let retry: i64 = page.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&retry), "Retry-After within the minute: {:?}", page.header("retry-after"));
    assert!(page.body.contains("try again in a minute"), "a page saying when: {}", page.body);
}

#[tokio::test]
async fn f3_new_login_attempts_are_limited_per_network_with_429_and_a_refused_one_stores_nothing() -> anyhow::Result<()> {
    let app = spawn(AppOptions {
        extra: Some("[network]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n".into()),
        ..limits("login_attempts_per_ip_per_minute = 4")
    })
    .await?;
    // One IPv6 /64: rotating the low bits is the same network.
    for i in 1..=4 {
        let page = start_sign_in(&app, Some(&format!("2001:db8:1:2::{i:x}"))).await?;
        assert!(to_login(&app, &page), "attempt {i}: {} {:?}", page.status, page.location);
    }
    for i in 0..10 {
        assert_limited(&start_sign_in(&app, Some(&format!("2001:db8:1:2:{i:x}::9"))).await?);
    }
    assert_eq!(attempt_rows(&app).await?, 4, "refused requests stored no attempt");
    // Another /64, and an IPv4 address, have their own counts.
    assert!(to_login(&app, &start_sign_in(&app, Some("2001:db8:1:3::1")).await?));
    for _ in 0..4 {
        assert!(to_login(&app, &start_sign_in(&app, Some("203.0.113.7")).await?));
    }
    assert_limited(&start_sign_in(&app, Some("::ffff:203.0.113.7")).await?);
    assert_eq!(attempt_rows(&app).await?, 9);
    let metrics = reqwest::get(format!("{}/metrics", app.metrics)).await?.text().await?;
    assert!(metrics.contains(r#"keyward_rate_limited_total{limit="login_attempts_per_ip"} 11"#), "{metrics}");
    Ok(())
}

#[tokio::test]
async fn f3_sso_with_a_live_session_is_never_limited_by_the_login_attempt_limit() -> anyhow::Result<()> {
    let app = spawn(limits("login_attempts_per_ip_per_minute = 3")).await?;
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    sign_in_by_email(&app, &browser, &auth_request(&rp).url, "sso@example.com").await?;
    assert_eq!(attempt_rows(&app).await?, 1);
    // Many times the limit, from the same address: every one goes straight back with a code.
    for i in 0..60 {
        let page = browser.get(&auth_request(&rp).url).await?;
        assert_eq!(page.status, 302, "SSO request {i}: {}", page.body);
        let back = page.redirect_to(&app.issuer)?;
        assert!(back.starts_with(CLIENT_REDIRECT) && param(&back, "code").is_ok(), "SSO request {i}: {back}");
    }
    assert_eq!(attempt_rows(&app).await?, 1, "SSO parks no attempt");
    // The limit is still there for browsers without a session: two more, then 429.
    for _ in 0..2 {
        assert!(to_login(&app, &start_sign_in(&app, None).await?));
    }
    assert_limited(&start_sign_in(&app, None).await?);
    // And the signed-in browser is still not refused.
    let page = browser.get(&auth_request(&rp).url).await?;
    assert!(page.redirect_to(&app.issuer)?.starts_with(CLIENT_REDIRECT), "{}", page.status);
    Ok(())
}

#[tokio::test]
async fn f3_the_login_attempt_limit_is_shared_by_two_instances_on_postgresql() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(keyward_testkit::postgres::fresh_database_url).await??;
    let shared = AppOptions {
        database: Database::Postgres,
        database_url: Some(url),
        master_key: Some(random_master_key()),
        ..limits("login_attempts_per_ip_per_minute = 4")
    };
    let a = spawn(shared.clone()).await?;
    let b = spawn(shared).await?;
    for app in [&a, &b, &a, &b] {
        assert!(to_login(app, &start_sign_in(app, None).await?));
    }
    assert_limited(&start_sign_in(&a, None).await?);
    assert_limited(&start_sign_in(&b, None).await?);
    assert_eq!(attempt_rows(&a).await?, 4, "one count in the database for both instances");
    Ok(())
}
