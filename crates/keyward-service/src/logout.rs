//! Ending a browser session (OpenID RP-Initiated Logout 1.0): the session and every grant it
//! opened are revoked, and apps that registered a `backchannel_logout_uri` are told with a
//! signed logout token (Back-Channel Logout 1.0), delivered off the request path from the
//! database by whichever instance claims it, with retries.

use crate::{Keyward, ServiceError};
use keyward_core::claims::{BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims, sid_for};
use keyward_core::secret::hash_secret;
use keyward_store::models::{Grant, LogoutDelivery};
use keyward_store::repo;

/// Waits between delivery attempts; after the last one the delivery is given up.
const RETRY_DELAYS: [i64; 5] = [2, 10, 60, 300, 1800];
/// How long a claimed delivery is reserved for the claiming instance.
const CLAIM_LEASE_SECS: i64 = 60;

/// A logout token's claims (Back-Channel Logout 1.0 §2.4), valid for two minutes from `now`.
fn logout_claims(issuer: &str, client_id: &str, sub: &str, sid: String, now: i64) -> LogoutTokenClaims {
    LogoutTokenClaims {
        iss: issuer.to_owned(),
        aud: client_id.to_owned(),
        iat: now,
        exp: now + 120,
        jti: uuid::Uuid::new_v4().to_string(),
        sub: sub.to_owned(),
        sid,
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    }
}

/// The session a logout request would end.
pub struct SessionSummary {
    pub user_id: String,
    pub sid: String,
}

impl Keyward {
    /// The live session behind a cookie, if any.
    pub fn session_summary(&self, session_token: &str) -> Result<Option<SessionSummary>, ServiceError> {
        let hash = hash_secret(session_token);
        let live = repo::sessions::find_live(&mut *self.conn()?, &hash, self.now(), self.config().session_idle_seconds)?;
        Ok(live.map(|(s, _)| SessionSummary { user_id: s.user_id, sid: sid_for(&hash) }))
    }

    /// Ends the session: revokes it and its grants (their refresh tokens die) and queues a
    /// logout token for each app with a back-channel URI. Returns how many were queued.
    pub fn end_session(&self, session_token: &str, how: &'static str) -> Result<usize, ServiceError> {
        let now = self.now();
        let hash = hash_secret(session_token);
        let mut conn = self.conn()?;
        let (session, grants) = keyward_store::write_transaction(&mut *self.writer()?, |c| -> Result<_, ServiceError> {
            let Some(session) = repo::sessions::revoke(c, &hash, now)? else { return Ok((None, Vec::new())) };
            let grants = repo::grants::revoke_for_session(c, &hash, now)?;
            self.audit(c, "signed_out", Some(&session.user_id), serde_json::json!({ "how": how, "grants_revoked": grants.len() }))?;
            Ok((Some(session), grants))
        })?;
        let Some(session) = session else { return Ok(0) };
        self.metrics.inc(crate::metrics::Family::Logouts, "how", how);
        self.queue_backchannel_logouts(&mut conn, &session.user_id, &grants, now)
    }

    /// Queues a logout token for each (session, app) among `grants` whose app registered a
    /// `backchannel_logout_uri`; `sid` names the session that opened the grant. Returns how
    /// many were queued.
    pub(crate) fn queue_backchannel_logouts(
        &self,
        conn: &mut keyward_store::DbConnection,
        user_id: &str,
        grants: &[Grant],
        now: i64,
    ) -> Result<usize, ServiceError> {
        let mut targets: Vec<(&str, &str)> =
            grants.iter().filter_map(|g| Some((g.session_hash.as_deref()?, g.client_id.as_str()))).collect();
        targets.sort_unstable();
        targets.dedup();
        let mut queued = 0;
        let config = self.config();
        for (session_hash, client) in targets {
            let Some(client) = config.client(client) else { continue };
            let Some(uri) = &client.backchannel_logout_uri else { continue };
            let claims = logout_claims(&config.issuer, &client.id, user_id, sid_for(session_hash), now);
            let token = self.keys.sign(now, client.id_token_alg, "logout+jwt", &claims)?;
            repo::logout::insert(
                conn,
                &LogoutDelivery {
                    id: uuid::Uuid::new_v4().to_string(),
                    client_id: client.id.clone(),
                    uri: uri.clone(),
                    logout_token: token,
                    attempts: 0,
                    next_attempt_at: now,
                    created_at: now,
                    delivered_at: None,
                    given_up_at: None,
                    last_error: None,
                },
            )?;
            queued += 1;
        }
        Ok(queued)
    }

    /// Reserves due back-channel deliveries for this instance, each with a logout token
    /// minted for this attempt (new `jti`, `iat` and `exp`): a retry up to 30 minutes later
    /// must not carry a token that expired after 120 s.
    pub fn claim_logout_deliveries(&self, limit: i64) -> Result<Vec<LogoutDelivery>, ServiceError> {
        let now = self.now();
        let due = repo::logout::claim_due(&mut *self.conn()?, now, CLAIM_LEASE_SECS, limit)?;
        Ok(due
            .into_iter()
            .map(|mut delivery| {
                match self.fresh_logout_token(&delivery, now) {
                    Ok(token) => delivery.logout_token = token,
                    Err(e) => tracing::warn!(client = %delivery.client_id, error = ?e.to_string(), "back-channel logout sent with its queued token"),
                }
                delivery
            })
            .collect())
    }

    /// The queued token's subject and session (read from the row this service wrote), in a
    /// new token signed now.
    fn fresh_logout_token(&self, delivery: &LogoutDelivery, now: i64) -> Result<String, ServiceError> {
        use base64::Engine;
        let config = self.config();
        let Some(client) = config.client(&delivery.client_id) else { return Ok(delivery.logout_token.clone()) };
        let payload = delivery.logout_token.split('.').nth(1).unwrap_or_default();
        let queued: LogoutTokenClaims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| ServiceError::Corrupt(format!("the queued logout token {} cannot be read", delivery.id)))?;
        let claims = logout_claims(&config.issuer, &client.id, &queued.sub, queued.sid, now);
        self.keys.sign(now, client.id_token_alg, "logout+jwt", &claims)
    }

    /// Records how a delivery went: done, retried later, or given up after the last try.
    pub fn record_logout_delivery(&self, delivery: &LogoutDelivery, outcome: Result<(), String>) -> Result<(), ServiceError> {
        let now = self.now();
        let mut conn = self.conn()?;
        match outcome {
            Ok(()) => {
                repo::logout::delivered(&mut conn, &delivery.id, now)?;
                self.metrics.inc(crate::metrics::Family::Logouts, "backchannel", "delivered");
            }
            Err(error) => {
                let retry_at = RETRY_DELAYS.get(delivery.attempts.max(1) as usize - 1).map(|d| now + d);
                if retry_at.is_none() {
                    tracing::warn!(client = %delivery.client_id, error = ?error, "back-channel logout given up after every retry");
                    self.metrics.inc(crate::metrics::Family::Logouts, "backchannel", "given_up");
                } else {
                    tracing::info!(client = %delivery.client_id, error = ?error, attempt = delivery.attempts, "back-channel logout failed; will retry");
                    self.metrics.inc(crate::metrics::Family::Logouts, "backchannel", "retried");
                }
                repo::logout::failed(&mut conn, &delivery.id, &error, retry_at, now)?;
            }
        }
        Ok(())
    }
}
