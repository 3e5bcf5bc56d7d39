//! `keyward serve` and `keyward migrate`: wire config, database, keys, mail and the web
//! layer together, then run.

use crate::load_config;
use actix_web::{App, HttpServer, web};
use keyward_core::SystemClock;
use keyward_core::config::{Config, MailTransport, SmtpTls};
use keyward_mail::{Mailer, TlsMode, TransportSettings};
use keyward_service::{KeyRing, Keyward, MasterKey};
use keyward_store::Pool;
use secrecy::ExposeSecret;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{what}: {e}");
    eprintln!("error: {what}: {e}");
    ExitCode::from(1)
}

pub(crate) fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // actix-http logs every malformed request (a bad head, a head over its limit) as an
    // ERROR "stream error" after answering it 400/431: any client could flood the operator's
    // alerts. Those are the client's mistakes; they are kept out unless asked for by name
    // (`KEYWARD_LOG=info,actix_http=debug`).
    let asked = std::env::var("KEYWARD_LOG").is_ok_and(|v| v.contains("actix_http"));
    let filter = match "actix_http::h1::dispatcher=off".parse() {
        Ok(quiet) if !asked => filter.add_directive(quiet),
        _ => filter,
    };
    // Colours only on a terminal: a log file or a collector gets plain lines, so a search for
    // " ERROR " (an operator's grep, the bad-input sweep) finds every ERROR line.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    if std::env::var("KEYWARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) fn open_database(config: &Config) -> Result<Pool, ExitCode> {
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

pub fn migrate(path: &Path) -> Result<(), ExitCode> {
    init_tracing();
    let config = load_config(path)?;
    let pool = keyward_store::connect(config.database_url.expose_secret(), 1).map_err(|e| fail("cannot open the database", e))?;
    let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", e))?;
    let n = keyward_store::run_migrations(&mut conn).map_err(|e| fail("cannot migrate the database", e))?;
    println!("{n} migration{} applied; the schema is current", if n == 1 { "" } else { "s" });
    Ok(())
}

pub(crate) fn mail_settings(config: &Config) -> TransportSettings {
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

/// Makes glibc give big buffers back to the system when they are freed (issue 14, finding
/// 21). Each Argon2 hash allocates 19 MiB; by default glibc raises its mmap threshold past
/// that size after the first free, so later buffers came from per-thread arenas and stayed
/// resident after use (408 MB idle after a flood). A fixed 1 MiB threshold keeps every such
/// buffer an mmap of its own, unmapped on free.
fn return_big_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

pub fn serve(path: &Path) -> Result<(), ExitCode> {
    let started = Instant::now();
    return_big_buffers_to_the_os();
    init_tracing();
    let config = Arc::new(load_config(path)?);
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
        KeyRing::load_or_create(&mut conn, &master, keyward_core::Clock::unix(&SystemClock))
            .map_err(|e| fail("cannot load signing keys", e))?
    };
    let kw = Arc::new(
        Keyward::new(config.clone(), pool, Arc::new(keys), Arc::new(SystemClock), &master).map_err(|e| fail("WebAuthn settings", e))?,
    );
    actix_web::rt::System::new().block_on(async move {
        let mailer = Mailer::new(mail_settings(&config), &config.mail_from).map_err(|e| fail("mail settings", e))?;
        spawn_cleanup(kw.clone());
        let state = web::Data::new(keyward_web::WebState::new(kw, mailer).map_err(|e| fail("web layer", e))?);
        keyward_web::spawn_background(state.clone().into_inner());
        let limiter = keyward_web::sign_in_limiter(&config.limits).ok_or_else(|| fail("limits", "the sign-in rate limit is out of range"))?;
        let private_state = state.clone();
        let signal_state = state.clone().into_inner();
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
        })
        ;
        let server = match tls {
            Some(tls) => server.bind_rustls_0_23(&config.listen, tls),
            None => server.bind(&config.listen),
        }
            .map_err(|e| fail(&format!("cannot listen on {}", config.listen), e))?
            // Blocking work (database, Argon2) per worker: more threads than pooled connections
            // would only queue for a connection, and each Argon2 check holds 19 MiB.
            .worker_max_blocking_threads((config.pool_size as usize).max(4))
            .shutdown_timeout(20)
            // SIGTERM, SIGINT and SIGHUP are handled below (drain, reload).
            .disable_signals()
            .run();
        let handle = server.handle();
        // Metrics and probes on their own (private) address, so the public listener never
        // exposes them.
        if let Some(addr) = &config.metrics_listen {
            let private = HttpServer::new(move || App::new().app_data(private_state.clone()).configure(keyward_web::configure_private))
                .workers(1)
                .bind(addr)
                .map_err(|e| fail(&format!("cannot listen on {addr} (metrics.listen)"), e))?
                .shutdown_timeout(1)
                // Stays up while the public listener drains, so /readyz can say 503.
                .disable_signals()
                .run();
            actix_web::rt::spawn(private);
            tracing::info!(metrics = %addr, "metrics and probes listening");
        }
        let pid_file = config.data_dir.join("keyward.pid");
        if let Err(e) = std::fs::create_dir_all(&config.data_dir).and_then(|()| std::fs::write(&pid_file, std::process::id().to_string())) {
            tracing::warn!(error = %e, path = %pid_file.display(), "cannot write the pid file (keyward config reload needs it)");
        }
        spawn_signals(signal_state.clone(), handle, path.to_owned());
        tracing::info!(issuer = %config.issuer, listen = %config.listen, ready_ms = started.elapsed().as_millis() as u64, "Keyward is ready");
        println!("Keyward is running at {}", config.issuer);
        if config.try_it_client.is_some() {
            println!("Try it: open {}/try and sign in (the code is in {})", config.issuer, outbox_hint(&config));
        }
        server.await.map_err(|e| fail("server stopped", e))?;
        // In-flight requests are done; let emails being sent finish too.
        let left = signal_state.finish_mail(Duration::from_secs(20)).await;
        if left > 0 {
            tracing::warn!(left, "stopped with emails still being sent");
        }
        let _ = std::fs::remove_file(&pid_file);
        tracing::info!("Keyward stopped");
        Ok(())
    })
}

/// SIGTERM: readiness turns 503 and Keyward keeps serving for `shutdown_delay_seconds` (load
/// balancers stop sending), then the listener stops accepting and in-flight requests finish
/// (up to 20 s). SIGINT (Ctrl-C) skips the delay. SIGHUP: the config file is read again; a bad file is refused with
/// the same messages as `keyward config check`, and the running configuration stays.
fn spawn_signals(state: Arc<keyward_web::WebState>, handle: actix_web::dev::ServerHandle, path: std::path::PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    actix_web::rt::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let delay = loop {
            tokio::select! {
                // Orchestrators send SIGTERM: give load balancers time to see readiness fail.
                _ = term.recv() => break Duration::from_secs(state.kw.config().shutdown_delay_seconds),
                // Ctrl-C by a person: stop now.
                _ = int.recv() => break Duration::ZERO,
                _ = hup.recv() => match Config::load(&path, &crate::keyward_env()) {
                    Ok(new) => match state.kw.reload_config(new) {
                        Ok(()) => tracing::info!(file = %path.display(), "configuration reloaded"),
                        Err(why) => tracing::error!(file = %path.display(), "configuration not reloaded: {why}"),
                    },
                    Err(errors) => tracing::error!(file = %path.display(), "configuration not reloaded; the running one stays. {errors}"),
                },
            }
        };
        state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        if !delay.is_zero() {
            tracing::info!(seconds = delay.as_secs(), "shutting down: readiness is 503; still serving while load balancers notice");
            tokio::time::sleep(delay).await;
        }
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        handle.stop(true).await;
    });
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

fn outbox_hint(config: &Config) -> String {
    match &config.mail {
        MailTransport::Dev { outbox } => outbox.display().to_string(),
        MailTransport::Smtp { .. } => "your inbox".into(),
    }
}

/// Sweeps expired rows every ten minutes (and once at start), off the request path.
fn spawn_cleanup(kw: Arc<Keyward>) {
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
        }
    });
}

/// `keyward db cleanup`.
pub fn cleanup(path: &Path) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let pool = open_database(&config)?;
    let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", e))?;
    let now = keyward_core::Clock::unix(&SystemClock);
    let s = keyward_service::sweep_expired(&mut conn, &config, now).map_err(|e| fail("cleanup failed", e))?;
    let audit = match config.audit_retention_days {
        0 => "kept forever: audit.retention_days = 0".to_owned(),
        days => format!("older than {days} days"),
    };
    println!(
        "removed {} expired rows: {} email codes, {} login attempts, {} sessions, {} authorization codes, {} rate-limit windows, {} passkey ceremonies, {} audit events ({audit})",
        s.total(),
        s.email_challenges,
        s.login_attempts,
        s.sessions,
        s.authorization_codes,
        s.rate_limits,
        s.ceremonies,
        s.audit_events
    );
    Ok(())
}
