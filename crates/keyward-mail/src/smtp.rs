//! The SMTP [`Transport`]: one pooled lettre connection manager, with the
//! connection secured as [`TlsMode`] says.

use std::time::Duration;

use lettre::message::MultiPart;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::{Envelope, MailError, SendFuture, TlsMode, Transport};

/// Delivers through an SMTP server as multipart/alternative (plain text + HTML).
pub(crate) struct SmtpTransport {
    smtp: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    /// Builds the pooled transport; must run inside a Tokio runtime.
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: TlsMode,
        username: Option<String>,
        password: Option<SecretString>,
        timeout: Duration,
    ) -> Result<SmtpTransport, MailError> {
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
        Ok(SmtpTransport { smtp: builder.build() })
    }
}

fn message(envelope: Envelope<'_>) -> Result<Message, MailError> {
    let mail = envelope.mail;
    Ok(Message::builder()
        .from(envelope.from.clone())
        .to(envelope.to.clone())
        .subject(mail.subject.as_str())
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))?)
}

impl Transport for SmtpTransport {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, envelope: Envelope<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let message = message(envelope)?;
            self.smtp.send(message).await.map_err(MailError::Smtp)?;
            tracing::debug!(to = ?envelope.mail.to, "mail handed to SMTP server");
            Ok(())
        })
    }
}
