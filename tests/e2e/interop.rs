//! Interoperability with independent relying-party libraries (issue 5, point 9): Authlib
//! (`tests/interop/authlib_rp.py`, client `app`, RS256) and pyoidc (`tests/interop/pyoidc_rp.py`,
//! client `app2`, ES256) each run the whole protocol against a freshly started Keyward and check
//! every answer with their own code. This test plays the person: it holds the browser's cookies
//! and signs in by email when Keyward shows its login page. The line protocol between the two
//! sides is described in `tests/interop/protocol.py`.
//!
//! The interpreter is `tests/interop/.venv/bin/python`, which `tests/run.sh` creates from
//! `tests/interop/requirements.txt`.

use crate::common::*;
use anyhow::{Context as _, bail};
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Every step each script must report as passed, in order.
const STEPS: &[&str] = &[
    "discovery",
    "prompt-none-without-session",
    "code-flow-pkce",
    "id-token",
    "id-token-forgeries-rejected",
    "userinfo",
    "code-reuse",
    "wrong-pkce-verifier",
    "unregistered-redirect-uri",
    "refresh-rotation",
    "refresh-replay",
    "introspection",
    "revocation",
    "logout",
    "prompt-none-after-logout",
];

/// The longest the script may stay silent (a sign-in waits up to 15 s for its email).
const LINE_TIMEOUT: Duration = Duration::from_secs(90);

const APP_SIGNED_OUT: &str = "http://localhost:9999/signed-out";
const APP2_SIGNED_OUT: &str = "http://localhost:9998/signed-out";

fn interop_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"))
}

struct Registration {
    client_id: &'static str,
    secret: &'static str,
    redirect: &'static str,
    signed_out: &'static str,
    alg: &'static str,
}

/// Where the browser went: a redirect away from Keyward, or a page Keyward showed.
enum Outcome {
    Redirect(String),
    Page(u16),
}

async fn follow(app: &TestApp, browser: &Browser, url: &str) -> anyhow::Result<(Outcome, Option<String>)> {
    let page = browser.get(url).await?;
    if !page.status.is_redirection() {
        return Ok((Outcome::Page(page.status.as_u16()), None));
    }
    let to = page.redirect_to(&app.issuer)?;
    let login = to.starts_with(&app.url("/login?attempt=")).then(|| to.clone());
    Ok((Outcome::Redirect(to), login))
}

/// The browser opens an authorization URL and, when Keyward shows its login page, signs in
/// with a code from the email the SMTP sink received.
async fn authorize(app: &TestApp, browser: &Browser, url: &str, email: &str) -> anyhow::Result<Outcome> {
    let (outcome, login) = follow(app, browser, url).await?;
    let Some(login) = login else { return Ok(outcome) };
    let page = browser.get(&login).await?;
    if page.status != 200 {
        bail!("login page answered {}:\n{}", page.status, page.body);
    }
    let (attempt, csrf) = (page.input("attempt")?, page.input("csrf")?);
    let code = request_code(app, browser, &attempt, &csrf, email).await?;
    let done = submit_code(app, browser, &attempt, &csrf, &code).await?;
    if done.status != 303 {
        bail!("the code was not accepted ({}):\n{}", done.status, done.body);
    }
    Ok(Outcome::Redirect(done.redirect_to(&app.issuer)?))
}

/// Runs one script against a fresh Keyward and returns the steps it passed and failed.
async fn run_rp(script: &str, reg: Registration) -> anyhow::Result<(Vec<String>, Vec<String>, std::process::ExitStatus)> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let email = format!("{}@interop.example.com", script.trim_end_matches(".py"));
    let python = interop_dir().join(".venv/bin/python");
    let mut rp = tokio::process::Command::new(&python)
        .arg(interop_dir().join(script))
        .args(["--issuer", &app.issuer, "--client-id", reg.client_id, "--client-secret", reg.secret])
        .args(["--redirect-uri", reg.redirect, "--post-logout-redirect-uri", reg.signed_out, "--id-token-alg", reg.alg])
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} (tests/run.sh creates it from tests/interop/requirements.txt)", python.display()))?;
    let mut stdin = rp.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(rp.stdout.take().context("stdout")?).lines();
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    loop {
        let line = tokio::time::timeout(LINE_TIMEOUT, lines.next_line())
            .await
            .with_context(|| format!("{script} said nothing for {LINE_TIMEOUT:?}"))??;
        let Some(line) = line else { break };
        eprintln!("{script} > {line}");
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let answer = match word {
            "OK" => {
                passed.push(rest.to_owned());
                continue;
            }
            "FAIL" => {
                failed.push(rest.to_owned());
                continue;
            }
            "AUTHORIZE" => match authorize(&app, &browser, rest, &email).await? {
                Outcome::Redirect(to) => format!("CALLBACK {to}"),
                Outcome::Page(status) => format!("PAGE {status}"),
            },
            "LOGOUT" => match follow(&app, &browser, rest).await?.0 {
                Outcome::Redirect(to) => format!("LOGGED_OUT {to}"),
                Outcome::Page(status) => format!("PAGE {status}"),
            },
            _ => bail!("{script} wrote an unknown line: {line}"),
        };
        eprintln!("{script} < {answer}");
        stdin.write_all(format!("{answer}\n").as_bytes()).await.with_context(|| format!("{script} stopped reading"))?;
        stdin.flush().await?;
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), rp.wait()).await.with_context(|| format!("{script} did not exit"))??;
    Ok((passed, failed, status))
}

async fn interop(script: &str, reg: Registration) -> anyhow::Result<()> {
    let (passed, failed, status) = run_rp(script, reg).await?;
    assert!(failed.is_empty(), "{script} failed steps:\n  {}", failed.join("\n  "));
    assert_eq!(passed, STEPS, "{script} reported exactly these steps as passed");
    assert!(status.success(), "{script} exited with {status}");
    Ok(())
}

#[tokio::test]
async fn interop_authlib_relying_party() -> anyhow::Result<()> {
    let reg =
        Registration { client_id: CLIENT_ID, secret: CLIENT_SECRET, redirect: CLIENT_REDIRECT, signed_out: APP_SIGNED_OUT, alg: "RS256" };
    interop("authlib_rp.py", reg).await
}

#[tokio::test]
async fn interop_pyoidc_relying_party() -> anyhow::Result<()> {
    let reg = Registration {
        client_id: CLIENT2_ID,
        secret: CLIENT2_SECRET,
        redirect: CLIENT2_REDIRECT,
        signed_out: APP2_SIGNED_OUT,
        alg: "ES256",
    };
    interop("pyoidc_rp.py", reg).await
}
