//! The [`Mailer`] the application sends with: it validates addresses and hands
//! each [`OutgoingMail`] to whichever [`Transport`] it was built with.

use std::sync::Arc;

use lettre::message::Mailbox;

use crate::{Envelope, MailError, Transport, TransportSettings};

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
    from: Arc<Mailbox>,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).field("transport", &self.transport.kind()).finish()
    }
}

impl Mailer {
    /// Validates the sender address and builds the configured transport (for
    /// SMTP, one pooled connection manager, created once and shared by all clones).
    ///
    /// For SMTP this must run inside a Tokio runtime ([`MailError::NoRuntime`]
    /// otherwise): the pool's background task is spawned there, so create the
    /// mailer on the runtime that lives as long as the server.
    pub fn new(settings: TransportSettings, from: &str) -> Result<Mailer, MailError> {
        let from = parse_mailbox("from", from)?;
        Ok(Mailer { from: Arc::new(from), transport: settings.build()? })
    }

    /// A mailer sending from `from` through any [`Transport`] (e.g. a test sink).
    pub fn with_transport(transport: Arc<dyn Transport>, from: &str) -> Result<Mailer, MailError> {
        let from = parse_mailbox("from", from)?;
        Ok(Mailer { from: Arc::new(from), transport })
    }

    /// Which transport runs (`"smtp"`, `"dev"`, `"test-sink"`), for logs.
    pub fn transport_kind(&self) -> &'static str {
        self.transport.kind()
    }

    /// Sends `mail` (the transport delivers it as plain text + HTML).
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let to = parse_mailbox("to", &mail.to)?;
        self.transport.send(Envelope { from: &self.from, to: &to, mail }).await
    }
}

fn parse_mailbox(field: &'static str, address: &str) -> Result<Mailbox, MailError> {
    address.trim().parse::<Mailbox>().map_err(|source| MailError::InvalidAddress { field, address: address.to_owned(), source })
}
