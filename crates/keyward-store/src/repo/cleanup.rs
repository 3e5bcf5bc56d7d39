//! Sweeping rows whose secrets can no longer be used. Idempotent, so every instance may run it.

use crate::DbConnection;
use crate::schema::{
    audit_events as ae, authorization_codes as ac, client_assertion_jtis as cj, email_challenges as ec, grants as g, login_attempts as la,
    logout_deliveries as ld, rate_limits as rl, revoked_tokens as rv, sessions as s, webauthn_ceremonies as wc,
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
    pub grants: usize,
    pub revoked_tokens: usize,
    pub client_assertions: usize,
    pub logout_deliveries: usize,
    pub audit_events: usize,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.email_challenges
            + self.login_attempts
            + self.sessions
            + self.authorization_codes
            + self.rate_limits
            + self.ceremonies
            + self.grants
            + self.revoked_tokens
            + self.client_assertions
            + self.logout_deliveries
            + self.audit_events
    }
}

/// Deletes expired challenges, attempts, sessions, grants (with their refresh tokens),
/// revoked-token and client-assertion records; authorization codes `code_retention_secs`
/// after issue (long enough to recognise a replay); week-old logout deliveries; and rate-limit windows that
/// ended more than `limit_window_secs` ago; and audit events recorded before `audit_cutoff`
/// (None keeps them forever).
pub fn sweep(
    conn: &mut DbConnection,
    now: i64,
    idle_secs: i64,
    code_retention_secs: i64,
    limit_window_secs: i64,
    audit_cutoff: Option<i64>,
) -> QueryResult<Swept> {
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
        // Refresh tokens go with their grant (ON DELETE CASCADE). A revoked grant is kept as
        // long as a token of it could be presented as live, then goes too.
        grants: diesel::delete(g::table.filter(g::expires_at.lt(now).or(g::revoked_at.lt(now - code_retention_secs)))).execute(conn)?,
        revoked_tokens: diesel::delete(rv::table.filter(rv::expires_at.lt(now))).execute(conn)?,
        client_assertions: diesel::delete(cj::table.filter(cj::expires_at.lt(now))).execute(conn)?,
        logout_deliveries: diesel::delete(ld::table.filter(ld::created_at.lt(now - 7 * 86_400))).execute(conn)?,
        audit_events: match audit_cutoff {
            Some(cutoff) => diesel::delete(ae::table.filter(ae::at.lt(cutoff))).execute(conn)?,
            None => 0,
        },
    })
}
