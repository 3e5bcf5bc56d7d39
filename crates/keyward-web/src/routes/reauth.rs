//! Re-authentication ("sudo mode", DESIGN.md §5): sensitive account changes on a sign-in
//! older than `login.reauthentication_seconds` first send the person here, to confirm with
//! one of the account's passkeys or a code emailed to the account's own address, and then
//! back to `next` (an account page, `keyward_core::local_next`) where the change continues.
//! Forms are CSRF-protected POSTs answered with 303; the JSON API answers 403
//! `reauthentication_required` with the `confirm_url` (and its `next`) the page's script visits.

use super::api::{challenge, not_signed_in, rejected, same_origin_session};
use super::login::{see_other, send_with_retries, too_many};
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::local_next;
use keyward_service::login::CodeRejected;
use keyward_service::passkeys::PasskeyRejected;
use keyward_service::reauth::{ReauthCodeRequest, Recency};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

/// Where the person confirms it's them.
pub const CONFIRM_URL: &str = "/account/confirm";

fn not_signed_in_page() -> WebError {
    WebError::page(
        StatusCode::UNAUTHORIZED,
        "You're not signed in",
        "Your account page needs a signed-in session.",
        Some("Sign in through an app first, then come back here."),
    )
}

/// The confirmation page that comes back to `next` (an account page) afterwards.
pub fn confirm_url(next: &str) -> String {
    match serde_urlencoded::to_string([("next", local_next::parse(next).unwrap_or(local_next::DEFAULT))]) {
        Ok(query) => format!("{CONFIRM_URL}?{query}"),
        Err(_) => CONFIRM_URL.to_owned(),
    }
}

/// The validated `next` of a form or query, or the account page.
fn next_of(params: &[(String, String)]) -> String {
    param(params, "next").and_then(local_next::parse).unwrap_or(local_next::DEFAULT).to_owned()
}

/// For a form: `Ok(None)` when the session is recent enough, `Ok(Some(redirect))` to the
/// confirmation page otherwise, which comes back to `next`.
pub async fn form_guard(state: &State, session: &str, next: &str) -> Result<Option<HttpResponse>, WebError> {
    let kw = state.kw.clone();
    let s = session.to_owned();
    match blocking(move || kw.session_recency(&s)).await.map_err(WebError::PageInternal)? {
        None => Err(not_signed_in_page()),
        Some(Recency::Recent) => Ok(None),
        Some(Recency::Stale) => Ok(Some(see_other(&confirm_url(next)))),
    }
}

/// For the JSON API: `Ok(())` when recent, else 401 `not_signed_in` or 403
/// `reauthentication_required` (its `confirm_url` comes back to `next`).
pub async fn json_guard(state: &State, session: &str, next: &str) -> Result<(), WebError> {
    let kw = state.kw.clone();
    let s = session.to_owned();
    match blocking(move || kw.session_recency(&s)).await.map_err(WebError::JsonInternal)? {
        None => Err(not_signed_in()),
        Some(Recency::Recent) => Ok(()),
        Some(Recency::Stale) => Err(WebError::ReauthRequired { confirm_url: confirm_url(next) }),
    }
}

async fn confirm_form(
    req: &HttpRequest,
    state: &State,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let session = cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in_page)?;
    let kw = state.kw.clone();
    let view = blocking(move || kw.reauth_view(&session)).await.map_err(WebError::PageInternal)?.ok_or_else(not_signed_in_page)?;
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(req, cookies::BROWSER).unwrap_or_default()));
    ctx.insert("email", &view.email);
    ctx.insert("email_sign_in", &view.email_sign_in);
    ctx.insert("has_passkey", &view.has_passkey);
    ctx.insert("next", next);
    ctx.insert("code_sent", &(view.code_sent && !view.delivery_failed));
    ctx.insert("minutes", &(state.kw.config().code_lifetime_seconds as f64 / 60.0).ceil());
    let failed = view.delivery_failed.then_some(MAIL_FAILED);
    ctx.insert("error", &error.or(failed));
    Ok(render(status, "reauth.html", &ctx))
}

const MAIL_FAILED: &str = "We couldn't send the email. Send a new code, or try again in a few minutes.";

/// GET /account/confirm?next=…: "Confirm it's you", with a passkey and an email button.
pub async fn confirm_page(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let next = next_of(&parse_form(req.query_string().as_bytes()).unwrap_or_default());
    confirm_form(&req, &state, &next, None, StatusCode::OK).await
}

/// The session cookie of a form POST that passed the CSRF check.
fn form_session(req: &HttpRequest, state: &State, form: &[(String, String)]) -> Result<String, WebError> {
    if !csrf::check(req, &state.kw.csrf_key, param(form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in_page)
}

/// POST /account/confirm/email: email a code to the account's own address.
pub async fn send_code(req: HttpRequest, state: State, body: actix_web::web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    let next = next_of(&form);
    let from = super::requested_from(&req);
    let kw = state.kw.clone();
    let outcome = blocking(move || kw.request_reauth_code(&session, &from)).await.map_err(WebError::PageInternal)?;
    match outcome.ok_or_else(not_signed_in_page)? {
        ReauthCodeRequest::EmailOff => confirm_form(&req, &state, &next, Some(EMAIL_OFF), StatusCode::UNPROCESSABLE_ENTITY).await,
        ReauthCodeRequest::Limited { retry_after } => {
            state.kw.metrics.inc(keyward_service::metrics::Family::RateLimited, "limit", "sends");
            Err(too_many(retry_after, "You've asked for several emails in a short time."))
        }
        ReauthCodeRequest::Send(mail) => {
            let tracker = state.clone().into_inner();
            let st = state.clone();
            tracker.spawn_mail(async move {
                let kw = st.kw.clone();
                let when = super::human_time(kw.now());
                let minutes = (kw.config().code_lifetime_seconds as u32).div_ceil(60);
                let delivered = match st.mail_templates.reauth_code(
                    &mail.to,
                    &kw.config().issuer,
                    &mail.code_display,
                    minutes,
                    &when,
                    &mail.requested_from,
                ) {
                    Ok(outgoing) => send_with_retries(&st, &outgoing).await,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot render the confirmation email");
                        false
                    }
                };
                let id = mail.challenge_id;
                if let Err(e) = blocking(move || kw.record_delivery(&id, delivered)).await {
                    tracing::error!(error = %e, "cannot record the email's delivery");
                }
            });
            Ok(see_other(&confirm_url(&next)))
        }
    }
}

const EMAIL_OFF: &str = "Email sign-in is off for your account, so a code can't confirm it's you. Confirm with one of your passkeys.";

/// POST /account/confirm/code: check the code; on success back to `next`.
pub async fn submit_code(req: HttpRequest, state: State, body: actix_web::web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    let code = param(&form, "code").unwrap_or("").to_owned();
    let next = next_of(&form);
    let kw = state.kw.clone();
    let outcome = blocking(move || kw.verify_reauth_code(&session, &code)).await.map_err(WebError::PageInternal)?;
    let message = match outcome {
        Ok(()) => return Ok(see_other(&local_next::with_query(&next, "done", "confirmed"))),
        Err(CodeRejected::AttemptGone) => return Err(not_signed_in_page()),
        Err(CodeRejected::AddressLocked { retry_after }) => {
            return Err(too_many(retry_after, "There have been too many wrong codes for this address."));
        }
        Err(CodeRejected::Malformed) => "Codes have 8 letters and digits, like ABCD-EFGH. Check the email and try again.".to_owned(),
        Err(CodeRejected::Wrong { tries_left: 1 }) => "That code isn't right. You have 1 try left before it stops working.".to_owned(),
        Err(CodeRejected::Wrong { tries_left }) => format!("That code isn't right. You have {tries_left} tries left."),
        Err(CodeRejected::TooManyTries) => "Too many wrong tries: this code no longer works. Send yourself a new code.".to_owned(),
        Err(CodeRejected::MailFailed) => MAIL_FAILED.to_owned(),
        Err(_) => "This code has expired or was already used. Send yourself a new code.".to_owned(),
    };
    confirm_form(&req, &state, &next, Some(&message), StatusCode::UNPROCESSABLE_ENTITY).await
}

/// POST /account/confirm/passkey/start (JSON): a challenge for one of the account's passkeys.
pub async fn passkey_start(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    let session = same_origin_session(&req, &state)?;
    let kw = state.kw.clone();
    match blocking(move || kw.start_passkey_reauth(&session)).await.map_err(WebError::JsonInternal)? {
        None => Err(not_signed_in()),
        Some(None) => Err(WebError::api(StatusCode::CONFLICT, "no_passkey", "Your account has no passkey; confirm with an emailed code.")),
        Some(Some(c)) => Ok(challenge(c)),
    }
}

#[derive(Deserialize)]
pub struct PasskeyFinish {
    ceremony: String,
    credential: PublicKeyCredential,
    next: Option<String>,
}

/// POST /account/confirm/passkey/finish (JSON): the assertion; on success where to go next.
pub async fn passkey_finish(req: HttpRequest, state: State, body: web::Json<PasskeyFinish>) -> Result<HttpResponse, WebError> {
    let session = same_origin_session(&req, &state)?;
    let b = body.into_inner();
    let next = b.next.as_deref().and_then(local_next::parse).unwrap_or(local_next::DEFAULT).to_owned();
    let kw = state.kw.clone();
    match blocking(move || kw.finish_passkey_reauth(&session, &b.ceremony, &b.credential)).await.map_err(WebError::JsonInternal)? {
        Ok(()) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "redirect": local_next::with_query(&next, "done", "confirmed") }))),
        Err(PasskeyRejected::Gone) => Err(not_signed_in()),
        Err(r) => Err(rejected(r)),
    }
}
