//! The sign-in through the real login path, and the four workloads:
//! W1 SSO code flow, W2 refresh-token rotation, W3 JWKS and discovery, W4 userinfo.

use crate::http::{Conn, Response};
use crate::server::{Postgres, REDIRECT, SECRET, Server, Setup};
use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyward_testkit::browser::{Browser, code_in};
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// SSO code flow with a live session: GET /authorize → POST /token.
    W1,
    /// refresh_token grants with rotation, each worker on its own families.
    W2,
    /// GET /jwks and GET /.well-known/openid-configuration, alternately.
    W3,
    /// GET /userinfo with a JWT access token.
    W4,
}

impl Workload {
    /// Names of the requests one operation makes, for per-request latencies.
    pub fn requests(self) -> &'static [&'static str] {
        match self {
            Workload::W1 => &["authorize", "token"],
            Workload::W2 => &["token"],
            Workload::W3 => &["jwks", "discovery"],
            Workload::W4 => &["userinfo"],
        }
    }
}

/// What every worker shares.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    /// The signed-in browser's `Cookie` header.
    pub cookie: String,
    /// `Authorization: Basic …` of the client.
    pub basic: String,
    pub client_id: String,
    /// The ID token's expected `alg`.
    pub alg: &'static str,
}

impl Target {
    pub fn new(setup: &Setup, cookie: &str, client_id: &str, alg: &'static str) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], setup.port)),
            host: format!("localhost:{}", setup.port),
            cookie: cookie.to_owned(),
            basic: format!("Basic {}", STANDARD.encode(format!("{client_id}:{SECRET}"))),
            client_id: client_id.to_owned(),
            alg,
        }
    }

    /// The same target on another instance (another port; same issuer, so the same `Host`,
    /// as behind a load balancer).
    pub fn on_port(&self, port: u16) -> Target {
        Target { addr: SocketAddr::from(([127, 0, 0, 1], port)), ..self.clone() }
    }
}

/// One refresh-token family: its current refresh token and latest access token.
#[derive(Clone, Debug)]
pub struct Family {
    pub refresh: String,
    pub access: String,
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An authorization request with S256 PKCE, a state and a nonce.
struct AuthRequest {
    path: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn auth_request(client_id: &str, scope: &str) -> AuthRequest {
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (state, nonce) = (random_b64(16), random_b64(16));
    let path = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        enc(client_id),
        enc(REDIRECT),
        enc(scope)
    );
    AuthRequest { path, state, nonce, verifier }
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn expect_status(what: &str, resp: &Response, want: u16) -> anyhow::Result<()> {
    if resp.status != want {
        let body = String::from_utf8_lossy(&resp.body);
        bail!("{what}: HTTP {} (wanted {want}): {}", resp.status, body.chars().take(200).collect::<String>());
    }
    Ok(())
}

fn jwt_part(jwt: &str, i: usize) -> anyhow::Result<serde_json::Value> {
    let part = jwt.split('.').nth(i).context("not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
}

/// The code from an authorization answer, after checking `state`.
fn code_from(resp: &Response, req: &AuthRequest) -> anyhow::Result<String> {
    expect_status("GET /authorize", resp, 302)?;
    let location = resp.location.as_deref().context("GET /authorize: no Location")?;
    ensure!(location.starts_with(REDIRECT), "GET /authorize sent the browser to {location}, not back to the app");
    let url = url::Url::parse(location)?;
    if let Some(error) = query_param(&url, "error") {
        bail!("GET /authorize answered error={error}: {location}");
    }
    ensure!(query_param(&url, "state").as_deref() == Some(req.state.as_str()), "state mismatch in {location}");
    query_param(&url, "code").context("no code in the redirect")
}

/// Timings of one operation's requests as (request index, µs), filled in as it runs.
pub type Laps = Vec<(usize, u32)>;

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn lap(laps: &mut Laps, since: &mut Instant) {
    let now = Instant::now();
    laps.push((laps.len(), micros(now.duration_since(*since))));
    *since = now;
}

/// One code flow with the session cookie; returns the token answer.
async fn code_flow(conn: &mut Conn, t: &Target, scope: &str, laps: &mut Laps) -> anyhow::Result<serde_json::Value> {
    let req = auth_request(&t.client_id, scope);
    let mut since = Instant::now();
    let resp = conn.get(&req.path, &[("cookie", &t.cookie)]).await?;
    lap(laps, &mut since);
    let code = code_from(&resp, &req)?;
    let form = format!("grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}", enc(&code), enc(REDIRECT), req.verifier);
    let resp = conn.post_form("/token", &[("authorization", &t.basic)], form).await?;
    lap(laps, &mut since);
    expect_status("POST /token (authorization_code)", &resp, 200)?;
    let json: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let id_token = json["id_token"].as_str().context("no id_token in the token answer")?;
    let header = jwt_part(id_token, 0)?;
    ensure!(header["alg"] == t.alg, "ID token alg is {}, wanted {}", header["alg"], t.alg);
    ensure!(jwt_part(id_token, 1)?["nonce"] == req.nonce.as_str(), "ID token nonce mismatch");
    Ok(json)
}

async fn refresh(conn: &mut Conn, t: &Target, family: &mut Family, laps: &mut Laps) -> anyhow::Result<()> {
    let mut since = Instant::now();
    let form = format!("grant_type=refresh_token&refresh_token={}", enc(&family.refresh));
    let resp = conn.post_form("/token", &[("authorization", &t.basic)], form).await?;
    lap(laps, &mut since);
    expect_status("POST /token (refresh_token)", &resp, 200)?;
    let json: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let new = json["refresh_token"].as_str().context("no new refresh_token (rotation)")?;
    ensure!(new != family.refresh, "the refresh token did not rotate");
    family.refresh = new.to_owned();
    family.access = json["access_token"].as_str().context("no access_token")?.to_owned();
    Ok(())
}

async fn get_ok(conn: &mut Conn, path: &str, headers: &[(&str, &str)], laps: &mut Laps) -> anyhow::Result<Response> {
    let mut since = Instant::now();
    let resp = conn.get(path, headers).await?;
    lap(laps, &mut since);
    expect_status(&format!("GET {path}"), &resp, 200)?;
    Ok(resp)
}

/// Creates a token family: a code flow that asks for `offline_access`.
pub async fn new_family(conn: &mut Conn, t: &Target) -> anyhow::Result<Family> {
    let json = code_flow(conn, t, "openid email profile offline_access", &mut Vec::new()).await?;
    Ok(Family {
        refresh: json["refresh_token"].as_str().context("no refresh_token for offline_access")?.to_owned(),
        access: json["access_token"].as_str().context("no access_token")?.to_owned(),
    })
}

/// Signs `email` in through the hosted login (authorize → login page → email → code from the
/// SMTP sink → code page) and returns the browser's `Cookie` header for the issuer.
pub async fn sign_in(setup: &Setup, client_id: &str, email: &str) -> anyhow::Result<String> {
    use reqwest::cookie::CookieStore as _;
    let issuer = setup.issuer();
    let browser = Browser::new()?;
    let req = auth_request(client_id, "openid email profile");
    let first = browser.get(&format!("{issuer}{}", req.path)).await?;
    ensure!(first.status == 302, "authorize answered {} instead of sending the browser to the login page", first.status);
    let login = first.redirect_to(&issuer)?;
    ensure!(login.contains("/login?attempt="), "expected the login page, was sent to {login}");
    let page = browser.get(&login).await?;
    let (attempt, csrf) = (page.input("attempt")?, page.input("csrf")?);
    let before = setup.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(email))).count();
    let sent = browser.post_form(&format!("{issuer}/login/email"), &[("attempt", &attempt), ("csrf", &csrf), ("email", email)]).await?;
    ensure!(sent.status == 303, "POST /login/email answered {}", sent.status);
    let mail = setup.smtp.wait_for_mail_about(email, "sign-in code", before, Duration::from_secs(30)).await?;
    let code = code_in(&mail.text)?;
    let done = browser.post_form(&format!("{issuer}/login/code"), &[("attempt", &attempt), ("csrf", &csrf), ("code", &code)]).await?;
    ensure!(done.status == 303, "POST /login/code answered {}:\n{}", done.status, done.body);
    let back = done.redirect_to(&issuer)?;
    ensure!(back.starts_with(REDIRECT) && back.contains("code="), "after the code, the browser went to {back}");
    let cookies = browser.jar.cookies(&url::Url::parse(&issuer)?).context("no cookies after signing in")?;
    let cookie = cookies.to_str()?.to_owned();
    ensure!(cookie.contains("keyward_session"), "no session cookie after signing in: {cookie}");
    Ok(cookie)
}

/// What one workload run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// The measured window (warm-up excluded).
    pub window: Duration,
    /// Per operation, µs (ops that started and ended inside the window).
    pub op_latencies: Vec<u32>,
    /// Per request name (see [`Workload::requests`]), µs.
    pub request_latencies: Vec<Vec<u32>>,
    /// CPU time of all instances together.
    pub server_cpu: Duration,
    /// CPU time of each instance.
    pub instance_cpu: Vec<Duration>,
    /// CPU time of all PostgreSQL processes (with `--postgres`).
    pub db_cpu: Option<Duration>,
    pub client_cpu: Duration,
    /// Busy time of the server's CPU (CPU 0 when pinned) over the window, whoever used it.
    pub cpu0_busy: Duration,
}

struct Shared {
    out: Outcome,
}

impl Shared {
    fn error(&mut self, e: &anyhow::Error) {
        self.out.errors += 1;
        if self.out.error_samples.len() < 5 {
            self.out.error_samples.push(format!("{e:#}"));
        }
    }
}

/// Runs `w` with `concurrency` workers for `warmup` + `duration`; worker i talks to
/// `targets[i % targets.len()]` (one per instance, `servers` in the same order). Families are
/// split among workers (W2, W4). Must run on a single-threaded runtime inside a `LocalSet`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    w: Workload,
    targets: &[Target],
    servers: &[&Server],
    db: Option<&Postgres>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    families: &mut Vec<Family>,
) -> anyhow::Result<Outcome> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let shared = Rc::new(RefCell::new(Shared {
        out: Outcome { request_latencies: vec![Vec::new(); w.requests().len()], window: duration, ..Default::default() },
    }));
    let mut handles = Vec::new();
    let owned: Vec<Vec<Family>> = (0..concurrency).map(|i| families.iter().skip(i).step_by(concurrency).cloned().collect()).collect();
    families.clear();
    for (i, mut mine) in owned.into_iter().enumerate() {
        let (t, shared) = (targets[i % targets.len()].clone(), shared.clone());
        handles.push(tokio::task::spawn_local(async move {
            let mut conn = Conn::new(t.addr, &t.host);
            let mut next = 0usize;
            let mut laps = Vec::with_capacity(2);
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                laps.clear();
                let result = match w {
                    Workload::W1 => code_flow(&mut conn, &t, "openid email profile", &mut laps).await.map(drop),
                    Workload::W2 => {
                        if mine.is_empty() {
                            break;
                        }
                        next = (next + 1) % mine.len();
                        let r = refresh(&mut conn, &t, &mut mine[next], &mut laps).await;
                        if let Err(e) = &r
                            && !e.to_string().contains("HTTP 5")
                        {
                            // A refused rotation (4xx, or no answer) may have spent the token:
                            // using it again would only count reuse. Drop the family. After a
                            // 5xx the transaction rolled back and the token is still good.
                            mine.remove(next);
                        }
                        r
                    }
                    Workload::W3 => {
                        // One request per op; JWKS and discovery alternate.
                        let jwks = (i + next) % 2 == 0;
                        next += 1;
                        let r = get_ok(&mut conn, if jwks { "/jwks" } else { "/.well-known/openid-configuration" }, &[], &mut laps).await;
                        if !jwks {
                            laps.iter_mut().for_each(|l| l.0 = 1);
                        }
                        r.map(drop)
                    }
                    Workload::W4 => {
                        if mine.is_empty() {
                            break;
                        }
                        next = (next + 1) % mine.len();
                        let bearer = format!("Bearer {}", mine[next].access);
                        get_ok(&mut conn, "/userinfo", &[("authorization", &bearer)], &mut laps).await.and_then(|resp| {
                            let json: serde_json::Value = serde_json::from_slice(&resp.body)?;
                            ensure!(json["sub"].is_string(), "userinfo has no sub: {json}");
                            Ok(())
                        })
                    }
                };
                let finished = Instant::now();
                let mut s = shared.borrow_mut();
                match result {
                    Err(e) => s.error(&e),
                    Ok(()) if began >= start && finished <= end => {
                        s.out.ops += 1;
                        s.out.op_latencies.push(micros(finished.duration_since(began)));
                        for &(k, us) in &laps {
                            s.out.request_latencies[k].push(us);
                        }
                    }
                    Ok(()) => {}
                }
            }
            mine
        }));
    }
    // CPU time of both sides (and of PostgreSQL) over the measured window.
    let instances = |servers: &[&Server]| servers.iter().map(|s| s.cpu_time()).collect::<anyhow::Result<Vec<Duration>>>();
    tokio::time::sleep_until(start.into()).await;
    let (server0, db0) = (instances(servers)?, db.map(Postgres::cpu_time));
    let (client0, busy0) = (crate::server::cpu_time_of(std::process::id())?, crate::server::cpu_busy(0));
    tokio::time::sleep_until(end.into()).await;
    let (server1, db1) = (instances(servers)?, db.map(Postgres::cpu_time));
    let (client1, busy1) = (crate::server::cpu_time_of(std::process::id())?, crate::server::cpu_busy(0));
    for h in handles {
        families.extend(h.await?);
    }
    let mut out = std::mem::take(&mut shared.borrow_mut().out);
    out.instance_cpu = server1.iter().zip(&server0).map(|(b, a)| b.saturating_sub(*a)).collect();
    out.server_cpu = out.instance_cpu.iter().sum();
    out.db_cpu = db0.zip(db1).map(|(a, b)| b.saturating_sub(a));
    out.client_cpu = client1.saturating_sub(client0);
    out.cpu0_busy = busy1.saturating_sub(busy0);
    Ok(out)
}
