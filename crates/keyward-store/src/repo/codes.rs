//! Authorization codes: stored by hash, consumed once; a replay revokes the grant
//! (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use crate::DbConnection;
use crate::models::{AuthorizationCode, User};
use crate::schema::{authorization_codes as ac, users as u};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &AuthorizationCode) -> QueryResult<()> {
    diesel::insert_into(ac::table).values(row).execute(conn).map(|_| ())
}

pub enum Redemption {
    /// First use of a live code: the caller issues tokens.
    Redeemed(Box<AuthorizationCode>, Box<User>),
    /// The code was used before; the code and its grant (by id) are now revoked.
    Replayed(String),
    /// Unknown, expired or revoked.
    Invalid,
}

/// Consumes the code with the given hash. Exactly one of two concurrent calls redeems it.
pub fn redeem(conn: &mut DbConnection, code_hash: &str, now: i64) -> QueryResult<Redemption> {
    let won = diesel::update(
        ac::table.find(code_hash).filter(ac::consumed_at.is_null()).filter(ac::revoked_at.is_null()).filter(ac::expires_at.gt(now)),
    )
    .set(ac::consumed_at.eq(now))
    .execute(conn)?;
    let row: Option<(AuthorizationCode, User)> = ac::table
        .inner_join(u::table)
        .filter(ac::code_hash.eq(code_hash))
        .select((AuthorizationCode::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((code, user)) if won == 1 => Redemption::Redeemed(Box::new(code), Box::new(user)),
        Some((code, _)) if code.consumed_at.is_some() => {
            diesel::update(ac::table.find(code_hash)).set(ac::revoked_at.eq(now)).execute(conn)?;
            super::grants::revoke(conn, &code.grant_id, now)?;
            Redemption::Replayed(code.grant_id)
        }
        _ => Redemption::Invalid,
    })
}
