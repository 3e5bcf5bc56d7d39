//! Passkeys and WebAuthn ceremony state. A ceremony is taken (deleted) exactly once, so a
//! challenge cannot be answered twice (CHECKLIST R2, A9).

use crate::DbConnection;
use crate::models::{Ceremony, PasskeyRow};
use crate::schema::{passkeys as pk, webauthn_ceremonies as wc};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &PasskeyRow) -> QueryResult<()> {
    diesel::insert_into(pk::table).values(row).execute(conn).map(|_| ())
}

pub fn for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<PasskeyRow>> {
    pk::table.filter(pk::user_id.eq(user_id)).order(pk::created_at.asc()).select(PasskeyRow::as_select()).load(conn)
}

pub fn find(conn: &mut DbConnection, credential_id: &str) -> QueryResult<Option<PasskeyRow>> {
    pk::table.find(credential_id).select(PasskeyRow::as_select()).first(conn).optional()
}

/// Stores the credential after a sign-in (counter, backup state) and when it was used.
pub fn record_use(conn: &mut DbConnection, credential_id: &str, passkey_json: &str, backup_state: bool, now: i64) -> QueryResult<()> {
    diesel::update(pk::table.find(credential_id))
        .set((pk::passkey_json.eq(passkey_json), pk::backup_state.eq(backup_state), pk::last_used_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

pub fn save_ceremony(conn: &mut DbConnection, row: &Ceremony) -> QueryResult<()> {
    diesel::insert_into(wc::table).values(row).execute(conn).map(|_| ())
}

/// Removes and returns a live ceremony of `kind`; `None` if it is unknown, expired or
/// already taken by another request.
pub fn take_ceremony(conn: &mut DbConnection, id: &str, kind: &str, now: i64) -> QueryResult<Option<Ceremony>> {
    let Some(row) = wc::table.find(id).filter(wc::kind.eq(kind)).select(Ceremony::as_select()).first(conn).optional()? else {
        return Ok(None);
    };
    let taken = diesel::delete(wc::table.find(id)).execute(conn)?;
    Ok((taken == 1 && row.expires_at > now).then_some(row))
}

pub fn count_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    pk::table.filter(pk::user_id.eq(user_id)).count().get_result(conn)
}

/// Renames one of the person's passkeys; false when it is not theirs.
pub fn rename(conn: &mut DbConnection, user_id: &str, credential_id: &str, name: &str) -> QueryResult<bool> {
    diesel::update(pk::table.find(credential_id).filter(pk::user_id.eq(user_id))).set(pk::name.eq(name)).execute(conn).map(|n| n == 1)
}

/// Deletes one of the person's passkeys; false when it is not theirs.
pub fn delete(conn: &mut DbConnection, user_id: &str, credential_id: &str) -> QueryResult<bool> {
    diesel::delete(pk::table.find(credential_id).filter(pk::user_id.eq(user_id))).execute(conn).map(|n| n == 1)
}

/// How many passkeys each account has: (user_id, count), accounts without one left out.
pub fn counts_by_user(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    pk::table.group_by(pk::user_id).select((pk::user_id, diesel::dsl::count_star())).load(conn)
}

/// Removes the account's pending WebAuthn ceremonies (no foreign key ties them to it).
pub fn delete_ceremonies_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(wc::table.filter(wc::user_id.eq(user_id))).execute(conn)
}
