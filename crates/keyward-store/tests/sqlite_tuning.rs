//! SQLite settings that keep slow work off the request path (issue 7), on real SQLite files:
//! no request commit pays for a WAL checkpoint (a background thread does it), and write
//! transactions share one dedicated writer connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;
use keyward_store::{connect, connect_writer, run_migrations, write_transaction};
use std::time::{Duration, Instant};

#[derive(diesel::QueryableByName)]
struct Value {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(diesel::QueryableByName)]
struct AutoCheckpoint {
    #[diesel(sql_type = BigInt)]
    wal_autocheckpoint: i64,
}

#[derive(diesel::QueryableByName)]
struct BusyTimeout {
    #[diesel(sql_type = BigInt)]
    timeout: i64,
}

fn autocheckpoint(conn: &mut keyward_store::DbConnection) -> i64 {
    diesel::sql_query("PRAGMA wal_autocheckpoint").get_result::<AutoCheckpoint>(conn).expect("pragma").wal_autocheckpoint
}

fn temp_db() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("kw-tuning-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("k.db");
    let url = format!("sqlite://{}", file.display());
    (file, url)
}

#[test]
fn wal_checkpoints_run_in_the_background_not_inside_commits() {
    let (file, url) = temp_db();
    let pool = connect(&url, 2).expect("pool");
    let writer = connect_writer(&url).expect("writer").expect("SQLite has a writer pool");
    run_migrations(&mut pool.get().unwrap()).expect("migrations");
    // Every pooled connection (readers and the writer) leaves checkpoints to the background.
    assert_eq!(autocheckpoint(&mut pool.get().unwrap()), 0);
    assert_eq!(autocheckpoint(&mut writer.get().unwrap()), 0);
    assert_eq!(diesel::sql_query("PRAGMA busy_timeout").get_result::<BusyTimeout>(&mut *writer.get().unwrap()).unwrap().timeout, 5000);

    // Let the checkpointer settle the migrations, then write well past SQLite's default
    // autocheckpoint threshold (1,000 pages) in small transactions on the writer.
    std::thread::sleep(Duration::from_millis(1200)); // black-box: SQLite's checkpointer thread runs on real time
    let db_size_before = std::fs::metadata(&file).unwrap().len();
    let mut w = writer.get().unwrap();
    for i in 0..400 {
        write_transaction(&mut w, |c| {
            diesel::sql_query("INSERT INTO audit_events (id, at, kind, user_id, detail) VALUES (?, ?, 'bench', NULL, ?)")
                .bind::<diesel::sql_types::Text, _>(format!("event-{i}"))
                .bind::<BigInt, _>(i)
                .bind::<diesel::sql_types::Text, _>("x".repeat(3000))
                .execute(c)
        })
        .expect("insert");
    }
    let wal = file.with_extension("db-wal");
    // No commit copied pages back: the database file has not grown, the WAL holds them.
    assert_eq!(std::fs::metadata(&file).unwrap().len(), db_size_before, "a commit ran a checkpoint");
    assert!(std::fs::metadata(&wal).unwrap().len() > 1_000_000, "the writes are in the WAL");
    // The background checkpointer copies them into the database file within a round or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&file).unwrap().len() < db_size_before + 1_000_000 {
        assert!(Instant::now() < deadline, "the background checkpointer did not copy the WAL into the database");
        std::thread::sleep(Duration::from_millis(100)); // poll: the checkpointer copies the WAL
    }
    // A reader sees every row.
    let rows =
        diesel::sql_query("SELECT count(*) AS v FROM audit_events WHERE kind = 'bench'").get_result::<Value>(&mut pool.get().unwrap());
    assert_eq!(rows.unwrap().v, 400);
}

#[test]
fn postgres_has_no_separate_writer() {
    assert!(connect_writer("postgres://keyward@127.0.0.1:1/none").expect("no connection is opened").is_none());
}

/// Migration 6 rebuilds `authorization_codes` without its unique `grant_id` index and
/// `refresh_tokens` as a WITHOUT ROWID table, and drops indexes nothing read. A database in use when it runs keeps every code and
/// refresh token, and they still work (single use, reuse detection, cascades).
#[test]
fn upgrading_to_lean_tables_keeps_live_codes_and_refresh_tokens() {
    use diesel::Connection;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
    use keyward_store::repo;
    use keyward_store::repo::codes::Redemption;
    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

    let (file, _) = temp_db();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut raw = diesel::SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut raw, "PRAGMA foreign_keys = ON;").unwrap();
    for _ in 0..5 {
        raw.run_next_migration(MIGRATIONS).expect("migrations 1–5");
    }
    diesel::connection::SimpleConnection::batch_execute(
        &mut raw,
        "INSERT INTO users (id, email, email_verified, created_at) VALUES ('u1', 'a@example.com', 1, 0);
         INSERT INTO grants (id, client_id, user_id, session_hash, scope, auth_time, amr, created_at, expires_at)
             VALUES ('g1', 'app', 'u1', 's1', 'openid offline_access', 0, '[\"otp\"]', 0, 9999999999);
         INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ('rt-live', 'g1', 0, 9999999999);
         INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, used_at) VALUES ('rt-spent', 'g1', 0, 9999999999, 5);
         INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, user_id, session_hash, scope, nonce,
             code_challenge, auth_time, amr, created_at, expires_at, claims)
             VALUES ('code-1', 'g2', 'app', 'https://app.example/cb', 'u1', 's1', 'openid', 'n', 'ch', 0, '[\"otp\"]', 0, 9999999999, '');",
    )
    .unwrap();
    let sixth = raw.run_next_migration(MIGRATIONS).expect("migration 6");
    assert!(sixth.to_string().contains("000006"), "migration 6 ran next, not {sixth}");
    // Later migrations apply on top, as an upgrade from 5 to the newest would run them.
    raw.run_pending_migrations(MIGRATIONS).expect("migrations after 6");

    let mut schema = |name: &str| -> String {
        #[derive(diesel::QueryableByName)]
        struct Sql {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        diesel::sql_query(format!("SELECT sql FROM sqlite_master WHERE name = '{name}'"))
            .get_results::<Sql>(&mut raw)
            .unwrap()
            .into_iter()
            .map(|r| r.sql)
            .collect()
    };
    assert!(!schema("authorization_codes").contains("UNIQUE"), "no unique index on grant_id");
    assert!(schema("refresh_tokens").contains("WITHOUT ROWID"));
    assert!(schema("grants_expires").is_empty() && schema("authorization_codes_expires").is_empty());
    assert!(!schema("authorization_codes_created").is_empty() && !schema("refresh_tokens_grant").is_empty());

    let mut conn = keyward_store::DbConnection::Sqlite(raw);
    // The code is still redeemable, once.
    assert!(matches!(repo::codes::redeem(&mut conn, "code-1", 10).unwrap(), Redemption::Redeemed(..)));
    assert!(matches!(repo::codes::redeem(&mut conn, "code-1", 11).unwrap(), Redemption::Replayed(g) if g == "g2"));
    // The live refresh token still rotates once; the spent one is still known as spent.
    let (live, grant) = repo::grants::find_refresh(&mut conn, "rt-live").unwrap().expect("live token kept");
    assert_eq!((live.used_at, grant.id.as_str()), (None, "g1"));
    assert!(repo::grants::use_refresh(&mut conn, "rt-live", 12).unwrap());
    assert!(!repo::grants::use_refresh(&mut conn, "rt-live", 13).unwrap());
    assert_eq!(repo::grants::find_refresh(&mut conn, "rt-spent").unwrap().expect("spent token kept").0.used_at, Some(5));
    // Deleting the account still cascades to its codes, grants and refresh tokens.
    diesel::sql_query("DELETE FROM users WHERE id = 'u1'").execute(&mut conn).unwrap();
    let left = diesel::sql_query(
        "SELECT (SELECT count(*) FROM authorization_codes) + (SELECT count(*) FROM grants) + (SELECT count(*) FROM refresh_tokens) AS v",
    )
    .get_result::<Value>(&mut conn)
    .unwrap();
    assert_eq!(left.v, 0);
}
