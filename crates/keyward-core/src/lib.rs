//! Keyward's protocol and domain rules: pure functions and types with no web framework,
//! database, mailer or template engine behind them. Time and randomness come in as inputs
//! (`Clock`, `rand::RngCore`) so every rule is testable without waiting.

pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod clock;
pub mod config;
pub mod email;
pub mod email_code;
pub mod end_session;
pub mod local_next;
pub mod net;
pub mod oauth_error;
pub mod pkce;
pub mod recovery_code;
pub mod redemption;
pub mod scope;
pub mod secret;
pub mod session_reuse;

pub use clock::{Clock, ManualClock, SystemClock};
pub use oauth_error::{OAuthError, OAuthErrorCode};
