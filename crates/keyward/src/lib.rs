//! The `keyward` library: the one assembly of the running application ([`app`]), shared by
//! `keyward serve` and the in-process test harness (`keyward-testkit`).

pub mod app;
