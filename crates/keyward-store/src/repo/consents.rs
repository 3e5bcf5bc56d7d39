//! Consent a person gave an app: the scopes granted so far, one row per person and app.

use crate::DbConnection;
use crate::models::Consent;
use crate::schema::consents as c;
use diesel::prelude::*;

pub fn find(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<Option<Consent>> {
    c::table.find((user_id, client_id)).select(Consent::as_select()).first(conn).optional()
}

/// Records (or widens) consent to `scope`.
pub fn grant(conn: &mut DbConnection, user_id: &str, client_id: &str, scope: &str, now: i64) -> QueryResult<()> {
    let updated = diesel::update(c::table.find((user_id, client_id))).set((c::scope.eq(scope), c::granted_at.eq(now))).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(c::table)
            .values(&Consent { user_id: user_id.into(), client_id: client_id.into(), scope: scope.into(), granted_at: now })
            .execute(conn)?;
    }
    Ok(())
}

pub fn for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Consent>> {
    c::table.filter(c::user_id.eq(user_id)).order(c::granted_at.desc()).select(Consent::as_select()).load(conn)
}

/// Withdraws consent; true if there was one.
pub fn revoke(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<bool> {
    Ok(diesel::delete(c::table.find((user_id, client_id))).execute(conn)? == 1)
}
