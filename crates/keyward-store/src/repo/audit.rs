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
