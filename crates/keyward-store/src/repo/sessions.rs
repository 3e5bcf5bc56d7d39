//! Browser sessions, keyed by the SHA-256 of the cookie value.

use crate::DbConnection;
use crate::models::{Session, User};
use crate::schema::{sessions as s, users as u};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &Session) -> QueryResult<()> {
    diesel::insert_into(s::table).values(row).execute(conn).map(|_| ())
}

/// A live session and its (enabled) user: not revoked, within its absolute lifetime and
/// seen within `idle_secs`.
pub fn find_live(conn: &mut DbConnection, id_hash: &str, now: i64, idle_secs: i64) -> QueryResult<Option<(Session, User)>> {
    s::table
        .inner_join(u::table)
        .filter(s::id_hash.eq(id_hash))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .filter(s::last_seen_at.gt(now - idle_secs))
        .filter(u::disabled_at.is_null())
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// How stale `last_seen_at` may get before [`touch`] writes it: idle expiry is precise to
/// this, and a busy session costs one write a minute instead of one per request.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// Records activity (at most once a minute, to spare writes on hot paths). `session` is the
/// row as just read: when it was seen within the minute, no statement runs at all.
pub fn touch(conn: &mut DbConnection, session: &Session, now: i64) -> QueryResult<()> {
    if session.last_seen_at >= now - TOUCH_EVERY_SECS {
        return Ok(());
    }
    let id_hash = session.id_hash.as_str();
    diesel::update(s::table.find(id_hash).filter(s::last_seen_at.lt(now - TOUCH_EVERY_SECS)))
        .set(s::last_seen_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

/// A live session by its hash (without its user).
pub fn find_live_by_hash(conn: &mut DbConnection, id_hash: &str, now: i64, idle_secs: i64) -> QueryResult<Option<Session>> {
    Ok(find_live(conn, id_hash, now, idle_secs)?.map(|(s, _)| s))
}

/// Locks a session that has not been ended (a no-op update: on PostgreSQL it holds the row
/// until the transaction ends, so a logout running at the same time waits for it, or it
/// waits for the logout and then finds the session ended). False when the session has ended.
pub fn lock_unrevoked(conn: &mut DbConnection, id_hash: &str) -> QueryResult<bool> {
    diesel::update(s::table.find(id_hash).filter(s::revoked_at.is_null())).set(s::revoked_at.eq(None::<i64>)).execute(conn).map(|n| n == 1)
}

/// Ends a session (logout). Returns it if it was not already ended.
pub fn revoke(conn: &mut DbConnection, id_hash: &str, now: i64) -> QueryResult<Option<Session>> {
    let row: Option<Session> =
        s::table.find(id_hash).filter(s::revoked_at.is_null()).select(Session::as_select()).first(conn).optional()?;
    if row.is_some() {
        diesel::update(s::table.find(id_hash)).set(s::revoked_at.eq(now)).execute(conn)?;
    }
    Ok(row)
}

/// The account's live sessions (as [`find_live`] counts them), newest first.
pub fn live_for_user(conn: &mut DbConnection, user_id: &str, now: i64, idle_secs: i64) -> QueryResult<Vec<Session>> {
    s::table
        .filter(s::user_id.eq(user_id))
        .filter(s::revoked_at.is_null())
        .filter(s::expires_at.gt(now))
        .filter(s::last_seen_at.gt(now - idle_secs))
        .order(s::created_at.desc())
        .select(Session::as_select())
        .load(conn)
}

/// Ends every session of the account that is not ended yet; returns them.
pub fn revoke_for_user(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<Vec<Session>> {
    let open: Vec<Session> =
        s::table.filter(s::user_id.eq(user_id)).filter(s::revoked_at.is_null()).select(Session::as_select()).load(conn)?;
    diesel::update(s::table.filter(s::user_id.eq(user_id)).filter(s::revoked_at.is_null())).set(s::revoked_at.eq(now)).execute(conn)?;
    Ok(open)
}

/// The latest sign-in (`auth_time`) per account among the sessions still stored.
pub fn last_auth_times(conn: &mut DbConnection) -> QueryResult<Vec<(String, Option<i64>)>> {
    s::table.group_by(s::user_id).select((s::user_id, diesel::dsl::max(s::auth_time))).load(conn)
}

/// A fresh proof for a live session of `user_id` (re-authentication): moves its `auth_time`
/// to `now` and records the proof's `amr`. False when the session ended or is someone else's.
pub fn reauthenticate(conn: &mut DbConnection, id_hash: &str, user_id: &str, amr: &str, now: i64) -> QueryResult<bool> {
    diesel::update(s::table.find(id_hash).filter(s::user_id.eq(user_id)).filter(s::revoked_at.is_null()).filter(s::expires_at.gt(now)))
        .set((s::auth_time.eq(now), s::amr.eq(amr), s::last_seen_at.eq(now)))
        .execute(conn)
        .map(|n| n == 1)
}
