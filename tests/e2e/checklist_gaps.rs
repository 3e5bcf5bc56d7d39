//! CHECKLIST items no other suite proved: PKCE downgrade (B9), codes bound to their client
//! and redirect URI (B13), no CORS at `/authorize` (B21), no session fixation (E2) and the
//! session's idle and absolute timeouts (E10), over HTTP against the real binary.

use crate::common::*;
use keyward_core::secret::hash_secret;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, Page};

/// A confidential client registered with `require_pkce = false` (a legacy server-side app).
const LEGACY_ID: &str = "legacy";
const LEGACY_SECRET: &str = "test-secret-for-legacy-0123456789abcdefghijkl";
const LEGACY_REDIRECT: &str = "http://localhost:9996/callback";
const SESSION_COOKIE: &str = "__Host-keyward_session";

async fn app_with_a_legacy_client() -> anyhow::Result<TestApp> {
    let extra = format!(
        "[[clients]]\nid = \"{LEGACY_ID}\"\nname = \"Legacy\"\nsecret_hashes = [\"{}\"]\nredirect_uris = [\"{LEGACY_REDIRECT}\"]\nrequire_pkce = false\nfirst_party = true\n",
        hash_secret(LEGACY_SECRET)
    );
    spawn(AppOptions { extra: Some(extra), ..Default::default() }).await
}

/// An authorization request of `client`, with an S256 challenge when `challenge` is given.
fn authorize_url(app: &TestApp, client: &str, redirect: &str, challenge: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code").append_pair("client_id", client).append_pair("redirect_uri", redirect);
    q.append_pair("scope", "openid email").append_pair("state", "st").append_pair("nonce", "n");
    if let Some(c) = challenge {
        q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
    }
    app.url(&format!("/authorize?{}", q.finish()))
}

/// The code a live session gets at once for `url`.
async fn code_for(app: &TestApp, browser: &Browser, url: &str) -> anyhow::Result<String> {
    let page = browser.get(url).await?;
    anyhow::ensure!(page.status == 302, "authorize answered {}: {}", page.status, page.body);
    param(&page.redirect_to(&app.issuer)?, "code")
}

/// `POST /token` for a code, as `client` with `secret`.
async fn redeem(app: &TestApp, client: (&str, &str), code: &str, redirect: &str, verifier: Option<&str>) -> anyhow::Result<Page> {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect)];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let req = reqwest::Client::new().post(app.url("/token")).basic_auth(client.0, Some(client.1)).form(&form);
    Page::read(req.send().await?).await
}

fn error_of(page: &Page) -> (u16, String) {
    let body: serde_json::Value = serde_json::from_str(&page.body).unwrap_or_default();
    (page.status.as_u16(), body["error"].as_str().unwrap_or_default().to_owned())
}

fn invalid_grant() -> (u16, String) {
    (400, "invalid_grant".to_owned())
}

/// A verifier and its S256 challenge.
fn pkce_pair() -> (String, String) {
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_owned())
}

#[tokio::test]
async fn b9_pkce_downgrade_either_way_is_invalid_grant() -> anyhow::Result<()> {
    let app = app_with_a_legacy_client().await?;
    let browser = Browser::new()?;
    let (verifier, challenge) = pkce_pair();
    sign_in_by_email(&app, &browser, &authorize_url(&app, LEGACY_ID, LEGACY_REDIRECT, None), "b9@example.com").await?;
    let legacy = (LEGACY_ID, LEGACY_SECRET);

    // A code issued with a challenge, redeemed without a verifier (RFC 7636 §4.6)…
    let with_challenge = code_for(&app, &browser, &authorize_url(&app, LEGACY_ID, LEGACY_REDIRECT, Some(&challenge))).await?;
    assert_eq!(error_of(&redeem(&app, legacy, &with_challenge, LEGACY_REDIRECT, None).await?), invalid_grant());
    // …and one issued without a challenge, redeemed with a verifier (RFC 9700 §4.8.2).
    let without = code_for(&app, &browser, &authorize_url(&app, LEGACY_ID, LEGACY_REDIRECT, None)).await?;
    assert_eq!(error_of(&redeem(&app, legacy, &without, LEGACY_REDIRECT, Some(&verifier)).await?), invalid_grant());

    // Controls: each kind of code redeems when the verifier matches how it was issued.
    let with_challenge = code_for(&app, &browser, &authorize_url(&app, LEGACY_ID, LEGACY_REDIRECT, Some(&challenge))).await?;
    assert_eq!(redeem(&app, legacy, &with_challenge, LEGACY_REDIRECT, Some(&verifier)).await?.status, 200);
    let without = code_for(&app, &browser, &authorize_url(&app, LEGACY_ID, LEGACY_REDIRECT, None)).await?;
    assert_eq!(redeem(&app, legacy, &without, LEGACY_REDIRECT, None).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn b13_a_code_redeemed_by_another_client_or_with_another_redirect_uri_is_invalid_grant() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let (verifier, challenge) = pkce_pair();
    let url = authorize_url(&app, CLIENT_ID, CLIENT_REDIRECT, Some(&challenge));
    sign_in_by_email(&app, &browser, &url, "b13@example.com").await?;

    // Another client, authenticated with its own secret, presents app's code.
    let code = code_for(&app, &browser, &url).await?;
    let other_client = redeem(&app, (CLIENT2_ID, CLIENT2_SECRET), &code, CLIENT_REDIRECT, Some(&verifier)).await?;
    assert_eq!(error_of(&other_client), invalid_grant(), "{}", other_client.body);
    let other_client = redeem(&app, (CLIENT2_ID, CLIENT2_SECRET), &code, CLIENT2_REDIRECT, Some(&verifier)).await?;
    assert_eq!(error_of(&other_client), invalid_grant(), "{}", other_client.body);
    // The right client with another redirect URI (registered to app2, or a near miss).
    for redirect in [CLIENT2_REDIRECT, "http://localhost:9999/callback/", "http://localhost:9999/other"] {
        let code = code_for(&app, &browser, &url).await?;
        let page = redeem(&app, (CLIENT_ID, CLIENT_SECRET), &code, redirect, Some(&verifier)).await?;
        assert_eq!(error_of(&page), invalid_grant(), "redirect_uri {redirect}: {}", page.body);
    }
    // Control: the same kind of code, with the right client and URI.
    let code = code_for(&app, &browser, &url).await?;
    assert_eq!(redeem(&app, (CLIENT_ID, CLIENT_SECRET), &code, CLIENT_REDIRECT, Some(&verifier)).await?.status, 200);
    Ok(())
}

fn cors_headers(page: &Page) -> Vec<String> {
    page.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

#[tokio::test]
async fn b21_authorize_sends_no_cors_headers_even_to_a_preflight() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (_, challenge) = pkce_pair();
    let url = authorize_url(&app, CLIENT_ID, CLIENT_REDIRECT, Some(&challenge));
    let origin = "https://evil.example";

    let get = Page::read(http.get(&url).header("Origin", origin).send().await?).await?;
    assert_eq!(get.status, 302, "{}", get.body);
    assert_eq!(cors_headers(&get), Vec::<String>::new(), "GET /authorize");
    let post = Page::read(http.post(app.url("/authorize")).header("Origin", origin).body("").send().await?).await?;
    assert_eq!(cors_headers(&post), Vec::<String>::new(), "POST /authorize ({})", post.status);
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await?;
    let preflight = Page::read(preflight).await?;
    assert!(!preflight.status.is_server_error(), "preflight answered {}", preflight.status);
    assert_eq!(cors_headers(&preflight), Vec::<String>::new(), "OPTIONS /authorize ({})", preflight.status);
    // Control: the endpoints meant for browsers of other origins do answer CORS.
    let jwks = Page::read(http.get(app.url("/jwks")).header("Origin", origin).send().await?).await?;
    assert_eq!(jwks.header("access-control-allow-origin").as_deref(), Some("*"), "the JWKS is CORS-enabled");
    Ok(())
}

/// The values of `name` this response sets.
fn cookie_values(page: &Page, name: &str) -> Vec<String> {
    let prefix = format!("{name}=");
    page.set_cookies()
        .iter()
        .filter_map(|c| c.strip_prefix(&prefix).map(|rest| rest.split(';').next().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test]
async fn e2_the_session_cookie_is_new_at_sign_in_and_a_planted_one_is_not_adopted() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let planted = "planted-by-the-attacker-0123456789abcdefghijk";
    let browser = Browser::new()?;
    let base = url::Url::parse(&app.issuer)?;
    browser.jar.add_cookie_str(&format!("{SESSION_COOKIE}={planted}; Path=/; Secure; HttpOnly; SameSite=Lax"), &base);

    // Every cookie set before sign-in, and the cookie set at sign-in.
    let req = auth_request(&rp);
    let first = browser.get(&req.url).await?;
    let login = browser.get(&first.redirect_to(&app.issuer)?).await?;
    let mut before: Vec<String> = [&first, &login].iter().flat_map(|p| p.set_cookies()).collect();
    let (attempt, csrf) = (login.input("attempt")?, login.input("csrf")?);
    let code = request_code(&app, &browser, &attempt, &csrf, "e2@example.com").await?;
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    let issued = cookie_values(&done, SESSION_COOKIE);
    assert_eq!(issued.len(), 1, "one session cookie at sign-in: {:?}", done.set_cookies());
    let issued = &issued[0];
    assert_ne!(issued, planted, "the planted session id was adopted");
    before.retain(|c| c.contains(issued.as_str()));
    assert_eq!(before, Vec::<String>::new(), "the session id was already set before sign-in");

    // The planted value grants nothing: a browser holding only it is not signed in.
    let attacker = Browser::new()?;
    attacker.jar.add_cookie_str(&format!("{SESSION_COOKIE}={planted}; Path=/; Secure; HttpOnly; SameSite=Lax"), &base);
    let silent = attacker.get(&format!("{}&prompt=none", auth_request(&rp).url)).await?;
    assert_eq!(param(&silent.redirect_to(&app.issuer)?, "error")?, "login_required");
    // A second sign-in in the same browser gets yet another session id.
    let again = browser.get(&format!("{}&prompt=login", auth_request(&rp).url)).await?;
    let login = browser.get(&again.redirect_to(&app.issuer)?).await?;
    let (attempt, csrf) = (login.input("attempt")?, login.input("csrf")?);
    let code = request_code(&app, &browser, &attempt, &csrf, "e2@example.com").await?;
    let second = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    let renewed = cookie_values(&second, SESSION_COOKIE);
    assert_eq!(renewed.len(), 1, "{:?}", second.set_cookies());
    assert_ne!(&renewed[0], issued, "a new sign-in keeps the old session id");
    Ok(())
}

/// Sets every session's `last_seen_at` and `expires_at` (gray-box: the clock moved on).
async fn set_session_times(app: &TestApp, last_seen_at: i64, expires_at: i64) -> anyhow::Result<usize> {
    with_db(app, move |c| {
        use diesel::prelude::*;
        use keyward_store::schema::sessions as s;
        Ok(diesel::update(s::table).set((s::last_seen_at.eq(last_seen_at), s::expires_at.eq(expires_at))).execute(c)?)
    })
    .await
}

/// What `prompt=none` answers this browser: a code, or the error.
async fn silent_answer(app: &TestApp, browser: &Browser, rp: &Rp) -> anyhow::Result<String> {
    let page = browser.get(&format!("{}&prompt=none", auth_request(rp).url)).await?;
    let to = page.redirect_to(&app.issuer)?;
    Ok(param(&to, "error").unwrap_or_else(|_| if param(&to, "code").is_ok() { "code".into() } else { to }))
}

#[tokio::test]
async fn e10_sessions_end_after_the_idle_timeout_and_after_the_absolute_lifetime() -> anyhow::Result<()> {
    // The defaults, as config/keyward.toml documents them: 7 days idle, 30 days in all.
    const IDLE: i64 = 10_080 * 60;
    const LIFETIME: i64 = 720 * 3600;
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;

    // Idle: last seen just inside the idle timeout lives; just past it, it is over.
    let idle = Browser::new()?;
    sign_in_by_email(&app, &idle, &auth_request(&rp).url, "idle@example.com").await?;
    let now = app.clock.unix();
    assert_eq!(set_session_times(&app, now - IDLE + 120, now + LIFETIME).await?, 1);
    assert_eq!(silent_answer(&app, &idle, &rp).await?, "code", "a session seen within the idle timeout lives");
    let now = app.clock.unix();
    set_session_times(&app, now - IDLE - 1, now + LIFETIME).await?;
    assert_eq!(silent_answer(&app, &idle, &rp).await?, "login_required", "idle timeout");
    let account = idle.get(&app.url("/account")).await?;
    assert_eq!(account.status, 401, "/account after the idle timeout: {}", account.body);

    // Absolute: used a second ago, but past its lifetime.
    let busy = Browser::new()?;
    sign_in_by_email(&app, &busy, &auth_request(&rp).url, "busy@example.com").await?;
    let now = app.clock.unix();
    set_session_times(&app, now, now + 60).await?;
    assert_eq!(silent_answer(&app, &busy, &rp).await?, "code", "a session inside its lifetime lives");
    let now = app.clock.unix();
    set_session_times(&app, now, now - 1).await?;
    assert_eq!(silent_answer(&app, &busy, &rp).await?, "login_required", "absolute lifetime");
    Ok(())
}

// Partly items closed where it was cheap.

#[tokio::test]
async fn e3_the_code_and_continue_posts_need_this_browsers_csrf_token_and_refuse_cross_site() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let browser = Browser::new()?;
    let (_, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let code = request_code(&app, &browser, &attempt, &csrf, "e3@example.com").await?;
    for path in ["/login/code", "/login/continue"] {
        let url = app.url(path);
        let missing = browser.post_form(&url, &[("attempt", &attempt), ("code", &code)]).await?;
        assert_eq!(missing.status, 403, "{path} without a token");
        let foreign = browser.post_form(&url, &[("attempt", &attempt), ("csrf", "AAAA"), ("code", &code)]).await?;
        assert_eq!(foreign.status, 403, "{path} with a foreign token");
        let form = [("attempt", attempt.as_str()), ("csrf", csrf.as_str()), ("code", code.as_str())];
        let cross = Page::read(browser.http.post(&url).header("Sec-Fetch-Site", "cross-site").form(&form).send().await?).await?;
        assert_eq!(cross.status, 403, "{path} cross-site");
        let stolen = Browser::new()?.post_form(&url, &form).await?;
        assert_eq!(stolen.status, 403, "{path} from another browser with this one's token");
    }
    // Control: the refused posts burnt nothing; the code signs in with the token.
    let done = submit_code(&app, &browser, &attempt, &csrf, &code).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    Ok(())
}

#[tokio::test]
async fn e4_e5_e7_every_kind_of_page_sends_the_framing_csp_and_nosniff_headers() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let browser = Browser::new()?;
    let (login_url, attempt, csrf) = open_login(&app, &browser, &auth_request(&rp).url).await?;
    let sent = browser.post_form(&app.url("/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", "e7@example.com")]).await?;
    let mut pages = vec![
        ("login", browser.get(&login_url).await?),
        ("code", browser.get(&sent.redirect_to(&app.issuer)?).await?),
        ("error", browser.get(&app.url("/authorize?client_id=nobody&response_type=code")).await?),
        ("account, signed out", browser.get(&app.url("/account")).await?),
        ("logout confirmation", browser.get(&app.url("/end_session")).await?),
        ("not found", browser.get(&app.url("/no-such-page")).await?),
    ];
    pages.push((
        "token error",
        Page::read(reqwest::Client::new().post(app.url("/token")).form(&[("grant_type", "x")]).send().await?).await?,
    ));
    for (what, page) in &pages {
        assert!(!page.status.is_server_error(), "{what}: {}", page.status);
        assert_eq!(page.header("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
        assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"), "{what}");
        let csp = page.header("content-security-policy").unwrap_or_default();
        for directive in ["frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'"] {
            assert!(csp.contains(directive), "{what}: {directive} missing from {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(page.header("referrer-policy").as_deref(), Some("no-referrer"), "{what}");
    }
    Ok(())
}

/// Moves every session's `auth_time` back by `seconds` (gray-box: an older sign-in).
async fn age_sign_ins(app: &TestApp, seconds: i64) -> anyhow::Result<()> {
    with_db(app, move |c| {
        use diesel::prelude::*;
        use keyward_store::schema::sessions as s;
        diesel::update(s::table).set(s::auth_time.eq(s::auth_time - seconds)).execute(c)?;
        Ok(())
    })
    .await
}

async fn auth_time_of(rp: &Rp, callback: &str, req: AuthRequest) -> anyhow::Result<i64> {
    let claims = crate::common::redeem(rp, callback, req).await?;
    Ok(claims.auth_time().map(|t| t.timestamp()).unwrap_or_default())
}

#[tokio::test]
async fn oidcc_prompt_login_and_max_age_compare_auth_time() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let browser = Browser::new()?;
    let req = auth_request(&rp);
    let callback = sign_in_by_email(&app, &browser, &req.url, "auth-time@example.com").await?;
    let first = auth_time_of(&rp, &callback, req).await?;
    assert!(first > 0, "auth_time is present");
    age_sign_ins(&app, 100).await?;
    let aged = first - 100;

    // oidcc-max-age-10000: no login, and auth_time is unchanged.
    let req = auth_request(&rp);
    let silent = browser.get(&format!("{}&max_age=10000", req.url)).await?;
    assert_eq!(auth_time_of(&rp, &silent.redirect_to(&app.issuer)?, req).await?, aged, "oidcc-max-age-10000");
    // oidcc-max-age-1: the sign-in is older than 1 s, so a login; its auth_time is later.
    let req = auth_request(&rp);
    let url = format!("{}&max_age=1", req.url);
    let callback = sign_in_by_email(&app, &browser, &url, "auth-time@example.com").await?;
    let after_max_age = auth_time_of(&rp, &callback, req).await?;
    assert!(after_max_age > aged, "oidcc-max-age-1: {after_max_age} is not later than {aged}");
    // oidcc-prompt-login: a fresh login, and the second auth_time is later than the first.
    age_sign_ins(&app, 100).await?;
    let req = auth_request(&rp);
    let url = format!("{}&prompt=login", req.url);
    let callback = sign_in_by_email(&app, &browser, &url, "auth-time@example.com").await?;
    let after_prompt_login = auth_time_of(&rp, &callback, req).await?;
    assert!(after_prompt_login > after_max_age - 100, "oidcc-prompt-login: {after_prompt_login} vs {}", after_max_age - 100);
    Ok(())
}
