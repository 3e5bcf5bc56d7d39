//! Test infrastructure for Keyward's end-to-end suites: the real application in process on a
//! manual clock, or the real binary as a subprocess ([`app`]), a real SMTP server ([`smtp`]), a throwaway PostgreSQL ([`postgres`]) and a
//! scripted cookie-keeping browser ([`browser`]).

pub mod app;
pub mod browser;
pub mod postgres;
pub mod proxy;
pub mod smtp;
