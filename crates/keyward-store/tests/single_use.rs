//! Single-use secrets under concurrency, on real SQLite files and a real PostgreSQL server
//! (CHECKLIST F3, D4): parallel guesses cannot exceed the try limit, and of many parallel
//! redemptions of one authorization code exactly one wins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyward_store::models::{AuthorizationCode, EmailChallenge, Grant, LoginAttempt, RefreshToken, User};
use keyward_store::repo::codes::Redemption;
use keyward_store::{Pool, connect, repo, run_migrations};
use std::sync::Arc;

fn sqlite_pool() -> Pool {
    let dir = std::env::temp_dir().join(format!("kw-store-{}", uuid::Uuid::new_v4().simple()));
    let pool = connect(&format!("sqlite://{}", dir.join("k.db").display()), 16).expect("pool");
    run_migrations(&mut pool.get().expect("conn")).expect("migrations");
    pool
}

fn postgres_pool() -> Pool {
    let url = keyward_testkit::postgres::fresh_database_url().expect("postgres");
    let pool = connect(&url, 16).expect("pool");
    run_migrations(&mut pool.get().expect("conn")).expect("migrations");
    pool
}

fn seed(pool: &Pool) {
    let c = &mut *pool.get().unwrap();
    repo::users::insert(
        c,
        &User {
            id: "u1".into(),
            email: "a@example.com".into(),
            email_verified: true,
            name: None,
            created_at: 0,
            disabled_at: None,
            email_sign_in: true,
            passkey_offer_declined_at: None,
        },
    )
    .unwrap();
    repo::attempts::insert(
        c,
        &LoginAttempt {
            id: "att".into(),
            browser_hash: "b".into(),
            request_json: "{}".into(),
            created_at: 0,
            expires_at: i64::MAX,
            completed_at: None,
            approval_number: None,
            approved_at: None,
            offer_session_hash: None,
            approved_challenge_id: None,
            approved_email: None,
        },
    )
    .unwrap();
    repo::attempts::replace_challenge(
        c,
        &EmailChallenge {
            id: "ch".into(),
            attempt_id: "att".into(),
            email: "a@example.com".into(),
            code_hash: "h".into(),
            failed_tries: 0,
            created_at: 0,
            expires_at: i64::MAX,
            consumed_at: None,
            link_hash: None,
            delivery: "sent".into(),
            requested_from: String::new(),
        },
        0,
    )
    .unwrap();
    repo::codes::insert(
        c,
        &AuthorizationCode {
            code_hash: "code".into(),
            grant_id: "g".into(),
            client_id: "app".into(),
            redirect_uri: "https://app/cb".into(),
            user_id: "u1".into(),
            session_hash: "s".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: None,
            auth_time: 0,
            amr: "otp".into(),
            created_at: 0,
            expires_at: i64::MAX,
            consumed_at: None,
            revoked_at: None,
            claims: String::new(),
        },
    )
    .unwrap();
    repo::grants::insert(
        c,
        &Grant {
            id: "g".into(),
            client_id: "app".into(),
            user_id: Some("u1".into()),
            session_hash: Some("s".into()),
            scope: "openid offline_access".into(),
            claims: String::new(),
            auth_time: 0,
            amr: "otp".into(),
            created_at: 0,
            expires_at: i64::MAX,
            revoked_at: None,
        },
    )
    .unwrap();
    repo::grants::insert_refresh(
        c,
        &RefreshToken { token_hash: "rt".into(), grant_id: "g".into(), created_at: 0, expires_at: i64::MAX, used_at: None },
    )
    .unwrap();
}

fn parallel<T: Send + 'static>(pool: &Pool, n: usize, f: impl Fn(&mut keyward_store::DbConnection) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (pool, f) = (pool.clone(), f.clone());
            std::thread::spawn(move || f(&mut pool.get().unwrap()))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn d4_parallel_guesses_cannot_exceed_the_limit(pool: Pool) {
    seed(&pool);
    let taken = parallel(&pool, 24, |c| repo::attempts::take_try(c, "ch", 5, 1).unwrap());
    assert_eq!(taken.iter().filter(|t| **t).count(), 5);
}

fn f3_one_code_one_redemption(pool: Pool) {
    seed(&pool);
    let outcomes = parallel(&pool, 12, |c| {
        use diesel::Connection;
        c.transaction(|t| repo::codes::redeem(t, "code", 1)).unwrap()
    });
    let won = outcomes.iter().filter(|o| matches!(o, Redemption::Redeemed(..))).count();
    assert_eq!(won, 1, "exactly one redemption wins");
    // The losers saw a replay, which revoked the grant.
    assert!(repo::grants::find(&mut pool.get().unwrap(), "g").unwrap().unwrap().revoked_at.is_some());
}

fn b17_one_refresh_token_one_rotation(pool: Pool) {
    seed(&pool);
    let outcomes = parallel(&pool, 12, |c| {
        use diesel::Connection;
        c.transaction(|t| repo::grants::use_refresh(t, "rt", 1)).unwrap()
    });
    assert_eq!(outcomes.iter().filter(|won| **won).count(), 1, "exactly one rotation wins");
}

#[test]
fn b17_one_refresh_token_one_rotation_on_sqlite() {
    b17_one_refresh_token_one_rotation(sqlite_pool());
}

#[test]
fn b17_one_refresh_token_one_rotation_on_postgres() {
    b17_one_refresh_token_one_rotation(postgres_pool());
}

#[test]
fn d4_parallel_guesses_cannot_exceed_the_limit_on_sqlite() {
    d4_parallel_guesses_cannot_exceed_the_limit(sqlite_pool());
}

#[test]
fn d4_parallel_guesses_cannot_exceed_the_limit_on_postgres() {
    d4_parallel_guesses_cannot_exceed_the_limit(postgres_pool());
}

#[test]
fn f3_one_code_one_redemption_on_sqlite() {
    f3_one_code_one_redemption(sqlite_pool());
}

#[test]
fn f3_one_code_one_redemption_on_postgres() {
    f3_one_code_one_redemption(postgres_pool());
}

#[test]
fn instances_starting_together_migrate_one_database_in_turn_on_postgres() {
    let url = keyward_testkit::postgres::fresh_database_url().expect("postgres");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let pool = connect(&url, 1).expect("pool");
                run_migrations(&mut pool.get().expect("conn"))
            })
        })
        .collect();
    let applied: Vec<usize> = runs.into_iter().map(|t| t.join().unwrap().expect("every instance starts")).collect();
    assert_eq!(
        applied.iter().filter(|n| **n > 0).count(),
        1,
        "one instance applies the migrations, the others find them done: {applied:?}"
    );
    assert!(keyward_store::migrations_current(&mut connect(&url, 1).unwrap().get().unwrap()).unwrap());
}
