//! Connections: a `MultiConnection` over SQLite and PostgreSQL, an r2d2 pool, per-backend
//! connection settings and the embedded migrations. Backend differences live here only.

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool as R2d2Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

pub type Pool = R2d2Pool<DbManager>;
pub type PooledConn = PooledConnection<DbManager>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("cannot create the database directory {0}: {1}")]
    Directory(String, std::io::Error),
    #[error("the database did not answer in time")]
    TimedOut,
}

/// Messages of database errors that are an outage, not a bug: the disk is full, the database
/// only reads, a statement ran past `statement_timeout`, the server ended the session.
/// (Diesel keeps no SQLSTATE for these: SQLite's SQLITE_FULL / SQLITE_READONLY and
/// PostgreSQL's 53100 disk_full, 57014 query_canceled, 57P01 admin_shutdown are matched on
/// their fixed texts.)
const OUTAGE_MESSAGES: [&str; 9] = [
    "database or disk is full",
    "readonly database",
    "read-only transaction",
    "no space left on device",
    "could not extend file",
    "canceling statement due to statement timeout",
    "terminating connection",
    "server closed the connection",
    "the database did not answer in time",
];

/// True for a query error that means the database cannot serve (see [`OUTAGE_MESSAGES`]).
pub fn is_outage(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::ReadOnlyTransaction, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            OUTAGE_MESSAGES.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

impl StoreError {
    /// True when the database cannot serve: unreachable, too slow, full or read-only (as
    /// opposed to a query going wrong). Callers answer 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::TimedOut => true,
            StoreError::Query(e) => is_outage(e),
            _ => false,
        }
    }
}

/// PostgreSQL: a statement running longer than this is cancelled by the server. It bounds a
/// request's database work and makes sure a statement caught in a hang (the server frozen)
/// is cancelled when the server resumes instead of committing late.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL: a session idle inside a transaction this long is ended by the server.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL: the libpq `connect_timeout` (seconds) added when the URL has none.
const CONNECT_TIMEOUT_SECONDS: u32 = 2;
/// How long a request waits for a pooled connection.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

thread_local! {
    static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `deadline` as this thread's request deadline: a write transaction that is
/// about to commit after it rolls back instead (the caller has already answered 503, so the
/// change must not happen).
pub fn with_deadline<T>(deadline: std::time::Instant, f: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.with(|d| d.replace(Some(deadline)));
    let out = f();
    DEADLINE.with(|d| d.set(previous));
    out
}

fn past_deadline() -> bool {
    DEADLINE.with(|d| d.get()).is_some_and(|d| std::time::Instant::now() >= d)
}

/// The error of a transaction abandoned at its deadline (an outage, see [`is_outage`]).
fn deadline_error() -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::ClosedConnection,
        Box::new("the database did not answer in time; rolled back".to_owned()),
    )
}

/// `url` with libpq's `connect_timeout` when it has none: a server that accepts TCP but does
/// not answer (frozen) fails the connection attempt instead of hanging it.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={CONNECT_TIMEOUT_SECONDS}")
}

/// Logs a database outage once when connecting starts failing (WARN) and once when it
/// connects again (INFO), instead of r2d2's ERROR line for every reconnect attempt.
#[derive(Debug, Default)]
struct OutageLog {
    down: std::sync::atomic::AtomicBool,
}

impl OutageLog {
    fn failed(&self, e: &dyn std::fmt::Display) {
        if !self.down.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tracing::warn!(error = %e, "database unreachable; requests answer 503 until it is back (logged once)");
        } else {
            tracing::debug!(error = %e, "database still unreachable");
        }
    }

    fn connected(&self) {
        if self.down.swap(false, std::sync::atomic::Ordering::SeqCst) {
            tracing::info!("database reachable again");
        }
    }
}

#[derive(Debug)]
struct OutageHandler(std::sync::Arc<OutageLog>);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for OutageHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        self.0.failed(&error);
    }
}

/// Opens connections of one backend. (The derived `MultiConnection::establish` tries each
/// backend in turn, which would turn an unreachable PostgreSQL URL into a stray SQLite file.)
/// `Debug` leaves the URL out: it may carry the database password (finding 12).
pub struct DbManager {
    backend: Backend,
    url: String,
    outage: std::sync::Arc<OutageLog>,
    /// The SQLite checkpointer thread holds a `Weak` of this and stops once the pool is gone.
    _alive: std::sync::Arc<()>,
}

/// SQLite settings of every pooled connection. WAL lets readers run beside the writer;
/// `synchronous = NORMAL` is durable across process crashes in WAL mode (a power loss may
/// lose the last commits, never corrupt); `busy_timeout` waits for the write lock instead of
/// failing at once. `wal_autocheckpoint = 0`: no request pays for copying the WAL back into
/// the database file (and its `fdatasync`) inside its COMMIT; [`spawn_checkpointer`] does it
/// in the background. `journal_size_limit` trims the WAL file after a checkpoint reset it.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;";

/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection every [`CHECKPOINT_EVERY`]
/// until the pool that owns `alive` is dropped. PASSIVE never blocks readers or the writer;
/// under continuous load it copies what it can and the next round continues.
fn spawn_checkpointer(path: String, alive: std::sync::Weak<()>) {
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        let mut conn: Option<SqliteConnection> = None;
        loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if alive.upgrade().is_none() {
                return;
            }
            if conn.is_none() {
                conn = SqliteConnection::establish(&path).ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Err(e) = c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retrying");
                conn = None;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the SQLite checkpointer; the WAL is checkpointed when connections close");
    }
}

impl std::fmt::Debug for DbManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbManager").field("backend", &self.backend).field("url", &"[REDACTED]").finish_non_exhaustive()
    }
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut c = PgConnection::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute(&format!(
                    "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {};",
                    STATEMENT_TIMEOUT.as_millis(),
                    IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                self.outage.connected();
                Ok(DbConnection::Postgres(c))
            }
            Backend::Sqlite => {
                let mut c = SqliteConnection::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute(SQLITE_PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
                self.outage.connected();
                Ok(DbConnection::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

pub fn backend_of(url: &str) -> Backend {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") { Backend::Postgres } else { Backend::Sqlite }
}

/// Opens a pool for `url` (`sqlite://path` or `postgres://…`), creating the SQLite file's
/// directory when needed. On SQLite it also starts the background WAL checkpointer.
pub fn connect(url: &str, size: u32) -> Result<Pool, StoreError> {
    open_pool(url, size, true)
}

/// The writer pool for `url`: on SQLite one connection that every write transaction goes
/// through (see `Keyward::writer`), `None` on PostgreSQL (its MVCC takes concurrent writers).
/// SQLite admits one writer at a time anyway; with one connection doing every write its page
/// cache stays valid (another connection's commit would invalidate it), it never waits on a
/// file lock held by a sibling, and its statements stay prepared.
pub fn connect_writer(url: &str) -> Result<Option<Pool>, StoreError> {
    match backend_of(url) {
        Backend::Postgres => Ok(None),
        Backend::Sqlite => open_pool(url, 1, false).map(Some),
    }
}

fn open_pool(url: &str, size: u32, checkpointer: bool) -> Result<Pool, StoreError> {
    let backend = backend_of(url);
    let url = match backend {
        Backend::Postgres => with_connect_timeout(url),
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Directory(dir.display().to_string(), e))?;
            }
            path.to_owned()
        }
    };
    let alive = std::sync::Arc::new(());
    let watch = std::sync::Arc::downgrade(&alive);
    let outage = std::sync::Arc::new(OutageLog::default());
    let pool = R2d2Pool::builder()
        .max_size(size)
        // Open one connection up front; the rest as load needs them (fast start).
        .min_idle(Some(1))
        // A request waits at most this long for a connection, then answers 503.
        .connection_timeout(CHECKOUT_TIMEOUT)
        .error_handler(Box::new(OutageHandler(outage.clone())))
        // A SQLite file does not drop connections: no `SELECT 1` before every checkout.
        // PostgreSQL connections are checked (a restarted server leaves them broken).
        .test_on_check_out(backend == Backend::Postgres)
        .build(DbManager { backend, url: url.clone(), outage, _alive: alive })?;
    if checkpointer && backend == Backend::Sqlite {
        spawn_checkpointer(url, watch);
    }
    Ok(pool)
}

/// Runs `f` in a transaction that writes. On SQLite it begins `IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads first and writes later fails at once with
/// "database is locked" when another connection committed in between (`busy_timeout` does not
/// cover a lock upgrade), which made concurrent refreshes answer 500. PostgreSQL and nested
/// calls use diesel's ordinary transaction.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost_sqlite = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()?.is_none(),
        DbConnection::Postgres(_) => false,
    };
    if !outermost_sqlite {
        // Checked inside, so an abandoned transaction rolls back instead of committing.
        return conn.transaction(|c| {
            let value = f(c)?;
            if past_deadline() {
                return Err(deadline_error().into());
            }
            Ok(value)
        });
    }
    if let DbConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let outcome = f(conn);
    let DbConnection::Sqlite(c) = conn else { return outcome };
    let outcome = match outcome {
        Ok(_) if past_deadline() => Err(deadline_error().into()),
        other => other,
    };
    match outcome {
        Ok(value) => match AnsiTransactionManager::commit_transaction(c) {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(c);
                Err(e.into())
            }
        },
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(c)?;
            Err(e)
        }
    }
}

/// Applies every pending migration of the connection's backend; returns how many ran.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, StoreError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConnection::Postgres(c) => {
            // Several instances starting together on one database take turns: a session-level
            // advisory lock around the migrations (released explicitly, and with the session).
            use diesel::RunQueryDsl;
            const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264; // "keyward" in ASCII
            // Migrations (and waiting for another instance's) may take longer than a request.
            c.batch_execute("SET statement_timeout = 0").map_err(StoreError::Query)?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c).map_err(StoreError::Query)?;
            let ran = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c);
            c.batch_execute(&format!("SET statement_timeout = {}", STATEMENT_TIMEOUT.as_millis())).map_err(StoreError::Query)?;
            ran
        }
    };
    applied.map_err(|e| StoreError::Migration(e.to_string()))
}

/// True when no migration is pending (for readiness).
pub fn migrations_current(conn: &mut DbConnection) -> Result<bool, StoreError> {
    let pending = match conn {
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
    };
    pending.map(|p| !p).map_err(|e| StoreError::Migration(e.to_string()))
}

/// Rewrites the readiness row in a write transaction: fails when writes fail (a full disk, a
/// read-only database), which readiness reports as 503.
pub fn probe_write(conn: &mut DbConnection, now: i64) -> Result<(), StoreError> {
    use crate::schema::readiness_probe as r;
    use diesel::prelude::*;
    write_transaction(conn, |c| diesel::update(r::table.filter(r::id.eq(1))).set(r::checked_at.eq(now)).execute(c).map(|_| ()))
        .map_err(StoreError::Query)
}
