//! Recovery codes: a set of ten per account, replaced as a whole, each used once.

use crate::DbConnection;
use crate::models::RecoveryCode;
use crate::schema::recovery_codes as rc;
use diesel::prelude::*;

/// Replaces the account's codes with a new set (the old ones stop working).
pub fn replace_set(conn: &mut DbConnection, user_id: &str, hashes: &[String], now: i64) -> QueryResult<()> {
    diesel::delete(rc::table.filter(rc::user_id.eq(user_id))).execute(conn)?;
    // One row at a time: batch inserts are not portable across the multi-backend connection.
    for h in hashes {
        let row = RecoveryCode { code_hash: h.clone(), user_id: user_id.to_owned(), created_at: now, used_at: None };
        diesel::insert_into(rc::table).values(&row).execute(conn)?;
    }
    Ok(())
}

/// Uses the account's code with this hash; false when it is unknown, someone else's or used.
pub fn take(conn: &mut DbConnection, user_id: &str, code_hash: &str, now: i64) -> QueryResult<bool> {
    diesel::update(rc::table.find(code_hash).filter(rc::user_id.eq(user_id)).filter(rc::used_at.is_null()))
        .set(rc::used_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

/// How many unused codes the account has left.
pub fn remaining(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    rc::table.filter(rc::user_id.eq(user_id)).filter(rc::used_at.is_null()).count().get_result(conn)
}
