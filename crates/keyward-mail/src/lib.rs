//! Outgoing email for Keyward: the crate root, re-exporting the transport
//! ([`Mailer`]), the message templates ([`MailTemplates`]) and the error type.
//!
//! The only mail Keyward sends is the one-time sign-in code. In development the
//! [`TransportSettings::Dev`] transport appends every message to an outbox file
//! (e.g. `./data/outbox.log`) so the code can be read without an SMTP server.

mod error;
mod templates;
mod transport;

pub use error::MailError;
pub use templates::{MailTemplates, SignInCodeMail};
pub use transport::{Mailer, OutgoingMail, TlsMode, TransportSettings};
