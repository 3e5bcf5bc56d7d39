//! Sign-in with a recovery code (`/login/recovery`): address and code sign the person in,
//! once per code, and the account's address is told by email.

use super::login::{AttemptQuery, attempt_gone, signed_in_response, too_many};
use super::notices::send_notice;
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::email::Email;
use keyward_service::login::CodeRejected;

/// GET /login/recovery?attempt=…: sign in with a recovery code.
pub async fn recovery_page(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    recovery_form(&req, &state, &attempt, None, None, StatusCode::OK).await
}

async fn recovery_form(
    req: &HttpRequest,
    state: &State,
    attempt: &str,
    email: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let browser_id = cookies::get(req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let a = attempt.to_owned();
    let request = blocking(move || kw.find_attempt(&a, &browser_id)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
    let mut ctx = tera::Context::new();
    ctx.insert("attempt", attempt);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(req, cookies::BROWSER).unwrap_or_default()));
    ctx.insert("client_name", &state.kw.config().client(&request.client_id).map(|c| c.name.clone()).unwrap_or_else(|| "the app".into()));
    ctx.insert("email", &email);
    ctx.insert("error", &error);
    Ok(render(status, "login_recovery.html", &ctx))
}

/// POST /login/recovery: address + recovery code → signed in, and the person is told by email.
pub async fn recovery_submit(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let typed_email = param(&form, "email").unwrap_or("").to_owned();
    let code = param(&form, "code").unwrap_or("").to_owned();
    let email = match Email::parse(&typed_email) {
        Ok(e) => e,
        Err(problem) => {
            return recovery_form(&req, &state, &attempt, Some(&typed_email), Some(&problem.to_string()), StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        }
    };
    let kw = state.kw.clone();
    let a = attempt.clone();
    let outcome = blocking(move || kw.sign_in_with_recovery_code(&a, &browser_id, &email, &code)).await.map_err(WebError::PageInternal)?;
    let message = match outcome {
        Ok((signed_in, notice)) => {
            send_notice(&state, notice);
            return signed_in_response(&state, signed_in);
        }
        Err(CodeRejected::AttemptGone) => return Err(attempt_gone()),
        Err(CodeRejected::AddressLocked { retry_after }) => {
            state.kw.metrics.inc(keyward_service::metrics::Family::RateLimited, "limit", "recovery_tries_per_address");
            return Err(too_many(retry_after, "There have been too many wrong recovery codes for this address."));
        }
        Err(CodeRejected::Malformed) => {
            "Recovery codes have 16 letters and digits, like ABCD-EFGH-JKMN-PQRS. Check the code and try again."
        }
        Err(CodeRejected::PasskeyRequired) => "This app asks for a passkey; a recovery code can't be used for it. Sign in with a passkey.",
        Err(_) => "That address and recovery code don't match an unused code. Check both and try again; each code works once.",
    };
    recovery_form(&req, &state, &attempt, Some(&typed_email), Some(message), StatusCode::UNPROCESSABLE_ENTITY).await
}
