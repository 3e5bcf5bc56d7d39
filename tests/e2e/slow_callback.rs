//! Issue 14, finding 17 in a real browser: a correct code, then an app whose callback takes
//! longer than two of the code page's 2 s status polls. A real, slow HTTP server plays the
//! app: it holds the callback request for `HOLD` and notices if the browser gives up on it
//! (as it does when a poll reloads the page). The browser must end on the app's page.

use crate::common::*;
use keyward_core::secret::hash_secret;
use keyward_testkit::app::*;
use keyward_testkit::browser::code_in;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const SLOW_ID: &str = "slow-app";
const SLOW_SECRET: &str = "test-secret-for-the-slow-app-0123456789abcdefghij";
/// Three poll intervals of `ui/static/login.js`.
const HOLD: Duration = Duration::from_secs(6);

/// What the slow app saw of a callback request.
#[derive(Debug)]
enum Callback {
    Arrived {
        target: String,
    },
    /// `abandoned`: the browser closed the connection before the answer (the trip was cancelled).
    Done {
        abandoned: bool,
    },
}

/// Serves `/callback` slowly: reads the request, then waits `HOLD` (or until the browser
/// hangs up) before answering with the app's page.
async fn slow_app(listener: tokio::net::TcpListener, seen: mpsc::UnboundedSender<Callback>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let target = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
            if !target.starts_with("/callback") {
                // The favicon, say: nothing, at once.
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
                return;
            }
            let _ = seen.send(Callback::Arrived { target });
            // A closed connection reads as 0 bytes: the browser gave up on this page.
            let abandoned = matches!(tokio::time::timeout(HOLD, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)));
            if !abandoned {
                let body = "<!doctype html><title>Slow app</title><h1>Back in the app</h1>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
            }
            let _ = seen.send(Callback::Done { abandoned });
        });
    }
}

/// How many `/login/status` polls Keyward has answered (its own request metrics).
async fn status_polls(app: &TestApp) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{}/metrics", app.metrics)).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("keyward_http_request_duration_seconds_count{") && l.contains("\"/login/status\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum())
}

#[tokio::test]
async fn f17_a_correct_code_with_a_slow_app_callback_ends_in_the_app_in_chromium() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect = format!("http://localhost:{}/callback", listener.local_addr()?.port());
    let (tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(slow_app(listener, tx));
    let extra = format!(
        "[[clients]]\nid = \"{SLOW_ID}\"\nname = \"Slow App\"\nsecret_hashes = [\"{}\"]\nredirect_uris = [\"{redirect}\"]\nfirst_party = true\n",
        hash_secret(SLOW_SECRET)
    );
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    let rp = rp(&app, SLOW_ID, Some(SLOW_SECRET), &redirect).await?;
    let req = auth_request(&rp);
    let email = "slow-app-user@example.com";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/slow_callback.mjs");
    let mut journey = Journey::start(script, &[&req.url, email, &redirect])?;
    assert_eq!(journey.next().await?["step"], "code");
    let code = code_in(&app.smtp.wait_for_mail_to(email, 0, Duration::from_secs(15)).await?.text)?;
    journey.send(format!("{code}\n").as_bytes()).await?;

    // The browser reaches the app; the app holds it past two polls, then answers.
    let wait = Duration::from_secs(30);
    let Some(Callback::Arrived { target }) = tokio::time::timeout(wait, seen.recv()).await? else { panic!("no callback") };
    let polls_at_arrival = status_polls(&app).await?;
    let Some(Callback::Done { abandoned }) = tokio::time::timeout(wait, seen.recv()).await? else { panic!("no answer") };
    let polls_during_hold = status_polls(&app).await? - polls_at_arrival;
    let outcome = journey.next().await?;
    println!("slow callback: abandoned {abandoned}, {polls_during_hold} status polls during the {HOLD:?} hold, outcome {outcome}");
    assert!(!abandoned, "the browser gave up on the app's callback (a status poll reloaded the page): {outcome}");
    assert_eq!(outcome["h1"], "Back in the app", "the browser ends in the app, not on an error: {outcome}");
    assert!(outcome["url"].as_str().unwrap_or_default().starts_with(&redirect), "{outcome}");
    assert_eq!(outcome["errors"], serde_json::json!([]), "no script or CSP errors");
    assert_eq!(polls_during_hold, 0, "the page stopped polling once the code was sent");
    let claims = redeem(&rp, &format!("http://localhost{target}"), req).await?;
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    assert!(journey.finish().await?, "the script ran to its end");
    Ok(())
}
