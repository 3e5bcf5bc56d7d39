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
use keyward_service::login::{CodeMail, CodeRejected};
use tera::Context;

fn attempt_gone() -> WebError {
    WebError::page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "This sign-in page is no longer valid: it expired, was finished already, or was opened in another browser.",
        Some("Go back to the app you were signing in to and start again."),
    )
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn base_context(state: &State, req: &HttpRequest, attempt: &str, client_id: &str) -> Context {
    let mut ctx = Context::new();
    let browser_id = cookies::get(req, cookies::BROWSER).unwrap_or_default();
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &browser_id));
    ctx.insert("attempt", attempt);
    let name = state
        .kw
        .config
        .client(client_id)
        .map(|c| c.name.as_str())
        .unwrap_or("the app");
    ctx.insert("client_name", name);
    ctx.insert(
        "minutes",
        &(state.kw.config.code_lifetime_seconds as f64 / 60.0).ceil(),
    );
    ctx
}

#[derive(serde::Deserialize)]
pub struct AttemptQuery {
    attempt: Option<String>,
}

/// GET /login?attempt=…: the email form.
pub async fn login_page(
    req: HttpRequest,
    state: State,
    q: web::Query<AttemptQuery>,
) -> Result<HttpResponse, WebError> {
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
    let request = blocking(move || kw.find_attempt(&a, &browser_id))
        .await
        .map_err(WebError::PageInternal)?
        .ok_or_else(attempt_gone)?;
    let mut ctx = base_context(&state, &req, &attempt, &request.client_id);
    if let Some(hint) = request
        .login_hint
        .as_deref()
        .and_then(|h| Email::parse(h).ok())
    {
        ctx.insert("email", hint.as_str());
    }
    Ok(render(StatusCode::OK, "login_email.html", &ctx))
}

/// POST /login/email: send a code, then show the code form.
pub async fn submit_email(
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
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
            let request = blocking(move || kw.find_attempt(&a, &b))
                .await
                .map_err(WebError::PageInternal)?
                .ok_or_else(attempt_gone)?;
            let mut ctx = base_context(&state, &req, &attempt, &request.client_id);
            ctx.insert("email", &typed);
            ctx.insert("error", &problem.to_string());
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "login_email.html",
                &ctx,
            ));
        }
    };
    let kw = state.kw.clone();
    let a = attempt.clone();
    let outcome = blocking(move || kw.request_email_code(&a, &browser_id, &email))
        .await
        .map_err(WebError::PageInternal)?;
    match outcome {
        Err(_) => Err(attempt_gone()),
        Ok(mail) => {
            if let Some(mail) = mail {
                send_code_mail(&state, mail);
            }
            Ok(see_other(&format!("/login/code?attempt={attempt}")))
        }
    }
}

/// Sends off the request path, so known and unknown addresses answer alike in time too.
fn send_code_mail(state: &State, mail: CodeMail) {
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let now = time::OffsetDateTime::now_utc();
        let when = now
            .format(&time::macros::format_description!(
                "[day] [month repr:short] [year] [hour]:[minute] UTC"
            ))
            .unwrap_or_default();
        let minutes = (state.kw.config.code_lifetime_seconds as u32).div_ceil(60);
        let content = SignInCodeMail {
            app_name: &mail.app_name,
            code: &mail.code_display,
            minutes_valid: minutes,
            requested_at: &when,
            issuer: &state.kw.config.issuer,
        };
        let outgoing = match state.mail_templates.sign_in_code(&mail.to, &content) {
            Ok(m) => m,
            Err(e) => return tracing::error!(error = %e, "cannot render the sign-in email"),
        };
        match state.mailer.send(&outgoing).await {
            Ok(()) => tracing::info!("sign-in code email sent"),
            Err(e) => {
                tracing::error!(error = %e, transient = e.is_transient(), "sign-in code email failed")
            }
        }
    });
}

/// GET /login/code?attempt=…: the code form.
pub async fn code_page(
    req: HttpRequest,
    state: State,
    q: web::Query<AttemptQuery>,
) -> Result<HttpResponse, WebError> {
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
    let found = blocking(move || {
        let request = kw.find_attempt(&a, &b)?;
        let email = kw.pending_code_email(&a, &b)?;
        Ok(request.zip(email))
    })
    .await
    .map_err(WebError::PageInternal)?;
    let Some((request, email)) = found else {
        return Ok(see_other(&format!("/login?attempt={attempt}")));
    };
    let mut ctx = base_context(state, req, attempt, &request.client_id);
    ctx.insert("email", &email);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    Ok(render(status, "login_code.html", &ctx))
}

/// POST /login/code: check the code; on success set a new session cookie and go back to the app.
pub async fn submit_code(
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let code = param(&form, "code").unwrap_or("").to_owned();
    let kw = state.kw.clone();
    let a = attempt.clone();
    let outcome = blocking(move || kw.verify_email_code(&a, &browser_id, &code))
        .await
        .map_err(WebError::PageInternal)?;
    let message = match outcome {
        Ok(signed_in) => {
            let mut resp = see_other(&signed_in.redirect_to);
            let cookie = cookies::session(
                signed_in.session_token,
                state.kw.config.session_lifetime_seconds,
            );
            resp.add_cookie(&cookie).map_err(|e| {
                WebError::PageInternal(keyward_service::ServiceError::Internal(e.to_string()))
            })?;
            return Ok(resp);
        }
        Err(CodeRejected::AttemptGone) => return Err(attempt_gone()),
        Err(CodeRejected::Malformed) => {
            "Codes have 8 letters and digits, like ABCD-EFGH. Check the email and try again."
                .to_owned()
        }
        Err(CodeRejected::Wrong { tries_left: 1 }) => {
            "That code isn't right. You have 1 try left before it stops working.".to_owned()
        }
        Err(CodeRejected::Wrong { tries_left }) => {
            format!("That code isn't right. You have {tries_left} tries left.")
        }
        Err(CodeRejected::TooManyTries) => {
            "Too many wrong tries: this code no longer works. Send yourself a new code below."
                .to_owned()
        }
        Err(CodeRejected::NoLiveCode) => {
            "This code has expired or was already used. Send yourself a new code below.".to_owned()
        }
    };
    code_form(
        &req,
        &state,
        &attempt,
        Some(&message),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}
