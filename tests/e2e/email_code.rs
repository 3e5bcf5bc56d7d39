//! Sign-in by emailed code on the hosted pages: try limits, expiry, one live code at a time,
//! lenient typing, no account enumeration, CSRF, cookies, and nothing secret at rest.

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;

async fn start(opts: AppOptions) -> anyhow::Result<(TestApp, Browser, String, String)> {
    login_on(spawn(opts).await?).await
}

async fn login_on(app: TestApp) -> anyhow::Result<(TestApp, Browser, String, String)> {
    let browser = Browser::new()?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    Ok((app, browser, attempt, csrf))
}

/// A wrong code that cannot be the right one.
fn wrong(code: &str) -> String {
    let flipped = if code.starts_with('A') { 'B' } else { 'A' };
    format!("{flipped}{}", &code[1..])
}

#[tokio::test]
async fn d4_a_code_dies_after_five_wrong_tries() -> anyhow::Result<()> {
    let (app, browser, attempt, csrf) = start(AppOptions::default()).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "tries@example.com").await?;
    for left in (1..=4).rev() {
        let page = submit_code(&app, &browser, &attempt, &csrf, &wrong(&code)).await?;
        assert_eq!(page.status, 422);
        let expected = if left == 1 { "1 try left".to_owned() } else { format!("{left} tries left") };
        assert!(page.body.contains(&expected), "expected {expected:?} in:\n{}", page.body);
    }
    let fifth = submit_code(&app, &browser, &attempt, &csrf, &wrong(&code)).await?;
    assert!(fifth.body.contains("Too many wrong tries"));
    let right = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(right.status, 422, "even the right code is refused once the code is dead");
    assert!(right.location.is_none());
    Ok(())
}

#[tokio::test]
async fn d2_an_expired_code_is_refused() -> anyhow::Result<()> {
    let (app, browser, attempt, csrf) = start(AppOptions { code_lifetime_seconds: 1, ..Default::default() }).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "late@example.com").await?;
    app.clock.advance(std::time::Duration::from_secs(2));
    let page = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("expired"), "{}", page.body);
    Ok(())
}

#[tokio::test]
async fn d3_a_new_code_kills_the_old_one_and_codes_are_typed_leniently() -> anyhow::Result<()> {
    let (app, browser, attempt, csrf) = start(AppOptions::default()).await?;
    let old = request_code(&app, &browser, &attempt, &csrf, "twice@example.com").await?;
    let new = request_code(&app, &browser, &attempt, &csrf, "twice@example.com").await?;
    assert_ne!(old, new);
    let refused = submit_code(&app, &browser, &attempt, &csrf, &old).await?;
    assert_eq!(refused.status, 422, "the older code no longer works");
    // Lower case, no dash, surrounding spaces: still the code.
    let typed = format!("  {}  ", new.replace('-', "").to_lowercase());
    let ok = submit_code(&app, &browser, &attempt, &csrf, &typed).await?;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(ok.redirect_to(&app.issuer)?.starts_with(CLIENT_REDIRECT));
    Ok(())
}

#[tokio::test]
async fn d8_known_and_unknown_addresses_get_the_same_answer() -> anyhow::Result<()> {
    let opts = AppOptions { signup: "allowed_domains", ..Default::default() };
    let app = spawn(opts).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    // A known account at an allowed domain, and an address that may not sign up.
    sign_in_by_email(&app, &Browser::new()?, &auth_request(&rp).url, "known@allowed.test").await?;
    let browser = Browser::new()?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let mut answers = Vec::new();
    for email in ["known@allowed.test", "stranger@elsewhere.test"] {
        let sent = browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", email)]).await?;
        let page = browser.get(&sent.redirect_to(&app.issuer)?).await?;
        // The approval number is random per request; everything else must match.
        let body = page.body.replace(email, "EMAIL");
        let body = match body.find("approval-number\">") {
            Some(i) => format!("{}NN{}", &body[..i + 17], &body[i + 19..]),
            None => body,
        };
        answers.push((sent.status, sent.location.clone(), page.status, body));
    }
    assert_eq!(answers[0], answers[1], "the answers differ");
    app.smtp.wait_for_mail_to("known@allowed.test", 1, std::time::Duration::from_secs(10)).await?;
    assert!(
        !app.smtp.messages().iter().any(|m| m.to.iter().any(|t| t == "stranger@elsewhere.test")),
        "no code goes to an address that may not sign in"
    );
    Ok(())
}

#[tokio::test]
async fn e1_session_cookie_is_host_prefixed_secure_httponly_lax() -> anyhow::Result<()> {
    let (app, browser, attempt, csrf) = start(AppOptions::default()).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "cookie@example.com").await?;
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let session = done.set_cookies().into_iter().find(|c| c.starts_with("__Host-keyward_session=")).expect("a session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    assert!(!session.to_lowercase().contains("domain="), "__Host- cookies have no Domain");
    Ok(())
}

#[tokio::test]
async fn e3_posts_without_the_csrf_token_or_cross_site_are_403() -> anyhow::Result<()> {
    let (app, browser, attempt, csrf) = start(AppOptions::default()).await?;
    let missing = browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("email", "x@example.com")]).await?;
    assert_eq!(missing.status, 403);
    let foreign =
        browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", "AAAA"), ("email", "x@example.com")]).await?;
    assert_eq!(foreign.status, 403);
    let cross = browser
        .http
        .post(app.url("/login/email"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("attempt", attempt.as_str()), ("csrf", csrf.as_str()), ("email", "x@example.com")])
        .send()
        .await?;
    assert_eq!(cross.status(), 403);
    // Another browser (no binding cookie) cannot use this attempt even with its token.
    let other = Browser::new()?;
    let stolen = other.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "x@example.com")]).await?;
    assert_eq!(stolen.status, 403);
    Ok(())
}

#[tokio::test]
async fn d6_codes_sessions_and_authorization_codes_are_not_stored_in_plaintext() -> anyhow::Result<()> {
    // The binary: the test reads its log.
    let (app, browser, attempt, csrf) = login_on(spawn_binary(AppOptions::default()).await?).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "rest@example.com").await?;
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let callback = done.redirect_to(&app.issuer)?;
    let auth_code = param(&callback, "code")?;
    let session = done
        .set_cookies()
        .into_iter()
        .find_map(|c| c.strip_prefix("__Host-keyward_session=").map(|v| v.split(';').next().unwrap_or("").to_owned()))
        .expect("session");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&app.dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("keyward.db")) {
            stored.extend(std::fs::read(&path)?);
        }
    }
    assert!(stored.len() > 4096, "the database files were read");
    let haystack = String::from_utf8_lossy(&stored);
    for secret in [code.clone(), code.replace('-', ""), auth_code, session] {
        assert!(!haystack.contains(&secret), "{secret} is stored in plaintext");
    }
    assert!(!app.log().contains(&code.replace('-', "")) && !app.log().contains(&code), "the log holds the code");
    Ok(())
}

#[tokio::test]
async fn e4_e5_e7_login_page_follows_platform_conventions() -> anyhow::Result<()> {
    let (app, browser, attempt, _) = start(AppOptions::default()).await?;
    let page = browser.get(&app.url(&format!("/login?attempt={attempt}"))).await?;
    assert!(page.body.contains(r#"type="email""#) && page.body.contains(r#"autocomplete="username webauthn""#));
    assert!(page.body.contains("<label for=\"email\""));
    assert!(page.body.contains("name=\"viewport\""));
    // Email sign-in is a plain form; the passkey button stays hidden until the (external,
    // deferred) script finds WebAuthn, so without JavaScript the page is email-only.
    assert!(page.body.contains(r#"<form method="post" action="/login/email""#), "works without JavaScript");
    assert!(
        page.body.contains(r#"id="passkey-sign-in""#)
            && page.body.contains("data-attempt")
            && page.body.contains(" hidden>Sign in with a passkey")
    );
    assert_eq!(page.body.matches("<script").count(), page.body.matches(r#"<script src="/static/"#).count(), "no inline script");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "E4/E5: {csp}");
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(page.header("referrer-policy").as_deref(), Some("no-referrer"));
    Ok(())
}

/// D8 "uniform time": asking for a code takes as long for an address that gets no mail as
/// for one that does (the mail is sent off the request path).
#[tokio::test]
async fn d8_known_and_unknown_addresses_answer_in_the_same_time() -> anyhow::Result<()> {
    let opts = AppOptions {
        signup: "allowed_domains",
        limits: Some(
            "sends_per_address = 1000\nsends_per_ip = 1000\nsign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000\n"
                .into(),
        ),
        ..Default::default()
    };
    let app = spawn(opts).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    sign_in_by_email(&app, &Browser::new()?, &auth_request(&rp).url, "known@allowed.test").await?;
    let browser = Browser::new()?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..24 {
        let email = if i % 2 == 0 { "known@allowed.test" } else { "nobody@elsewhere.test" };
        let started = std::time::Instant::now();
        let page = browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", email)]).await?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(page.status, 303);
        if i % 2 == 0 { known.push(took) } else { unknown.push(took) }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    println!("median ms: known {k:.1}, unknown {u:.1}");
    assert!((k - u).abs() <= (0.5 * k.min(u)).max(15.0), "known {k:.1} ms vs unknown {u:.1} ms");
    Ok(())
}
