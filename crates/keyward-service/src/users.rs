//! Account administration used by the CLI: invitations (the way into an `invite_only`
//! Keyward), disabling, listing and inspecting accounts, signing an account out everywhere
//! and deleting it. A disabled account cannot sign in, and the sign-in pages answer exactly
//! as for an unknown address. Every change is recorded in the audit log as `admin_action`,
//! in the same transaction as the change.

use crate::{Keyward, ServiceError};
use keyward_core::claims::sid_for;
use keyward_core::email::Email;
use keyward_store::models::{AuditEvent, Grant, User};
use keyward_store::{DbConnection, repo};
use std::collections::{BTreeMap, HashMap};

/// The audit kind of every operator command that changes something.
pub const ADMIN_ACTION: &str = "admin_action";

pub enum Invited {
    Created(User),
    AlreadyThere(User),
}

/// Records an operator command in the audit log, inside the caller's transaction.
/// `detail` names the command (`{"command": "users disable", …}`); never secrets.
pub fn record_admin_action(c: &mut DbConnection, user_id: Option<&str>, detail: serde_json::Value, now: i64) -> Result<(), ServiceError> {
    repo::audit::insert(
        c,
        &AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            at: now,
            kind: ADMIN_ACTION.into(),
            user_id: user_id.map(str::to_owned),
            detail: detail.to_string(),
            client_addr: None,
        },
    )?;
    Ok(())
}

/// Creates the account for `email` (unverified until its first sign-in) unless it exists.
pub fn invite(conn: &mut DbConnection, email: &Email, name: Option<&str>, now: i64) -> Result<Invited, ServiceError> {
    keyward_store::write_transaction(&mut *conn, |c| {
        if let Some(u) = repo::users::find_by_email(c, email.as_str())? {
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
        repo::users::insert(c, &user)?;
        record_admin_action(c, Some(&user.id), serde_json::json!({ "command": "users invite", "email": user.email }), now)?;
        Ok(Invited::Created(user))
    })
}

/// Disables or re-enables an account; false when there is none for the address.
pub fn set_disabled(conn: &mut DbConnection, email: &Email, disabled: bool, now: i64) -> Result<bool, ServiceError> {
    keyward_store::write_transaction(&mut *conn, |c| {
        let Some(user) = repo::users::find_by_email(c, email.as_str())? else { return Ok(false) };
        repo::users::set_disabled(c, email.as_str(), disabled.then_some(now))?;
        if disabled {
            // Its apps lose their refresh tokens (and access tokens) with the account.
            repo::grants::revoke_for_user(c, &user.id, now)?;
        }
        let command = if disabled { "users disable" } else { "users enable" };
        record_admin_action(c, Some(&user.id), serde_json::json!({ "command": command, "email": user.email }), now)?;
        Ok(true)
    })
}

/// One line of `keyward users list`.
pub struct UserSummary {
    pub user: User,
    pub passkeys: i64,
    /// The latest sign-in known from the audit log or the stored sessions.
    pub last_sign_in: Option<i64>,
}

/// Every account (or the disabled ones), oldest first, with passkey counts and last sign-in.
pub fn list(conn: &mut DbConnection, disabled_only: bool) -> Result<Vec<UserSummary>, ServiceError> {
    let users = repo::users::all(conn, disabled_only)?;
    let passkeys: HashMap<String, i64> = repo::passkeys::counts_by_user(conn)?.into_iter().collect();
    let mut last: HashMap<String, i64> = HashMap::new();
    let audited = repo::audit::last_sign_ins(conn)?.into_iter().filter_map(|(u, at)| Some((u?, at?)));
    let sessions = repo::sessions::last_auth_times(conn)?.into_iter().filter_map(|(u, at)| Some((u, at?)));
    for (user, at) in audited.chain(sessions) {
        let e = last.entry(user).or_insert(at);
        *e = (*e).max(at);
    }
    Ok(users
        .into_iter()
        .map(|user| UserSummary { passkeys: passkeys.get(&user.id).copied().unwrap_or(0), last_sign_in: last.get(&user.id).copied(), user })
        .collect())
}

/// A passkey as the operator sees it (never its key material).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyInfo {
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub synced: bool,
}

/// A live browser session, named by its `sid` (derived from the stored hash, as in ID tokens);
/// never the hash or the cookie.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub sid: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

/// An app the person consented to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentInfo {
    pub client_id: String,
    pub scope: String,
    pub granted_at: i64,
}

/// The live grants of one app: how many, their scopes together, the newest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientGrants {
    pub client_id: String,
    pub grants: usize,
    pub scopes: Vec<String>,
    pub newest_created_at: i64,
    pub last_expires_at: i64,
}

/// What `keyward users show` prints.
pub struct UserDetail {
    pub user: User,
    pub last_sign_in: Option<i64>,
    pub passkeys: Vec<PasskeyInfo>,
    pub sessions: Vec<SessionInfo>,
    pub consents: Vec<ConsentInfo>,
    pub grants: Vec<ClientGrants>,
    pub recovery_codes_left: i64,
}

pub fn find(conn: &mut DbConnection, email: &Email) -> Result<Option<User>, ServiceError> {
    Ok(repo::users::find_by_email(conn, email.as_str())?)
}

/// The account's live sessions, newest first.
pub fn live_sessions(conn: &mut DbConnection, user_id: &str, now: i64, idle_secs: i64) -> Result<Vec<SessionInfo>, ServiceError> {
    Ok(repo::sessions::live_for_user(conn, user_id, now, idle_secs)?
        .into_iter()
        .map(|s| SessionInfo {
            sid: sid_for(&s.id_hash),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            auth_time: s.auth_time,
            amr: s.amr.split_whitespace().map(str::to_owned).collect(),
        })
        .collect())
}

/// Everything about one account, read in one transaction.
pub fn detail(conn: &mut DbConnection, email: &Email, now: i64, idle_secs: i64) -> Result<Option<UserDetail>, ServiceError> {
    keyward_store::write_transaction(&mut *conn, |c| {
        let Some(user) = repo::users::find_by_email(c, email.as_str())? else { return Ok(None) };
        let passkeys = repo::passkeys::for_user(c, &user.id)?
            .into_iter()
            .map(|p| PasskeyInfo { name: p.name, created_at: p.created_at, last_used_at: p.last_used_at, synced: p.backup_eligible })
            .collect();
        let sessions = live_sessions(c, &user.id, now, idle_secs)?;
        let consents = repo::consents::for_user(c, &user.id)?
            .into_iter()
            .map(|g| ConsentInfo { client_id: g.client_id, scope: g.scope, granted_at: g.granted_at })
            .collect();
        let grants = per_client(&repo::grants::live_for_user(c, &user.id, now)?);
        let recovery_codes_left = repo::recovery::remaining(c, &user.id)?;
        let audited = repo::audit::search(c, &repo::audit::Filter { user_id: Some(&user.id), kind: Some("signed_in"), since: None }, 1)?;
        let last_sign_in = audited.iter().map(|(e, _)| e.at).chain(sessions.iter().map(|s| s.auth_time)).max();
        Ok(Some(UserDetail { user, last_sign_in, passkeys, sessions, consents, grants, recovery_codes_left }))
    })
}

fn per_client(grants: &[Grant]) -> Vec<ClientGrants> {
    let mut by: BTreeMap<&str, ClientGrants> = BTreeMap::new();
    for g in grants {
        let e = by.entry(&g.client_id).or_insert_with(|| ClientGrants {
            client_id: g.client_id.clone(),
            grants: 0,
            scopes: Vec::new(),
            newest_created_at: g.created_at,
            last_expires_at: g.expires_at,
        });
        e.grants += 1;
        e.newest_created_at = e.newest_created_at.max(g.created_at);
        e.last_expires_at = e.last_expires_at.max(g.expires_at);
        for s in g.scope.split_whitespace() {
            if !e.scopes.iter().any(|x| x == s) {
                e.scopes.push(s.to_owned());
            }
        }
    }
    by.into_values().collect()
}

/// What signing an account out everywhere (or deleting it) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: usize,
    pub grants: usize,
    /// Back-channel logout tokens queued for apps that registered a URI.
    pub logout_tokens: usize,
}

/// What deleting an account removed besides sessions and grants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub ended: Ended,
    pub passkeys: usize,
    pub recovery_codes: i64,
    pub consents: usize,
}

impl Keyward {
    /// Ends every session of the account and revokes every grant it holds (refresh and access
    /// tokens die with them), queues back-channel logout tokens like a logout does, and records
    /// the command; one transaction. `None` when no account has the address.
    pub fn sign_out_everywhere(&self, email: &Email) -> Result<Option<Ended>, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = repo::users::find_by_email(c, email.as_str())? else { return Ok(None) };
            let ended = self.end_everything(c, &user, now)?;
            record_admin_action(
                c,
                Some(&user.id),
                serde_json::json!({ "command": "users revoke", "email": user.email, "sessions_ended": ended.sessions,
                    "grants_revoked": ended.grants, "logout_tokens_queued": ended.logout_tokens }),
                now,
            )?;
            Ok(Some(ended))
        })
    }

    /// Deletes the account and everything that hangs off it, in one transaction: its sessions
    /// and grants end first (apps with a back-channel URI are told), then the row goes with its
    /// sessions, passkeys, recovery codes, authorization codes, grants, refresh tokens and
    /// consents (ON DELETE CASCADE); pending WebAuthn ceremonies and email codes, which no
    /// foreign key ties to the account, are deleted explicitly. The audit log keeps its events
    /// and gains an `admin_action` naming the address. `None` when no account has it.
    pub fn delete_account(&self, email: &Email) -> Result<Option<Deleted>, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some(user) = repo::users::find_by_email(c, email.as_str())? else { return Ok(None) };
            let ended = self.end_everything(c, &user, now)?;
            let deleted = Deleted {
                ended,
                passkeys: repo::passkeys::for_user(c, &user.id)?.len(),
                recovery_codes: repo::recovery::remaining(c, &user.id)?,
                consents: repo::consents::for_user(c, &user.id)?.len(),
            };
            repo::passkeys::delete_ceremonies_for_user(c, &user.id)?;
            repo::attempts::delete_challenges_for_email(c, &user.email)?;
            if !repo::users::delete(c, &user.id)? {
                return Ok(None);
            }
            record_admin_action(
                c,
                Some(&user.id),
                serde_json::json!({ "command": "users delete", "email": user.email, "sessions_ended": ended.sessions,
                    "grants_revoked": ended.grants, "passkeys": deleted.passkeys, "consents": deleted.consents }),
                now,
            )?;
            Ok(Some(deleted))
        })
    }

    fn end_everything(&self, c: &mut DbConnection, user: &User, now: i64) -> Result<Ended, ServiceError> {
        // Rows not yet swept may have ended already by time; they are closed too, but only
        // the live ones are counted and announced.
        let idle = self.config().session_idle_seconds;
        let sessions = repo::sessions::revoke_for_user(c, &user.id, now)?;
        let sessions = sessions.iter().filter(|s| s.expires_at > now && s.last_seen_at > now - idle).count();
        let grants: Vec<Grant> = repo::grants::revoke_for_user(c, &user.id, now)?.into_iter().filter(|g| g.expires_at > now).collect();
        let logout_tokens = self.queue_backchannel_logouts(c, &user.id, &grants, now)?;
        Ok(Ended { sessions, grants: grants.len(), logout_tokens })
    }
}
