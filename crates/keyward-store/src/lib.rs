//! Keyward's storage: one diesel code path for SQLite (the embedded default) and
//! PostgreSQL (production, several instances), chosen by the database URL. Migrations for
//! both live in `migrations/` and are embedded in the binary.

mod conn;
pub mod models;
pub mod repo;
pub mod schema;

pub use conn::{
    Backend, CHECKOUT_TIMEOUT, DbConnection, Pool, PooledConn, STATEMENT_TIMEOUT, StoreError, backend_of, connect, connect_writer,
    is_outage, migrations_current, probe_write, run_migrations, with_deadline, write_transaction,
};

/// The pool's error when no connection can be had.
pub use diesel::r2d2::PoolError;
/// Diesel's query error, re-exported so callers need not depend on diesel.
pub use diesel::result::Error as QueryError;
