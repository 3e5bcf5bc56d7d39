//! The account page and its forms (rename or remove a passkey, new recovery codes, the
//! email sign-in switch), the same management as JSON for the page's own scripts, the
//! "sign in faster next time" passkey offer after an email sign-in, sign-in with a recovery
//! code, and `/metrics`. Forms are CSRF-protected POSTs answered with 303; JSON requests
//! must come from our own origin. Security notices are emailed off the request path.

use super::login::{attempt_gone, see_other, send_with_retries, signed_in_response, too_many};
use super::passkeys::{check_origin, json_error};
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_core::email::Email;
use keyward_service::account::{DeleteOutcome, EmailSwitch, Notice};
use keyward_service::login::CodeRejected;
use serde::Deserialize;

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

fn not_signed_in_page() -> WebError {
    WebError::page(
        StatusCode::UNAUTHORIZED,
        "You're not signed in",
        "Your account page needs a signed-in session.",
        Some("Sign in through an app first, then come back here."),
    )
}

/// The session cookie of a form POST that passed the CSRF check.
fn form_session(req: &HttpRequest, state: &State, form: &[(String, String)]) -> Result<String, WebError> {
    if !csrf::check(req, &state.kw.csrf_key, param(form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in_page)
}

#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
    problem: Option<String>,
    /// `add-passkey`: the page's script starts adding a passkey again (after re-authentication).
    resume: Option<String>,
}

/// GET /account: passkeys (rename, remove, add), recovery codes and the email switch.
pub async fn account_page(req: HttpRequest, state: State, q: web::Query<AccountQuery>) -> Result<HttpResponse, WebError> {
    let session = cookies::get(&req, cookies::SESSION).ok_or_else(not_signed_in_page)?;
    let kw = state.kw.clone();
    let view = blocking(move || kw.account_view(&session)).await.map_err(WebError::PageInternal)?.ok_or_else(not_signed_in_page)?;
    let rows: Vec<serde_json::Value> = view
        .passkeys
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id,
                "name": p.name,
                "synced": p.synced,
                "created": super::human_time(p.created_at),
                "last_used": p.last_used_at.map(super::human_time),
            })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("email", &view.user.email);
    ctx.insert("passkeys", &rows);
    ctx.insert("recovery_codes_left", &view.recovery_codes_left);
    ctx.insert("email_sign_in", &view.user.email_sign_in);
    let apps: Vec<serde_json::Value> = view
        .apps
        .iter()
        .map(|a| serde_json::json!({ "id": a.client_id, "name": a.app_name, "scopes": a.scopes, "since": super::human_time(a.granted_at) }))
        .collect();
    ctx.insert("apps", &apps);
    let sessions: Vec<serde_json::Value> = view
        .sessions
        .iter()
        .map(|(s, current)| {
            let how = if s.amr.iter().any(|a| a == "hwk" || a == "swk") {
                "a passkey"
            } else if s.amr.iter().any(|a| a == "otp") {
                "an emailed code or link"
            } else {
                "a recovery code"
            };
            serde_json::json!({ "current": current, "since": super::human_time(s.auth_time), "last_seen": super::human_time(s.last_seen_at), "how": how })
        })
        .collect();
    ctx.insert("sessions", &sessions);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(&req, cookies::BROWSER).unwrap_or_default()));
    let q = q.into_inner();
    let notice = match q.done.as_deref() {
        Some("renamed") => Some("Passkey renamed."),
        Some("removed") => Some("Passkey removed."),
        Some("email_on") => Some("Email sign-in is on."),
        Some("email_off") => Some("Email sign-in is off. Keep your recovery codes safe."),
        Some("app_removed") => Some("The app's access is removed. It will ask again next time you use it."),
        Some("others_out") => Some("You're signed out everywhere else. This browser stays signed in."),
        Some("confirmed") => Some("Thanks, that's confirmed. You can make your change now."),
        _ => None,
    };
    let error = match q.problem.as_deref() {
        Some("confirm") => Some("To remove your last passkey, tick the box to confirm."),
        Some("lockout") => Some("That is your only passkey and email sign-in is off. Turn email sign-in on first, then remove it."),
        Some("needs_passkey") => Some("Add a passkey before turning email sign-in off, or you would have no way to sign in."),
        Some("name") => Some("Give the passkey a name (up to 64 characters)."),
        Some("not_found") => Some("That passkey is not on your account any more."),
        _ => None,
    };
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    ctx.insert("resume_add_passkey", &(q.resume.as_deref() == Some("add-passkey")));
    Ok(render(StatusCode::OK, "account.html", &ctx))
}

/// POST /account/passkeys/{id}/rename (form).
pub async fn rename_form(req: HttpRequest, state: State, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    let name = param(&form, "name").unwrap_or("").to_owned();
    let kw = state.kw.clone();
    let id = path.into_inner();
    let renamed = blocking(move || kw.rename_passkey(&session, &id, &name)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(match renamed {
        None => return Err(not_signed_in_page()),
        Some(true) => "/account?done=renamed",
        Some(false) => "/account?problem=name",
    }))
}

/// POST /account/passkeys/{id}/delete (form; `confirm=yes` for the last passkey).
pub async fn delete_form(req: HttpRequest, state: State, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    if let Some(confirm) = super::reauth::form_guard(&state, &session, "/account#passkeys").await? {
        return Ok(confirm);
    }
    let confirmed = param(&form, "confirm") == Some("yes");
    let kw = state.kw.clone();
    let id = path.into_inner();
    let outcome = blocking(move || kw.delete_passkey(&session, &id, confirmed)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(match outcome.ok_or_else(not_signed_in_page)? {
        DeleteOutcome::Deleted(notice) => {
            send_notice(&state, notice);
            "/account?done=removed"
        }
        DeleteOutcome::NotFound => "/account?problem=not_found",
        DeleteOutcome::NeedsConfirmation => "/account?problem=confirm",
        DeleteOutcome::WouldLockOut => "/account?problem=lockout",
    }))
}

/// POST /account/recovery-codes (form): a new set, shown once.
pub async fn recovery_codes_form(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    if let Some(confirm) = super::reauth::form_guard(&state, &session, "/account#recovery").await? {
        return Ok(confirm);
    }
    let kw = state.kw.clone();
    let (codes, notice) =
        blocking(move || kw.regenerate_recovery_codes(&session)).await.map_err(WebError::PageInternal)?.ok_or_else(not_signed_in_page)?;
    send_notice(&state, notice);
    let mut ctx = tera::Context::new();
    ctx.insert("download", &recovery_file(&state, &codes));
    ctx.insert("codes", &codes);
    Ok(render(StatusCode::OK, "recovery_codes.html", &ctx))
}

/// The downloadable text file of a set of recovery codes.
fn recovery_file(state: &State, codes: &[String]) -> String {
    format!("Recovery codes for {}\nEach code signs you in once.\n\n{}\n", state.kw.config().issuer, codes.join("\n"))
}

/// POST /account/email-sign-in (form, `on=yes|no`).
pub async fn email_sign_in_form(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    let session = form_session(&req, &state, &form)?;
    let on = param(&form, "on") == Some("yes");
    if !on && let Some(confirm) = super::reauth::form_guard(&state, &session, "/account#email-sign-in").await? {
        return Ok(confirm);
    }
    let kw = state.kw.clone();
    let outcome = blocking(move || kw.set_email_sign_in(&session, on)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(match outcome.ok_or_else(not_signed_in_page)? {
        EmailSwitch::Changed(notice) => {
            send_notice(&state, notice);
            if on { "/account?done=email_on" } else { "/account?done=email_off" }
        }
        EmailSwitch::NeedsPasskey => "/account?problem=needs_passkey",
    }))
}

#[derive(Deserialize)]
pub struct RenameJson {
    name: String,
}

/// POST /account/api/passkeys/{id}/rename (JSON `{"name": …}`).
pub async fn rename_json(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    body: web::Json<RenameJson>,
) -> Result<HttpResponse, WebError> {
    let session = match json_session(&req, &state) {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let kw = state.kw.clone();
    let id = path.into_inner();
    let name = body.into_inner().name;
    Ok(match blocking(move || kw.rename_passkey(&session, &id, &name)).await.map_err(WebError::ApiInternal)? {
        None => not_signed_in_json(),
        Some(true) => HttpResponse::NoContent().finish(),
        Some(false) => {
            json_error(StatusCode::BAD_REQUEST, "invalid_name_or_passkey", "Give a name of 1 to 64 characters for one of your passkeys.")
        }
    })
}

#[derive(Deserialize)]
pub struct DeleteJson {
    #[serde(default)]
    confirm: bool,
}

/// POST /account/api/passkeys/{id}/delete (JSON `{"confirm": true}` for the last passkey).
pub async fn delete_json(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    body: web::Json<DeleteJson>,
) -> Result<HttpResponse, WebError> {
    let session = match json_session(&req, &state) {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    if let Some(resp) = super::reauth::json_guard(&state, &session, "/account#passkeys").await? {
        return Ok(resp);
    }
    let kw = state.kw.clone();
    let id = path.into_inner();
    let confirm = body.into_inner().confirm;
    Ok(match blocking(move || kw.delete_passkey(&session, &id, confirm)).await.map_err(WebError::ApiInternal)? {
        None => not_signed_in_json(),
        Some(DeleteOutcome::Deleted(notice)) => {
            send_notice(&state, notice);
            HttpResponse::NoContent().finish()
        }
        Some(DeleteOutcome::NotFound) => json_error(StatusCode::NOT_FOUND, "no_such_passkey", "That passkey is not on your account."),
        Some(DeleteOutcome::NeedsConfirmation) => json_error(
            StatusCode::CONFLICT,
            "confirmation_required",
            "This is the last passkey on the account; send {\"confirm\": true} to remove it.",
        ),
        Some(DeleteOutcome::WouldLockOut) => json_error(
            StatusCode::CONFLICT,
            "would_lock_out",
            "This is the last passkey and email sign-in is off; turn email sign-in on first.",
        ),
    })
}

/// The session of a JSON request from our own origin, or the error to answer.
fn json_session(req: &HttpRequest, state: &State) -> Result<String, HttpResponse> {
    check_origin(req, state)?;
    cookies::get(req, cookies::SESSION).ok_or_else(not_signed_in_json)
}

fn not_signed_in_json() -> HttpResponse {
    json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "Sign in first.")
}

#[derive(Deserialize)]
pub struct AttemptQuery {
    attempt: Option<String>,
}

/// GET /login/passkey-offer?attempt=…: "Sign in faster next time", after an email sign-in.
pub async fn offer_page(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let kw = state.kw.clone();
    let a = attempt.clone();
    let client_name =
        blocking(move || kw.passkey_offer(&a, &browser_id)).await.map_err(WebError::PageInternal)?.ok_or_else(attempt_gone)?;
    let mut ctx = tera::Context::new();
    ctx.insert("attempt", &attempt);
    ctx.insert("client_name", &client_name);
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &cookies::get(&req, cookies::BROWSER).unwrap_or_default()));
    Ok(render(StatusCode::OK, "passkey_offer.html", &ctx))
}

/// POST /login/passkey-offer: continue to the app (`choice=never` also stops the offer).
pub async fn offer_submit(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(attempt_gone)?;
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let decline = param(&form, "choice") == Some("never");
    let kw = state.kw.clone();
    let to = blocking(move || kw.continue_after_offer(&attempt, &browser_id, decline)).await.map_err(WebError::PageInternal)?;
    Ok(see_other(&to.ok_or_else(attempt_gone)?))
}

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
            return Ok(too_many(retry_after, "There have been too many wrong recovery codes for this address."));
        }
        Err(CodeRejected::Malformed) => {
            "Recovery codes have 16 letters and digits, like ABCD-EFGH-JKMN-PQRS. Check the code and try again."
        }
        Err(CodeRejected::PasskeyRequired) => "This app asks for a passkey; a recovery code can't be used for it. Sign in with a passkey.",
        Err(_) => "That address and recovery code don't match an unused code. Check both and try again; each code works once.",
    };
    recovery_form(&req, &state, &attempt, Some(&typed_email), Some(message), StatusCode::UNPROCESSABLE_ENTITY).await
}

/// GET /metrics: Prometheus counters.
pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.kw.render_metrics())
}

/// POST /account/apps/{client}/revoke: withdraw consent to an app and end its access.
pub async fn revoke_app_form(req: HttpRequest, state: State, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let session = cookies::get(&req, cookies::SESSION).ok_or_else(not_signed_in_page)?;
    let client = path.into_inner();
    let kw = state.kw.clone();
    blocking(move || kw.revoke_consent(&session, &client)).await.map_err(WebError::PageInternal)?;
    Ok(see_other("/account?done=app_removed"))
}

/// POST /account/sessions/sign-out-others: end every other session of this person.
pub async fn sign_out_others_form(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let session = cookies::get(&req, cookies::SESSION).ok_or_else(not_signed_in_page)?;
    if let Some(confirm) = super::reauth::form_guard(&state, &session, "/account#sessions").await? {
        return Ok(confirm);
    }
    let kw = state.kw.clone();
    blocking(move || kw.sign_out_other_sessions(&session)).await.map_err(WebError::PageInternal)?.ok_or_else(not_signed_in_page)?;
    state.backchannel.notify_one();
    Ok(see_other("/account?done=others_out"))
}
