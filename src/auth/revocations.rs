//! Revoked sessions, kept in memory on every instance (a hash lookup per request) and refreshed
//! from the database at most `revocation_refresh_ms` apart, so a session revoked on one instance
//! is refused by all of them within a second.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use time::PrimitiveDateTime;

use crate::db::Db;
use crate::error::Error;
use crate::models::{RevokedSession, Session};

/// How far back each refresh looks before the previous one, so a revocation committed late (or
/// stamped a little earlier by the database clock) is still picked up.
const OVERLAP: time::Duration = time::Duration::seconds(5);

/// The live revocation list of one instance.
pub struct Revocations {
    /// `sid` → (Unix time after which the session is over anyway, ended as stolen).
    revoked: RwLock<HashMap<String, (i64, bool)>>,
    /// The database time of the last refresh; the async mutex lets one request refresh while
    /// others wait for its result instead of querying too.
    watermark: rocket::tokio::sync::Mutex<Option<PrimitiveDateTime>>,
    refreshed_at: Mutex<Option<Instant>>,
    max_staleness: Duration,
}

impl Revocations {
    /// An empty list that counts as stale after `max_staleness`.
    pub fn new(max_staleness: Duration) -> Revocations {
        Revocations {
            revoked: RwLock::new(HashMap::new()),
            watermark: rocket::tokio::sync::Mutex::new(None),
            refreshed_at: Mutex::new(None),
            max_staleness,
        }
    }

    /// Whether `sid` has been revoked.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.revoked
            .read()
            .map(|set| set.contains_key(sid))
            .unwrap_or(true)
    }

    /// Whether the list is older than allowed and must be refreshed before it is trusted.
    pub fn is_stale(&self) -> bool {
        self.refreshed_at
            .lock()
            .map(|at| at.is_none_or(|at| at.elapsed() >= self.max_staleness))
            .unwrap_or(true)
    }

    /// Whether `sid` was ended as stolen (a replaced refresh value came back).
    pub fn was_stolen(&self, sid: &str) -> bool {
        self.revoked
            .read()
            .map(|set| set.get(sid).is_some_and(|(_, stolen)| *stolen))
            .unwrap_or(false)
    }

    /// Adds revocations this instance made itself (effective here at once).
    pub fn add(&self, sessions: &[RevokedSession]) {
        if let Ok(mut set) = self.revoked.write() {
            for s in sessions {
                set.insert(
                    s.id.clone(),
                    (s.expires_at.assume_utc().unix_timestamp(), s.stolen),
                );
            }
        }
    }

    /// Reads new revocations from the database and forgets those whose sessions are over.
    pub async fn refresh(&self, db: &Db, now_unix: i64) -> Result<(), Error> {
        let mut watermark = self.watermark.lock().await;
        if watermark.is_some() && !self.is_stale() {
            return Ok(()); // another request refreshed while this one waited
        }
        let since = watermark.map(|w| w - OVERLAP);
        let (db_now, rows) = db
            .run(move |conn| {
                let db_now = Session::database_now(conn)?;
                let rows = Session::revoked_since(conn, since, db_now)?;
                Ok((db_now, rows))
            })
            .await?;
        self.add(&rows);
        if let Ok(mut set) = self.revoked.write() {
            set.retain(|_, (expires, _)| *expires >= now_unix);
        }
        *watermark = Some(db_now);
        if let Ok(mut at) = self.refreshed_at.lock() {
            *at = Some(Instant::now());
        }
        Ok(())
    }
}
