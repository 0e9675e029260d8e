//! Embedded migrations, one set per backend, applied at start and by `latchkey migrate`.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DbConnection;
use crate::error::Error;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant naming latchkey's advisory lock, so instances starting together take turns.
const PG_MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579;

/// Applies every pending migration and returns the names of those applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, Error> {
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| Error::Migration(e.to_string());
    match conn {
        // SQLite has no advisory lock: one write transaction around them makes instances take
        // turns (the next one waits on busy_timeout, then finds nothing pending).
        DbConnection::Sqlite(c) => c.immediate_transaction(|c| {
            Ok(c.run_pending_migrations(SQLITE)
                .map_err(fail)?
                .iter()
                .map(|v| v.to_string())
                .collect())
        }),
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let applied = c
                .run_pending_migrations(POSTGRES)
                .map(|vs| vs.iter().map(|v| v.to_string()).collect())
                .map_err(fail);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            applied
        }
    }
}
