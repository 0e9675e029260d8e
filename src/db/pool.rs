//! The connection pool: a diesel `MultiConnection` over SQLite and PostgreSQL behind our own r2d2
//! manager, so "connection refused" reaches the user instead of diesel's generic URL error.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use super::circuit::Circuit;
use crate::error::Error;

/// Where a query of [`Db::run`] stands: still waiting for its connection, running, or
/// abandoned because the request answered "unavailable" first.
const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const ABANDONED: u8 = 2;

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// The embedded default.
    Sqlite(SqliteConnection),
    /// For several instances sharing one database.
    Postgres(PgConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `postgres://` or `postgresql://` → PostgreSQL; anything else is a SQLite path.
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The URL with its password (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// Why a connection could not be made, in words a person can act on.
#[derive(Debug)]
pub struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Opens a connection to whichever backend `url` names, with the session settings latchkey needs.
fn open(url: &str, backend: Backend) -> Result<DbConnection, ConnectError> {
    let where_ = redact_url(url);
    match backend {
        Backend::Postgres => PgConnection::establish(url)
            .and_then(|mut conn| {
                // Timestamps are UTC everywhere; `now()` must agree whatever the server's zone.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(conn)
            })
            .map(DbConnection::Postgres)
            .map_err(|e| {
                let detail = e.to_string();
                ConnectError(format!(
                    "cannot reach the database at {where_}: {}",
                    summarize_pg_error(&detail)
                ))
            }),
        Backend::Sqlite => {
            // Only start-up creates the file (`Db::create_if_missing`); a file that vanished
            // later is an outage, not an invitation to start an empty database.
            if !Path::new(sqlite_path(url)).exists() {
                return Err(ConnectError(format!(
                    "cannot open the database at {where_}: the file does not exist"
                )));
            }
            let mut conn = SqliteConnection::establish(sqlite_path(url))
                .map_err(|e| ConnectError(format!("cannot open the database at {where_}: {e}")))?;
            // WAL lets readers run beside the writer; busy_timeout makes writers queue
            // instead of failing; foreign keys are off by default in SQLite.
            // busy_timeout comes first: switching to WAL takes a lock that a connection
            // opening at the same moment must wait for, not fail on.
            conn.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| ConnectError(format!("cannot open the database at {where_}: {e}")))?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

/// Opens the circuit and starts the probe that closes it once a connection succeeds again.
fn open_circuit(circuit: &Arc<Circuit>, url: &str, backend: Backend, why: &str) {
    circuit.trip(why);
    let url = url.to_string();
    // Opening is a round trip on both backends (PostgreSQL sets the time zone, SQLite reads
    // the file to set WAL mode), so a connection that opens is one that answers.
    circuit.probe_in_background(move || open(&url, backend).map(drop).map_err(|e| e.to_string()));
}

/// Opens connections for r2d2, choosing the backend by URL scheme; every attempt tells the
/// circuit whether the database is reachable.
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
    circuit: Arc<Circuit>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match open(&self.url, self.backend) {
            Ok(conn) => {
                self.circuit.close();
                Ok(conn)
            }
            Err(e) => {
                open_circuit(&self.circuit, &self.url, self.backend, &e.to_string());
                Err(e)
            }
        }
    }

    /// Run at every checkout: a PostgreSQL round trip (drops connections a server restart
    /// killed), or for SQLite a check that the file is still where it was.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        match self.backend {
            Backend::Sqlite if !Path::new(sqlite_path(&self.url)).exists() => {
                Err(ConnectError("the database file was removed".into()))
            }
            Backend::Sqlite => Ok(()),
            Backend::Postgres => conn
                .batch_execute("SELECT 1")
                .map_err(|e| ConnectError(format!("database connection lost: {e}"))),
        }
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// libpq's message is several lines with hints; the first clause ("connection refused") is what matters.
fn summarize_pg_error(detail: &str) -> String {
    let first = detail.lines().next().unwrap_or(detail).trim();
    match first.rsplit_once(" failed: ") {
        Some((_, why)) => why.trim().to_lowercase(),
        None => first.to_string(),
    }
}

/// What the pool needs: where the database is, how many connections, how long to wait for one.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `postgres://…` selects PostgreSQL; anything else is a SQLite file path.
    pub url: String,
    /// Most connections kept open.
    pub pool_size: u32,
    /// How long a request waits for a connection before answering 503.
    pub timeout_secs: u64,
}

/// The shared pool; all queries run on the blocking thread pool through [`Db::run`]. While the
/// circuit is open (a connection attempt failed and none has succeeded since) every query fails
/// at once with [`Error::DatabaseUnavailable`].
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    url: String,
    circuit: Arc<Circuit>,
    timeout: Duration,
}

impl Db {
    /// Builds the pool without connecting; the first query reports any connection problem.
    pub fn new(settings: &DbSettings) -> Db {
        let backend = Backend::of(&settings.url);
        let circuit = Circuit::new();
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let manager = Manager {
            url: settings.url.clone(),
            backend,
            circuit: Arc::clone(&circuit),
        };
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Db {
            pool,
            backend,
            url: settings.url.clone(),
            circuit,
            timeout,
        }
    }

    /// Creates an empty SQLite file if there is none (start-up and `latchkey migrate` only).
    pub fn create_if_missing(&self) -> Result<(), Error> {
        if self.backend == Backend::Sqlite {
            let path = Path::new(sqlite_path(&self.url));
            if !path.exists() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| {
                        Error::DatabaseUnavailable(format!(
                            "cannot create the database file {}: {e}",
                            path.display()
                        ))
                    })?;
            }
        }
        Ok(())
    }

    /// Whether queries fail at once because the database could not be reached (until the
    /// background probe connects again).
    pub fn is_failing_fast(&self) -> bool {
        self.circuit.is_open()
    }

    fn unavailable(&self) -> Error {
        Error::DatabaseUnavailable(self.circuit.reason())
    }

    /// Takes a connection now, on the calling thread (for the CLI and start-up). Fails at once
    /// while the circuit is open.
    pub fn get(&self) -> Result<r2d2::PooledConnection<Manager>, Error> {
        if self.circuit.is_open() {
            return Err(self.unavailable());
        }
        self.pool.get().map_err(|e| {
            let why = e
                .to_string()
                .trim_start_matches("timed out waiting for connection")
                .trim_start_matches(": ")
                .to_string();
            let why = if why.is_empty() {
                format!("no database connection within {} s", self.timeout.as_secs())
            } else {
                why
            };
            // No connection at all after the whole wait is a failed attempt (one that hangs,
            // say); a pool merely busy with other requests is not an outage.
            if self.pool.state().connections == 0 {
                open_circuit(&self.circuit, &self.url, self.backend, &why);
            }
            Error::DatabaseUnavailable(why)
        })
    }

    /// Runs `f` with a connection on the blocking pool, so async workers never wait on the
    /// database. Fails at once while the circuit is open, and as soon as it opens while this
    /// request waits for a connection. A checkout still unfinished after the pool timeout (a
    /// connection check stuck on a silent network) answers unavailable too and opens the
    /// circuit. A request that answered unavailable never runs `f` later: the blocking side
    /// only starts `f` if the request is still waiting for it.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        if self.circuit.is_open() {
            return Err(self.unavailable());
        }
        let db = self.clone();
        let claim = Arc::new(AtomicU8::new(WAITING));
        let claimed = Arc::clone(&claim);
        let mut task = rocket::tokio::task::spawn_blocking(move || {
            let conn = db.get();
            if claimed
                .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return Err(db.unavailable()); // the request already answered
            }
            let mut conn = conn?;
            f(&mut conn)
        });
        // A little beyond the pool's own timeout, so an ordinary wait ends there first.
        let limit = self.timeout + Duration::from_millis(250);
        let gave_up = rocket::tokio::select! {
            done = &mut task => return done.map_err(|e| Error::Task(e.to_string()))?,
            _ = self.circuit.opened() => None,
            _ = rocket::tokio::time::sleep(limit) => Some(format!(
                "no database connection within {} s (the connection check did not answer)",
                self.timeout.as_secs()
            )),
        };
        let abandoned = claim
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if !abandoned {
            // `f` already has its connection and is running: its answer is the request's.
            return task.await.map_err(|e| Error::Task(e.to_string()))?;
        }
        match gave_up {
            Some(why) => {
                open_circuit(&self.circuit, &self.url, self.backend, &why);
                Err(Error::DatabaseUnavailable(why))
            }
            None => Err(self.unavailable()),
        }
    }
}
