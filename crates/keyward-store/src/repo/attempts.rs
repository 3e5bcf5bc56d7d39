//! Login attempts (a pending authorization request bound to one browser) and the email
//! challenges sent for them.

use crate::DbConnection;
use crate::models::{EmailChallenge, LoginAttempt};
use crate::schema::{email_challenges as ec, login_attempts as la};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &LoginAttempt) -> QueryResult<()> {
    diesel::insert_into(la::table).values(row).execute(conn).map(|_| ())
}

/// A live, unfinished attempt.
pub fn find_live(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<Option<LoginAttempt>> {
    la::table
        .find(id)
        .filter(la::expires_at.gt(now))
        .filter(la::completed_at.is_null())
        .select(LoginAttempt::as_select())
        .first(conn)
        .optional()
}

/// Marks the attempt finished; false when another request finished it first.
pub fn complete(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<bool> {
    diesel::update(la::table.find(id).filter(la::completed_at.is_null())).set(la::completed_at.eq(now)).execute(conn).map(|n| n == 1)
}

/// Stores a new challenge and kills every earlier one of the attempt: only the latest code
/// works (CHECKLIST D3).
pub fn replace_challenge(conn: &mut DbConnection, row: &EmailChallenge) -> QueryResult<()> {
    diesel::update(ec::table.filter(ec::attempt_id.eq(&row.attempt_id)).filter(ec::consumed_at.is_null()))
        .set(ec::consumed_at.eq(row.created_at))
        .execute(conn)?;
    diesel::insert_into(ec::table).values(row).execute(conn).map(|_| ())
}

/// The attempt's live challenge, if any.
pub fn current_challenge(conn: &mut DbConnection, attempt_id: &str) -> QueryResult<Option<EmailChallenge>> {
    ec::table
        .filter(ec::attempt_id.eq(attempt_id))
        .filter(ec::consumed_at.is_null())
        .order(ec::created_at.desc())
        .select(EmailChallenge::as_select())
        .first(conn)
        .optional()
}

/// Takes one try from the challenge before the code is checked, so parallel guesses cannot
/// exceed `max_tries` (CHECKLIST D4). False when the challenge is dead, used or expired.
pub fn take_try(conn: &mut DbConnection, id: &str, max_tries: i32, now: i64) -> QueryResult<bool> {
    diesel::update(
        ec::table.find(id).filter(ec::consumed_at.is_null()).filter(ec::expires_at.gt(now)).filter(ec::failed_tries.lt(max_tries)),
    )
    .set(ec::failed_tries.eq(ec::failed_tries + 1))
    .execute(conn)
    .map(|n| n == 1)
}

/// Gives back the try taken by a correct code and marks the challenge used; false when
/// another request used it first.
pub fn consume_challenge(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<bool> {
    diesel::update(ec::table.find(id).filter(ec::consumed_at.is_null()))
        .set((ec::consumed_at.eq(now), ec::failed_tries.eq(ec::failed_tries - 1)))
        .execute(conn)
        .map(|n| n == 1)
}

/// The live challenge a magic link belongs to, with its attempt.
pub fn find_by_link(conn: &mut DbConnection, link_hash: &str, now: i64) -> QueryResult<Option<(EmailChallenge, LoginAttempt)>> {
    ec::table
        .inner_join(la::table.on(la::id.eq(ec::attempt_id)))
        .filter(ec::link_hash.eq(link_hash))
        .filter(ec::consumed_at.is_null())
        .filter(ec::expires_at.gt(now))
        .filter(la::completed_at.is_null())
        .filter(la::expires_at.gt(now))
        .select((EmailChallenge::as_select(), LoginAttempt::as_select()))
        .first(conn)
        .optional()
}

/// Records how the email went. A failed delivery kills the code and link at once, so no
/// usable secret is left behind.
pub fn set_delivery(conn: &mut DbConnection, challenge_id: &str, delivery: &str, now: i64) -> QueryResult<()> {
    let row = ec::table.find(challenge_id);
    if delivery == "failed" {
        diesel::update(row).set((ec::delivery.eq(delivery), ec::consumed_at.eq(now))).execute(conn)?;
    } else {
        diesel::update(row).set(ec::delivery.eq(delivery)).execute(conn)?;
    }
    Ok(())
}

/// The newest challenge of the attempt, used or not (to tell the person what happened to it).
pub fn latest_challenge(conn: &mut DbConnection, attempt_id: &str) -> QueryResult<Option<EmailChallenge>> {
    ec::table.filter(ec::attempt_id.eq(attempt_id)).order(ec::created_at.desc()).select(EmailChallenge::as_select()).first(conn).optional()
}

pub fn set_approval_number(conn: &mut DbConnection, attempt_id: &str, number: i32) -> QueryResult<()> {
    diesel::update(la::table.find(attempt_id))
        .set((la::approval_number.eq(number), la::approved_at.eq(None::<i64>)))
        .execute(conn)
        .map(|_| ())
}

/// Approves an unfinished attempt from another device; false if it was not open.
pub fn approve(conn: &mut DbConnection, attempt_id: &str, now: i64) -> QueryResult<bool> {
    diesel::update(la::table.find(attempt_id).filter(la::completed_at.is_null()).filter(la::approved_at.is_null()))
        .set(la::approved_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

/// Ends an attempt and every code and link sent for it.
pub fn cancel(conn: &mut DbConnection, attempt_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(ec::table.filter(ec::attempt_id.eq(attempt_id)).filter(ec::consumed_at.is_null()))
        .set(ec::consumed_at.eq(now))
        .execute(conn)?;
    diesel::update(la::table.find(attempt_id).filter(la::completed_at.is_null())).set(la::completed_at.eq(now)).execute(conn)?;
    Ok(())
}

/// Parks a finished sign-in on the passkey offer: the session answers the app once the
/// person continues.
pub fn park_for_offer(conn: &mut DbConnection, id: &str, session_hash: &str) -> QueryResult<()> {
    diesel::update(la::table.find(id)).set(la::offer_session_hash.eq(session_hash)).execute(conn).map(|_| ())
}

/// Takes a parked sign-in (once): the attempt and the session hash that answers it.
pub fn take_parked(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<Option<LoginAttempt>> {
    let Some(row) = la::table
        .find(id)
        .filter(la::expires_at.gt(now))
        .filter(la::completed_at.is_not_null())
        .filter(la::offer_session_hash.is_not_null())
        .select(LoginAttempt::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let taken = diesel::update(la::table.find(id).filter(la::offer_session_hash.eq(row.offer_session_hash.clone())))
        .set(la::offer_session_hash.eq(None::<String>))
        .execute(conn)?;
    Ok((taken == 1).then_some(row))
}

/// A parked sign-in, without taking it (for showing the offer page).
pub fn find_parked(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<Option<LoginAttempt>> {
    la::table
        .find(id)
        .filter(la::expires_at.gt(now))
        .filter(la::offer_session_hash.is_not_null())
        .select(LoginAttempt::as_select())
        .first(conn)
        .optional()
}

/// Removes every email code and link sent to `email` (when its account is deleted).
pub fn delete_challenges_for_email(conn: &mut DbConnection, email: &str) -> QueryResult<usize> {
    diesel::delete(ec::table.filter(ec::email.eq(email))).execute(conn)
}
