//! The audit log of security events: recorded inside the transaction of the change it
//! describes, and read back newest first.

use crate::{Keyward, ServiceError};
use keyward_store::models::AuditEvent;
use keyward_store::{DbConnection, repo};

impl Keyward {
    /// Records a security event inside the caller's transaction.
    pub(crate) fn audit(
        &self,
        c: &mut DbConnection,
        kind: &str,
        user_id: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let event = AuditEvent {
            // Time-ordered, so events of one second list in the order they happened.
            id: uuid::Uuid::now_v7().to_string(),
            at: self.now(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            detail: detail.to_string(),
            client_addr: None,
        };
        repo::audit::insert(c, &event)?;
        Ok(())
    }

    /// The latest audit events, newest first (for an account, or all).
    pub fn audit_events(&self, user_id: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>, ServiceError> {
        Ok(repo::audit::latest(&mut *self.conn()?, user_id, limit)?)
    }
}
