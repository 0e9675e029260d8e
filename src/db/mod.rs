//! The database: one binary, SQLite or PostgreSQL chosen by the URL scheme.

mod circuit;
mod migrate;
mod pool;
pub mod schema;
mod transaction;

pub use circuit::PROBE_EVERY;
pub use migrate::run_migrations;
pub use pool::{redact_url, Db, DbConnection, DbSettings};

use diesel::connection::SimpleConnection;

/// The backend type of [`DbConnection`], for boxed queries.
pub type DbBackend = <DbConnection as diesel::Connection>::Backend;

/// Proves the database answers: a round trip, and on SQLite a read of the schema from the file.
pub fn ping(conn: &mut DbConnection) -> Result<(), crate::error::Error> {
    let sql = match conn {
        DbConnection::Sqlite(_) => "SELECT count(*) FROM sqlite_master",
        DbConnection::Postgres(_) => "SELECT 1",
    };
    Ok(conn.batch_execute(sql)?)
}
