//! Grants and the tokens that hang off them: refresh tokens (rotated, reuse-detected) and
//! access tokens revoked one by one. Revoking a grant ends every token it issued.

use crate::DbConnection;
use crate::models::{Grant, RefreshToken, User};
use crate::schema::{grants as g, refresh_tokens as rt, revoked_tokens as rv, users as u};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &Grant) -> QueryResult<()> {
    diesel::insert_into(g::table).values(row).execute(conn).map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Grant>> {
    g::table.find(id).select(Grant::as_select()).first(conn).optional()
}

/// Revokes one grant; true if it was live.
pub fn revoke(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<bool> {
    Ok(diesel::update(g::table.find(id).filter(g::revoked_at.is_null())).set(g::revoked_at.eq(now)).execute(conn)? == 1)
}

/// Revokes every live grant a browser session opened; returns them (for logout notices).
pub fn revoke_for_session(conn: &mut DbConnection, session_hash: &str, now: i64) -> QueryResult<Vec<Grant>> {
    let live: Vec<Grant> =
        g::table.filter(g::session_hash.eq(session_hash)).filter(g::revoked_at.is_null()).select(Grant::as_select()).load(conn)?;
    diesel::update(g::table.filter(g::session_hash.eq(session_hash)).filter(g::revoked_at.is_null()))
        .set(g::revoked_at.eq(now))
        .execute(conn)?;
    Ok(live)
}

/// Revokes every live grant of one person to one app; returns how many.
pub fn revoke_for_user_client(conn: &mut DbConnection, user_id: &str, client_id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(g::table.filter(g::user_id.eq(user_id)).filter(g::client_id.eq(client_id)).filter(g::revoked_at.is_null()))
        .set(g::revoked_at.eq(now))
        .execute(conn)
}

/// For an access token: its grant while live (not revoked, not past its end) with the
/// enabled user behind it (None for client_credentials), unless the token's `jti` was
/// revoked. One query.
pub fn live_for_access_token(conn: &mut DbConnection, grant_id: &str, jti: &str, now: i64) -> QueryResult<Option<(Grant, Option<User>)>> {
    let revoked = rv::table.filter(rv::jti.eq(jti));
    g::table
        .left_join(u::table)
        .filter(g::id.eq(grant_id))
        .filter(g::revoked_at.is_null())
        .filter(g::expires_at.gt(now))
        .filter(u::disabled_at.is_null())
        .filter(diesel::dsl::not(diesel::dsl::exists(revoked)))
        .select((Grant::as_select(), Option::<User>::as_select()))
        .first(conn)
        .optional()
}

/// Marks one access token revoked until `expires_at`. Idempotent.
pub fn revoke_access_token(conn: &mut DbConnection, jti: &str, expires_at: i64) -> QueryResult<()> {
    let seen: i64 = rv::table.filter(rv::jti.eq(jti)).count().get_result(conn)?;
    if seen == 0 {
        diesel::insert_into(rv::table).values((rv::jti.eq(jti), rv::expires_at.eq(expires_at))).execute(conn)?;
    }
    Ok(())
}

pub fn insert_refresh(conn: &mut DbConnection, row: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(rt::table).values(row).execute(conn).map(|_| ())
}

/// A refresh token by hash, with its grant.
pub fn find_refresh(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<(RefreshToken, Grant)>> {
    rt::table
        .inner_join(g::table)
        .filter(rt::token_hash.eq(token_hash))
        .select((RefreshToken::as_select(), Grant::as_select()))
        .first(conn)
        .optional()
}

/// Marks a refresh token used. Exactly one of two concurrent callers gets true.
pub fn use_refresh(conn: &mut DbConnection, token_hash: &str, now: i64) -> QueryResult<bool> {
    Ok(diesel::update(rt::table.find(token_hash).filter(rt::used_at.is_null())).set(rt::used_at.eq(now)).execute(conn)? == 1)
}

/// The person's live grants to apps (for the account page): (client_id, scope, created_at).
pub fn live_for_user(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<Vec<Grant>> {
    g::table
        .filter(g::user_id.eq(user_id))
        .filter(g::revoked_at.is_null())
        .filter(g::expires_at.gt(now))
        .order(g::created_at.desc())
        .select(Grant::as_select())
        .load(conn)
}

/// Revokes every live grant of the account, whatever opened it; returns them (for logout notices).
pub fn revoke_for_user(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<Vec<Grant>> {
    let live: Vec<Grant> = g::table.filter(g::user_id.eq(user_id)).filter(g::revoked_at.is_null()).select(Grant::as_select()).load(conn)?;
    diesel::update(g::table.filter(g::user_id.eq(user_id)).filter(g::revoked_at.is_null())).set(g::revoked_at.eq(now)).execute(conn)?;
    Ok(live)
}
