//! Magic links that survive email scanners, and cross-device sign-in (DESIGN.md §4).
//!
//! Opening a link (GET) only shows its details. A POST from that page signs in only when it
//! comes from the browser that asked for the email. From any other browser it must carry
//! the two-digit number the waiting browser shows (number matching): the right number
//! approves the waiting browser's attempt, which then continues by itself; a wrong number
//! ends the attempt. A click alone never approves anything, and the approving device gets
//! no session of its own.

use crate::login::{SignedIn, parse_request};
use crate::{Keyward, ServiceError};
use keyward_core::secret::{constant_time_eq, hash_secret};
use keyward_store::repo;

/// What the link page shows.
pub struct LinkView {
    pub client_name: String,
    pub email: String,
    pub requested_from: String,
    pub requested_at: i64,
    /// The browser that opened the link is the one that asked for the email.
    pub same_browser: bool,
}

pub enum LinkOutcome {
    /// Same browser: signed in, continue to the app.
    SignedIn(SignedIn),
    /// Another device: the number is needed before anything happens.
    NumberNeeded,
    /// Another device, right number: the waiting browser continues by itself.
    Approved,
    /// Another device, wrong number: the attempt is over.
    WrongNumber,
    /// The link is expired, used, or its sign-in is over.
    Gone,
}

impl Keyward {
    pub fn link_view(&self, token: &str, browser_id: Option<&str>) -> Result<Option<LinkView>, ServiceError> {
        let mut conn = self.conn()?;
        let Some((challenge, attempt)) = repo::attempts::find_by_link(&mut conn, &hash_secret(token), self.now())? else {
            return Ok(None);
        };
        let request = parse_request(&attempt)?;
        Ok(Some(LinkView {
            client_name: self.client_name(&request.client_id),
            email: challenge.email,
            requested_from: challenge.requested_from,
            requested_at: challenge.created_at,
            same_browser: browser_id.is_some_and(|b| constant_time_eq(&attempt.browser_hash, &hash_secret(b))),
        }))
    }

    /// The link page's POST.
    pub fn use_link(&self, token: &str, browser_id: &str, number: Option<&str>) -> Result<LinkOutcome, ServiceError> {
        let now = self.now();
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some((challenge, attempt)) = repo::attempts::find_by_link(c, &hash_secret(token), now)? else {
                return Ok(LinkOutcome::Gone);
            };
            if challenge.delivery == "failed" {
                return Ok(LinkOutcome::Gone);
            }
            if constant_time_eq(&attempt.browser_hash, &hash_secret(browser_id)) {
                if !repo::attempts::consume_challenge(c, &challenge.id, now)? {
                    return Ok(LinkOutcome::Gone);
                }
                return Ok(match self.complete_sign_in(c, &attempt.id, browser_id, &challenge.email, "email_link", false)? {
                    Ok(signed_in) => LinkOutcome::SignedIn(signed_in),
                    Err(_) => LinkOutcome::Gone,
                });
            }
            let typed = number.map(str::trim).filter(|n| !n.is_empty());
            let Some(typed) = typed else { return Ok(LinkOutcome::NumberNeeded) };
            let expected = attempt.approval_number.map(|n| n.to_string()).unwrap_or_default();
            if !expected.is_empty() && constant_time_eq(typed, &expected) {
                if !repo::attempts::consume_challenge(c, &challenge.id, now)? || !repo::attempts::approve(c, &attempt.id, &challenge, now)?
                {
                    return Ok(LinkOutcome::Gone);
                }
                tracing::info!("sign-in approved from another device");
                Ok(LinkOutcome::Approved)
            } else {
                repo::attempts::cancel(c, &attempt.id, now)?;
                tracing::warn!("wrong approval number: the sign-in attempt was cancelled");
                Ok(LinkOutcome::WrongNumber)
            }
        })
    }

    /// The waiting browser's step after another device approved its attempt: signs in exactly
    /// the address whose link carried the number, once. Never "the attempt's latest challenge":
    /// the person in this browser may have asked for codes to several addresses, and only the
    /// one approved on the other device proves anything (issue 14, finding 1).
    pub fn continue_approved(&self, attempt_id: &str, browser_id: &str) -> Result<Option<SignedIn>, ServiceError> {
        keyward_store::write_transaction(&mut *self.writer()?, |c| {
            let Some((attempt, _)) = self.attempt_for(c, attempt_id, browser_id)? else { return Ok(None) };
            let (Some(_), Some(challenge_id), Some(email)) = (attempt.approved_at, attempt.approved_challenge_id, attempt.approved_email)
            else {
                return Ok(None);
            };
            if !repo::attempts::take_approval(c, attempt_id, &challenge_id)? {
                return Ok(None);
            }
            Ok(self.complete_sign_in(c, attempt_id, browser_id, &email, "email_link_cross_device", false)?.ok())
        })
    }
}
