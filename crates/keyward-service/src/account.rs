//! The signed-in person's account: passkey management (rename, delete), recovery codes,
//! the email sign-in switch, the account page's view and the person's other sessions.
//! (Recovery codes are `recovery.rs`, the audit log `audit.rs`, notices `notice.rs`.)
//!
//! Rules: deleting the last passkey needs an explicit confirmation and is refused while
//! email sign-in is off (the account would have no way in but recovery codes); email sign-in
//! can only be turned off by someone who has a passkey. Recovery codes come as a set of ten
//! when the first passkey is added; a new set kills the old one.

pub use crate::notice::Notice;
use crate::{Keyward, ServiceError};
use keyward_core::secret::hash_secret;
use keyward_store::models::User;
use keyward_store::repo;

/// What the account page shows.
pub struct AccountView {
    pub user: User,
    pub passkeys: Vec<crate::passkeys::PasskeySummary>,
    pub recovery_codes_left: i64,
    pub apps: Vec<crate::consent::ConsentSummary>,
    /// Live sessions, newest first, with the one of this browser marked.
    pub sessions: Vec<(crate::users::SessionInfo, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted(Notice),
    NotFound,
    /// It is the last passkey: ask the person to confirm.
    NeedsConfirmation,
    /// It is the last passkey and email sign-in is off: turn email sign-in on first.
    WouldLockOut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailSwitch {
    Changed(Notice),
    /// Email sign-in can only be turned off with a passkey on the account.
    NeedsPasskey,
}

impl Keyward {
    /// Everything the account page shows; `None` without a live session.
    pub fn account_view(&self, session_token: &str) -> Result<Option<AccountView>, ServiceError> {
        let mut conn = self.conn()?;
        let Some(user) = self.session_user(&mut conn, session_token)? else { return Ok(None) };
        let passkeys = self.passkey_summaries(&mut conn, &user.id)?;
        let recovery_codes_left = repo::recovery::remaining(&mut conn, &user.id)?;
        let apps = self.consent_summaries(&mut conn, &user.id)?;
        let mine = keyward_core::claims::sid_for(&hash_secret(session_token));
        let sessions = crate::users::live_sessions(&mut conn, &user.id, self.now(), self.config().session_idle_seconds)?
            .into_iter()
            .map(|s| {
                let current = s.sid == mine;
                (s, current)
            })
            .collect();
        Ok(Some(AccountView { user, passkeys, recovery_codes_left, apps, sessions }))
    }

    /// Ends every session of the person except this browser's (and the grants they opened;
    /// apps with a back-channel URI are told). How many ended; None without a live session.
    pub fn sign_out_other_sessions(&self, session_token: &str) -> Result<Option<usize>, ServiceError> {
        let now = self.now();
        let mine = hash_secret(session_token);
        let mut conn = self.conn()?;
        let ended = keyward_store::write_transaction(
            &mut *self.writer()?,
            |c| -> Result<Option<(String, Vec<keyward_store::models::Grant>, usize)>, ServiceError> {
                let Some(user) = self.session_user(c, session_token)? else { return Ok(None) };
                let mut grants = Vec::new();
                let mut ended = 0;
                for other in repo::sessions::live_for_user(c, &user.id, now, self.config().session_idle_seconds)? {
                    if other.id_hash == mine {
                        continue;
                    }
                    repo::sessions::revoke(c, &other.id_hash, now)?;
                    grants.extend(repo::grants::revoke_for_session(c, &other.id_hash, now)?);
                    ended += 1;
                }
                self.audit(c, "signed_out", Some(&user.id), serde_json::json!({ "how": "other_sessions", "sessions_ended": ended }))?;
                Ok(Some((user.id, grants, ended)))
            },
        )?;
        let Some((user_id, grants, ended)) = ended else { return Ok(None) };
        self.queue_backchannel_logouts(&mut conn, &user_id, &grants, now)?;
        Ok(Some(ended))
    }

    /// Renames one of the person's passkeys. `None` without a session, `Some(false)` when
    /// the passkey is not theirs.
    pub fn rename_passkey(&self, session_token: &str, credential_id: &str, name: &str) -> Result<Option<bool>, ServiceError> {
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(64).collect();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = self.session_user(c, session_token)? else { return Ok(None) };
            if name.is_empty() || !repo::passkeys::rename(c, &user.id, credential_id, &name)? {
                return Ok(Some(false));
            }
            self.audit(c, "passkey_renamed", Some(&user.id), serde_json::json!({ "credential": credential_id, "name": name }))?;
            Ok(Some(true))
        })
    }

    /// Deletes one of the person's passkeys (the last one only when `confirmed` and while
    /// email sign-in is on).
    pub fn delete_passkey(&self, session_token: &str, credential_id: &str, confirmed: bool) -> Result<Option<DeleteOutcome>, ServiceError> {
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = self.session_user(c, session_token)? else { return Ok(None) };
            let Some(row) = repo::passkeys::find(c, credential_id)?.filter(|r| r.user_id == user.id) else {
                return Ok(Some(DeleteOutcome::NotFound));
            };
            if repo::passkeys::count_for_user(c, &user.id)? == 1 {
                if !user.email_sign_in {
                    return Ok(Some(DeleteOutcome::WouldLockOut));
                }
                if !confirmed {
                    return Ok(Some(DeleteOutcome::NeedsConfirmation));
                }
            }
            repo::passkeys::delete(c, &user.id, credential_id)?;
            self.audit(c, "passkey_deleted", Some(&user.id), serde_json::json!({ "credential": credential_id, "name": row.name }))?;
            Ok(Some(DeleteOutcome::Deleted(Notice {
                to: user.email.clone(),
                what: format!("The passkey \"{}\" was removed from your account.", row.name),
                at: self.now(),
            })))
        })
    }

    /// Turns email sign-in on or off for the signed-in person.
    pub fn set_email_sign_in(&self, session_token: &str, on: bool) -> Result<Option<EmailSwitch>, ServiceError> {
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = self.session_user(c, session_token)? else { return Ok(None) };
            if !on && repo::passkeys::count_for_user(c, &user.id)? == 0 {
                return Ok(Some(EmailSwitch::NeedsPasskey));
            }
            repo::users::set_email_sign_in(c, &user.id, on)?;
            self.audit(c, if on { "email_sign_in_on" } else { "email_sign_in_off" }, Some(&user.id), serde_json::json!({}))?;
            let what = if on {
                "Signing in by email was turned on for your account."
            } else {
                "Signing in by email was turned off for your account: only your passkeys and recovery codes sign you in now."
            };
            Ok(Some(EmailSwitch::Changed(Notice { to: user.email, what: what.into(), at: self.now() })))
        })
    }

    /// Remembers that the person declined the passkey offer.
    pub fn decline_passkey_offer(&self, session_token: &str) -> Result<(), ServiceError> {
        let mut conn = self.conn()?;
        if let Some(user) = self.session_user(&mut conn, session_token)? {
            repo::users::decline_passkey_offer(&mut conn, &user.id, self.now())?;
        }
        Ok(())
    }
}
