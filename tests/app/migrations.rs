//! Migrations: instances starting together on a fresh database each finish with the schema
//! applied once; on PostgreSQL they take turns through an advisory lock.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use latchkey::db::{run_migrations, Db, DbSettings};
use latchkey::models::{TwoFactor, User};

use crate::helpers::*;

/// The advisory lock key in src/db/migrate.rs. Every latchkey version must use the same one, or
/// instances of two versions starting together would not take turns.
const PG_MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579;

/// A pool on a fresh, empty test database.
fn pool(db: &TestDb) -> Db {
    let pool = Db::new(&DbSettings {
        url: db.url().to_string(),
        pool_size: 4,
        timeout_secs: 10,
    });
    pool.create_if_missing().unwrap();
    pool
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// How many migrations the backend of `url` has.
fn migration_count(url: &str) -> usize {
    let dir = if is_postgres(url) {
        "postgres"
    } else {
        "sqlite"
    };
    std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir),
    )
    .unwrap()
    .filter(|e| e.as_ref().unwrap().path().is_dir())
    .count()
}

/// Every migration is applied, once, and the schema answers queries.
fn assert_fully_migrated(pool: &Db, url: &str, applied: Vec<String>) {
    let expected = migration_count(url);
    let mut unique = applied.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), applied.len(), "applied twice: {applied:?}");
    assert_eq!(applied.len(), expected, "{applied:?}");
    let mut conn = pool.get().unwrap();
    assert!(
        run_migrations(&mut conn).unwrap().is_empty(),
        "nothing left"
    );
    assert!(User::find_by_login(&mut conn, "nobody").unwrap().is_none());
    assert!(TwoFactor::find(&mut conn, "nobody").unwrap().is_none());
}

#[test]
fn instances_migrating_a_fresh_database_together_both_succeed_and_apply_it_once() {
    // A race is a matter of timing: try a few fresh databases.
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(&dir);
        let pool = pool(&db);
        let start = Arc::new(Barrier::new(2));
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (pool, start) = (pool.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    start.wait();
                    run_migrations(&mut conn)
                })
            })
            .collect();
        let mut applied = Vec::new();
        for run in runs {
            match run.join().unwrap() {
                Ok(names) => applied.extend(names),
                Err(e) => panic!("round {round}: a concurrent migration failed: {e}"),
            }
        }
        assert_fully_migrated(&pool, db.url(), applied);
    }
}

#[test]
fn on_postgresql_migrations_wait_for_the_advisory_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    if !is_postgres(db.url()) {
        // SQLite has no advisory locks; the test above covers its concurrent start.
        return;
    }
    let pool = pool(&db);
    let mut holder = PgConnection::establish(db.url()).unwrap();
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
        .unwrap();
    let (done, result) = std::sync::mpsc::channel();
    let migrating = pool.clone();
    std::thread::spawn(move || {
        let mut conn = migrating.get().unwrap();
        let _ = done.send(run_migrations(&mut conn));
    });
    assert_eq!(
        result.recv_timeout(Duration::from_secs(1)).err(),
        Some(RecvTimeoutError::Timeout),
        "migrations ran while another connection held the lock"
    );
    holder
        .batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
        .unwrap();
    let applied = result
        .recv_timeout(Duration::from_secs(30))
        .expect("migrations finish once the lock is released")
        .expect("migrations succeed");
    assert_fully_migrated(&pool, db.url(), applied);
}
