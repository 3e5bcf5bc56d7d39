//! Re-authentication ("sudo mode", DESIGN.md §5): sensitive account changes on a sign-in
//! older than `login.reauthentication_seconds` first send the person here, to confirm with a
//! code emailed to the account's own address. Forms are CSRF-protected POSTs answered
//! with 303; the JSON API answers 403 `reauthentication_required`, which the page's script
//! turns into a visit here.

use super::login::{see_other, send_with_retries, too_many};
use super::passkeys::json_error;
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use keyward_service::login::CodeRejected;
use keyward_service::reauth::{ReauthCodeRequest, Recency};

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

/// For a form: `Ok(None)` when the session is recent enough, `Ok(Some(redirect))` to the
/// confirmation page otherwise.
pub async fn form_guard(state: &State, session: &str) -> Result<Option<HttpResponse>, WebError> {
    let kw = state.kw.clone();
    let s = session.to_owned();
    match blocking(move || kw.session_recency(&s)).await.map_err(WebError::PageInternal)? {
        None => Err(not_signed_in_page()),
        Some(Recency::Recent) => Ok(None),
        Some(Recency::Stale) => Ok(Some(see_other(CONFIRM_URL))),
    }
}

/// For the JSON API: `Ok(None)` when recent, else the JSON error to answer.
pub async fn json_guard(state: &State, session: &str) -> Result<Option<HttpResponse>, WebError> {
    let kw = state.kw.clone();
    let s = session.to_owned();
    Ok(match blocking(move || kw.session_recency(&s)).await.map_err(WebError::ApiInternal)? {
        None => Some(json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "Sign in first.")),
        Some(Recency::Recent) => None,
        Some(Recency::Stale) => Some(reauthentication_required()),
    })
}

fn reauthentication_required() -> HttpResponse {
    HttpResponse::build(StatusCode::FORBIDDEN).insert_header(("Cache-Control", "no-store")).json(serde_json::json!({
        "error": "reauthentication_required",
        "message": "Confirm it's you before changing this: you signed in a while ago.",
        "confirm_url": CONFIRM_URL,
    }))
}

async fn confirm_form(req: &HttpRequest, state: &State, error: Option<&str>, status: StatusCode) -> Result<HttpResponse, WebError> {
    let session = cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in_page)?;
    let kw = state.kw.clone();
    let view = blocking(move || kw.reauth_view(&session)).await.map_err(WebError::PageInternal)?.ok_or_else(not_signed_in_page)?;
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(req, cookies::BROWSER).unwrap_or_default()));
    ctx.insert("email", &view.email);
    ctx.insert("email_sign_in", &view.email_sign_in);
    ctx.insert("code_sent", &(view.code_sent && !view.delivery_failed));
    ctx.insert("minutes", &(state.kw.config().code_lifetime_seconds as f64 / 60.0).ceil());
    let failed = view.delivery_failed.then_some(MAIL_FAILED);
    ctx.insert("error", &error.or(failed));
    Ok(render(status, "reauth.html", &ctx))
}

const MAIL_FAILED: &str = "We couldn't send the email. Send a new code, or try again in a few minutes.";

/// GET /account/confirm: "Confirm it's you", with a button that emails a code.
pub async fn confirm_page(req: HttpRequest, state: State) -> Result<HttpResponse, WebError> {
    confirm_form(&req, &state, None, StatusCode::OK).await
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
    let from = super::requested_from(&req);
    let kw = state.kw.clone();
    let outcome = blocking(move || kw.request_reauth_code(&session, &from)).await.map_err(WebError::PageInternal)?;
    match outcome.ok_or_else(not_signed_in_page)? {
        ReauthCodeRequest::EmailOff => confirm_form(&req, &state, Some(EMAIL_OFF), StatusCode::UNPROCESSABLE_ENTITY).await,
        ReauthCodeRequest::Limited { retry_after } => {
            state.kw.metrics.inc(keyward_service::metrics::Family::RateLimited, "limit", "sends");
            Ok(too_many(retry_after, "You've asked for several emails in a short time."))
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
            Ok(see_other(CONFIRM_URL))
        }
    }
}

const EMAIL_OFF: &str =
    "Email sign-in is off for your account, so a code can't confirm it's you. Sign out, then sign in again with your passkey.";

/// POST /account/confirm/code: check the code; on success back to the account page.
pub async fn submit_code(req: HttpRequest, state: State, body: actix_web::web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    let code = param(&form, "code").unwrap_or("").to_owned();
    let kw = state.kw.clone();
    let outcome = blocking(move || kw.verify_reauth_code(&session, &code)).await.map_err(WebError::PageInternal)?;
    let message = match outcome {
        Ok(()) => return Ok(see_other("/account?done=confirmed")),
        Err(CodeRejected::AttemptGone) => return Err(not_signed_in_page()),
        Err(CodeRejected::AddressLocked { retry_after }) => {
            return Ok(too_many(retry_after, "There have been too many wrong codes for this address."));
        }
        Err(CodeRejected::Malformed) => "Codes have 8 letters and digits, like ABCD-EFGH. Check the email and try again.".to_owned(),
        Err(CodeRejected::Wrong { tries_left: 1 }) => "That code isn't right. You have 1 try left before it stops working.".to_owned(),
        Err(CodeRejected::Wrong { tries_left }) => format!("That code isn't right. You have {tries_left} tries left."),
        Err(CodeRejected::TooManyTries) => "Too many wrong tries: this code no longer works. Send yourself a new code.".to_owned(),
        Err(CodeRejected::MailFailed) => MAIL_FAILED.to_owned(),
        Err(_) => "This code has expired or was already used. Send yourself a new code.".to_owned(),
    };
    confirm_form(&req, &state, Some(&message), StatusCode::UNPROCESSABLE_ENTITY).await
}
