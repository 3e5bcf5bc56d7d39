//! The hosted login pages: enter an email, get a code, enter the code. Every form is a
//! CSRF-protected POST answered with 303 (RFC 9700 §4.12); the pages work without
//! JavaScript. The answer to "send me a code" is the same for every address.

use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::email::Email;
use keyward_mail::SignInCodeMail;
use keyward_service::login::{CodeMail, CodeRejected, CodeRequest, SignedIn};
use keyward_service::metrics::Family;
use tera::Context;

pub(crate) fn attempt_gone() -> WebError {
    WebError::page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "This sign-in page is no longer valid: it expired, was finished already, or was opened in another browser.",
        Some("Go back to the app you were signing in to and start again."),
    )
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location)).insert_header(("Cache-Control", "no-store")).finish()
}

fn base_context(state: &State, req: &HttpRequest, attempt: &str, client_id: &str) -> Context {
    let mut ctx = Context::new();
    let browser_id = cookies::get(req, cookies::BROWSER).unwrap_or_default();
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &browser_id));
    ctx.insert("attempt", attempt);
    let config = state.kw.config();
    let name = config.client(client_id).map(|c| c.name.as_str()).unwrap_or("the app");
    ctx.insert("client_name", name);
    ctx.insert("minutes", &(state.kw.config().code_lifetime_seconds as f64 / 60.0).ceil());
    ctx
}

#[derive(serde::Deserialize)]
pub struct AttemptQuery {
    pub(crate) attempt: Option<String>,
}

/// GET /login?attempt=…: the email form.
pub async fn login_page(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let Some(attempt) = q.into_inner().attempt else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            "Start from your app",
            "Sign-in starts at the app you want to use.",
            Some("Open the app and choose \"Sign in\"; it will bring you back here."),
        ));
    };
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let a = attempt.clone();
    let request = blocking(move || kw.find_attempt(&a, &browser_id)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
    let mut ctx = base_context(&state, &req, &attempt, &request.client_id);
    if let Some(hint) = request.login_hint.as_deref().and_then(|h| Email::parse(h).ok()) {
        ctx.insert("email", hint.as_str());
    }
    ctx.insert("passkey_required", &request.requires_passkey());
    Ok(render(StatusCode::OK, "login_email.html", &ctx))
}

/// POST /login/email: send a code, then show the code form.
pub async fn submit_email(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let typed = param(&form, "email").unwrap_or("").to_owned();
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(problem) => {
            let kw = state.kw.clone();
            let (a, b) = (attempt.clone(), browser_id.clone());
            let request = blocking(move || kw.find_attempt(&a, &b)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
            let mut ctx = base_context(&state, &req, &attempt, &request.client_id);
            ctx.insert("email", &typed);
            ctx.insert("error", &problem.to_string());
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, "login_email.html", &ctx));
        }
    };
    let from = super::requested_from(&req);
    let kw = state.kw.clone();
    let a = attempt.clone();
    let outcome = blocking(move || kw.request_email_code(&a, &browser_id, &email, &from)).await.map_err(WebError::PageInternal)?;
    match outcome {
        CodeRequest::AttemptGone => Err(attempt_gone()),
        CodeRequest::Limited { retry_after } => {
            state.kw.metrics.inc(Family::RateLimited, "limit", "sends");
            Err(too_many(retry_after, "You've asked for several sign-in emails in a short time."))
        }
        CodeRequest::Send(mail) => {
            send_code_mail(&state, mail);
            Ok(see_other(&format!("/login/code?attempt={attempt}")))
        }
        CodeRequest::Suppressed => Ok(see_other(&format!("/login/code?attempt={attempt}"))),
    }
}

/// 429 with `Retry-After` and a page saying when to try again.
pub fn too_many(retry_after: i64, what: &'static str) -> WebError {
    too_many_with(retry_after, what, "If an earlier email arrived, you can still use its code or link.")
}

/// [`too_many`] with its own hint for what the person can do meanwhile.
pub fn too_many_with(retry_after: i64, what: &'static str, hint: &'static str) -> WebError {
    WebError::TooMany { retry_after, what, hint }
}

/// Sends off the request path, so every address answers alike in time too. Transient
/// failures are retried with backoff; the outcome is recorded, and a failed email's code
/// and link are withdrawn (the code page then says so).
fn send_code_mail(state: &State, mail: CodeMail) {
    let tracker = state.clone().into_inner();
    let state = state.clone();
    tracker.spawn_mail(async move {
        let kw = state.kw.clone();
        let when = super::human_time(kw.now());
        let minutes = (kw.config().code_lifetime_seconds as u32).div_ceil(60);
        let link = format!("{}/login/link?token={}", kw.config().issuer, mail.link_token);
        let content = SignInCodeMail {
            app_name: &mail.app_name,
            code: &mail.code_display,
            minutes_valid: minutes,
            requested_at: &when,
            issuer: &kw.config().issuer,
            link: &link,
            requested_from: &mail.requested_from,
        };
        let delivered = match state.mail_templates.sign_in_code(&mail.to, &content) {
            Ok(outgoing) => send_with_retries(&state, &outgoing).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot render the sign-in email");
                false
            }
        };
        let id = mail.challenge_id;
        if let Err(e) = blocking(move || kw.record_delivery(&id, delivered)).await {
            tracing::error!(error = %e, "cannot record the email's delivery");
        }
    });
}

pub(crate) async fn send_with_retries(state: &State, outgoing: &keyward_mail::OutgoingMail) -> bool {
    let mut delay = std::time::Duration::from_millis(500);
    for attempt in 1..=3 {
        match state.mailer.send(outgoing).await {
            Ok(()) => {
                tracing::info!(attempt, "email sent");
                state.kw.metrics.inc(Family::Emails, "outcome", "sent");
                return true;
            }
            Err(e) if e.is_transient() && attempt < 3 => {
                tracing::warn!(error = ?e.to_string(), attempt, "email failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(error = ?e.to_string(), transient = e.is_transient(), "email failed");
                state.kw.metrics.inc(Family::Emails, "outcome", "failed");
                return false;
            }
        }
    }
    false
}

/// GET /login/code?attempt=…: the code form.
pub async fn code_page(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    code_form(&req, &state, &attempt, None, StatusCode::OK).await
}

async fn code_form(
    req: &HttpRequest,
    state: &State,
    attempt: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let browser_id = cookies::get(req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let (a, b) = (attempt.to_owned(), browser_id);
    let (view, finished) = blocking(move || {
        let view = kw.attempt_view(&a, &b)?;
        let finished = view.is_none() && kw.attempt_finished_here(&a, &b)?;
        Ok((view, finished))
    })
    .await
    .map_err(WebError::PageInternal)?;
    if finished {
        // Finished in this browser (a reload, or a page left open in another tab): no error.
        return Ok(crate::pages::notice(
            "You're signed in",
            "This sign-in is complete.",
            Some("If the app didn't open, go back to it: it will continue without asking again."),
        ));
    }
    let Some(view) = view else { return Err(attempt_gone()) };
    let Some(email) = view.email else {
        return Ok(see_other(&format!("/login?attempt={attempt}")));
    };
    let mut ctx = base_context(state, req, attempt, &view.request.client_id);
    ctx.insert("email", &email);
    let failed = view.delivery.as_deref() == Some("failed");
    match (error, failed) {
        (Some(e), _) => ctx.insert("error", e),
        (None, true) => ctx.insert("error", MAIL_FAILED),
        (None, false) => {}
    }
    if !failed {
        ctx.insert("approval_number", &view.approval_number);
    }
    Ok(render(status, "login_code.html", &ctx))
}

const MAIL_FAILED: &str =
    "We couldn't send the email. Check the address, then send a new code. If it keeps failing, try again in a few minutes.";

/// POST /login/code: check the code; on success set a new session cookie and go back to the app.
pub async fn submit_code(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let code = param(&form, "code").unwrap_or("").to_owned();
    // Set by the page's script when this device can make a passkey (platform authenticator).
    let offer_passkey = param(&form, "platform_authenticator") == Some("1");
    let kw = state.kw.clone();
    let a = attempt.clone();
    let outcome = blocking(move || kw.verify_email_code(&a, &browser_id, &code, offer_passkey)).await.map_err(WebError::PageInternal)?;
    if let Err(why) = &outcome {
        let reason = match why {
            CodeRejected::AddressLocked { .. } => "address_locked",
            CodeRejected::Wrong { .. } => "wrong_code",
            CodeRejected::TooManyTries => "too_many_tries",
            CodeRejected::NoLiveCode | CodeRejected::AttemptGone => "expired_or_used",
            CodeRejected::Malformed => "malformed_code",
            CodeRejected::MailFailed => "mail_failed",
            CodeRejected::PasskeyRequired => "passkey_required",
        };
        state.kw.metrics.inc(Family::SignInFailures, "reason", reason);
    }
    let message = match outcome {
        Ok(signed_in) => return signed_in_response(&state, signed_in),
        Err(CodeRejected::AttemptGone) => return Err(attempt_gone()),
        Err(CodeRejected::AddressLocked { retry_after }) => {
            state.kw.metrics.inc(Family::RateLimited, "limit", "code_tries_per_address");
            return Err(too_many(retry_after, "There have been too many wrong codes for this address."));
        }
        Err(CodeRejected::Malformed) => "Codes have 8 letters and digits, like ABCD-EFGH. Check the email and try again.".to_owned(),
        Err(CodeRejected::Wrong { tries_left: 1 }) => "That code isn't right. You have 1 try left before it stops working.".to_owned(),
        Err(CodeRejected::Wrong { tries_left }) => format!("That code isn't right. You have {tries_left} tries left."),
        Err(CodeRejected::TooManyTries) => "Too many wrong tries: this code no longer works. Send yourself a new code below.".to_owned(),
        Err(CodeRejected::NoLiveCode) => "This code has expired or was already used. Send yourself a new code below.".to_owned(),
        Err(CodeRejected::MailFailed) => MAIL_FAILED.to_owned(),
        Err(CodeRejected::PasskeyRequired) => {
            "This app asks you to sign in with a passkey; an emailed code can't be used for it.".to_owned()
        }
    };
    code_form(&req, &state, &attempt, Some(&message), StatusCode::UNPROCESSABLE_ENTITY).await
}

/// 303 back to the app, with the new session's cookie.
pub fn signed_in_response(state: &State, signed_in: SignedIn) -> Result<HttpResponse, WebError> {
    let mut resp = see_other(&signed_in.redirect_to);
    let cookie = cookies::session(signed_in.session_token, state.kw.config().session_lifetime_seconds);
    resp.add_cookie(&cookie).map_err(|e| WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string())))?;
    Ok(resp)
}
