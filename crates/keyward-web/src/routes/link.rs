//! Magic links and cross-device approval. `GET /login/link` has no side effects (scanners
//! and previews fetch it); the page's CSRF-protected POST does the work, as described in
//! `keyward_service::link`. The waiting browser polls `/login/status` and continues with
//! `POST /login/continue` (a button without JavaScript).

use super::{State, blocking, param, parse_form};
use crate::cookies;
use crate::csrf;
use crate::error::WebError;
use crate::pages::{notice, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use keyward_service::link::LinkOutcome;
use tera::Context;

fn link_gone() -> WebError {
    WebError::page(
        StatusCode::GONE,
        "This link no longer works",
        "Sign-in links work once and expire after a few minutes. This one was used, has expired, or its sign-in was cancelled.",
        Some("Go back to the app and sign in again; we'll send a new email."),
    )
}

#[derive(serde::Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// GET /login/link?token=…: show what the link is for; change nothing.
pub async fn link_page(req: HttpRequest, state: State, q: web::Query<LinkQuery>) -> Result<HttpResponse, WebError> {
    let token = q.into_inner().token.unwrap_or_default();
    render_link_page(&req, &state, token, None, StatusCode::OK).await
}

async fn render_link_page(
    req: &HttpRequest,
    state: &State,
    token: String,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let (browser_id, new_cookie) = cookies::browser_id(req);
    let kw = state.kw.clone();
    let (t, b) = (token.clone(), browser_id.clone());
    let view = blocking(move || kw.link_view(&t, Some(&b))).await.map_err(WebError::PageInternal)?.ok_or_else(link_gone)?;
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf::token(&state.kw.csrf_key, &browser_id));
    ctx.insert("token", &token);
    ctx.insert("client_name", &view.client_name);
    ctx.insert("email", &view.email);
    ctx.insert("requested_from", &view.requested_from);
    ctx.insert("requested_at", &super::human_time(view.requested_at));
    ctx.insert("same_browser", &view.same_browser);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    let mut resp = render(status, "login_link.html", &ctx);
    if let Some(c) = new_cookie {
        let _ = resp.add_cookie(&c);
    }
    Ok(resp)
}

/// POST /login/link: sign in (same browser) or approve by number (another device).
pub async fn submit_link(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(WebError::csrf)?;
    let token = param(&form, "token").unwrap_or("").to_owned();
    let number = param(&form, "number").map(str::to_owned);
    let kw = state.kw.clone();
    let t = token.clone();
    let outcome = blocking(move || kw.use_link(&t, &browser_id, number.as_deref())).await.map_err(WebError::PageInternal)?;
    match outcome {
        LinkOutcome::SignedIn(signed_in) => super::login::signed_in_response(&state, signed_in),
        LinkOutcome::NumberNeeded => {
            render_link_page(
                &req,
                &state,
                token,
                Some("Type the two-digit number shown on the device you're signing in on."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        LinkOutcome::Approved => Ok(notice(
            "Sign-in approved",
            "Go back to your other device: it continues by itself in a moment.",
            Some("You can close this page. This device was not signed in."),
        )),
        LinkOutcome::WrongNumber => Err(WebError::page(
            StatusCode::FORBIDDEN,
            "Sign-in cancelled",
            "That number didn't match, so we cancelled this sign-in to keep your account safe.",
            Some("If you were signing in, start again in the app and type the number your other device shows."),
        )),
        LinkOutcome::Gone => Err(link_gone()),
    }
}

#[derive(serde::Deserialize)]
pub struct AttemptQuery {
    attempt: Option<String>,
}

/// GET /login/status?attempt=…: the waiting browser's view of its attempt, as JSON.
pub async fn status(req: HttpRequest, state: State, q: web::Query<AttemptQuery>) -> Result<HttpResponse, WebError> {
    let attempt = q.into_inner().attempt.unwrap_or_default();
    let browser_id = cookies::get(&req, cookies::BROWSER).unwrap_or_default();
    let kw = state.kw.clone();
    // `finished`: this browser already signed in with the attempt (a poll that lands while the
    // browser is on its way to the app must not turn that into an error).
    let view = blocking(move || {
        let view = kw.attempt_view(&attempt, &browser_id)?;
        let finished = view.is_none() && kw.attempt_finished_here(&attempt, &browser_id)?;
        Ok((view, finished))
    })
    .await
    .map_err(WebError::JsonInternal)?;
    let body = match view {
        (Some(v), _) => {
            serde_json::json!({ "approved": v.approved, "mail_failed": v.delivery.as_deref() == Some("failed"), "gone": false, "finished": false })
        }
        (None, finished) => serde_json::json!({ "approved": false, "mail_failed": false, "gone": !finished, "finished": finished }),
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

/// POST /login/continue: finish an attempt another device approved.
pub async fn continue_approved(req: HttpRequest, state: State, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = parse_form(&body).unwrap_or_default();
    if !csrf::check(&req, &state.kw.csrf_key, param(&form, "csrf").unwrap_or("")) {
        return Err(WebError::csrf());
    }
    let browser_id = cookies::get(&req, cookies::BROWSER).ok_or_else(WebError::csrf)?;
    let attempt = param(&form, "attempt").unwrap_or("").to_owned();
    let kw = state.kw.clone();
    let a = attempt.clone();
    match blocking(move || kw.continue_approved(&a, &browser_id)).await.map_err(WebError::PageInternal)? {
        Some(signed_in) => super::login::signed_in_response(&state, signed_in),
        None => Err(WebError::Notice {
            status: StatusCode::CONFLICT,
            title: "Not approved yet",
            message: "Open the link from the email on your other device and type the number this page shows, or type the code from the email here.",
        }),
    }
}
