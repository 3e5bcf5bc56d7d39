//! TLS served directly (rustls) and client addresses behind proxies: `X-Forwarded-For` is
//! believed only from configured proxies (issue 6, point 9).

use crate::common::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use std::time::Duration;

#[tokio::test]
async fn e6_tls_is_served_directly_with_hsts_when_configured() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kw-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let app = spawn(AppOptions { tls: Some((cert.clone(), key.clone())), ..Default::default() }).await?;
    let port = url::Url::parse(&app.direct)?.port().unwrap_or_default();
    let pem = std::fs::read(&cert)?;
    let https = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem)?).build()?;
    let resp = https.get(app.url("/.well-known/openid-configuration")).send().await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains"),
        "E6"
    );
    let doc: serde_json::Value = resp.json().await?;
    assert_eq!(doc["token_endpoint"], format!("https://localhost:{port}/token"));
    let plain = reqwest::Client::new().get(format!("http://localhost:{port}/jwks")).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "no plain HTTP on the TLS port");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Sends a sign-in email as if from `forwarded_for` (through a proxy on loopback); the
/// status and, when sent, the network the email names.
async fn send_from(app: &TestApp, email: &str, forwarded_for: &str) -> anyhow::Result<(u16, Option<String>)> {
    let browser = Browser::new()?;
    let rp = rp(app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let (_, attempt, csrf) = open_login(app, &browser, &auth_request(&rp).url).await?;
    let before = app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t == email)).count();
    let resp = browser
        .http
        .post(app.url("/login/email"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("attempt", attempt.as_str()), ("csrf", csrf.as_str()), ("email", email)])
        .send()
        .await?;
    let status = resp.status().as_u16();
    if status != 303 {
        return Ok((status, None));
    }
    let mail = app.smtp.wait_for_mail_about(email, "sign-in code", before, Duration::from_secs(15)).await?;
    Ok((status, Some(mail.text)))
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies_for_emails_and_per_network_limits() -> anyhow::Result<()> {
    let trusting = spawn(AppOptions {
        limits: Some("sends_per_ip = 2\nsign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000\n".into()),
        extra: Some("[network]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n".into()),
        ..Default::default()
    })
    .await?;
    let (status, from) = send_from(&trusting, "a@example.com", "198.51.100.1, 203.0.113.9").await?;
    assert_eq!(status, 303);
    assert!(
        from.as_deref().is_some_and(|t| t.contains("203.0.113.0/24") && !t.contains("198.51.100")),
        "the email names the client's network, not the proxy's or a forged one: {from:?}"
    );
    assert_eq!(send_from(&trusting, "b@example.com", "203.0.113.10").await?.0, 303);
    assert_eq!(send_from(&trusting, "c@example.com", "203.0.113.11").await?.0, 429, "the per-network limit counts the client's network");
    assert_eq!(send_from(&trusting, "d@example.com", "192.0.2.5").await?.0, 303, "another network has its own count");

    // Without trusted proxies the header is ignored: everything is the peer (localhost).
    let plain = spawn(AppOptions::default()).await?;
    let (status, from) = send_from(&plain, "e@example.com", "203.0.113.9").await?;
    assert_eq!(status, 303);
    assert!(
        from.as_deref().is_some_and(|t| t.contains("this computer (localhost)") && !t.contains("203.0.113")),
        "a forged header changes nothing: {from:?}"
    );
    Ok(())
}
