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
}

impl StoreError {
    /// True when the database could not be reached (as opposed to a query going wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
            || matches!(
                self,
                StoreError::Query(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, _))
            )
    }
}

/// Opens connections of one backend. (The derived `MultiConnection::establish` tries each
/// backend in turn, which would turn an unreachable PostgreSQL URL into a stray SQLite file.)
#[derive(Debug)]
pub struct DbManager {
    backend: Backend,
    url: String,
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

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match self.backend {
            Backend::Postgres => {
                Ok(DbConnection::Postgres(PgConnection::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?))
            }
            Backend::Sqlite => {
                let mut c = SqliteConnection::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute(SQLITE_PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
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
        Backend::Postgres => url.to_owned(),
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
    let pool = R2d2Pool::builder()
        .max_size(size)
        // Open one connection up front; the rest as load needs them (fast start).
        .min_idle(Some(1))
        // A request waits at most this long for a connection, then answers 503.
        .connection_timeout(Duration::from_secs(3))
        // A SQLite file does not drop connections: no `SELECT 1` before every checkout.
        // PostgreSQL connections are checked (a restarted server leaves them broken).
        .test_on_check_out(backend == Backend::Postgres)
        .build(DbManager { backend, url: url.clone(), _alive: alive })?;
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
        return conn.transaction(f);
    }
    if let DbConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let outcome = f(conn);
    let DbConnection::Sqlite(c) = conn else { return outcome };
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
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c).map_err(StoreError::Query)?;
            let ran = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c);
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
