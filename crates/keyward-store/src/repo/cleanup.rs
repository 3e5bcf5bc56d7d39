//! Sweeping rows whose secrets can no longer be used. Idempotent, so every instance may run it.

use crate::DbConnection;
use crate::schema::{
    authorization_codes as ac, email_challenges as ec, login_attempts as la, rate_limits as rl, sessions as s, webauthn_ceremonies as wc,
};
use diesel::prelude::*;

/// How many rows each sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub email_challenges: usize,
    pub login_attempts: usize,
    pub sessions: usize,
    pub authorization_codes: usize,
    pub rate_limits: usize,
    pub ceremonies: usize,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.email_challenges + self.login_attempts + self.sessions + self.authorization_codes + self.rate_limits + self.ceremonies
    }
}

/// Deletes expired challenges, attempts and sessions; authorization codes once no access
/// token issued from them can still be live (`code_retention_secs` after issue, since
/// `/userinfo` checks a token's grant against its code row); and rate-limit windows that
/// ended more than `limit_window_secs` ago.
pub fn sweep(conn: &mut DbConnection, now: i64, idle_secs: i64, code_retention_secs: i64, limit_window_secs: i64) -> QueryResult<Swept> {
    Ok(Swept {
        email_challenges: diesel::delete(ec::table.filter(ec::expires_at.lt(now))).execute(conn)?,
        login_attempts: diesel::delete(la::table.filter(la::expires_at.lt(now))).execute(conn)?,
        sessions: diesel::delete(
            s::table.filter(s::expires_at.lt(now).or(s::last_seen_at.lt(now - idle_secs)).or(s::revoked_at.is_not_null())),
        )
        .execute(conn)?,
        authorization_codes: diesel::delete(ac::table.filter(ac::created_at.lt(now - code_retention_secs))).execute(conn)?,
        rate_limits: diesel::delete(rl::table.filter(rl::window_start.lt(now - limit_window_secs))).execute(conn)?,
        ceremonies: diesel::delete(wc::table.filter(wc::expires_at.lt(now))).execute(conn)?,
    })
}
