//! What each [`TlsMode`] does on the wire, against a tiny scripted SMTP server on
//! `127.0.0.1:0`: `None` delivers plain SMTP (and ignores an offered STARTTLS),
//! `StartTls` issues STARTTLS and then opens a TLS handshake, or refuses a server
//! that does not offer it, and `Tls` opens with a TLS ClientHello.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_mail::{MailError, Mailer, OutgoingMail, TlsMode, TransportSettings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the scripted server saw from the client.
#[derive(Debug, Default)]
struct Seen {
    /// Command lines, in order (`EHLO …`, `MAIL FROM:…`, `STARTTLS`, …).
    commands: Vec<String>,
    /// The DATA payload, if a message was delivered.
    data: String,
    /// The first raw bytes after the greeting was skipped (Tls) or STARTTLS was accepted.
    raw: Vec<u8>,
}

/// How the scripted server behaves.
#[derive(Clone, Copy)]
enum Script {
    /// Speak SMTP; advertise STARTTLS in the EHLO reply or not.
    Smtp { offer_starttls: bool },
    /// Say nothing and read what the client sends first (implicit TLS speaks first).
    ListenFirst,
}

async fn scripted_server(script: Script) -> std::io::Result<(u16, Arc<Mutex<Seen>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            let _ = serve(stream, script, &record).await;
        }
    });
    Ok((port, seen))
}

async fn serve(stream: tokio::net::TcpStream, script: Script, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let offer_starttls = match script {
        Script::ListenFirst => return read_raw(&mut stream, seen).await,
        Script::Smtp { offer_starttls } => offer_starttls,
    };
    stream.write_all(b"220 fake.test ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        lock(seen).commands.push(command.clone());
        let verb = command.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if offer_starttls => stream.write_all(b"250-fake.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n").await?,
            "EHLO" => stream.write_all(b"250-fake.test\r\n250 8BITMIME\r\n").await?,
            "STARTTLS" => {
                stream.write_all(b"220 go ahead\r\n").await?;
                return read_raw(&mut stream, seen).await;
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => stream.write_all(b"250 ok\r\n").await?,
            "DATA" => {
                stream.write_all(b"354 end with .\r\n").await?;
                read_data(&mut stream, seen).await?;
                stream.write_all(b"250 queued\r\n").await?;
            }
            "QUIT" => return stream.write_all(b"221 bye\r\n").await,
            _ => stream.write_all(b"502 not here\r\n").await?,
        }
    }
}

async fn read_data(stream: &mut BufReader<tokio::net::TcpStream>, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 || line == ".\r\n" {
            return Ok(());
        }
        lock(seen).data.push_str(&line);
    }
}

/// Reads the first bytes the client sends (a TLS record header and handshake type
/// need 6), records them and hangs up.
async fn read_raw(stream: &mut BufReader<tokio::net::TcpStream>, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 6 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    lock(seen).raw = got;
    Ok(())
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A TLS handshake record (0x16, version 3.x) carrying a ClientHello (type 1).
fn is_client_hello(bytes: &[u8]) -> bool {
    bytes.len() >= 6 && bytes[0] == 0x16 && bytes[1] == 0x03 && bytes[5] == 0x01
}

fn mail() -> OutgoingMail {
    OutgoingMail {
        to: "alice@example.com".into(),
        subject: "Your sign-in code".into(),
        text: "Your code: ABCD-EFGH".into(),
        html: "<p>Your code: ABCD-EFGH</p>".into(),
    }
}

/// Sends one mail to the scripted server on `port` with `tls`, bounded in time.
async fn send_with(tls: TlsMode, port: u16) -> Result<Result<(), MailError>, Box<dyn std::error::Error>> {
    let settings =
        TransportSettings::Smtp { host: "127.0.0.1".into(), port, tls, username: None, password: None, timeout: Duration::from_secs(5) };
    let mailer = Mailer::new(settings, "kw@example.com")?;
    Ok(tokio::time::timeout(Duration::from_secs(20), mailer.send(&mail())).await?)
}

fn saw_starttls(seen: &Seen) -> bool {
    seen.commands.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS"))
}

#[tokio::test]
async fn tls_mode_none_delivers_plain_smtp_and_ignores_an_offered_starttls() -> Result<(), Box<dyn std::error::Error>> {
    let (port, seen) = scripted_server(Script::Smtp { offer_starttls: true }).await?;
    send_with(TlsMode::None, port).await??;
    let seen = lock(&seen);
    assert!(!saw_starttls(&seen), "TlsMode::None must not upgrade: {:?}", seen.commands);
    assert!(seen.commands.iter().any(|c| c == "MAIL FROM:<kw@example.com>"), "{:?}", seen.commands);
    assert!(seen.commands.iter().any(|c| c == "RCPT TO:<alice@example.com>"), "{:?}", seen.commands);
    assert!(seen.data.contains("Subject: Your sign-in code"), "{}", seen.data);
    assert!(seen.data.contains("ABCD-EFGH"), "the body travelled in plain text: {}", seen.data);
    Ok(())
}

#[tokio::test]
async fn tls_mode_starttls_issues_starttls_then_a_tls_handshake_before_any_mail() -> Result<(), Box<dyn std::error::Error>> {
    let (port, seen) = scripted_server(Script::Smtp { offer_starttls: true }).await?;
    let sent = send_with(TlsMode::StartTls, port).await?;
    assert!(matches!(sent, Err(MailError::Smtp(_))), "the fake server cannot finish TLS: {sent:?}");
    let seen = lock(&seen);
    assert!(seen.commands.first().is_some_and(|c| c.starts_with("EHLO ")), "{:?}", seen.commands);
    assert_eq!(seen.commands.last().map(String::as_str), Some("STARTTLS"), "{:?}", seen.commands);
    assert!(is_client_hello(&seen.raw), "after STARTTLS the client opens TLS: {:02x?}", seen.raw);
    assert!(seen.data.is_empty(), "nothing was sent in the clear");
    Ok(())
}

#[tokio::test]
async fn tls_mode_starttls_refuses_a_server_that_does_not_offer_it() -> Result<(), Box<dyn std::error::Error>> {
    let (port, seen) = scripted_server(Script::Smtp { offer_starttls: false }).await?;
    let sent = send_with(TlsMode::StartTls, port).await?;
    let err = match sent {
        Err(e @ MailError::Smtp(_)) => e,
        other => return Err(format!("expected an SMTP error, got {other:?}").into()),
    };
    assert!(!err.is_transient(), "a server without STARTTLS will not grow it on retry: {err:?}");
    let seen = lock(&seen);
    assert!(seen.commands.first().is_some_and(|c| c.starts_with("EHLO ")), "{:?}", seen.commands);
    assert!(!seen.commands.iter().any(|c| c.starts_with("MAIL") || c.starts_with("RCPT")), "{:?}", seen.commands);
    assert!(seen.data.is_empty(), "no mail in the clear");
    Ok(())
}

#[tokio::test]
async fn tls_mode_tls_opens_with_a_client_hello_not_smtp() -> Result<(), Box<dyn std::error::Error>> {
    let (port, seen) = scripted_server(Script::ListenFirst).await?;
    let sent = send_with(TlsMode::Tls, port).await?;
    assert!(matches!(sent, Err(MailError::Smtp(_))), "the plain server cannot finish TLS: {sent:?}");
    let seen = lock(&seen);
    assert!(is_client_hello(&seen.raw), "implicit TLS speaks first, with a ClientHello: {:02x?}", seen.raw);
    Ok(())
}
