//! The one mapping from failures to HTTP. People get a friendly page that says what to do
//! next; clients get RFC 6749 §5.2 / RFC 6750 §3 JSON. Internal causes are logged, never
//! sent, and an unreachable database is a 503 (`temporarily_unavailable`).

use crate::pages::error_page;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode};
use keyward_service::ServiceError;
use std::fmt;

#[derive(Debug)]
pub enum WebError {
    /// A page for a person.
    Page { status: StatusCode, title: &'static str, message: String, hint: Option<&'static str> },
    /// A JSON error for a client; `basic` adds the `WWW-Authenticate: Basic` challenge.
    OAuth { error: OAuthError, basic: bool },
    /// A failure behind a page.
    PageInternal(ServiceError),
    /// A failure behind a protocol endpoint.
    ApiInternal(ServiceError),
}

impl WebError {
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>, hint: Option<&'static str>) -> WebError {
        WebError::Page { status, title, message: message.into(), hint }
    }

    pub fn oauth(code: OAuthErrorCode, description: &str) -> WebError {
        WebError::OAuth { error: OAuthError::new(code, description), basic: false }
    }

    pub fn csrf() -> WebError {
        WebError::page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your safety, we couldn't accept this form: it was opened in another browser, or too long ago.",
            Some("Go back to the app you were signing in to and start again."),
        )
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Page { title, .. } => write!(f, "{title}"),
            WebError::OAuth { error, .. } => write!(f, "{error}"),
            WebError::PageInternal(e) | WebError::ApiInternal(e) => write!(f, "{e}"),
        }
    }
}

/// JSON body of an OAuth error, with the headers RFC 6749 §5.1 asks of token responses.
pub fn oauth_json(error: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(serde_json::json!({ "error": error.code.as_str(), "error_description": error.description }))
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Page { status, .. } => *status,
            WebError::OAuth { error, .. } => StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            WebError::PageInternal(e) | WebError::ApiInternal(e) if e.is_unavailable() || busy(e).is_some() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebError::PageInternal(_) | WebError::ApiInternal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::Page { status, title, message, hint } => error_page(*status, title, message, *hint),
            WebError::OAuth { error, basic } => {
                let mut resp = oauth_json(error);
                if *basic && error.code == OAuthErrorCode::InvalidClient {
                    resp.headers_mut().insert(
                        actix_web::http::header::WWW_AUTHENTICATE,
                        actix_web::http::header::HeaderValue::from_static("Basic realm=\"keyward\""),
                    );
                }
                resp
            }
            WebError::PageInternal(e) | WebError::ApiInternal(e) if busy(e).is_some() => shed_response(self, busy(e).unwrap_or(1)),
            WebError::PageInternal(e) => {
                log_failure(e);
                if e.is_unavailable() {
                    error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Sign-in is briefly unavailable",
                        "We can't reach our database right now.",
                        Some("Wait a moment, then reload this page."),
                    )
                } else {
                    error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        "Something went wrong on our side.",
                        Some("Reload the page. If it keeps happening, go back to the app and start again."),
                    )
                }
            }
            WebError::ApiInternal(e) => {
                log_failure(e);
                let code = if e.is_unavailable() { OAuthErrorCode::TemporarilyUnavailable } else { OAuthErrorCode::ServerError };
                oauth_json(&OAuthError::new(code, "the server could not complete the request"))
            }
        }
    }
}

/// The `Retry-After` of a request shed because too much Argon2 work is in flight (finding 21).
fn busy(e: &ServiceError) -> Option<u64> {
    match e {
        ServiceError::Busy { retry_after } => Some(*retry_after),
        _ => None,
    }
}

/// 503 with `Retry-After`: a friendly page for a person, `temporarily_unavailable` for a
/// client. Counted in `keyward_argon2_shed_total`; a DEBUG line only, as a flood would
/// otherwise flood the log.
fn shed_response(e: &WebError, retry_after: u64) -> HttpResponse {
    tracing::debug!(retry_after, "request shed: too much Argon2 work in flight");
    let mut resp = match e {
        WebError::ApiInternal(_) => {
            oauth_json(&OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, "the server is busy; retry after a moment"))
        }
        _ => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Keyward is busy",
            "Too many sign-ins are being checked right now.",
            Some("Wait a few seconds, then send the form again."),
        ),
    };
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
    }
    resp
}

/// A bug is an ERROR line per request. An outage (unreachable, too slow, full, read-only) is
/// one WARN line a minute at most (the pool also logs when it loses and regains the
/// database), so an outage under load does not flood the log; the rest are DEBUG lines.
fn log_failure(e: &ServiceError) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_WARNED: AtomicU64 = AtomicU64::new(0);
    if !e.is_unavailable() {
        tracing::error!(error = ?e.to_string(), "request failed");
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST_WARNED.load(Ordering::Relaxed);
    if now >= last + 60 && LAST_WARNED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        tracing::warn!(error = %e, "requests refused with 503: the database cannot serve (at most one line a minute)");
    } else {
        tracing::debug!(error = %e, "request refused: database unavailable");
    }
}
