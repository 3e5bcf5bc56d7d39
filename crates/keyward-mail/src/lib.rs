//! Outgoing email for Keyward: the crate root, re-exporting the [`Mailer`], the
//! [`Transport`] trait it sends through, the message templates
//! ([`MailTemplates`]) and the error type.
//!
//! The only mail Keyward sends is the one-time sign-in code (and security
//! notices). Transports: SMTP, and in development [`TransportSettings::Dev`],
//! which appends every message to an outbox file (e.g. `./data/outbox.log`) so
//! the code can be read without an SMTP server; with the `test-sink` feature,
//! [`TestSink`] records messages in memory. Callers build a [`Mailer`] from
//! [`TransportSettings`] or from any `Arc<dyn Transport>` and never learn which runs.

mod error;
mod mailer;
mod outbox;
#[cfg(feature = "test-sink")]
mod sink;
mod smtp;
mod templates;
mod transport;

pub use error::MailError;
pub use mailer::{Mailer, OutgoingMail};
#[cfg(feature = "test-sink")]
pub use sink::{SentMail, TestSink};
pub use templates::{MailTemplates, SignInCodeMail};
pub use transport::{Envelope, SendFuture, TlsMode, Transport, TransportSettings};
