//! A real SMTP server for tests: [`SmtpSink`] accepts mail on 127.0.0.1, keeps
//! every message in memory (decoded with `mail-parser`) and lets tests wait for
//! the next mail to an address. It can also reject recipients with 550.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use mail_parser::{MessageParser, PartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Refuse DATA bigger than this (a test sink, not a mail store).
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// One message accepted by the sink.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// Envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// Decoded `Subject` header, or empty.
    pub subject: String,
    /// Decoded text/plain body, or empty.
    pub text: String,
    /// Decoded text/html body, or empty.
    pub html: String,
    /// The message as received (after dot-unstuffing).
    pub raw: String,
}

struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    notify: Notify,
    reject: AtomicBool,
    /// Milliseconds to wait before accepting a message (a slow mail server).
    delay_ms: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An SMTP server on 127.0.0.1 that stores what it receives.
///
/// It runs on the Tokio runtime that called [`SmtpSink::start`] and stops
/// (with all its connections) when dropped.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Binds 127.0.0.1 on a free port and starts accepting connections.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the SMTP sink")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            notify: Notify::new(),
            reject: AtomicBool::new(false),
            delay_ms: Default::default(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(port, "SMTP sink listening");
        Ok(SmtpSink { port, shared, task })
    }

    /// The port to point an SMTP client at (host 127.0.0.1, no TLS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages().clone()
    }

    /// Waits for the message to `to` that comes after the first `after_count`
    /// messages to that address (pass the count seen before triggering a send
    /// to get the "next" one). Addresses compare case-insensitively.
    pub async fn wait_for_mail_to(&self, to: &str, after_count: usize, timeout: Duration) -> anyhow::Result<ReceivedMail> {
        self.wait_for_mail_about(to, "", after_count, timeout).await
    }

    /// Like [`Self::wait_for_mail_to`], counting only messages whose subject contains
    /// `subject` (so a security notice sent meanwhile is not taken for a sign-in email).
    pub async fn wait_for_mail_about(
        &self,
        to: &str,
        subject: &str,
        after_count: usize,
        timeout: Duration,
    ) -> anyhow::Result<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(mail) = self.find_to(to, subject, after_count) {
                return Ok(mail);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen = self.count_to(to, subject);
                anyhow::bail!(
                    "no mail #{} to {to} within {timeout:?} (that address has {seen}, sink has {} in all)",
                    after_count + 1,
                    self.shared.messages().len()
                );
            }
        }
    }

    /// When `true`, `RCPT TO` is answered with `550` so every send fails.
    /// Makes the server wait this long before accepting each message.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.shared.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_reject(&self, reject: bool) {
        self.shared.reject.store(reject, Ordering::SeqCst);
    }

    fn find_to(&self, to: &str, subject: &str, after_count: usize) -> Option<ReceivedMail> {
        self.shared.messages().iter().filter(|m| addressed_to(m, to) && m.subject.contains(subject)).nth(after_count).cloned()
    }

    fn count_to(&self, to: &str, subject: &str) -> usize {
        self.shared.messages().iter().filter(|m| addressed_to(m, to) && m.subject.contains(subject)).count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn addressed_to(mail: &ReceivedMail, to: &str) -> bool {
    mail.to.iter().any(|r| r.eq_ignore_ascii_case(to))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owning the JoinSet means aborting this task also ends every connection.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    if let Err(err) = serve(stream, shared).await {
                        tracing::debug!(error = %err, "SMTP sink connection ended with an error");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "SMTP sink accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Speaks just enough SMTP for lettre's plaintext client.
async fn serve(stream: TcpStream, shared: Arc<Shared>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    write.write_all(b"220 keyward-testkit SMTP sink ready\r\n").await?;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                from = None;
                rcpts.clear();
                b"250 keyward-testkit\r\n"
            }
            "MAIL" => match path_arg(command, "FROM:") {
                Some(addr) => {
                    from = Some(addr);
                    rcpts.clear();
                    b"250 2.1.0 OK\r\n"
                }
                None => b"501 5.5.4 syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (&from, path_arg(command, "TO:")) {
                (None, _) => b"503 5.5.1 MAIL first\r\n",
                (Some(_), None) => b"501 5.5.4 syntax: RCPT TO:<address>\r\n",
                (Some(_), Some(_)) if shared.reject.load(Ordering::SeqCst) => b"550 5.1.1 mailbox unavailable (sink in reject mode)\r\n",
                (Some(_), Some(addr)) => {
                    rcpts.push(addr);
                    b"250 2.1.5 OK\r\n"
                }
            },
            "DATA" => match from.take() {
                Some(sender) if !rcpts.is_empty() => {
                    write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                    let raw = read_data(&mut reader).await?;
                    let delay = shared.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    }
                    let mail = decode(sender, std::mem::take(&mut rcpts), raw);
                    tracing::debug!(to = ?mail.to, subject = %mail.subject, "SMTP sink received mail");
                    shared.messages().push(mail);
                    shared.notify.notify_waiters();
                    b"250 2.0.0 queued\r\n"
                }
                other => {
                    from = other;
                    b"503 5.5.1 need MAIL and RCPT first\r\n"
                }
            },
            "RSET" => {
                from = None;
                rcpts.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                write.shutdown().await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Extracts the address from `MAIL FROM:<a@b> PARAMS` / `RCPT TO:<a@b>`.
fn path_arg(command: &str, keyword: &str) -> Option<String> {
    let upper = command.to_ascii_uppercase();
    let start = upper.find(keyword)? + keyword.len();
    let rest = command.get(start..)?.trim_start();
    let addr = match rest.strip_prefix('<') {
        Some(inner) => inner.split('>').next()?,
        None => rest.split_whitespace().next().unwrap_or(""),
    };
    Some(addr.trim().to_owned())
}

/// Reads DATA lines up to the lone `.`, undoing dot-stuffing.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> anyhow::Result<String> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            anyhow::bail!("connection closed during DATA");
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok(String::from_utf8_lossy(&raw).into_owned());
        }
        let unstuffed = if line.first() == Some(&b'.') { &line[1..] } else { &line[..] };
        if raw.len() + unstuffed.len() > MAX_MESSAGE_BYTES {
            anyhow::bail!("message larger than {MAX_MESSAGE_BYTES} bytes");
        }
        raw.extend_from_slice(unstuffed);
    }
}

fn decode(from: String, to: Vec<String>, raw: String) -> ReceivedMail {
    let (subject, text, html) = match MessageParser::default().parse(raw.as_bytes()) {
        Some(message) => {
            let subject = message.subject().unwrap_or("").to_owned();
            let mut text = None;
            let mut html = None;
            for part in &message.parts {
                match &part.body {
                    PartType::Text(t) if text.is_none() => text = Some(t.to_string()),
                    PartType::Html(h) if html.is_none() => html = Some(h.to_string()),
                    _ => {}
                }
            }
            (subject, text.unwrap_or_default(), html.unwrap_or_default())
        }
        None => (String::new(), String::new(), String::new()),
    };
    ReceivedMail { from, to, subject, text, html, raw }
}
