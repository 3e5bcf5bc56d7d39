//! Accounts.

use crate::DbConnection;
use crate::models::User;
use crate::schema::users::dsl;
use diesel::prelude::*;

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    dsl::users.filter(dsl::email.eq(email)).select(User::as_select()).first(conn).optional()
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    dsl::users.find(id).select(User::as_select()).first(conn).optional()
}

pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<()> {
    diesel::insert_into(dsl::users).values(user).execute(conn).map(|_| ())
}

pub fn mark_email_verified(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::update(dsl::users.find(id)).set(dsl::email_verified.eq(true)).execute(conn).map(|_| ())
}

/// Disables (`Some(now)`) or enables (`None`) an account; false when no account has the address.
pub fn set_disabled(conn: &mut DbConnection, email: &str, disabled_at: Option<i64>) -> QueryResult<bool> {
    diesel::update(dsl::users.filter(dsl::email.eq(email))).set(dsl::disabled_at.eq(disabled_at)).execute(conn).map(|n| n == 1)
}

/// Locks an account that is not disabled (a no-op update, held until the transaction ends, so
/// disabling it at the same time waits or is waited for). False when it is disabled or gone.
pub fn lock_enabled(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    diesel::update(dsl::users.find(id).filter(dsl::disabled_at.is_null()))
        .set(dsl::disabled_at.eq(None::<i64>))
        .execute(conn)
        .map(|n| n == 1)
}

/// Turns email sign-in on or off for the account.
pub fn set_email_sign_in(conn: &mut DbConnection, id: &str, on: bool) -> QueryResult<()> {
    diesel::update(dsl::users.find(id)).set(dsl::email_sign_in.eq(on)).execute(conn).map(|_| ())
}

/// Remembers that the person declined the "sign in faster next time" passkey offer.
pub fn decline_passkey_offer(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(dsl::users.find(id)).set(dsl::passkey_offer_declined_at.eq(now)).execute(conn).map(|_| ())
}

/// Every account (or only the disabled ones), oldest first.
pub fn all(conn: &mut DbConnection, disabled_only: bool) -> QueryResult<Vec<User>> {
    let mut q = dsl::users.select(User::as_select()).order((dsl::created_at.asc(), dsl::email.asc())).into_boxed();
    if disabled_only {
        q = q.filter(dsl::disabled_at.is_not_null());
    }
    q.load(conn)
}

/// Deletes the account; its sessions, passkeys, recovery codes, authorization codes, grants
/// (with their refresh tokens) and consents go with it (ON DELETE CASCADE). True if it existed.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    diesel::delete(dsl::users.find(id)).execute(conn).map(|n| n == 1)
}
