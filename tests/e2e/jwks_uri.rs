//! Issue 14, finding 5: fetching a `private_key_jwt` client's `jwks_uri` is safe. A tiny
//! HTTP server in the test plays the client's key server (counting the requests it gets):
//! too-large answers are cut off while streaming, unknown `kid`s fetch at most once a
//! minute, non-public addresses are refused unless the client opts in, and a server that
//! never answers costs one bounded wait, not one per request.

use crate::client_auth::*;
use crate::common::*;
use keyward_testkit::app::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the test's key server answers.
#[derive(Clone)]
enum Answer {
    /// `head`, then `padding` spaces (64 KiB at a time), then `tail`, without a length.
    Streamed { head: String, padding: usize, tail: String },
    /// Nothing at all: the connection stays open until the other side closes it.
    Silence,
}

/// What the key server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// Bytes of the answer the peer accepted before it closed the connection.
    written: AtomicUsize,
    completed: AtomicBool,
    /// Connections whose handling has ended.
    ended: AtomicUsize,
}

struct KeyServer {
    port: u16,
    seen: Arc<Seen>,
}

impl KeyServer {
    async fn start(answer: Answer) -> anyhow::Result<KeyServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Seen::default());
        let counted = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (answer, seen) = (answer.clone(), counted.clone());
                tokio::spawn(async move {
                    handle(sock, &answer, &seen).await;
                    seen.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Ok(KeyServer { port, seen })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks.json", self.port)
    }

    fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    /// Waits (polling, bounded) until `n` connections have been handled to their end.
    async fn wait_ended(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.seen.ended.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the key server's connection did not end");
            tokio::time::sleep(Duration::from_millis(20)).await; // poll: the key server sees its connections end
        }
    }
}

async fn handle(mut sock: tokio::net::TcpStream, answer: &Answer, seen: &Seen) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    seen.requests.fetch_add(1, Ordering::SeqCst);
    match answer {
        Answer::Silence => {
            // Returns when Keyward gives up and closes the connection.
            let _ = sock.read(&mut chunk).await;
        }
        Answer::Streamed { head, padding, tail } => {
            let start = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{head}");
            let spaces = vec![b' '; 64 * 1024];
            let mut parts = vec![start.into_bytes()];
            parts.extend(std::iter::repeat_n(spaces, padding / (64 * 1024)));
            parts.push(tail.clone().into_bytes());
            for part in parts {
                if sock.write_all(&part).await.is_err() {
                    return;
                }
                seen.written.fetch_add(part.len(), Ordering::SeqCst);
            }
            let _ = sock.shutdown().await;
            seen.completed.store(true, Ordering::SeqCst);
        }
    }
}

/// A `client_credentials` client whose keys are at `jwks_uri`; `extra` adds keys.
fn keyed_client(id: &str, jwks_uri: &str, extra: &str) -> String {
    format!(
        "\n[[clients]]\nid = \"{id}\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"{jwks_uri}\"\n{extra}\n\
         redirect_uris = [\"https://{id}.example/unused\"]\ngrant_types = [\"client_credentials\"]\nscopes = [\"jobs.run\"]\n"
    )
}

const GRANT: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("scope", "jobs.run")];

async fn token_for(app: &TestApp, key: &ClientKey, client_id: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    send_signed(app, "/token", &key.sign(&claims(client_id, &app.url("/token"))), &GRANT).await
}

#[tokio::test]
async fn f5_a_jwks_uri_answering_more_than_64_kib_is_refused_without_buffering_it() -> anyhow::Result<()> {
    let key = ClientKey::es256("big");
    // A valid JWK Set, made 32 MiB large by whitespace (JSON allows it): whoever reads it
    // all accepts the key; Keyward stops reading at 64 KiB.
    let set = jwk_set(&[&key]);
    let (head, tail) = set.split_at(set.len() - 1);
    let padding = 32 * 1024 * 1024;
    let server = KeyServer::start(Answer::Streamed { head: head.into(), padding, tail: tail.into() }).await?;
    let extra = keyed_client("big", &server.url(), "allow_private_jwks_uri = true");
    let app = spawn_binary(AppOptions { extra: Some(extra), ..Default::default() }).await?;

    let answer = token_for(&app, &key, "big").await?;
    assert_eq!(error(&answer), (401, "invalid_client".into()), "{answer:?}");
    server.wait_ended(1).await;
    let written = server.seen.written.load(Ordering::SeqCst);
    eprintln!("the key server got {written} bytes of its {padding}-byte answer out before Keyward closed the connection");
    assert!(!server.seen.completed.load(Ordering::SeqCst), "the whole answer was read ({written} bytes)");
    // What the kernel's socket buffers hold is accepted too; far less than the answer.
    assert!(written < padding / 2, "{written} bytes were taken of a {padding}-byte answer");
    assert!(app.log().contains("larger than 64 KiB"), "the log names why:\n{}", app.log());
    Ok(())
}

#[tokio::test]
async fn f5_unknown_kids_cause_at_most_one_refetch_per_interval() -> anyhow::Result<()> {
    let (known, rotated) = (ClientKey::es256("known"), ClientKey::es256("rotated"));
    let (head, tail) = {
        let set = jwk_set(&[&known]);
        let (h, t) = set.split_at(set.len() - 1);
        (h.to_owned(), t.to_owned())
    };
    let server = KeyServer::start(Answer::Streamed { head, padding: 0, tail }).await?;
    let extra = keyed_client("busy", &server.url(), "allow_private_jwks_uri = true");
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;

    let (status, body) = token_for(&app, &known, "busy").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.requests(), 1, "the first assertion fetched the keys");

    // Assertions with kids the set does not have: at once, then one after another.
    let strangers: Vec<ClientKey> = (0..8).map(|i| ClientKey::es256(&format!("stranger-{i}"))).collect();
    let answers = futures_util::future::join_all(strangers.iter().map(|k| token_for(&app, k, "busy"))).await;
    for answer in answers {
        assert_eq!(error(&answer?), (401, "invalid_client".into()));
    }
    for k in &strangers[..4] {
        assert_eq!(error(&token_for(&app, k, "busy").await?), (401, "invalid_client".into()));
    }
    assert_eq!(server.requests(), 2, "twelve unknown kids fetched the keys once");
    // Within the interval even a real rotation waits (the cost of the limit, documented);
    // the known key keeps working all along.
    assert_eq!(error(&token_for(&app, &rotated, "busy").await?), (401, "invalid_client".into()));
    assert_eq!(token_for(&app, &known, "busy").await?.0, 200);
    assert_eq!(server.requests(), 2);
    Ok(())
}

#[tokio::test]
async fn f5_a_loopback_or_private_jwks_uri_is_refused_unless_allowed() -> anyhow::Result<()> {
    let key = ClientKey::es256("local");
    let set = jwk_set(&[&key]);
    let (head, tail) = set.split_at(set.len() - 1);
    let server = KeyServer::start(Answer::Streamed { head: head.into(), padding: 0, tail: tail.into() }).await?;
    let port = server.port;
    let clients = [
        ("literal", server.url(), "127.0.0.1 is a non-public address (loopback (127.0.0.0/8))"),
        ("named", format!("http://localhost:{port}/jwks.json"), "localhost resolves only to non-public addresses (loopback"),
        ("v6", format!("https://[::1]:{port}/jwks.json"), "[::1] is a non-public address (loopback (::1))"),
        ("metadata", "https://169.254.169.254/jwks.json".to_owned(), "is a non-public address (link-local (169.254.0.0/16))"),
        ("intranet", "https://10.20.30.40/jwks.json".to_owned(), "is a non-public address (private (10.0.0.0/8))"),
    ];
    let extra: String = clients.iter().map(|(id, uri, _)| keyed_client(id, uri, "")).collect();
    let app = spawn_binary(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    for (id, _, why) in &clients {
        let answer = token_for(&app, &key, id).await?;
        assert_eq!(error(&answer), (401, "invalid_client".into()), "{id}: {answer:?}");
        let log = app.log();
        let line = log.lines().find(|l| l.contains("cannot fetch the client's jwks_uri") && l.contains(&format!("{id:?}")));
        assert!(line.is_some_and(|l| l.contains(why) && l.contains("allow_private_jwks_uri")), "{id}: the log names why ({why}):\n{log}");
    }
    assert_eq!(server.requests(), 0, "no request reached the loopback server");
    Ok(())
}

#[tokio::test]
async fn f5_a_jwks_uri_that_never_answers_times_out_once_and_is_not_asked_again_within_the_interval() -> anyhow::Result<()> {
    let key = ClientKey::es256("silent");
    let server = KeyServer::start(Answer::Silence).await?;
    let extra = keyed_client("silent", &server.url(), "allow_private_jwks_uri = true");
    let app = spawn_binary(AppOptions { extra: Some(extra), ..Default::default() }).await?;

    let started = Instant::now();
    let answer = token_for(&app, &key, "silent").await?;
    let waited = started.elapsed();
    eprintln!("the first assertion waited {waited:?} for the silent key server");
    assert_eq!(error(&answer), (401, "invalid_client".into()), "{answer:?}");
    assert!(waited < Duration::from_secs(7), "the fetch gave up after {waited:?}");
    assert!(app.log().contains("no answer within the timeout"), "{}", app.log());
    server.wait_ended(1).await;

    // The next assertions are refused at once, without asking the silent server again.
    for _ in 0..3 {
        let started = Instant::now();
        let answer = token_for(&app, &key, "silent").await?;
        assert_eq!(error(&answer), (401, "invalid_client".into()), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "refused in {:?}", started.elapsed());
    }
    assert_eq!(server.requests(), 1);
    Ok(())
}
