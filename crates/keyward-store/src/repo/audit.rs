//! The audit log: security events in one table, newest last.

use crate::DbConnection;
use crate::models::AuditEvent;
use crate::schema::audit_events as ae;
use diesel::prelude::*;

pub fn insert(conn: &mut DbConnection, event: &AuditEvent) -> QueryResult<()> {
    diesel::insert_into(ae::table).values(event).execute(conn).map(|_| ())
}

/// The latest events, optionally for one account, newest first.
pub fn latest(conn: &mut DbConnection, user_id: Option<&str>, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    let order = (ae::at.desc(), ae::id.desc());
    match user_id {
        Some(u) => ae::table.filter(ae::user_id.eq(u)).select(AuditEvent::as_select()).order(order).limit(limit).load(conn),
        None => ae::table.select(AuditEvent::as_select()).order(order).limit(limit).load(conn),
    }
}

/// An event with the address of its account, when the account still exists.
pub type EventWithEmail = (AuditEvent, Option<String>);

/// What `keyward audit search` filters on; every part is optional.
#[derive(Debug, Default, Clone)]
pub struct Filter<'a> {
    pub user_id: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Events at or after this moment.
    pub since: Option<i64>,
}

/// The newest `limit` events matching `filter`, oldest first, each with its account's address.
pub fn search(conn: &mut DbConnection, filter: &Filter<'_>, limit: i64) -> QueryResult<Vec<EventWithEmail>> {
    use crate::schema::users as u;
    let mut q = ae::table
        .left_join(u::table.on(u::id.nullable().eq(ae::user_id)))
        .select((AuditEvent::as_select(), u::email.nullable()))
        .into_boxed();
    if let Some(user) = filter.user_id {
        q = q.filter(ae::user_id.eq(user));
    }
    if let Some(kind) = filter.kind {
        q = q.filter(ae::kind.eq(kind));
    }
    if let Some(since) = filter.since {
        q = q.filter(ae::at.ge(since));
    }
    let mut rows: Vec<EventWithEmail> = q.order((ae::at.desc(), ae::id.desc())).limit(limit).load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// The first `limit` events recorded at or after `at`, oldest first (for following the log).
pub fn from(conn: &mut DbConnection, at: i64, limit: i64) -> QueryResult<Vec<EventWithEmail>> {
    use crate::schema::users as u;
    ae::table
        .left_join(u::table.on(u::id.nullable().eq(ae::user_id)))
        .filter(ae::at.ge(at))
        .order((ae::at.asc(), ae::id.asc()))
        .limit(limit)
        .select((AuditEvent::as_select(), u::email.nullable()))
        .load(conn)
}

/// The latest `signed_in` event per account: (user_id, at).
pub fn last_sign_ins(conn: &mut DbConnection) -> QueryResult<Vec<(Option<String>, Option<i64>)>> {
    ae::table.filter(ae::kind.eq("signed_in")).group_by(ae::user_id).select((ae::user_id, diesel::dsl::max(ae::at))).load(conn)
}
