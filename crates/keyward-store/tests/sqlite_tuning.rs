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
    std::thread::sleep(Duration::from_millis(1200));
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
        std::thread::sleep(Duration::from_millis(100));
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
