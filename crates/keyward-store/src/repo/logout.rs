//! Back-channel logout deliveries, claimed by any instance and retried with backoff.

use crate::DbConnection;
use crate::models::LogoutDelivery;
use crate::schema::logout_deliveries as d;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &LogoutDelivery) -> QueryResult<()> {
    diesel::insert_into(d::table).values(row).execute(conn).map(|_| ())
}

/// Claims up to `limit` due deliveries for `lease_secs`: each claimed row's next attempt
/// moves forward, so another instance will not send it meanwhile. Returns the claimed rows.
pub fn claim_due(conn: &mut DbConnection, now: i64, lease_secs: i64, limit: i64) -> QueryResult<Vec<LogoutDelivery>> {
    let due: Vec<LogoutDelivery> = d::table
        .filter(d::delivered_at.is_null())
        .filter(d::given_up_at.is_null())
        .filter(d::next_attempt_at.le(now))
        .order(d::next_attempt_at.asc())
        .limit(limit)
        .select(LogoutDelivery::as_select())
        .load(conn)?;
    let mut claimed = Vec::new();
    for row in due {
        let won = diesel::update(d::table.find(&row.id).filter(d::next_attempt_at.eq(row.next_attempt_at)))
            .set((d::next_attempt_at.eq(now + lease_secs), d::attempts.eq(row.attempts + 1)))
            .execute(conn)?;
        if won == 1 {
            claimed.push(LogoutDelivery { attempts: row.attempts + 1, ..row });
        }
    }
    Ok(claimed)
}

pub fn delivered(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(d::table.find(id)).set(d::delivered_at.eq(now)).execute(conn).map(|_| ())
}

/// Records a failure: try again at `retry_at`, or give up when it is None.
pub fn failed(conn: &mut DbConnection, id: &str, error: &str, retry_at: Option<i64>, now: i64) -> QueryResult<()> {
    match retry_at {
        Some(at) => diesel::update(d::table.find(id)).set((d::next_attempt_at.eq(at), d::last_error.eq(error))).execute(conn),
        None => diesel::update(d::table.find(id)).set((d::given_up_at.eq(now), d::last_error.eq(error))).execute(conn),
    }
    .map(|_| ())
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<LogoutDelivery>> {
    d::table.order(d::created_at.asc()).select(LogoutDelivery::as_select()).load(conn)
}
