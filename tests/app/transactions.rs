//! `DbConnection::write_transaction` (src/db/transaction.rs): a transaction that read before
//! another connection wrote must still commit. On SQLite a deferred `BEGIN` fails that with
//! "database is locked" at once; `BEGIN IMMEDIATE` makes the other writer wait instead.

use std::sync::mpsc;
use std::time::Duration;

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use latchkey::db::schema::users;
use latchkey::error::Error;
use latchkey::models::Role;

use crate::helpers::spawn_app;

#[test]
fn a_transaction_that_read_first_still_commits_when_another_connection_writes_meanwhile() {
    let app = spawn_app();
    let user = app.create_user("ada", Role::User);
    let (read_done, wait_for_read) = mpsc::channel();

    let db = app.pool().clone();
    let id = user.id.clone();
    let first = std::thread::spawn(move || {
        let mut conn = db.get().unwrap();
        conn.write_transaction(|conn| -> Result<(), Error> {
            let role: String = users::table
                .find(&id)
                .select(users::role)
                .get_result(conn)?;
            read_done.send(()).unwrap();
            // Time for the other connection to try its write while this one holds a snapshot.
            std::thread::sleep(Duration::from_millis(300));
            diesel::update(users::table.find(&id))
                .set(users::username.eq(format!("ada-{role}")))
                .execute(conn)?;
            Ok(())
        })
    });

    wait_for_read.recv().unwrap();
    let db = app.pool().clone();
    let id = user.id.clone();
    let second = std::thread::spawn(move || {
        diesel::update(users::table.find(&id))
            .set(users::disabled.eq(true))
            .execute(&mut *db.get().unwrap())
    });

    let first = first.join().unwrap();
    let second = second.join().unwrap();
    assert!(first.is_ok(), "the transaction that read first: {first:?}");
    assert_eq!(second.ok(), Some(1), "the other connection's write");
    let (name, disabled): (String, bool) = users::table
        .find(&user.id)
        .select((users::username, users::disabled))
        .get_result(&mut *app.pool().get().unwrap())
        .unwrap();
    assert_eq!((name.as_str(), disabled), ("ada-user", true));
}
