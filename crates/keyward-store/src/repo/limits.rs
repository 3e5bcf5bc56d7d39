//! Fixed-window rate limits kept in the database, so every instance counts the same hits.
//! Each step is a single guarded statement, safe under concurrency on SQLite and PostgreSQL.

use crate::DbConnection;
use crate::schema::rate_limits as rl;
use diesel::prelude::*;

/// Counts one hit on `key`. `Ok(None)` when allowed; `Ok(Some(seconds))` when the limit is
/// reached, with the seconds until the window ends.
pub fn hit(conn: &mut DbConnection, key: &str, window_secs: i64, limit: i32, now: i64) -> QueryResult<Option<i64>> {
    for _ in 0..3 {
        // 1. Inside the current window and under the limit.
        let counted = diesel::update(rl::table.find(key).filter(rl::window_start.gt(now - window_secs)).filter(rl::hits.lt(limit)))
            .set(rl::hits.eq(rl::hits + 1))
            .execute(conn)?;
        if counted == 1 {
            return Ok(None);
        }
        // 2. The window is over: start a new one.
        let renewed = diesel::update(rl::table.find(key).filter(rl::window_start.le(now - window_secs)))
            .set((rl::window_start.eq(now), rl::hits.eq(1)))
            .execute(conn)?;
        if renewed == 1 {
            return Ok(None);
        }
        // 3. At the limit, or no row yet.
        let start: Option<i64> = rl::table.find(key).select(rl::window_start).first(conn).optional()?;
        match start {
            Some(start) => return Ok(Some((start + window_secs - now).max(1))),
            None => {
                match diesel::insert_into(rl::table).values((rl::key.eq(key), rl::window_start.eq(now), rl::hits.eq(1))).execute(conn) {
                    Ok(_) => return Ok(None),
                    // Another request inserted it first: count again.
                    Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(Some(1))
}

/// Forgets `key` (after a success resets a failure counter).
pub fn reset(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(rl::table.find(key)).execute(conn).map(|_| ())
}
