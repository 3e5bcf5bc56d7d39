//! Replay cache for client assertions (private_key_jwt): a `jti` is accepted once.

use crate::DbConnection;
use crate::schema::client_assertion_jtis as j;
use diesel::prelude::*;

/// Records the assertion's `jti` hash until `expires_at`; false if it was seen before.
pub fn first_use(conn: &mut DbConnection, jti_hash: &str, expires_at: i64) -> QueryResult<bool> {
    let seen: i64 = j::table.filter(j::jti_hash.eq(jti_hash)).count().get_result(conn)?;
    if seen > 0 {
        return Ok(false);
    }
    // A concurrent insert of the same jti fails on the primary key: that caller loses.
    Ok(diesel::insert_into(j::table).values((j::jti_hash.eq(jti_hash), j::expires_at.eq(expires_at))).execute(conn).is_ok())
}
