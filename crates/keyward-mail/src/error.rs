//! The mail error type, [`MailError`], and its transient/permanent classification.
//!
//! Display messages never include message bodies (a body holds a sign-in code).

use std::path::PathBuf;

/// Everything that can go wrong while rendering or sending an email.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An email address (sender or recipient) could not be parsed.
    #[error("invalid {field} address {address:?}: {source}")]
    InvalidAddress {
        /// Which address was wrong: `"from"` or `"to"`.
        field: &'static str,
        /// The address as given.
        address: String,
        /// Why lettre rejected it.
        #[source]
        source: lettre::address::AddressError,
    },
    /// The MIME message could not be assembled.
    #[error("could not build the email message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP transport could not be configured (e.g. TLS parameters).
    #[error("invalid SMTP settings for {host}: {source}")]
    Config {
        /// The configured SMTP host.
        host: String,
        /// The underlying lettre error.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// An SMTP mailer was created outside a Tokio runtime (its connection
    /// pool needs one to run its background task).
    #[error("the SMTP mailer must be created inside a Tokio runtime")]
    NoRuntime,
    /// Sending through the SMTP server failed.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// Writing the development outbox file failed.
    #[error("could not write the dev outbox {path}: {source}")]
    Outbox {
        /// The outbox file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A mail template failed to parse or render.
    #[error("mail template error: {0}")]
    Template(String),
}

impl MailError {
    /// Whether retrying the same send later could succeed.
    ///
    /// Transient: 4xx SMTP replies, timeouts, connection and network failures,
    /// and outbox I/O errors. Permanent: 5xx rejections, bad addresses, message
    /// building, TLS/config errors and template errors.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp(e) => {
                if e.is_transient() || e.is_timeout() {
                    return true;
                }
                !(e.is_permanent() || e.is_client() || e.is_tls())
            }
            MailError::Outbox { .. } => true,
            MailError::InvalidAddress { .. }
            | MailError::Build(_)
            | MailError::Config { .. }
            | MailError::NoRuntime
            | MailError::Template(_) => false,
        }
    }
}

impl From<tera::Error> for MailError {
    fn from(err: tera::Error) -> Self {
        // Tera puts the useful detail in the source chain; flatten it.
        let mut msg = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(inner) = source {
            msg.push_str(": ");
            msg.push_str(&inner.to_string());
            source = inner.source();
        }
        MailError::Template(msg)
    }
}
