//! Keyward over HTTP: one route table, the hosted pages (tera templates from `ui/`),
//! cookies, CSRF, security headers, and the one place where errors become responses.

mod body_deadline;
mod cookies;
mod csrf;
mod error;
mod pages;
mod routes;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use keyward_mail::{MailTemplates, Mailer};
use keyward_service::Keyward;
use std::sync::Arc;

pub use body_deadline::{BODY_READ_TIMEOUT, read_body_within_deadline};
pub use error::WebError;
pub use routes::human_time;

/// Shared by every worker.
pub struct WebState {
    pub kw: Arc<Keyward>,
    pub mailer: Mailer,
    pub mail_templates: MailTemplates,
    discovery_json: String,
    try_it: Option<routes::try_it::TryIt>,
    /// Wakes the back-channel logout worker when a logout queued deliveries.
    pub backchannel: tokio::sync::Notify,
    /// Emails being sent off the request path; shutdown waits for them.
    mail_in_flight: std::sync::atomic::AtomicUsize,
    mail_done: tokio::sync::Notify,
    /// Set when the process is shutting down: `/readyz` answers 503 from then on.
    pub draining: std::sync::atomic::AtomicBool,
}

impl WebState {
    pub fn new(kw: Arc<Keyward>, mailer: Mailer) -> Result<WebState, String> {
        pages::Pages::new()?;
        let discovery_json = kw.discovery_document().to_string();
        let try_it =
            kw.config().try_it_client.clone().map(|client_id| routes::try_it::TryIt::new(&kw.config().issuer, client_id)).transpose()?;
        Ok(WebState {
            mail_templates: MailTemplates::new().map_err(|e| e.to_string())?,
            discovery_json,
            try_it,
            kw,
            mailer,
            backchannel: tokio::sync::Notify::new(),
            mail_in_flight: Default::default(),
            mail_done: tokio::sync::Notify::new(),
            draining: Default::default(),
        })
    }

    /// Runs an email send off the request path, counted so shutdown can wait for it.
    pub(crate) fn spawn_mail(self: &Arc<Self>, send: impl std::future::Future<Output = ()> + 'static) {
        use std::sync::atomic::Ordering;
        self.mail_in_flight.fetch_add(1, Ordering::SeqCst);
        let state = self.clone();
        actix_web::rt::spawn(async move {
            send.await;
            state.mail_in_flight.fetch_sub(1, Ordering::SeqCst);
            state.mail_done.notify_waiters();
        });
    }

    /// Waits (at most `limit`) until no email is being sent; returns how many were left.
    pub async fn finish_mail(&self, limit: std::time::Duration) -> usize {
        use std::sync::atomic::Ordering;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = self.mail_in_flight.load(Ordering::SeqCst);
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            let _ = tokio::time::timeout_at(deadline, self.mail_done.notified()).await;
        }
    }
}

/// Work off the request path, for the life of the process: back-channel logout delivery,
/// and reloading signing keys from the database (picking up rotations made by the CLI or
/// another instance) with the scheduled rotation when configured.
pub fn spawn_background(state: Arc<WebState>) {
    routes::logout::spawn_backchannel_worker(state.clone());
    let kw = state.kw.clone();
    actix_web::rt::spawn(async move {
        let rotation = kw.config().key_rotation;
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(rotation.reload_seconds as u64));
        loop {
            tick.tick().await;
            let k = kw.clone();
            match web::block(move || k.maintain_keys()).await {
                Ok(Ok(true)) => tracing::info!("signing keys reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload signing keys; will retry"),
                Err(e) => tracing::warn!(error = %e, "key reload did not run"),
            }
        }
    });
}

/// Counts every request and its latency by route pattern, method and status (Prometheus
/// histogram `keyward_http_request_duration_seconds`).
pub async fn observe_requests(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::Method;
    let started = std::time::Instant::now();
    let state = req.app_data::<web::Data<WebState>>().cloned();
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let res = next.call(req).await?;
    if let Some(state) = state {
        let endpoint = res.request().match_pattern().unwrap_or_else(|| "(unmatched)".into());
        state.kw.metrics.observe_http(&endpoint, method, res.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// The longest request target (path and query) Keyward reads; longer ones get 414. The
/// longest legitimate one, an `/authorize` link with an 8 KiB `id_token_hint`, fits.
pub const MAX_REQUEST_TARGET: usize = 16 * 1024;
/// The most header bytes Keyward reads; more get 431. (actix itself refuses a head over
/// 128 KiB with 431.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses an over-long request line (414) or head (431) before any handler runs.
pub async fn limit_request_head(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>, actix_web::Error> {
    use actix_web::http::StatusCode;
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let head: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let refused = if target > MAX_REQUEST_TARGET {
        Some((StatusCode::URI_TOO_LONG, "This address is too long. Go back to the app and start again."))
    } else if head > MAX_HEADER_BYTES {
        Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "This request carries too much header data. Clear this site's cookies, then try again.",
        ))
    } else {
        None
    };
    match refused {
        Some((status, message)) => {
            let resp = actix_web::HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(message);
            Ok(req.into_response(resp).map_into_right_body())
        }
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

/// The private listener's routes: metrics and the probes.
pub fn configure_private(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(routes::metrics::metrics))
        .route("/healthz", web::get().to(routes::health::healthz))
        .route("/readyz", web::get().to(routes::health::readyz));
}

/// Headers for every response (CHECKLIST E4, E5, E7; DESIGN.md §5). Scripts are not used
/// only come from our own origin (no inline script).
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"));
    // CHECKLIST E6: browsers keep to https for a year, subdomains included.
    if https { headers.add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains")) } else { headers }
}

/// The per-IP request limiter for the sign-in pages (actix-governor), created once and
/// shared by every worker. It is a first line against floods; the limits that must hold
/// across instances are counted in the database.
pub type SignInLimiter = actix_governor::GovernorConfig<ClientIpKey, actix_governor::governor::middleware::NoOpMiddleware>;

/// The per-IP limiter's key: the client address as [`client_ip`] finds it (behind trusted
/// proxies, from `X-Forwarded-For`), cut by [`keyward_core::net::limit_key`]: an IPv4
/// address (also IPv4-mapped) as itself, IPv6 to its /64.
#[derive(Clone)]
pub struct ClientIpKey;

impl actix_governor::KeyExtractor for ClientIpKey {
    type Key = std::net::IpAddr;
    type KeyExtractionError = actix_governor::SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &actix_web::dev::ServiceRequest) -> Result<Self::Key, Self::KeyExtractionError> {
        let ip = match req.app_data::<web::Data<WebState>>() {
            Some(state) => client_ip(req.request(), &state.kw.config().trusted_proxies),
            None => req.peer_addr().map(|a| a.ip()),
        }
        .ok_or_else(|| actix_governor::SimpleKeyExtractionError::new("no client address"))?;
        Ok(keyward_core::net::limit_key(ip))
    }
}

/// The client's address: the peer's, or — when the peer is a trusted proxy — the nearest
/// untrusted hop in `X-Forwarded-For` (CHECKLIST: trust proxies only by configuration).
pub fn client_ip(req: &actix_web::HttpRequest, trusted: &[keyward_core::net::Cidr]) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(keyward_core::net::client_ip(peer, Some(&forwarded_for(req.headers())), trusted))
}

/// Every `X-Forwarded-For` line in order, as one list: a proxy that adds its own line
/// (instead of appending to the client's) must not leave the client's forged line to be
/// read as the whole header. A line that is not text ends the list where it stands, so it
/// is read as untrusted (the nearest hop before it wins).
fn forwarded_for(headers: &actix_web::http::header::HeaderMap) -> String {
    let lines: Vec<&str> = headers.get_all("x-forwarded-for").map(|v| v.to_str().unwrap_or("!")).collect();
    lines.join(",")
}

pub fn sign_in_limiter(limits: &keyward_core::config::Limits) -> Option<SignInLimiter> {
    let per_minute = u64::from(limits.sign_in_requests_per_ip_per_minute.max(1));
    actix_governor::GovernorConfigBuilder::default()
        .key_extractor(ClientIpKey)
        .period(std::time::Duration::from_nanos(60_000_000_000 / per_minute))
        .burst_size(limits.sign_in_burst_per_ip.max(1))
        .finish()
}

/// The route table: every endpoint Keyward serves.
pub fn configure(cfg: &mut web::ServiceConfig, limiter: &SignInLimiter) {
    use routes::*;
    cfg.app_data(web::JsonConfig::default().error_handler(error::json_body_error))
        .route("/", web::get().to(home::home))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/keyward.css", web::get().to(home::stylesheet))
        .route("/static/login.js", web::get().to(home::login_script))
        .route("/static/passkey.js", web::get().to(home::passkey_script))
        .route("/favicon.ico", web::get().to(home::favicon))
        .route("/.well-known/openid-configuration", web::get().to(discovery::openid_configuration))
        .route("/jwks", web::get().to(discovery::jwks))
        .route("/authorize", web::get().to(authorize::authorize_get))
        .route("/authorize", web::post().to(authorize::authorize_post))
        .route("/token", web::post().to(token::token))
        .route("/token", web::method(actix_web::http::Method::OPTIONS).to(discovery::preflight))
        .route("/userinfo", web::get().to(userinfo::userinfo_get))
        .route("/userinfo", web::post().to(userinfo::userinfo_post))
        .route("/userinfo", web::method(actix_web::http::Method::OPTIONS).to(discovery::preflight))
        .route("/revoke", web::post().to(token::revoke))
        .route("/revoke", web::method(actix_web::http::Method::OPTIONS).to(discovery::preflight))
        .route("/introspect", web::post().to(token::introspect))
        .route("/end_session", web::get().to(logout::end_session_get))
        .route("/end_session", web::post().to(logout::end_session_post))
        .route("/consent", web::get().to(consent::consent_page))
        .route("/consent", web::post().to(consent::consent_submit))
        .route("/account/apps/{client}/revoke", web::post().to(account::revoke_app_form))
        .route("/account/sessions/sign-out-others", web::post().to(account::sign_out_others_form))
        .service(
            web::scope("/login")
                .wrap(actix_governor::Governor::new(limiter))
                .route("", web::get().to(login::login_page))
                .route("/email", web::post().to(login::submit_email))
                .route("/code", web::get().to(login::code_page))
                .route("/code", web::post().to(login::submit_code))
                .route("/status", web::get().to(link::status))
                .route("/continue", web::post().to(link::continue_approved))
                .route("/link", web::get().to(link::link_page))
                .route("/link", web::head().to(link::link_page))
                .route("/link", web::post().to(link::submit_link))
                .route("/passkey/start", web::post().to(passkeys::login_start))
                .route("/passkey/finish", web::post().to(passkeys::login_finish))
                .route("/passkey-offer", web::get().to(passkey_offer::offer_page))
                .route("/passkey-offer", web::post().to(passkey_offer::offer_submit))
                .route("/recovery", web::get().to(recovery::recovery_page))
                .route("/recovery", web::post().to(recovery::recovery_submit)),
        )
        .route("/account", web::get().to(account::account_page))
        .route("/account/passkeys/{id}/rename", web::post().to(account::rename_form))
        .route("/account/passkeys/{id}/delete", web::post().to(account::delete_form))
        .route("/account/api/passkeys/{id}/rename", web::post().to(account::rename_json))
        .route("/account/api/passkeys/{id}/delete", web::post().to(account::delete_json))
        .route("/account/recovery-codes", web::post().to(account::recovery_codes_form))
        .route("/account/email-sign-in", web::post().to(account::email_sign_in_form))
        // Confirming "it's you" mails and checks codes as sign-in does: the same per-IP limit.
        .service(
            web::scope("/account/confirm")
                .wrap(actix_governor::Governor::new(limiter))
                .route("", web::get().to(reauth::confirm_page))
                .route("/email", web::post().to(reauth::send_code))
                .route("/code", web::post().to(reauth::submit_code))
                .route("/passkey/start", web::post().to(reauth::passkey_start))
                .route("/passkey/finish", web::post().to(reauth::passkey_finish)),
        )
        .route("/account/passkeys", web::get().to(passkeys::list))
        .route("/account/passkeys/register/start", web::post().to(passkeys::register_start))
        .route("/account/passkeys/register/finish", web::post().to(passkeys::register_finish))
        .route("/try", web::get().to(try_it::index))
        .route("/try/start", web::post().to(try_it::start))
        .route("/try/callback", web::get().to(try_it::callback))
        .default_service(web::to(home::not_found));
}

#[cfg(test)]
mod tests {
    use actix_governor::KeyExtractor;

    fn key(peer: &str) -> std::net::IpAddr {
        let req = actix_web::test::TestRequest::default().peer_addr(peer.parse().expect("addr")).to_srv_request();
        super::ClientIpKey.extract(&req).expect("key")
    }

    #[test]
    fn f7_every_x_forwarded_for_line_counts_so_a_forged_first_line_is_not_the_client() {
        use actix_web::test::TestRequest;
        let trusted = vec![keyward_core::net::Cidr::parse("10.0.0.0/8").expect("cidr")];
        // The client forges a line; the trusted proxy adds its own line with the real address.
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().expect("peer"))
            .append_header(("x-forwarded-for", "198.51.100.66"))
            .append_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(crate::client_ip(&req, &trusted), Some("203.0.113.9".parse().expect("ip")));
        // One line, appended by the proxy: the same answer.
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().expect("peer"))
            .insert_header(("x-forwarded-for", "198.51.100.66, 203.0.113.9"))
            .to_http_request();
        assert_eq!(crate::client_ip(&req, &trusted), Some("203.0.113.9".parse().expect("ip")));
    }

    #[test]
    fn f7_rate_limit_keys_count_ipv4_mapped_as_ipv4_and_ipv6_per_slash_64() {
        // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: each is its own key.
        assert_eq!(key("[::ffff:203.0.113.9]:4000"), "203.0.113.9".parse::<std::net::IpAddr>().expect("ip"));
        assert_eq!(key("[::ffff:203.0.113.9]:4000"), key("203.0.113.9:5000"));
        assert_ne!(key("[::ffff:203.0.113.9]:4000"), key("[::ffff:198.51.100.7]:4000"));
        // IPv6: one key per /64, different /64s apart.
        assert_eq!(key("[2001:db8:1:2::1]:4000"), key("[2001:db8:1:2:ffff:ffff:ffff:ffff]:4000"));
        assert_ne!(key("[2001:db8:1:2::1]:4000"), key("[2001:db8:1:3::1]:4000"));
        assert_eq!(key("[2001:db8:1:2:aaaa::1]:4000"), "2001:db8:1:2::".parse::<std::net::IpAddr>().expect("ip"));
    }
}

#[cfg(test)]
mod fuzz_tests;
