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
        // 3. At the limit, or no row yet — or another request created the row since step 1
        //    (then it is under the limit: count again, instead of refusing a request that
        //    only raced another one for the first hit).
        let row: Option<(i64, i32)> = rl::table.find(key).select((rl::window_start, rl::hits)).first(conn).optional()?;
        match row {
            Some((start, hits)) if hits < limit && start > now - window_secs => continue,
            Some((start, _)) => return Ok(Some((start + window_secs - now).max(1))),
            None => {
                // In a savepoint, so that losing the race does not abort a caller's transaction
                // on PostgreSQL.
                let inserted = conn.transaction(|c| {
                    diesel::insert_into(rl::table).values((rl::key.eq(key), rl::window_start.eq(now), rl::hits.eq(1))).execute(c)
                });
                match inserted {
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

/// Counts one hit on each of `limits` (key, window seconds, limit) — all of them, or, when
/// one is reached, none: a refused request changes nothing (issue 14, finding 22). `Ok(None)`
/// when allowed; `Ok(Some((index, seconds)))` names the first limit reached and when its
/// window ends.
pub fn hit_all(conn: &mut DbConnection, limits: &[(&str, i64, i32)], now: i64) -> QueryResult<Option<(usize, i64)>> {
    Ok(hit_all_then(conn, limits, now, |_| Ok(()))?.err())
}

/// [`hit_all`], then `guarded` in the same write transaction when every limit allows: the
/// hits and what they guard commit together, and a refused request writes nothing at all
/// (issue 14, finding 3: a refused login attempt stores no row). `Ok(Err((index, seconds)))`
/// when refused, as [`hit_all`] says it.
pub fn hit_all_then<T>(
    conn: &mut DbConnection,
    limits: &[(&str, i64, i32)],
    now: i64,
    guarded: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<Result<T, (usize, i64)>> {
    let mut refused = None;
    let outcome = crate::write_transaction(conn, |c| {
        for (i, (key, window, limit)) in limits.iter().enumerate() {
            if let Some(retry_after) = hit(c, key, *window, *limit, now)? {
                refused = Some((i, retry_after));
                return Err(diesel::result::Error::RollbackTransaction);
            }
        }
        guarded(c)
    });
    match (outcome, refused) {
        (Ok(value), _) => Ok(Ok(value)),
        (Err(diesel::result::Error::RollbackTransaction), Some(refused)) => Ok(Err(refused)),
        (Err(e), _) => Err(e),
    }
}

/// Forgets `key` (after a success resets a failure counter).
pub fn reset(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(rl::table.find(key)).execute(conn).map(|_| ())
}
