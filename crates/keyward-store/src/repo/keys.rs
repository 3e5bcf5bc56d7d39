//! Signing keys (private halves encrypted under the master key).

use crate::DbConnection;
use crate::models::SigningKeyRow;
use crate::schema::signing_keys::dsl;
use diesel::prelude::*;

/// Keys not yet retired, oldest first.
pub fn active(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .filter(dsl::retired_at.is_null())
        .order((dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(dsl::signing_keys).values(row).execute(conn).map(|_| ())
}
