//! Shared steps: start Keyward, run the RP side with `openidconnect`, sign in by email.

use anyhow::{Context as _, bail};
use keyward_testkit::app::{AppOptions, TestApp};
use keyward_testkit::browser::{Browser, code_in};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope};
use std::path::PathBuf;
use std::time::Duration;

pub type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keyward"))
}

/// Keyward in process (the same App as `serve`) on a manual clock: the default for tests.
pub async fn spawn(opts: AppOptions) -> anyhow::Result<TestApp> {
    TestApp::spawn(opts).await
}

/// The real binary as a subprocess, for what only it shows: signals, reload, exit codes, the
/// process's log output.
pub async fn spawn_binary(opts: AppOptions) -> anyhow::Result<TestApp> {
    TestApp::spawn_binary(&bin(), opts).await
}

pub fn rp_http() -> anyhow::Result<openidconnect::reqwest::Client> {
    Ok(openidconnect::reqwest::Client::builder().redirect(openidconnect::reqwest::redirect::Policy::none()).build()?)
}

/// An RP configured from Keyward's discovery document.
pub async fn rp(app: &TestApp, client_id: &str, secret: Option<&str>, redirect: &str) -> anyhow::Result<Rp> {
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone())?, &rp_http()?).await?;
    Ok(CoreClient::from_provider_metadata(meta, ClientId::new(client_id.into()), secret.map(|s| ClientSecret::new(s.into())))
        .set_redirect_uri(RedirectUrl::new(redirect.into())?))
}

pub struct AuthRequest {
    pub url: String,
    pub state: String,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

pub fn auth_request(rp: &Rp) -> AuthRequest {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    AuthRequest { url: url.to_string(), state: state.secret().clone(), nonce, verifier }
}

/// The query parameters of a URL.
pub fn query(url: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(url::Url::parse(url)?.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

pub fn param(url: &str, name: &str) -> anyhow::Result<String> {
    query(url)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v).with_context(|| format!("no {name} in {url}"))
}

/// The login page reached from an authorization request: (page URL, attempt, csrf).
pub async fn open_login(app: &TestApp, browser: &Browser, authorize_url: &str) -> anyhow::Result<(String, String, String)> {
    let first = browser.get(authorize_url).await?;
    if first.status != 302 {
        bail!("authorize answered {} instead of redirecting to the login page:\n{}", first.status, first.body);
    }
    let login_url = first.redirect_to(&app.issuer)?;
    if !login_url.starts_with(&app.url("/login?attempt=")) {
        bail!("expected the login page, was sent to {login_url}");
    }
    let page = browser.get(&login_url).await?;
    if page.status != 200 {
        bail!("login page answered {}:\n{}", page.status, page.body);
    }
    Ok((login_url, page.input("attempt")?, page.input("csrf")?))
}

/// Asks for a code and returns it as read from the email the SMTP server received.
pub async fn request_code(app: &TestApp, browser: &Browser, attempt: &str, csrf: &str, email: &str) -> anyhow::Result<String> {
    code_in(&request_mail(app, browser, attempt, csrf, email).await?.text)
}

/// Asks for a sign-in email and returns it as the SMTP server received it.
pub async fn request_mail(
    app: &TestApp,
    browser: &Browser,
    attempt: &str,
    csrf: &str,
    email: &str,
) -> anyhow::Result<keyward_testkit::smtp::ReceivedMail> {
    // Security notices may arrive meanwhile: count sign-in emails only.
    const SIGN_IN: &str = "sign-in code";
    let is_sign_in =
        |m: &keyward_testkit::smtp::ReceivedMail| m.to.iter().any(|t| t.eq_ignore_ascii_case(email)) && m.subject.contains(SIGN_IN);
    let before = app.smtp.messages().iter().filter(|m| is_sign_in(m)).count();
    let sent = browser.post_form(&app.url("/login/email"), &[("attempt", attempt), ("csrf", csrf), ("email", email)]).await?;
    if sent.status != 303 {
        bail!("sending a code answered {}:\n{}", sent.status, sent.body);
    }
    app.smtp.wait_for_mail_about(email, SIGN_IN, before, Duration::from_secs(15)).await
}

pub async fn submit_code(
    app: &TestApp,
    browser: &Browser,
    attempt: &str,
    csrf: &str,
    code: &str,
) -> anyhow::Result<keyward_testkit::browser::Page> {
    browser.post_form(&app.url("/login/code"), &[("attempt", attempt), ("csrf", csrf), ("code", code)]).await
}

/// Redeems the code in an RP callback URL with the request's PKCE verifier, and returns the
/// ID token's claims as the `openidconnect` crate validated them (signature, iss, aud, nonce).
pub async fn redeem(rp: &Rp, callback: &str, req: AuthRequest) -> anyhow::Result<openidconnect::core::CoreIdTokenClaims> {
    use openidconnect::TokenResponse as _;
    let tokens = rp
        .exchange_code(openidconnect::AuthorizationCode::new(param(callback, "code")?))?
        .set_pkce_verifier(req.verifier)
        .request_async(&rp_http()?)
        .await?;
    Ok(tokens.id_token().context("no ID token")?.claims(&rp.id_token_verifier(), &req.nonce)?.clone())
}

/// Runs the whole hosted login for `authorize_url` and returns the RP callback URL.
pub async fn sign_in_by_email(app: &TestApp, browser: &Browser, authorize_url: &str, email: &str) -> anyhow::Result<String> {
    let (_, attempt, csrf) = open_login(app, browser, authorize_url).await?;
    let code = request_code(app, browser, &attempt, &csrf, email).await?;
    let done = submit_code(app, browser, &attempt, &csrf, &code).await?;
    if done.status != 303 {
        bail!("the code was not accepted ({}):\n{}", done.status, done.body);
    }
    done.redirect_to(&app.issuer)
}

/// Runs `f` on a connection of its own to the app's database, on a blocking thread (gray-box).
pub async fn with_db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut keyward_store::DbConnection) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let url = app.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let pool = keyward_store::connect(&url, 1)?;
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

/// A browser journey script in `tests/browser/` (node + playwright-core driving Chromium),
/// talked to over its stdin and stdout: the script prints one JSON object per step and reads
/// one line (a code, a signal) where it waits.
pub struct Journey {
    node: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Journey {
    pub fn start(script: &str, args: &[&str]) -> anyhow::Result<Journey> {
        use std::process::Stdio;
        use tokio::io::AsyncBufReadExt;
        let mut node = tokio::process::Command::new("node")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = node.stdin.take().context("the script's stdin")?;
        let lines = tokio::io::BufReader::new(node.stdout.take().context("the script's stdout")?).lines();
        Ok(Journey { node, stdin: Some(stdin), lines })
    }

    /// The script's next step (a minute at most: Chromium is slow under load, never that slow).
    pub async fn next(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line()).await??;
        Ok(serde_json::from_str(&line.unwrap_or_default())?)
    }

    /// Writes `line` (a newline is added when missing) to the waiting script.
    pub async fn send(&mut self, line: impl AsRef<[u8]>) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().context("the script's stdin is closed")?;
        stdin.write_all(line.as_ref()).await?;
        if !line.as_ref().ends_with(b"\n") {
            stdin.write_all(b"\n").await?;
        }
        Ok(())
    }

    /// Closes the script's stdin and waits for it: whether it exited successfully.
    pub async fn finish(mut self) -> anyhow::Result<bool> {
        drop(self.stdin.take());
        Ok(self.node.wait().await?.success())
    }
}
