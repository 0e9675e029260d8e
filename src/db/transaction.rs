//! The one way latchkey opens a transaction: [`DbConnection::write_transaction`].
//!
//! On SQLite a plain `BEGIN` is *deferred*: the transaction reads from a snapshot and asks for
//! the write lock only at its first write. If another connection committed in between (in
//! WAL mode), that upgrade fails at once with `SQLITE_BUSY` — `busy_timeout` does not apply,
//! because waiting could not make the stale snapshot current. Every transaction here reads
//! and then writes (check a token, then consume it; read a counter, then bump it), and each
//! instance's mail sender writes in the background, so a deferred `BEGIN` turned ordinary
//! overlap into "service unavailable". `BEGIN IMMEDIATE` takes the write lock first, so a
//! second writer queues behind `busy_timeout` instead of failing. PostgreSQL needs nothing:
//! its transactions do not fail on a concurrent commit at READ COMMITTED.
//!
//! `Connection::transaction` is refused by clippy (`clippy.toml`, `disallowed-methods`) so a
//! deferred transaction cannot come back by habit.

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use diesel::result::Error as DieselError;

use super::DbConnection;

impl DbConnection {
    /// Runs `f` in a transaction that may write: `BEGIN IMMEDIATE` on SQLite, `BEGIN` on
    /// PostgreSQL; a savepoint when already inside one. Commits when `f` returns `Ok`, rolls
    /// back otherwise, like diesel's own `transaction`.
    pub fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.begin_writing()?;
        match f(self) {
            Ok(value) => {
                <Self as Connection>::TransactionManager::commit_transaction(self)?;
                Ok(value)
            }
            Err(error) => {
                match <Self as Connection>::TransactionManager::rollback_transaction(self) {
                    Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
                    Err(rollback) => Err(rollback.into()),
                }
            }
        }
    }

    fn begin_writing(&mut self) -> Result<(), DieselError> {
        let nested = <Self as Connection>::TransactionManager::transaction_manager_status_mut(self)
            .transaction_depth()?
            .is_some();
        match self {
            DbConnection::Sqlite(conn) if !nested => {
                AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")
            }
            _ => <Self as Connection>::TransactionManager::begin_transaction(self),
        }
    }
}
