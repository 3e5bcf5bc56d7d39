//! The mail transport: [`Mailer`] sends [`OutgoingMail`] either through a pooled
//! SMTP connection or, in development, into a human-readable outbox file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::MailError;

/// How to secure the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP, no TLS at all (local relays and tests only).
    None,
    /// Connect in plain text, then STARTTLS is required (usually port 587).
    StartTls,
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
}

/// Where mail goes. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub enum TransportSettings {
    /// Development: log a line (recipient + subject only, NEVER the body: it
    /// holds a sign-in code) and append the whole message as readable text to
    /// `outbox` (parent directories are created), separated by a clear
    /// delimiter line, so a newcomer can read the code from `./data/outbox.log`.
    Dev {
        /// The outbox file, appended to.
        outbox: PathBuf,
    },
    /// A real SMTP server.
    Smtp {
        /// Server host name.
        host: String,
        /// Server port.
        port: u16,
        /// Connection security.
        tls: TlsMode,
        /// Login user name; authentication is used when both user and password are set.
        username: Option<String>,
        /// Login password, exposed only to hand it to the SMTP client.
        password: Option<SecretString>,
        /// Timeout for each network operation.
        timeout: Duration,
    },
}

/// A rendered email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Sends email. Cheap to clone: everything lives behind an `Arc`.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    Dev { outbox: PathBuf, lock: Mutex<()> },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner.transport {
            Transport::Dev { .. } => "dev",
            Transport::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer").field("from", &self.inner.from.to_string()).field("transport", &kind).finish()
    }
}

impl Mailer {
    /// Validates the sender address and builds the transport (for SMTP, one
    /// pooled connection manager, created once and shared by all clones).
    ///
    /// For SMTP this must run inside a Tokio runtime ([`MailError::NoRuntime`]
    /// otherwise): the pool's background task is spawned there, so create the
    /// mailer on the runtime that lives as long as the server.
    pub fn new(settings: TransportSettings, from: &str) -> Result<Mailer, MailError> {
        let from = parse_mailbox("from", from)?;
        let transport = match settings {
            TransportSettings::Dev { outbox } => Transport::Dev { outbox, lock: Mutex::new(()) },
            TransportSettings::Smtp { host, port, tls, username, password, timeout } => {
                Transport::Smtp(build_smtp(&host, port, tls, username, password, timeout)?)
            }
        };
        Ok(Mailer { inner: Arc::new(Inner { from, transport }) })
    }

    /// Sends `mail` as multipart/alternative (plain text + HTML).
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let to = parse_mailbox("to", &mail.to)?;
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))?;
        match &self.inner.transport {
            Transport::Dev { outbox, lock } => {
                let _guard = lock.lock().await;
                append_to_outbox(outbox, &self.inner.from, mail).await?;
                tracing::info!(
                    to = %mail.to,
                    subject = %mail.subject,
                    outbox = %outbox.display(),
                    "dev mail written to outbox"
                );
                Ok(())
            }
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(MailError::Smtp)?;
                tracing::debug!(to = ?mail.to, "mail handed to SMTP server");
                Ok(())
            }
        }
    }
}

fn parse_mailbox(field: &'static str, address: &str) -> Result<Mailbox, MailError> {
    address.trim().parse::<Mailbox>().map_err(|source| MailError::InvalidAddress { field, address: address.to_owned(), source })
}

fn build_smtp(
    host: &str,
    port: u16,
    tls: TlsMode,
    username: Option<String>,
    password: Option<SecretString>,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(MailError::NoRuntime);
    }
    let config_err = |source| MailError::Config { host: host.to_owned(), source };
    let mut builder = match tls {
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        TlsMode::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(config_err)?,
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(config_err)?,
    };
    builder = builder.port(port).timeout(Some(timeout)).pool_config(PoolConfig::new());
    if let (Some(user), Some(pass)) = (username, password) {
        builder = builder.credentials(Credentials::new(user, pass.expose_secret().to_owned()));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    Ok(transport)
}

/// Appends one message, framed by delimiter lines, to the outbox file.
async fn append_to_outbox(path: &Path, from: &Mailbox, mail: &OutgoingMail) -> Result<(), MailError> {
    let io_err = |source| MailError::Outbox { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
    }
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("unknown time"));
    let entry = format!(
        "======================== keyward mail {now} ========================\n\
         From: {from}\n\
         To: {to}\n\
         Subject: {subject}\n\
         \n\
         {text}\n\
         ------------------------ HTML alternative ------------------------\n\
         {html}\n\
         ======================== end of mail ========================\n\n",
        to = mail.to,
        subject = mail.subject,
        text = mail.text.trim_end(),
        html = mail.html.trim_end(),
    );
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.map_err(io_err)?;
    file.write_all(entry.as_bytes()).await.map_err(io_err)?;
    file.flush().await.map_err(io_err)?;
    Ok(())
}
