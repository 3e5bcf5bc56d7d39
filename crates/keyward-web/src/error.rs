//! The one mapping from failures to HTTP: every error a handler returns is a [`WebError`],
//! answered by its `ResponseError` impl. People get a friendly page that says what to do
//! next; clients of the protocol endpoints get RFC 6749 §5.2 / RFC 6750 §3 JSON; a client is
//! redirected to only once its `redirect_uri` is verified; the JSON API of the page scripts
//! answers `{"error": code, "message": text}`. Internal causes are logged, never sent, and
//! an unreachable database is a 503 (`temporarily_unavailable`).

use crate::pages::{error_page, render};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode};
use keyward_service::ServiceError;
use std::fmt;

#[derive(Debug)]
pub enum WebError {
    /// A page for a person.
    Page { status: StatusCode, title: &'static str, message: String, hint: Option<&'static str> },
    /// A notice page for a person with a non-2xx status ("not approved yet").
    Notice { status: StatusCode, title: &'static str, message: &'static str },
    /// 429 with `Retry-After` and a page saying when to try again.
    TooMany { retry_after: i64, what: &'static str, hint: &'static str },
    /// 413 page for a request body over its bound; the connection is closed after it (the
    /// rest of the body is left unread).
    RequestTooLarge,
    /// An authorization error sent back to the client (RFC 6749 §4.1.2.1). Built only by
    /// [`WebError::to_client`] from a redirect URI `keyward_core::authorize` verified.
    ClientRedirect { status: StatusCode, location: String },
    /// A JSON error for a client; `basic` adds the `WWW-Authenticate: Basic` challenge.
    OAuth { error: OAuthError, basic: bool },
    /// A refused bearer token (RFC 6750 §3): 401 (400 for `invalid_request`) with the
    /// `WWW-Authenticate: Bearer` challenge; no body when no token was sent (§3.1).
    Bearer(Option<OAuthError>),
    /// An error of the page scripts' JSON API: `{"error": code, "message": text}`.
    Api { status: StatusCode, code: &'static str, message: String },
    /// 403 `reauthentication_required` of the JSON API, with the `confirm_url` to visit.
    ReauthRequired { confirm_url: String },
    /// Readiness refused (503 `{"status": why}`).
    NotReady(&'static str),
    /// A failure behind a page.
    PageInternal(ServiceError),
    /// A failure behind a protocol endpoint (OAuth JSON).
    ApiInternal(ServiceError),
    /// A failure behind the page scripts' JSON API (`{error, message}`).
    JsonInternal(ServiceError),
}

impl WebError {
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>, hint: Option<&'static str>) -> WebError {
        WebError::Page { status, title, message: message.into(), hint }
    }

    pub fn oauth(code: OAuthErrorCode, description: &str) -> WebError {
        WebError::OAuth { error: OAuthError::new(code, description), basic: false }
    }

    pub fn api(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        WebError::Api { status, code, message: message.into() }
    }

    pub fn csrf() -> WebError {
        WebError::page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your safety, we couldn't accept this form: it was opened in another browser, or too long ago.",
            Some("Go back to the app you were signing in to and start again."),
        )
    }

    /// The error redirect of RFC 6749 §4.1.2.1 to a `redirect_uri` that
    /// `keyward_core::authorize` verified against the client's registration.
    pub fn to_client(status: StatusCode, verified_redirect_uri: &str, issuer: &str, state: Option<&str>, error: &OAuthError) -> WebError {
        let location = keyward_service::oidc::redirect_url(
            verified_redirect_uri,
            issuer,
            &[("error", error.code.as_str()), ("error_description", &error.description)],
            state,
        );
        WebError::ClientRedirect { status, location }
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Page { title, .. } | WebError::Notice { title, .. } => write!(f, "{title}"),
            WebError::TooMany { what, .. } => write!(f, "rate limited: {what}"),
            WebError::RequestTooLarge => write!(f, "request too large"),
            WebError::ClientRedirect { .. } => write!(f, "error redirect to the client"),
            WebError::OAuth { error, .. } | WebError::Bearer(Some(error)) => write!(f, "{error}"),
            WebError::Bearer(None) => write!(f, "no bearer token"),
            WebError::Api { code, message, .. } => write!(f, "{code}: {message}"),
            WebError::ReauthRequired { .. } => write!(f, "reauthentication_required"),
            WebError::NotReady(why) => write!(f, "not ready: {why}"),
            WebError::PageInternal(e) | WebError::ApiInternal(e) | WebError::JsonInternal(e) => write!(f, "{e}"),
        }
    }
}

/// JSON body of an OAuth error, with the headers RFC 6749 §5.1 asks of token responses.
fn oauth_json(error: &OAuthError) -> HttpResponse {
    HttpResponse::build(oauth_status(error))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(serde_json::json!({ "error": error.code.as_str(), "error_description": error.description }))
}

fn oauth_status(error: &OAuthError) -> StatusCode {
    StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// `{"error": code, "message": text}` (plus `extra` fields), never cached.
fn api_json(status: StatusCode, code: &str, message: &str, extra: Option<(&str, &str)>) -> HttpResponse {
    let mut body = serde_json::json!({ "error": code, "message": message });
    if let Some((k, v)) = extra {
        body[k] = serde_json::Value::from(v);
    }
    HttpResponse::build(status).insert_header(("Cache-Control", "no-store")).json(body)
}

fn internal_status(e: &ServiceError) -> StatusCode {
    if e.is_unavailable() || busy(e).is_some() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Page { status, .. } | WebError::Notice { status, .. } | WebError::Api { status, .. } => *status,
            WebError::ClientRedirect { status, .. } => *status,
            WebError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::OAuth { error, .. } => oauth_status(error),
            WebError::Bearer(Some(e)) if e.code == OAuthErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            WebError::Bearer(_) => StatusCode::UNAUTHORIZED,
            WebError::ReauthRequired { .. } => StatusCode::FORBIDDEN,
            WebError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::PageInternal(e) | WebError::ApiInternal(e) | WebError::JsonInternal(e) => internal_status(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::Page { status, title, message, hint } => error_page(*status, title, message, *hint),
            WebError::Notice { status, title, message } => notice_with_status(*status, title, message),
            WebError::TooMany { retry_after, what, hint } => too_many(*retry_after, what, hint),
            WebError::RequestTooLarge => request_too_large(),
            WebError::ClientRedirect { status, location } => HttpResponse::build(*status)
                .insert_header(("Location", location.as_str()))
                .insert_header(("Cache-Control", "no-store"))
                .finish(),
            WebError::OAuth { error, basic } => oauth_response(error, *basic),
            WebError::Bearer(error) => bearer_challenge(self.status_code(), error.as_ref()),
            WebError::Api { status, code, message } => api_json(*status, code, message, None),
            WebError::ReauthRequired { confirm_url } => api_json(
                StatusCode::FORBIDDEN,
                "reauthentication_required",
                "Confirm it's you before changing this: you signed in a while ago.",
                Some(("confirm_url", confirm_url)),
            ),
            WebError::NotReady(why) => HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": why })),
            WebError::PageInternal(e) | WebError::ApiInternal(e) | WebError::JsonInternal(e) if busy(e).is_some() => {
                shed_response(self, busy(e).unwrap_or(1))
            }
            WebError::PageInternal(e) => internal_page(e),
            WebError::ApiInternal(e) => {
                log_failure(e);
                let code = if e.is_unavailable() { OAuthErrorCode::TemporarilyUnavailable } else { OAuthErrorCode::ServerError };
                oauth_json(&OAuthError::new(code, "the server could not complete the request"))
            }
            WebError::JsonInternal(e) => {
                log_failure(e);
                let (code, message) = if e.is_unavailable() {
                    ("temporarily_unavailable", "We can't reach our database right now. Wait a moment, then try again.")
                } else {
                    ("server_error", "Something went wrong on our side. Try again.")
                };
                api_json(internal_status(e), code, message, None)
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
        WebError::JsonInternal(_) => {
            api_json(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "The server is busy; retry after a moment.", None)
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

fn oauth_response(error: &OAuthError, basic: bool) -> HttpResponse {
    let mut resp = oauth_json(error);
    // RFC 6749 §5.2: a client that authenticated with the Authorization header gets the challenge.
    if basic && error.code == OAuthErrorCode::InvalidClient {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"keyward\""));
    }
    resp
}

/// RFC 6750 §3: the `WWW-Authenticate: Bearer` challenge, with the error when a token was sent.
fn bearer_challenge(status: StatusCode, error: Option<&OAuthError>) -> HttpResponse {
    let challenge = match error {
        None => "Bearer realm=\"keyward\"".to_owned(),
        Some(e) => format!("Bearer realm=\"keyward\", error=\"{}\", error_description=\"{}\"", e.code.as_str(), e.description),
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header(("WWW-Authenticate", challenge))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    match error {
        Some(e) => resp.json(serde_json::json!({ "error": e.code.as_str(), "error_description": e.description })),
        None => resp.finish(),
    }
}

fn notice_with_status(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    render(status, "notice.html", &ctx)
}

fn too_many(retry_after: i64, what: &str, hint: &str) -> HttpResponse {
    let minutes = (retry_after + 59) / 60;
    let when = if minutes <= 1 { "in a minute".to_owned() } else { format!("in {minutes} minutes") };
    let mut resp = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Please wait a moment",
        &format!("{what} To protect your account, please try again {when}."),
        Some(hint),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn request_too_large() -> HttpResponse {
    let mut resp = error_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "This sign-in request is too large",
        "The app sent more data than a sign-in request can carry.",
        Some("Go back to the app and try again. If it keeps happening, let the app's developers know."),
    );
    resp.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    resp
}

fn internal_page(e: &ServiceError) -> HttpResponse {
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

/// The JSON API's answer to a body actix cannot read as the handler's JSON type (wrong
/// content type, too large, malformed): the same `{error, message}` shape, its status kept.
pub fn json_body_error(err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    let status = err.status_code();
    let message = format!("the request body is not the JSON this endpoint takes: {err}");
    WebError::api(status, "invalid_request", message).into()
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

/// Every variant's status, headers and body, in one place.
#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    struct Answer {
        status: u16,
        headers: actix_web::http::header::HeaderMap,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).expect("a JSON body")
        }
    }

    async fn answer(e: WebError) -> Answer {
        let status = e.status_code();
        let resp = e.error_response();
        assert_eq!(resp.status(), status, "status_code() and error_response() agree for {e}");
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body()).await.expect("body");
        Answer { status: status.as_u16(), headers, body: String::from_utf8(body.to_vec()).expect("utf-8") }
    }

    fn db_down() -> ServiceError {
        ServiceError::Store(keyward_store::StoreError::TimedOut)
    }

    #[actix_web::test]
    async fn i15_pages_for_people_are_friendly_html_with_their_status() {
        let a = answer(WebError::page(StatusCode::GONE, "This link no longer works", "Used.", Some("Sign in again."))).await;
        assert_eq!(a.status, 410);
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert!(a.body.contains("This link no longer works") && a.body.contains("Sign in again."), "{}", a.body);

        let a = answer(WebError::csrf()).await;
        assert_eq!(a.status, 403);
        assert!(a.body.contains("This form has expired"));

        let a = answer(WebError::Notice { status: StatusCode::CONFLICT, title: "Not approved yet", message: "Open the link." }).await;
        assert_eq!(a.status, 409);
        assert!(a.body.contains("Not approved yet") && a.body.contains("Open the link."));
    }

    #[actix_web::test]
    async fn i15_too_many_is_429_with_retry_after_and_says_when() {
        let a = answer(WebError::TooMany { retry_after: 125, what: "Many emails.", hint: "Use the earlier one." }).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.header("retry-after"), Some("125"));
        assert!(a.body.contains("Many emails. To protect your account, please try again in 3 minutes."), "{}", a.body);
        assert!(a.body.contains("Use the earlier one."));
        let a = answer(WebError::TooMany { retry_after: 30, what: "W.", hint: "H." }).await;
        assert!(a.body.contains("try again in a minute."));
    }

    #[actix_web::test]
    async fn i15_a_request_too_large_is_413_and_closes_the_connection() {
        let e = WebError::RequestTooLarge;
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(resp.head().connection_type(), actix_web::http::ConnectionType::Close);
        let a = answer(WebError::RequestTooLarge).await;
        assert!(a.body.contains("This sign-in request is too large"));
    }

    #[actix_web::test]
    async fn i15_an_error_redirect_goes_to_the_verified_uri_with_error_state_and_iss() {
        let error = OAuthError::new(OAuthErrorCode::InvalidScope, "scope must include openid");
        let e = WebError::to_client(StatusCode::FOUND, "https://rp.example/cb", "https://id.example", Some("xyz"), &error);
        let a = answer(e).await;
        assert_eq!(a.status, 302);
        assert_eq!(a.header("cache-control"), Some("no-store"));
        let location = a.header("location").expect("Location");
        assert!(location.starts_with("https://rp.example/cb?"), "{location}");
        let q: Vec<(String, String)> = serde_urlencoded::from_str(location.split_once('?').expect("query").1).expect("query");
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("error"), Some("invalid_scope"));
        assert_eq!(get("error_description"), Some("scope must include openid"));
        assert_eq!(get("state"), Some("xyz"));
        assert_eq!(get("iss"), Some("https://id.example"));
        assert!(a.body.is_empty());
    }

    #[actix_web::test]
    async fn i15_oauth_errors_are_rfc6749_json_with_no_store_and_basic_challenge_only_for_basic() {
        let a = answer(WebError::oauth(OAuthErrorCode::InvalidGrant, "the code was already used")).await;
        assert_eq!(a.status, 400);
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert_eq!(a.header("pragma"), Some("no-cache"));
        assert_eq!(a.json(), serde_json::json!({ "error": "invalid_grant", "error_description": "the code was already used" }));
        assert_eq!(a.header("www-authenticate"), None);

        let basic = WebError::OAuth { error: OAuthError::new(OAuthErrorCode::InvalidClient, "client authentication failed"), basic: true };
        let a = answer(basic).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate"), Some("Basic realm=\"keyward\""));
        assert_eq!(a.json()["error"], "invalid_client");

        let a = answer(WebError::oauth(OAuthErrorCode::InvalidClient, "client authentication failed")).await;
        assert_eq!((a.status, a.header("www-authenticate")), (401, None), "no challenge without the Authorization header");
    }

    #[actix_web::test]
    async fn i15_bearer_errors_carry_the_rfc6750_challenge() {
        let a = answer(WebError::Bearer(None)).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate"), Some("Bearer realm=\"keyward\""));
        assert_eq!(a.header("access-control-allow-origin"), Some("*"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert!(a.body.is_empty(), "RFC 6750 §3.1: no error details when no token was sent");

        let a = answer(WebError::Bearer(Some(OAuthError::new(OAuthErrorCode::InvalidToken, "the access token expired")))).await;
        assert_eq!(a.status, 401);
        assert_eq!(
            a.header("www-authenticate"),
            Some("Bearer realm=\"keyward\", error=\"invalid_token\", error_description=\"the access token expired\"")
        );
        assert_eq!(a.json(), serde_json::json!({ "error": "invalid_token", "error_description": "the access token expired" }));

        let a = answer(WebError::Bearer(Some(OAuthError::new(OAuthErrorCode::InvalidRequest, "send the token once")))).await;
        assert_eq!(a.status, 400);
        assert_eq!(a.json()["error"], "invalid_request");
    }

    #[actix_web::test]
    async fn i15_the_json_api_answers_error_and_message_everywhere() {
        let a = answer(WebError::api(StatusCode::CONFLICT, "would_lock_out", "Turn email sign-in on first.")).await;
        assert_eq!(a.status, 409);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert_eq!(a.json(), serde_json::json!({ "error": "would_lock_out", "message": "Turn email sign-in on first." }));

        let a = answer(WebError::ReauthRequired { confirm_url: "/account/confirm?next=%2Faccount".into() }).await;
        assert_eq!(a.status, 403);
        assert_eq!(a.json()["error"], "reauthentication_required");
        assert_eq!(a.json()["confirm_url"], "/account/confirm?next=%2Faccount");
        assert!(a.json()["message"].as_str().is_some_and(|m| m.starts_with("Confirm it's you")));

        let a = answer(WebError::JsonInternal(db_down())).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json()["error"], "temporarily_unavailable");
        assert!(a.json()["message"].is_string() && a.json().get("error_description").is_none());
        let a = answer(WebError::JsonInternal(ServiceError::Internal("secret cause".into()))).await;
        assert_eq!(a.status, 500);
        assert_eq!(a.json()["error"], "server_error");
        assert!(!a.body.contains("secret cause"), "the cause is logged, never sent");
    }

    #[actix_web::test]
    async fn i15_a_json_body_actix_cannot_read_answers_the_json_api_shape_with_its_status() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let resp = json_body_error(actix_web::error::JsonPayloadError::ContentType, &req).error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "the status actix gives it is kept");
        let body: serde_json::Value = serde_json::from_slice(&to_bytes(resp.into_body()).await.expect("body")).expect("json");
        assert_eq!(body["error"], "invalid_request");
        assert!(body["message"].is_string());
    }

    #[actix_web::test]
    async fn i15_internal_failures_never_send_the_cause_and_an_outage_is_503() {
        let a = answer(WebError::PageInternal(ServiceError::Internal("secret cause".into()))).await;
        assert_eq!(a.status, 500);
        assert!(a.body.contains("Something went wrong") && !a.body.contains("secret cause"));
        let a = answer(WebError::PageInternal(db_down())).await;
        assert_eq!(a.status, 503);
        assert!(a.body.contains("Sign-in is briefly unavailable"));

        let a = answer(WebError::ApiInternal(ServiceError::Internal("secret cause".into()))).await;
        assert_eq!(a.status, 500);
        assert_eq!(a.json()["error"], "server_error");
        assert!(!a.body.contains("secret cause"));
        let a = answer(WebError::ApiInternal(db_down())).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json()["error"], "temporarily_unavailable");
        assert_eq!(a.header("cache-control"), Some("no-store"));
    }

    #[actix_web::test]
    async fn i15_readiness_refusals_are_503_with_the_reason() {
        let a = answer(WebError::NotReady("migrations pending")).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json(), serde_json::json!({ "status": "migrations pending" }));
    }
}
