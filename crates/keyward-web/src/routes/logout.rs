//! `/end_session` (OpenID RP-Initiated Logout 1.0). An app sends the browser here with its
//! ID token (`id_token_hint`), a registered `post_logout_redirect_uri` and `state`. With a
//! valid hint for the signed-in person the session ends at once (the signed hint, which only
//! the app holds, stands in for CSRF protection); otherwise the person confirms with a
//! CSRF-protected POST. A bad hint or an unregistered return address shows an error page and
//! never redirects (CHECKLIST E8, E9).

use super::{State, blocking, param, parse_form};
use crate::error::WebError;
use crate::pages::{notice, render};
use crate::{cookies, csrf};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::end_session::{self, Party, Refusal};
use std::sync::Arc;

/// The error page for a request the end-session rules refused.
fn refused(why: Refusal) -> WebError {
    refuse(&why.to_string())
}

fn refuse(message: &str) -> WebError {
    WebError::page(
        StatusCode::BAD_REQUEST,
        "We can't sign you out from this link",
        message,
        Some("Go back to the app and use its sign-out button again. If it keeps happening, let the app's developers know."),
    )
}

pub async fn end_session_get(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let params = parse_form(req.query_string().as_bytes()).ok_or_else(|| refuse("The sign-out link is malformed."))?;
    end_session(&req, &state, params, false, StatusCode::FOUND).await
}

/// A POST is either an app's logout request sent as a form, or the person's confirmation
/// (which carries `confirm` and the CSRF token).
pub async fn end_session_post(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let params = parse_form(&body).ok_or_else(|| refuse("The sign-out request is malformed."))?;
    let confirmed = param(&params, "confirm") == Some("yes");
    if confirmed && !csrf::check(&req, &state.kw.csrf_key, param(&params, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    end_session(&req, &state, params, confirmed, StatusCode::SEE_OTHER).await
}

async fn end_session(
    req: &HttpRequest,
    state: &State,
    params: Vec<(String, String)>,
    confirmed: bool,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    end_session::check_single_valued(&params).map_err(refused)?;
    let get = |name: &str| param(&params, name).filter(|v| !v.is_empty()).map(str::to_owned);
    let kw = state.kw.clone();
    let hint = match get("id_token_hint") {
        None => None,
        Some(h) => {
            end_session::check_hint_length(&h).map_err(refused)?;
            Some(kw.verify_id_token_hint(&h).ok_or(Refusal::HintNotOurs).map_err(refused)?)
        }
    };
    let client_id = end_session::client_id(get("client_id"), hint.as_ref().map(|h| h.aud.clone())).map_err(refused)?;
    let client = end_session::registered_client(client_id.as_deref(), |id| kw.config().clients.get(id).cloned()).map_err(refused)?;
    let return_to =
        end_session::post_logout_redirect_uri(get("post_logout_redirect_uri").as_deref(), client.as_deref()).map_err(refused)?;
    let app_state = get("state");
    let session = cookies::get(req, cookies::SESSION);
    let summary = match session.clone() {
        None => None,
        Some(t) => {
            let kw = kw.clone();
            blocking(move || kw.session_summary(&t)).await.map_err(WebError::PageInternal)?
        }
    };
    let hint_matches = end_session::hint_names_session(
        hint.as_ref().map(|h| Party { sid: h.sid.as_deref(), sub: &h.sub }),
        summary.as_ref().map(|s| Party { sid: Some(&s.sid), sub: &s.user_id }),
    );
    if end_session::needs_confirmation(summary.is_some(), confirmed, hint_matches) {
        let (browser_id, new_cookie) = cookies::browser_id(req);
        let mut ctx = tera::Context::new();
        ctx.insert("client_name", &client.as_ref().map(|c| c.name.clone()));
        ctx.insert("client_id", &client_id);
        ctx.insert("post_logout_redirect_uri", &return_to);
        ctx.insert("state", &app_state);
        ctx.insert("csrf", &csrf::token(&kw.csrf_key, &browser_id));
        let mut resp = render(StatusCode::OK, "logout_confirm.html", &ctx);
        if let Some(c) = new_cookie {
            resp.add_cookie(&c).map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
        }
        return Ok(resp);
    }
    if let (Some(token), Some(_)) = (session, &summary) {
        let how = if confirmed { "confirmed" } else { "rp_initiated" };
        let k = kw.clone();
        let queued = blocking(move || k.end_session(&token, how)).await.map_err(WebError::PageInternal)?;
        if queued > 0 {
            state.backchannel.notify_one();
        }
    }
    let mut resp = match return_to {
        Some(uri) => {
            let mut url = uri.clone();
            if let Some(s) = app_state {
                url.push(if uri.contains('?') { '&' } else { '?' });
                url.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair("state", &s).finish());
            }
            HttpResponse::build(status).insert_header(("Location", url)).insert_header(("Cache-Control", "no-store")).finish()
        }
        None => notice("You're signed out", "You are signed out of this sign-in service.", Some("You can close this tab.")),
    };
    resp.add_removal_cookie(&cookies::removal(cookies::SESSION))
        .map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
    Ok(resp)
}

/// Delivers queued back-channel logout tokens (OpenID Back-Channel Logout 1.0 §2.5): a form
/// POST of `logout_token`; any 2xx counts as delivered. Runs until the process ends, woken
/// by new logouts and every two seconds for retries.
pub fn spawn_backchannel_worker(state: Arc<crate::WebState>) {
    actix_web::rt::spawn(async move {
        let http =
            match reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()).build()
            {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "back-channel logout disabled: no HTTP client");
                    return;
                }
            };
        loop {
            let _ = actix_web::rt::time::timeout(std::time::Duration::from_secs(2), state.backchannel.notified()).await;
            let kw = state.kw.clone();
            let due = match web::block(move || kw.claim_logout_deliveries(20)).await {
                Ok(Ok(due)) => due,
                // An outage is logged once by the pool (finding 16); this loop polls every
                // few seconds and would add a WARN line each time.
                Ok(Err(e)) if e.is_unavailable() => {
                    tracing::debug!(error = %e, "cannot read back-channel logout deliveries: database unavailable");
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read back-channel logout deliveries");
                    continue;
                }
                Err(_) => continue,
            };
            for delivery in due {
                let outcome = match http.post(&delivery.uri).form(&[("logout_token", delivery.logout_token.as_str())]).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("the app answered {}", r.status())),
                    Err(e) => Err(format!("cannot reach the app: {e}")),
                };
                let kw = state.kw.clone();
                if let Ok(Err(e)) = web::block(move || kw.record_logout_delivery(&delivery, outcome)).await {
                    tracing::warn!(error = %e, "cannot record a back-channel logout delivery");
                }
            }
        }
    });
}
