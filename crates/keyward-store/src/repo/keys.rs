//! Signing keys (private halves encrypted under the master key).

use crate::DbConnection;
use crate::models::SigningKeyRow;
use crate::schema::signing_keys::dsl;
use diesel::prelude::*;

/// Keys still in the JWKS at `now` (signing or not), oldest first.
pub fn published(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .filter(dsl::unpublish_at.is_null().or(dsl::unpublish_at.gt(now)))
        .order((dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(dsl::signing_keys).values(row).execute(conn).map(|_| ())
}

/// Every key ever made, oldest first (for `keyward keys list`).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys.order((dsl::created_at.asc(), dsl::kid.asc())).select(SigningKeyRow::as_select()).load(conn)
}

/// Schedules the end of `kid`: it stops signing at `retired_at` and leaves the JWKS at
/// `unpublish_at`. Only a key not already retired is changed; true if it was.
pub fn retire(conn: &mut DbConnection, kid: &str, retired_at: i64, unpublish_at: i64) -> QueryResult<bool> {
    Ok(diesel::update(dsl::signing_keys.find(kid).filter(dsl::retired_at.is_null()))
        .set((dsl::retired_at.eq(retired_at), dsl::unpublish_at.eq(unpublish_at)))
        .execute(conn)?
        == 1)
}
