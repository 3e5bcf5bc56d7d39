//! Assembles the running application from a loaded config and a clock: database, signing
//! keys, mail, the public and private HTTP servers and the background tasks. `keyward serve`
//! and the in-process tests both start Keyward through [`build`], so they run the same App.

use actix_web::{App, HttpServer, web};
use keyward_core::Clock;
use keyward_core::config::{Config, MailTransport, SmtpTls};
use keyward_mail::{Mailer, TlsMode, TransportSettings};
use keyward_service::{KeyRing, Keyward, MasterKey};
use keyward_store::Pool;
use secrecy::ExposeSecret;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Logs and prints `what: e`; the exit code for a failed start.
pub fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{what}: {e}");
    eprintln!("error: {what}: {e}");
    ExitCode::from(1)
}

/// Sockets bound by the caller (tests bind `127.0.0.1:0` before writing the issuer into the
/// config). `None`: bind `listen` / `metrics.listen` from the config.
#[derive(Default)]
pub struct Listeners {
    pub public: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
}

/// A started Keyward: await [`Running::server`] to run until stopped.
pub struct Running {
    pub server: actix_web::dev::Server,
    pub handle: actix_web::dev::ServerHandle,
    /// The private listener (`/metrics`, `/healthz`, `/readyz`), already spawned.
    pub private: Option<actix_web::dev::ServerHandle>,
    pub state: Arc<keyward_web::WebState>,
    /// Where the public listener is bound.
    pub addr: SocketAddr,
    /// Where the private listener is bound.
    pub metrics_addr: Option<SocketAddr>,
    /// Resolves once the sweep at start has run (tests wait for it; `serve` does not).
    pub first_sweep: tokio::sync::oneshot::Receiver<()>,
}

pub fn open_database(config: &Config) -> Result<Pool, ExitCode> {
    let pool =
        keyward_store::connect(config.database_url.expose_secret(), config.pool_size).map_err(|e| fail("cannot open the database", e))?;
    let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", e))?;
    let applied = keyward_store::run_migrations(&mut conn).map_err(|e| fail("cannot migrate the database", e))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    drop(conn);
    Ok(pool)
}

pub fn mail_settings(config: &Config) -> TransportSettings {
    match &config.mail {
        MailTransport::Dev { outbox } => TransportSettings::Dev { outbox: outbox.clone() },
        MailTransport::Smtp { host, port, tls, username, password, timeout_seconds } => TransportSettings::Smtp {
            host: host.clone(),
            port: *port,
            tls: match tls {
                SmtpTls::None => TlsMode::None,
                SmtpTls::StartTls => TlsMode::StartTls,
                SmtpTls::Tls => TlsMode::Tls,
            },
            username: username.clone(),
            password: password.clone(),
            timeout: Duration::from_secs(*timeout_seconds),
        },
    }
}

/// The service layer: master key, database (migrated), signing keys, on `clock`.
pub fn keyward(config: Arc<Config>, clock: Arc<dyn Clock>) -> Result<Arc<Keyward>, ExitCode> {
    let (master, dev_key) =
        MasterKey::resolve(config.master_key.as_ref().map(|k| k.expose_secret()), &config.data_dir).map_err(|e| fail("master key", e))?;
    if dev_key {
        tracing::warn!(
            path = %config.data_dir.join("master.key").display(),
            "USING A DEVELOPMENT MASTER KEY: signing keys are encrypted with a key stored next to the database. Set keys.master_key_file (or KEYWARD_KEYS__MASTER_KEY) in production."
        );
    }
    if let MailTransport::Dev { outbox } = &config.mail {
        tracing::warn!(outbox = %outbox.display(), "mail.transport = \"dev\": sign-in emails are written to the outbox file, not sent");
    }
    let pool = open_database(&config)?;
    let keys = {
        let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", e))?;
        KeyRing::load_or_create(&mut conn, &master, clock.unix()).map_err(|e| fail("cannot load signing keys", e))?
    };
    Ok(Arc::new(Keyward::new(config, pool, Arc::new(keys), clock, &master).map_err(|e| fail("WebAuthn settings", e))?))
}

/// Builds and starts the whole application; must run inside an actix `System` (it spawns
/// the background tasks and the private listener on it).
pub fn build(config: Arc<Config>, clock: Arc<dyn Clock>, listeners: Listeners) -> Result<Running, ExitCode> {
    let kw = keyward(config.clone(), clock)?;
    let mailer = Mailer::new(mail_settings(&config), &config.mail_from).map_err(|e| fail("mail settings", e))?;
    let first_sweep = spawn_cleanup(kw.clone());
    let state = web::Data::new(keyward_web::WebState::new(kw, mailer).map_err(|e| fail("web layer", e))?);
    keyward_web::spawn_background(state.clone().into_inner());
    let (server, addr) = public_server(&config, state.clone(), listeners.public)?;
    let handle = server.handle();
    let (private, metrics_addr) = match private_server(&config, state.clone(), listeners.metrics)? {
        Some((private, addr)) => (Some(private), Some(addr)),
        None => (None, None),
    };
    Ok(Running { server, handle, private, state: state.into_inner(), addr, metrics_addr, first_sweep })
}

/// The public listener: every route, behind the security headers, the request-head limit and
/// the request metrics.
fn public_server(
    config: &Config,
    state: web::Data<keyward_web::WebState>,
    listener: Option<TcpListener>,
) -> Result<(actix_web::dev::Server, SocketAddr), ExitCode> {
    let limiter = keyward_web::sign_in_limiter(&config.limits).ok_or_else(|| fail("limits", "the sign-in rate limit is out of range"))?;
    let https = config.issuer.starts_with("https://");
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    let server = HttpServer::new(move || {
        let limiter = limiter.clone();
        App::new()
            .app_data(state.clone())
            // Innermost: a stalled body gets 408 (finding 20), with the usual headers.
            .wrap(actix_web::middleware::from_fn(keyward_web::read_body_within_deadline))
            .wrap(keyward_web::security_headers(https))
            .wrap(actix_web::middleware::from_fn(keyward_web::limit_request_head))
            .wrap(actix_web::middleware::from_fn(keyward_web::observe_requests))
            .configure(move |cfg| keyward_web::configure(cfg, &limiter))
    });
    let bound = match (listener, tls) {
        (Some(l), Some(tls)) => server.listen_rustls_0_23(l, tls),
        (Some(l), None) => server.listen(l),
        (None, Some(tls)) => server.bind_rustls_0_23(&config.listen, tls),
        (None, None) => server.bind(&config.listen),
    }
    .map_err(|e| fail(&format!("cannot listen on {}", config.listen), e))?;
    let addr = bound.addrs().first().copied().ok_or_else(|| fail("cannot listen", config.listen.clone()))?;
    let server = bound
        // Blocking work (database, Argon2) per worker: more threads than pooled connections
        // would only queue for a connection, and each Argon2 check holds 19 MiB.
        .worker_max_blocking_threads((config.pool_size as usize).max(4))
        .shutdown_timeout(20)
        // SIGTERM, SIGINT and SIGHUP are handled by `serve` (drain, reload).
        .disable_signals()
        .run();
    Ok((server, addr))
}

/// Metrics and probes on their own (private) address, so the public listener never exposes
/// them; spawned on the current System.
fn private_server(
    config: &Config,
    state: web::Data<keyward_web::WebState>,
    listener: Option<TcpListener>,
) -> Result<Option<(actix_web::dev::ServerHandle, SocketAddr)>, ExitCode> {
    let wanted = match (&config.metrics_listen, listener) {
        (_, Some(l)) => Ok(l),
        (Some(addr), None) => Err(addr.clone()),
        (None, None) => return Ok(None),
    };
    let what = match &wanted {
        Ok(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        Err(addr) => addr.clone(),
    };
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(keyward_web::configure_private)).workers(1);
    let bound = match wanted {
        Ok(l) => server.listen(l),
        Err(addr) => server.bind(addr),
    }
    .map_err(|e| fail(&format!("cannot listen on {what} (metrics.listen)"), e))?;
    let addr = bound.addrs().first().copied().ok_or_else(|| fail("cannot listen (metrics.listen)", &what))?;
    let private = bound
        .shutdown_timeout(1)
        // Stays up while the public listener drains, so /readyz can say 503.
        .disable_signals()
        .run();
    let handle = private.handle();
    actix_web::rt::spawn(private);
    tracing::info!(metrics = %addr, "metrics and probes listening");
    Ok(Some((handle, addr)))
}

/// The TLS server settings from PEM files (certificate chain first, then the private key).
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ExitCode> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| fail(&format!("network.tls_cert_file {}", cert.display()), e))?;
    if certs.is_empty() {
        return Err(fail("network.tls_cert_file", format!("{} holds no PEM certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(&format!("network.tls_key_file {}", key.display()), e))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| fail("TLS settings (does the key match the certificate?)", e))
}

/// Sweeps expired rows every ten minutes (and once at start), off the request path; the
/// receiver hears when the sweep at start is done.
fn spawn_cleanup(kw: Arc<Keyward>) -> tokio::sync::oneshot::Receiver<()> {
    let (swept_once, first_sweep) = tokio::sync::oneshot::channel();
    let mut swept_once = Some(swept_once);
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let kw = kw.clone();
            match web::block(move || kw.cleanup()).await {
                Ok(Ok(swept)) if swept.total() > 0 => tracing::info!(?swept, "expired rows removed"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cleanup failed; will retry"),
                Err(e) => tracing::warn!(error = %e, "cleanup did not run"),
            }
            if let Some(done) = swept_once.take() {
                let _ = done.send(());
            }
        }
    });
    first_sweep
}
