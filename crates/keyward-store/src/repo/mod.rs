//! Queries, one module per table. Every function takes `&mut DbConnection` and runs inside
//! the caller's transaction; single-use secrets are consumed by a guarded `UPDATE` whose
//! row count decides who wins a race (CHECKLIST F3).

pub mod attempts;
pub mod audit;
pub mod cleanup;
pub mod codes;
pub mod consents;
pub mod grants;
pub mod jtis;
pub mod keys;
pub mod limits;
pub mod logout;
pub mod passkeys;
pub mod recovery;
pub mod sessions;
pub mod users;
