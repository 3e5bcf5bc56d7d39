//! Several Keyward processes behind a load balancer on one PostgreSQL database (issue 6):
//! a round-robin proxy alternates every request of a whole sign-in and RP flow between two
//! instances — email code, magic link, token, refresh, introspection, logout — and a key
//! rotated through the shared database is published and then used by both.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::{Browser, link_in};
use keyward_testkit::proxy::RoundRobin;
use std::time::{Duration, Instant};

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

#[tokio::test]
async fn two_instances_behind_a_load_balancer_share_every_piece_of_state() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(keyward_testkit::postgres::fresh_database_url).await??;
    let lb = RoundRobin::listen(2).await?;
    let issuer = format!("http://localhost:{}", lb.port);
    let shared = AppOptions {
        database: Database::Postgres,
        database_url: Some(url),
        master_key: Some(random_master_key()),
        issuer: Some(issuer.clone()),
        keys: Some("publish_ahead_seconds = 3\nreload_seconds = 1\n".into()),
        ..Default::default()
    };
    let a = spawn(shared.clone()).await?;
    // Both instances send mail to the same SMTP server, like a shared relay.
    let b = spawn(AppOptions { smtp_port: Some(a.smtp.port()), ..shared }).await?;
    let port = |app: &TestApp| url::Url::parse(&app.direct).ok().and_then(|u| u.port()).unwrap_or_default();
    lb.route_to(vec![port(&a), port(&b)])?;
    let browser = Browser::fresh_connections()?;

    // Email code sign-in: authorize, login page, send, code — each on the next instance.
    let flow = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid email offline_access", &[]);
    let callback = sign_in(&a, &browser, &flow, "everywhere@example.com").await?;
    let (status, tokens) = exchange(&a, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    assert_eq!(id["iss"], issuer.as_str(), "one issuer for every instance");

    // Refresh three times (rotation state lives in the database), then replay an old token.
    let first_rt = s(&tokens, "refresh_token")?;
    let mut rt = first_rt.clone();
    let mut at = String::new();
    for i in 0..3 {
        let (status, next) = refresh(&a, APP, &rt).await?;
        assert_eq!(status, 200, "refresh {i}: {next}");
        rt = s(&next, "refresh_token")?;
        at = s(&next, "access_token")?;
    }
    for _ in 0..2 {
        assert_eq!(userinfo_status(&a, &at).await?, 200, "either instance accepts the access token");
        assert_eq!(post(&a, "/introspect", APP, &[("token", &at)]).await?.1["active"], true);
    }

    // Magic link in a second browser: request on one instance, open and confirm on the others.
    let other = Browser::fresh_connections()?;
    let flow2 = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let (_, attempt, csrf) = open_login(&a, &other, &flow2.url).await?;
    let mail = request_mail(&a, &other, &attempt, &csrf, "link@example.com").await?;
    let page = other.get(&link_in(&mail.text)?).await?;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = other.post_form(&a.url("/login/link"), &[("token", &page.input("token")?), ("csrf", &page.input("csrf")?)]).await?;
    assert_eq!(done.status, 303, "{}", done.body);
    let (status, link_tokens) = exchange(&a, APP, &flow2, &done.redirect_to(&a.issuer)?).await?;
    assert_eq!(status, 200, "{link_tokens}");

    // Logout on one instance ends the session and the grant for both.
    let out = browser.get(&a.url(&format!("/end_session?id_token_hint={}", s(&tokens, "id_token")?))).await?;
    assert_eq!(out.status, 200, "{}", out.body);
    for _ in 0..2 {
        let silent = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none")]);
        assert_eq!(param(&browser.get(&silent.url).await?.redirect_to(&a.issuer)?, "error")?, "login_required");
        assert_eq!(refresh(&a, APP, &rt).await?.0, 400);
    }
    assert!(lb.count(0) >= 10 && lb.count(1) >= 10, "both instances served the flow: {} and {}", lb.count(0), lb.count(1));

    // A key rotated through the shared database: published by both, then used by both.
    let started = Instant::now();
    let out = std::process::Command::new(bin())
        .args(["--config"])
        .arg(a.config_path())
        .args(["keys", "rotate", "--alg", "RS256", "--json"])
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_kid = serde_json::from_slice::<serde_json::Value>(&out.stdout)?[0]["kid"].as_str().unwrap().to_owned();
    // The CLI dated the new key by the wall clock.
    a.clock.catch_up();
    b.clock.catch_up();
    for instance in [&a.direct, &b.direct] {
        loop {
            let jwks: serde_json::Value = reqwest::get(format!("{instance}/jwks")).await?.json().await?;
            if jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == new_kid.as_str()) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(3), "{instance} did not publish the new key within a reload");
            tokio::time::sleep(Duration::from_millis(100)).await; // poll: each instance reloads keys every reload_seconds
        }
    }
    // Past publish_ahead_seconds on both instances' clocks: the new key signs.
    a.clock.advance(Duration::from_secs(4));
    b.clock.advance(Duration::from_secs(4));
    let fresh = Browser::fresh_connections()?;
    let flow3 = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    sign_in(&a, &fresh, &flow3, "after@example.com").await?;
    for instance in [&a.direct, &b.direct] {
        let flow = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
        let code = param(&fresh.get(&flow.url).await?.redirect_to(&a.issuer)?, "code")?;
        let resp: serde_json::Value = reqwest::Client::new()
            .post(format!("{instance}/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CLIENT_REDIRECT),
                ("code_verifier", &flow.verifier),
            ])
            .send()
            .await?
            .json()
            .await?;
        let token = s(&resp, "id_token")?;
        assert_eq!(jwt_header(&token)?["kid"], new_kid.as_str(), "{instance} signs with the rotated key");
        id_token_claims(
            &a,
            APP,
            CLIENT_REDIRECT,
            &token,
            Some(&flow.nonce),
            openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn f4_an_instance_stopped_mid_load_leaves_the_survivor_answering_and_loses_nothing() -> anyhow::Result<()> {
    let url = tokio::task::spawn_blocking(keyward_testkit::postgres::fresh_database_url).await??;
    let (pa, pb) = (free_port()?, free_port()?);
    let lb = RoundRobin::start(vec![pa, pb]).await?;
    let shared = AppOptions {
        database: Database::Postgres,
        database_url: Some(url),
        master_key: Some(random_master_key()),
        issuer: Some(format!("http://localhost:{}", lb.port)),
        ..Default::default()
    };
    let mut a = spawn_binary(AppOptions { port: Some(pa), ..shared.clone() }).await?;
    let b = spawn_binary(AppOptions { port: Some(pb), smtp_port: Some(a.smtp.port()), ..shared }).await?;
    let browser = Browser::fresh_connections()?;
    let flow = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid offline_access", &[]);
    let callback = sign_in(&a, &browser, &flow, "survivor@example.com").await?;
    let (_, tokens) = exchange(&a, APP, &flow, &callback).await?;
    let at = s(&tokens, "access_token")?;
    // A code issued by instance a (directly), to be redeemed after a has gone.
    let late = authorize(&a, CLIENT_ID, CLIENT_REDIRECT, "openid", &[]);
    let late_code = browser.get(&late.url.replace(&a.issuer, &a.direct)).await?.redirect_to(&a.issuer)?;

    // Load on both instances. Like a load balancer, it checks an instance's readiness and stops
    // sending to it once that says 503.
    let hammer = |base: String, ready: String, at: String| {
        tokio::spawn(async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            let mut outcomes: Vec<Result<(), String>> = Vec::new();
            for _ in 0..300 {
                if !http.get(&ready).send().await.is_ok_and(|r| r.status() == 200) {
                    break;
                }
                let r = http.get(format!("{base}/userinfo")).bearer_auth(&at).send().await;
                outcomes.push(match r {
                    Ok(r) => match r.json::<serde_json::Value>().await {
                        Ok(v) if v["sub"].is_string() => Ok(()),
                        other => Err(format!("a broken answer: {other:?}")),
                    },
                    Err(e) => Err(format!("a broken answer: {e}")),
                });
                tokio::time::sleep(Duration::from_millis(5)).await; // poll: requests keep flowing while an instance drains
            }
            outcomes
        })
    };
    let on_a = hammer(a.direct.clone(), format!("{}/readyz", a.metrics), at.clone());
    let on_b = hammer(b.direct.clone(), format!("{}/readyz", b.metrics), at.clone());
    tokio::time::sleep(Duration::from_millis(300)).await; // black-box: requests are in flight when binary a gets SIGTERM
    a.signal("TERM")?;
    assert!(a.wait_exit(Duration::from_secs(25)).await?.success(), "a drains and exits 0");
    let (on_a, on_b) = (on_a.await?, on_b.await?);
    assert!(
        on_b.len() == 300 && on_b.iter().all(|o| o.is_ok()),
        "the survivor answered every request: {:?}",
        on_b.iter().find(|o| o.is_err())
    );
    assert!(on_a.iter().all(|o| o.is_ok()), "instance a answered whole until readiness told the balancer to stop: {on_a:?}");
    assert!(!on_a.is_empty() && on_a.len() < 300, "a served, then left the rotation");

    // Nothing a issued is lost: its code and refresh token work at b.
    let code = param(&late_code, "code")?;
    let redeemed: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", b.direct))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CLIENT_REDIRECT),
            ("code_verifier", &late.verifier),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert!(redeemed["id_token"].is_string(), "{redeemed}");
    let refreshed: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", b.direct))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &s(&tokens, "refresh_token")?)])
        .send()
        .await?
        .json()
        .await?;
    assert!(refreshed["access_token"].is_string(), "{refreshed}");
    Ok(())
}
