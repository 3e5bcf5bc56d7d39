//! Who a session cookie belongs to: the person behind a live (unrevoked, not idle, not
//! expired) session, for every service that acts on behalf of the signed-in person.

use crate::{Keyward, ServiceError};
use keyward_core::secret::hash_secret;
use keyward_store::models::User;
use keyward_store::{DbConnection, repo};

impl Keyward {
    /// The person signed in with `session_token`; `None` without a live session.
    pub(crate) fn session_user(&self, c: &mut DbConnection, session_token: &str) -> Result<Option<User>, ServiceError> {
        Ok(repo::sessions::find_live(c, &hash_secret(session_token), self.now(), self.config().session_idle_seconds)?.map(|(_, u)| u))
    }
}
