//! Security notices ("a passkey was added", "you signed in with a recovery code") emailed to
//! the address on record, off the request path.

use super::State;
use super::login::send_with_retries;
use keyward_service::account::Notice;

/// Emails a security notice to the address on record, off the request path.
pub fn send_notice(state: &State, notice: Notice) {
    let tracker = state.clone().into_inner();
    let state = state.clone();
    tracker.spawn_mail(async move {
        let when = super::human_time(notice.at);
        match state.mail_templates.security_notice(&notice.to, &state.kw.config().issuer, &notice.what, &when) {
            Ok(mail) => {
                send_with_retries(&state, &mail).await;
            }
            Err(e) => tracing::error!(error = %e, "cannot render a security notice"),
        }
    });
}
