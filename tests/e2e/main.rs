//! End-to-end suites: the real `keyward` binary on a free port, a real SMTP server, real
//! SQLite files and a real PostgreSQL server, driven over HTTP, with the `openidconnect`
//! crate as the relying party. Test names carry the CHECKLIST item they prove.

// A failing test panics: that is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin_cli;
mod bad_input;
mod browser;
mod browser_reauth;
mod checklist_gaps;
mod cli;
mod client_auth;
mod common;
mod config_rules;
mod cross_device_takeover;
mod email_code;
mod faults;
mod grant_steps;
mod grants;
mod interop;
mod jwks_uri;
mod key_rotation;
mod limits;
mod login_state_bounds;
mod logout;
mod magic_link;
mod multi_instance;
mod network;
mod oidc_flow;
mod oidcc_basic;
mod operations;
mod outages;
mod passkey_account;
mod passkey_steps;
mod passkeys;
mod protocol_errors;
mod protocol_hardening;
mod reauth;
mod reauth_passkey;
mod secrets;
mod sign_in_abuse;
mod slow_callback;
mod try_it;
