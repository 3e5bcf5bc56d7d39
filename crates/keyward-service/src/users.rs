//! Account administration used by the CLI: invitations (the way into an `invite_only`
//! Keyward) and disabling. A disabled account cannot sign in, and the sign-in pages answer
//! exactly as for an unknown address.

use crate::ServiceError;
use keyward_core::email::Email;
use keyward_store::models::User;
use keyward_store::{DbConnection, repo};

pub enum Invited {
    Created(User),
    AlreadyThere(User),
}

/// Creates the account for `email` (unverified until its first sign-in) unless it exists.
pub fn invite(conn: &mut DbConnection, email: &Email, name: Option<&str>, now: i64) -> Result<Invited, ServiceError> {
    if let Some(u) = repo::users::find_by_email(conn, email.as_str())? {
        return Ok(Invited::AlreadyThere(u));
    }
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.as_str().to_owned(),
        email_verified: false,
        name: name.map(str::to_owned),
        created_at: now,
        disabled_at: None,
        email_sign_in: true,
        passkey_offer_declined_at: None,
    };
    repo::users::insert(conn, &user)?;
    Ok(Invited::Created(user))
}

/// Disables or re-enables an account; false when there is none for the address.
pub fn set_disabled(conn: &mut DbConnection, email: &Email, disabled: bool, now: i64) -> Result<bool, ServiceError> {
    Ok(repo::users::set_disabled(conn, email.as_str(), disabled.then_some(now))?)
}
