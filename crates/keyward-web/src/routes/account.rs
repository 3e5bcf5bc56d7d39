//! The account page and its forms (rename or remove a passkey, new recovery codes, the
//! email sign-in switch, apps, other sessions) and the same passkey management as JSON for
//! the page's own scripts. Forms are CSRF-protected POSTs answered with 303; JSON requests
//! must come from our own origin (`super::api`).

use super::api::{not_signed_in, same_origin_session};
use super::login::see_other;
use super::notices::send_notice;
use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::render;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_service::account::{DeleteOutcome, EmailSwitch};
use serde::Deserialize;

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
    let session = same_origin_session(&req, &state)?;
    let kw = state.kw.clone();
    let id = path.into_inner();
    let name = body.into_inner().name;
    match blocking(move || kw.rename_passkey(&session, &id, &name)).await.map_err(WebError::JsonInternal)? {
        None => Err(not_signed_in()),
        Some(true) => Ok(HttpResponse::NoContent().finish()),
        Some(false) => Err(WebError::api(
            StatusCode::BAD_REQUEST,
            "invalid_name_or_passkey",
            "Give a name of 1 to 64 characters for one of your passkeys.",
        )),
    }
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
    let session = same_origin_session(&req, &state)?;
    super::reauth::json_guard(&state, &session, "/account#passkeys").await?;
    let kw = state.kw.clone();
    let id = path.into_inner();
    let confirm = body.into_inner().confirm;
    let outcome = blocking(move || kw.delete_passkey(&session, &id, confirm)).await.map_err(WebError::JsonInternal)?;
    match outcome.ok_or_else(not_signed_in)? {
        DeleteOutcome::Deleted(notice) => {
            send_notice(&state, notice);
            Ok(HttpResponse::NoContent().finish())
        }
        DeleteOutcome::NotFound => Err(WebError::api(StatusCode::NOT_FOUND, "no_such_passkey", "That passkey is not on your account.")),
        DeleteOutcome::NeedsConfirmation => Err(WebError::api(
            StatusCode::CONFLICT,
            "confirmation_required",
            "This is the last passkey on the account; send {\"confirm\": true} to remove it.",
        )),
        DeleteOutcome::WouldLockOut => Err(WebError::api(
            StatusCode::CONFLICT,
            "would_lock_out",
            "This is the last passkey and email sign-in is off; turn email sign-in on first.",
        )),
    }
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
