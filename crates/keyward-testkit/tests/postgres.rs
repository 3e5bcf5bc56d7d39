//! Tests for [`keyward_testkit::postgres`]: a private server and fresh databases.

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use keyward_testkit::postgres::{PostgresServer, create_database, fresh_database_url};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    one: i32,
}

fn select_one(url: &str) -> Result<i32, Box<dyn std::error::Error>> {
    let mut conn = PgConnection::establish(url)?;
    let rows: Vec<One> = diesel::sql_query("SELECT 1 AS one").load(&mut conn)?;
    Ok(rows.first().map(|r| r.one).ok_or("no row")?)
}

#[test]
fn private_server_with_two_fresh_databases() -> TestResult {
    let server = PostgresServer::start()?;
    let a = create_database(&server.server_url())?;
    let b = create_database(&server.server_url())?;
    assert_ne!(a, b);
    assert!(a.starts_with(&format!("postgres://keyward@127.0.0.1:{}/kw_test_", server.port())));
    assert_eq!(select_one(&a)?, 1);
    assert_eq!(select_one(&b)?, 1);
    assert_eq!(select_one(&server.url("postgres"))?, 1);
    let port = server.port();
    drop(server);
    assert!(PgConnection::establish(&format!("postgres://keyward@127.0.0.1:{port}/postgres")).is_err());
    Ok(())
}

#[test]
fn shared_server_fresh_databases() -> TestResult {
    let a = fresh_database_url()?;
    let b = fresh_database_url()?;
    assert_ne!(a, b);
    assert_eq!(select_one(&a)?, 1);
    assert_eq!(select_one(&b)?, 1);
    Ok(())
}
