//! Steps for the token-management suites: an authorization request built by hand (so every
//! parameter is visible), the back-channel endpoints called over raw HTTP, ID tokens checked
//! by the `openidconnect` crate, and the audit log read from the app's database.

use crate::common::*;
use anyhow::Context as _;
use keyward_testkit::app::TestApp;
use keyward_testkit::browser::Browser;
use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm};
use openidconnect::{Nonce, PkceCodeChallenge};

/// A code flow's client-side state.
pub struct Flow {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub redirect: String,
}

/// An authorization request with PKCE S256, a state and a nonce, plus `extra` parameters.
pub fn authorize(app: &TestApp, client_id: &str, redirect: &str, scope: &str, extra: &[(&str, &str)]) -> Flow {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    Flow {
        url: app.url(&format!("/authorize?{}", q.finish())),
        state,
        nonce,
        verifier: verifier.secret().clone(),
        redirect: redirect.into(),
    }
}

/// Signs in by email for `flow` and returns the RP callback URL.
pub async fn sign_in(app: &TestApp, browser: &Browser, flow: &Flow, email: &str) -> anyhow::Result<String> {
    sign_in_by_email(app, browser, &flow.url, email).await
}

/// POSTs a form to a back-channel endpoint, authenticating with client_secret_basic when a
/// secret is given. Returns the status and the JSON body (Null when empty).
pub async fn post(
    app: &TestApp,
    path: &str,
    client: (&str, Option<&str>),
    form: &[(&str, &str)],
) -> anyhow::Result<(u16, serde_json::Value)> {
    // A new connection per request, so a load balancer in front alternates instances.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let mut req = http.post(app.url(path));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match client.1 {
        Some(secret) => req = req.basic_auth(client.0, Some(secret)),
        None => form.push(("client_id", client.0)),
    }
    let resp = req.form(&form).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let json =
        if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))? };
    Ok((status, json))
}

/// Redeems the code in `callback` for `flow`.
pub async fn exchange(
    app: &TestApp,
    client: (&str, Option<&str>),
    flow: &Flow,
    callback: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let code = param(callback, "code")?;
    post(
        app,
        "/token",
        client,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &flow.redirect), ("code_verifier", &flow.verifier)],
    )
    .await
}

pub async fn refresh(app: &TestApp, client: (&str, Option<&str>), token: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    post(app, "/token", client, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// The string member `name` of a JSON answer.
pub fn s(json: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    json[name].as_str().map(str::to_owned).with_context(|| format!("no {name} in {json}"))
}

/// Validates an ID token with the `openidconnect` crate (signature against the JWKS, iss,
/// aud, exp; the nonce when given, none expected otherwise).
pub async fn id_token_claims(
    app: &TestApp,
    client: (&str, Option<&str>),
    redirect: &str,
    token: &str,
    nonce: Option<&str>,
    alg: CoreJwsSigningAlgorithm,
) -> anyhow::Result<CoreIdTokenClaims> {
    let rp = rp(app, client.0, client.1, redirect).await?;
    let id: CoreIdToken = token.parse()?;
    let verifier = rp.id_token_verifier().set_allowed_algs(vec![alg]);
    let claims = match nonce {
        Some(n) => id.claims(&verifier, &Nonce::new(n.into()))?.clone(),
        None => {
            id.claims(&verifier, |got: Option<&Nonce>| if got.is_none() { Ok(()) } else { Err("unexpected nonce".to_string()) })?.clone()
        }
    };
    Ok(claims)
}

/// The payload of a JWT, unverified (to read claims the RP library does not expose).
pub fn jwt_payload(jwt: &str) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let part = jwt.split('.').nth(1).context("not a JWT")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?)?)
}

pub fn jwt_header(jwt: &str) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let part = jwt.split('.').next().context("not a JWT")?;
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?)?)
}

/// The audit log as (kind, detail) pairs, oldest first (gray-box: the app's database).
pub async fn audit_log(app: &TestApp) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let url = app.database_url.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let pool = keyward_store::connect(&url, 1)?;
        let events = keyward_store::repo::audit::latest(&mut *pool.get()?, None, 1000)?;
        Ok(events.into_iter().rev().map(|e| (e.kind, serde_json::from_str(&e.detail).unwrap_or_default())).collect())
    })
    .await?
}

/// GET `/userinfo` with a bearer token: the status.
pub async fn userinfo_status(app: &TestApp, access_token: &str) -> anyhow::Result<u16> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    Ok(http.get(app.url("/userinfo")).bearer_auth(access_token).send().await?.status().as_u16())
}

/// A minimal HTTP endpoint for an app's back channel: records each request body and answers
/// with the next status from `statuses` (the last one repeats).
pub struct Receiver {
    pub port: u16,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> anyhow::Result<Receiver> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then as many body bytes as Content-Length says.
                let body = loop {
                    let Ok(got) = sock.read(&mut chunk).await else { break None };
                    if got == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..got]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
                        }
                    }
                };
                let Some(body) = body else { continue };
                seen.lock().unwrap().push(body);
                let status = statuses.get(n).or(statuses.last()).copied().unwrap_or(200);
                n += 1;
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        Ok(Receiver { port, bodies })
    }

    /// Waits until `n` requests arrived and returns their bodies.
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> anyhow::Result<Vec<String>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.bodies.lock().unwrap().clone();
            if got.len() >= n {
                return Ok(got);
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("only {} of {n} back-channel requests arrived", got.len());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // poll: requests arrive off the request path
        }
    }

    /// Waits until `n` requests arrived, moving the app's clock past the 2 s retry delay
    /// until they do (the failed attempt may still be being recorded when the first arrives).
    pub async fn wait_for_retry(&self, app: &keyward_testkit::app::TestApp, n: usize) -> anyhow::Result<Vec<String>> {
        for _ in 0..40 {
            if let Ok(got) = self.wait_for(n, std::time::Duration::from_millis(250)).await {
                return Ok(got);
            }
            app.clock.advance(std::time::Duration::from_secs(3));
        }
        self.wait_for(n, std::time::Duration::ZERO).await
    }
}
