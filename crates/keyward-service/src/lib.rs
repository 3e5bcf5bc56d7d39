//! Keyward's use cases: one function per action, each in one database transaction where it
//! writes. Functions here block (database, Argon2); the web layer runs them on the blocking
//! pool. Nothing here knows about HTTP.

pub mod account;
pub mod argon2_gate;
mod audit;
pub mod client_keys;
mod code_check;
pub mod consent;
pub mod jwks_cache;
pub mod jwks_fetch;
pub mod keys;
pub mod link;
pub mod login;
pub mod logout;
pub mod master_key;
pub mod metrics;
pub mod notice;
pub mod oidc;
pub mod passkeys;
pub mod reauth;
pub mod reauth_passkey;
mod recovery;
mod session_user;
pub mod tokens;
pub mod users;

#[cfg(test)]
mod d7_tests;

use argon2::Argon2;
use keyward_core::Clock;
use keyward_core::config::{Config, same_secret};
use keyward_store::{Pool, PooledConn, StoreError};
use secrecy::ExposeSecret;
use std::sync::Arc;

pub use keys::{KeyRing, KeySet};
pub use master_key::MasterKey;

/// An internal failure. Its text is for logs only; people and clients see a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("internal: {0}")]
    Internal(String),
    /// Too much Argon2 work in flight (finding 21): shed, answer 503 with `Retry-After`.
    #[error("busy: retry after {retry_after} s")]
    Busy { retry_after: u64 },
}

impl From<keyward_store::QueryError> for ServiceError {
    fn from(e: keyward_store::QueryError) -> Self {
        ServiceError::Store(StoreError::Query(e))
    }
}

impl From<keyward_store::PoolError> for ServiceError {
    fn from(e: keyward_store::PoolError) -> Self {
        ServiceError::Store(StoreError::Unavailable(e))
    }
}

impl ServiceError {
    /// The database is down or unreachable: answer 503 / `temporarily_unavailable`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ServiceError::Store(e) if e.is_unavailable())
    }
}

/// Everything a use case needs, shared by every worker.
pub struct Keyward {
    /// Swapped whole by a reload (SIGHUP); read it with [`Keyward::config`].
    config: std::sync::RwLock<Arc<Config>>,
    pub pool: Pool,
    /// SQLite only: the one connection write transactions use ([`Keyward::writer`]).
    writer: Option<Pool>,
    pub keys: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    /// Derived from the master key: the CSRF MAC key.
    pub csrf_key: [u8; 32],
    pub metrics: metrics::Metrics,
    argon2: Argon2<'static>,
    argon2_gate: argon2_gate::Argon2Gate,
    webauthn: webauthn_rs::Webauthn,
    jwks_cache: jwks_cache::JwksCache,
    /// Built once: its connection pool and limits serve every `jwks_uri` fetch.
    jwks_fetcher: jwks_fetch::JwksFetcher,
}

impl Keyward {
    pub fn new(
        config: Arc<Config>,
        pool: Pool,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        master: &MasterKey,
    ) -> Result<Keyward, ServiceError> {
        let webauthn = passkeys::build_webauthn(&config.issuer)?;
        let writer = keyward_store::connect_writer(config.database_url.expose_secret())?;
        let jwks_fetcher =
            jwks_fetch::JwksFetcher::new().map_err(|e| ServiceError::Internal(format!("cannot build the jwks_uri HTTP client: {e}")))?;
        Ok(Keyward {
            config: std::sync::RwLock::new(config),
            pool,
            writer,
            keys,
            clock,
            csrf_key: master.derive("keyward/csrf/v1"),
            argon2: Argon2::default(),
            argon2_gate: argon2_gate::Argon2Gate::for_this_machine(),
            webauthn,
            metrics: Default::default(),
            jwks_cache: Default::default(),
            jwks_fetcher,
        })
    }

    /// The configuration in force (a reload swaps it; holders of the old one finish with it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the configuration (clients, policies, limits, lifetimes). Settings that only
    /// take effect at start are refused with the reason, and the old configuration stays.
    pub fn reload_config(&self, new: Config) -> Result<(), String> {
        let old = self.config();
        let fixed = [
            ("issuer", old.issuer != new.issuer),
            ("listen", old.listen != new.listen),
            ("metrics.listen", old.metrics_listen != new.metrics_listen),
            ("data_dir", old.data_dir != new.data_dir),
            // Secrets compared exposed (they have no `PartialEq`, so no `Debug` or `==` slip).
            ("database.url", !same_secret(Some(&old.database_url), Some(&new.database_url))),
            ("database.pool_size", old.pool_size != new.pool_size),
            ("keys.master_key", !same_secret(old.master_key.as_ref(), new.master_key.as_ref())),
            ("mail", !old.mail.same_as(&new.mail) || old.mail_from != new.mail_from),
            ("network.tls_cert_file", old.tls != new.tls),
        ];
        let changed: Vec<&str> = fixed.iter().filter(|(_, c)| *c).map(|(k, _)| *k).collect();
        if !changed.is_empty() {
            return Err(format!("{} can only change with a restart; the running configuration is unchanged", changed.join(", ")));
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        Ok(())
    }

    pub fn conn(&self) -> Result<PooledConn, ServiceError> {
        Ok(self.pool.get()?)
    }

    /// The connection for a write transaction: on SQLite the single writer connection (writes
    /// queue here instead of contending for the file lock), on PostgreSQL any pooled one.
    /// Code holding it must not ask for another connection (a reader may be waiting for it).
    pub fn writer(&self) -> Result<PooledConn, ServiceError> {
        Ok(self.writer.as_ref().unwrap_or(&self.pool).get()?)
    }

    /// Readiness: the schema is current and a write commits (a full disk or a read-only
    /// database fails here). False while migrations are pending.
    pub fn check_ready(&self) -> Result<bool, ServiceError> {
        if !keyward_store::migrations_current(&mut *self.conn()?)? {
            return Ok(false);
        }
        keyward_store::probe_write(&mut *self.writer()?, self.now())?;
        Ok(true)
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The Prometheus text for `/metrics`, with the database pool's state.
    pub fn render_metrics(&self) -> String {
        let state = self.pool.state();
        self.metrics.render(Some(metrics::PoolState { max: self.pool.max_size(), open: state.connections, idle: state.idle_connections }))
    }

    /// Rotates keys that are due (when a schedule is configured), then reloads the key set
    /// from the database. True when the set changed.
    pub fn maintain_keys(&self) -> Result<bool, ServiceError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let rotation = self.config().key_rotation;
        if let Some(max_age) = rotation.rotate_after_seconds {
            for alg in self.keys.due_for_rotation(now, max_age) {
                self.keys.rotate(&mut conn, alg, now, rotation.publish_ahead_seconds, self.config().longest_token_lifetime())?;
            }
        }
        self.keys.reload(&mut conn, now)
    }

    /// Removes rows whose secrets can no longer be used (see [`sweep_expired`]).
    pub fn cleanup(&self) -> Result<keyward_store::repo::cleanup::Swept, ServiceError> {
        sweep_expired(&mut *self.conn()?, &self.config(), self.now())
    }
}

/// Sweeps expired login attempts, codes, sessions, spent authorization codes, old
/// rate-limit windows and audit events older than `audit.retention_days`. `serve` runs it every ten minutes; `keyward db cleanup` on demand.
pub fn sweep_expired(
    conn: &mut keyward_store::DbConnection,
    config: &Config,
    now: i64,
) -> Result<keyward_store::repo::cleanup::Swept, ServiceError> {
    let code_retention = keyward_core::claims::AUTHORIZATION_CODE_LIFETIME_SECS + config.access_token_lifetime_seconds + 60;
    let limit_window = config.limits.send_window_seconds.max(3600);
    Ok(keyward_store::repo::cleanup::sweep(conn, now, config.session_idle_seconds, code_retention, limit_window, config.audit_cutoff(now))?)
}
