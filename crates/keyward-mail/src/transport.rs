//! The [`Transport`] trait every way of delivering mail implements, the
//! [`Envelope`] handed to it, and [`TransportSettings`], which builds the
//! configured transport (SMTP or the dev outbox) without its caller knowing which.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;

use crate::{MailError, OutgoingMail};

/// The future a [`Transport`] returns from [`Transport::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// One message on its way: the validated sender and recipient and the rendered mail.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The sender (the configured `mail_from`), already parsed.
    pub from: &'a Mailbox,
    /// The recipient, already parsed from `mail.to`.
    pub to: &'a Mailbox,
    /// Subject and bodies.
    pub mail: &'a OutgoingMail,
}

/// A way to deliver mail. [`crate::Mailer`] validates addresses and hands each
/// message to its transport; nothing above this crate knows which one runs.
///
/// Implementations: SMTP (lettre, pooled), the dev outbox file and, with the
/// `test-sink` feature, the in-memory [`crate::TestSink`].
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs and `Debug` (`"smtp"`, `"dev"`, `"test-sink"`).
    fn kind(&self) -> &'static str;

    /// Delivers one message. Errors say whether a retry may help
    /// ([`MailError::is_transient`]); they never contain the body.
    fn send<'a>(&'a self, envelope: Envelope<'a>) -> SendFuture<'a>;
}

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

/// Where mail goes, as configured. `Debug` never shows the password.
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

impl TransportSettings {
    /// Builds the transport these settings describe.
    ///
    /// For SMTP this must run inside a Tokio runtime ([`MailError::NoRuntime`]
    /// otherwise): the pool's background task is spawned there.
    pub fn build(self) -> Result<Arc<dyn Transport>, MailError> {
        Ok(match self {
            TransportSettings::Dev { outbox } => Arc::new(crate::outbox::OutboxTransport::new(outbox)),
            TransportSettings::Smtp { host, port, tls, username, password, timeout } => {
                Arc::new(crate::smtp::SmtpTransport::new(&host, port, tls, username, password, timeout)?)
            }
        })
    }
}
