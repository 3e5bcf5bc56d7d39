//! `keyward serve` and `keyward migrate`: wire config, database, keys, mail and the web
//! layer together (through [`keyward::app::build`], the same assembly the tests run), then run.

use crate::load_config;
use keyward::app::fail;
pub(crate) use keyward::app::{mail_settings, open_database};
use keyward_core::SystemClock;
use keyward_core::config::{Config, MailTransport};
use secrecy::ExposeSecret;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

pub fn migrate(path: &Path) -> Result<(), ExitCode> {
    init_tracing();
    let config = load_config(path)?;
    let pool = keyward_store::connect(config.database_url.expose_secret(), 1).map_err(|e| fail("cannot open the database", e))?;
    let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", e))?;
    let n = keyward_store::run_migrations(&mut conn).map_err(|e| fail("cannot migrate the database", e))?;
    println!("{n} migration{} applied; the schema is current", if n == 1 { "" } else { "s" });
    Ok(())
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
    let clock: Arc<dyn keyward_core::Clock> = Arc::new(SystemClock);
    actix_web::rt::System::new().block_on(async move {
        let running = keyward::app::build(config.clone(), clock, keyward::app::Listeners::default())?;
        let keyward::app::Running { server, handle, state: signal_state, .. } = running;
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

fn outbox_hint(config: &Config) -> String {
    match &config.mail {
        MailTransport::Dev { outbox } => outbox.display().to_string(),
        MailTransport::Smtp { .. } => "your inbox".into(),
    }
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
