//! The security notice: one sentence emailed to the address on record when something
//! changes on the account (a passkey added or removed, recovery codes, the email switch).

/// A security notice to email to the address on record (sent off the request path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: String,
    /// One sentence: what happened to the account.
    pub what: String,
    pub at: i64,
}
