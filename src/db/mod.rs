//! The database: one binary, SQLite or PostgreSQL chosen by the URL scheme.

mod migrate;
mod pool;
pub mod schema;

pub use migrate::run_migrations;
pub use pool::{redact_url, Backend, Db, DbConnection};
