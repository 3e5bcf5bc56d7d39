//! Login attempts (a pending authorization request bound to one browser) and the email
//! challenges sent for them.

use crate::DbConnection;
use crate::models::{EmailChallenge, LoginAttempt};
use crate::schema::{email_challenges as ec, login_attempts as la};
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, row: &LoginAttempt) -> QueryResult<()> {
    diesel::insert_into(la::table).values(row).execute(conn).map(|_| ())
}

/// An attempt in any state.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<LoginAttempt>> {
    la::table.find(id).select(LoginAttempt::as_select()).first(conn).optional()
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

/// Stores a new challenge for an open attempt and kills every earlier one: only the latest
/// code and link work (CHECKLIST D3). The attempt row is updated first, which locks it until
/// the transaction ends (PostgreSQL's row lock, as `SELECT … FOR UPDATE` takes; SQLite's
/// single writer): two concurrent requests for one attempt take turns, so the second always
/// sees and kills the first's challenge and one live challenge remains. The same update gives
/// the attempt a new approval number and withdraws any approval another device gave, so an
/// approval never carries over to a challenge it did not approve (issue 14, finding 1).
/// False when the attempt is no longer open.
pub fn replace_challenge(conn: &mut DbConnection, row: &EmailChallenge, approval_number: i32) -> QueryResult<bool> {
    let open = diesel::update(la::table.find(&row.attempt_id).filter(la::completed_at.is_null()))
        .set((
            la::approval_number.eq(approval_number),
            la::approved_at.eq(None::<i64>),
            la::approved_challenge_id.eq(None::<String>),
            la::approved_email.eq(None::<String>),
        ))
        .execute(conn)?;
    if open != 1 {
        return Ok(false);
    }
    diesel::update(ec::table.filter(ec::attempt_id.eq(&row.attempt_id)).filter(ec::consumed_at.is_null()))
        .set(ec::consumed_at.eq(row.created_at))
        .execute(conn)?;
    diesel::insert_into(ec::table).values(row).execute(conn)?;
    Ok(true)
}

/// Stores a re-authentication code (keyed by its session, with no login attempt row and no
/// link, so no approval to withdraw) and kills the session's earlier ones.
pub fn replace_reauth_challenge(conn: &mut DbConnection, row: &EmailChallenge) -> QueryResult<()> {
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
        .order((ec::created_at.desc(), ec::id.desc()))
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

/// The address a challenge was sent to.
pub fn challenge_email(conn: &mut DbConnection, challenge_id: &str) -> QueryResult<Option<String>> {
    ec::table.find(challenge_id).select(ec::email).first(conn).optional()
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
/// `created_at` has whole seconds, so a live challenge wins a tie (a replaced one was killed
/// by it), then the id: the answer never depends on the order rows happen to come back in.
pub fn latest_challenge(conn: &mut DbConnection, attempt_id: &str) -> QueryResult<Option<EmailChallenge>> {
    ec::table
        .filter(ec::attempt_id.eq(attempt_id))
        .order((ec::created_at.desc(), ec::consumed_at.is_null().desc(), ec::id.desc()))
        .select(EmailChallenge::as_select())
        .first(conn)
        .optional()
}

/// Approves an unfinished attempt from another device for exactly the challenge whose link
/// carried the right number (and its address); false if the attempt was not open.
pub fn approve(conn: &mut DbConnection, attempt_id: &str, challenge: &EmailChallenge, now: i64) -> QueryResult<bool> {
    diesel::update(la::table.find(attempt_id).filter(la::completed_at.is_null()).filter(la::approved_at.is_null()))
        .set((la::approved_at.eq(now), la::approved_challenge_id.eq(&challenge.id), la::approved_email.eq(&challenge.email)))
        .execute(conn)
        .map(|n| n == 1)
}

/// Takes the approval of an open attempt, once, if it is still the one for `challenge_id`:
/// false when a newer code request withdrew it or another request took it first.
pub fn take_approval(conn: &mut DbConnection, attempt_id: &str, challenge_id: &str) -> QueryResult<bool> {
    diesel::update(
        la::table
            .find(attempt_id)
            .filter(la::completed_at.is_null())
            .filter(la::approved_at.is_not_null())
            .filter(la::approved_challenge_id.eq(challenge_id)),
    )
    .set((la::approved_at.eq(None::<i64>), la::approved_challenge_id.eq(None::<String>)))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends an attempt and every code and link sent for it.
pub fn cancel(conn: &mut DbConnection, attempt_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(ec::table.filter(ec::attempt_id.eq(attempt_id)).filter(ec::consumed_at.is_null()))
        .set(ec::consumed_at.eq(now))
        .execute(conn)?;
    // Expired as well as finished: unlike a sign-in, a cancelled attempt was not finished by
    // its browser (see `attempt_finished_here`).
    diesel::update(la::table.find(attempt_id).filter(la::completed_at.is_null()))
        .set((la::completed_at.eq(now), la::expires_at.eq(now)))
        .execute(conn)?;
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
