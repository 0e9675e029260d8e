//! Revoked sessions, kept in memory on every instance (a hash lookup per request) and refreshed
//! from the database at most `revocation_refresh_ms` apart, so a session revoked on one instance
//! is refused by all of them within a second.
//!
//! A refresh never makes other requests wait: while one is under way, requests go on with the list
//! as it is. When the database cannot be read, the list is still trusted until it is `max_age`
//! old (`revocation_max_age_secs`); after that [`Revocations::usable`] says no and signed-in
//! requests answer 503 until a refresh succeeds.

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
    /// The database time of the last refresh; held by the one refresh under way (others do not
    /// wait for it, except before the very first refresh).
    watermark: rocket::tokio::sync::Mutex<Option<PrimitiveDateTime>>,
    refreshed_at: Mutex<Option<Instant>>,
    /// When the last refresh attempt failed, so a failing database is asked at most once per
    /// `max_staleness` rather than by every request.
    failed_at: Mutex<Option<Instant>>,
    max_staleness: Duration,
    max_age: Duration,
}

impl Revocations {
    /// An empty list that counts as stale after `max_staleness` and is no longer trusted once
    /// `max_age` has passed since its last refresh.
    pub fn new(max_staleness: Duration, max_age: Duration) -> Revocations {
        Revocations {
            revoked: RwLock::new(HashMap::new()),
            watermark: rocket::tokio::sync::Mutex::new(None),
            refreshed_at: Mutex::new(None),
            failed_at: Mutex::new(None),
            max_staleness,
            max_age,
        }
    }

    /// Whether the list is recent enough to decide on a token without the database: refreshed
    /// less than `max_age` ago. When it is not, signed-in requests answer 503.
    pub fn usable(&self) -> bool {
        self.refreshed_at
            .lock()
            .map(|at| at.is_some_and(|at| at.elapsed() < self.max_age))
            .unwrap_or(false)
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

    /// Reads new revocations from the database and forgets those whose sessions are over;
    /// `Ok(true)` when it did. It does not wait for a refresh already under way, nor ask a
    /// database that is failing fast again within `max_staleness` of a failed attempt
    /// (`Ok(false)` then): the caller goes on with the list as it is, and checks
    /// [`Revocations::usable`].
    pub async fn refresh(&self, db: &Db, now_unix: i64) -> Result<bool, Error> {
        let mut watermark = match self.watermark.try_lock() {
            Ok(watermark) => watermark,
            // Before the first refresh there is no list to go on with.
            Err(_) if self.refreshed_at.lock().is_ok_and(|at| at.is_none()) => {
                self.watermark.lock().await
            }
            Err(_) => return Ok(false),
        };
        if watermark.is_some() && !self.is_stale() {
            return Ok(false); // another request refreshed while this one waited
        }
        // Once the database answers again, the next request refreshes without waiting out
        // the pause (the list may never have been read if the outage began at start-up).
        let failed_recently = self
            .failed_at
            .lock()
            .is_ok_and(|at| at.is_some_and(|at| at.elapsed() < self.max_staleness));
        if failed_recently && db.is_failing_fast() {
            return Ok(false);
        }
        let since = watermark.map(|w| w - OVERLAP);
        let read = db
            .run(move |conn| {
                let db_now = Session::database_now(conn)?;
                let rows = Session::revoked_since(conn, since, db_now)?;
                Ok((db_now, rows))
            })
            .await;
        let (db_now, rows) = match read {
            Ok(read) => read,
            Err(e) => {
                if let Ok(mut at) = self.failed_at.lock() {
                    *at = Some(Instant::now());
                }
                return Err(e);
            }
        };
        if let Ok(mut at) = self.failed_at.lock() {
            *at = None;
        }
        self.add(&rows);
        if let Ok(mut set) = self.revoked.write() {
            set.retain(|_, (expires, _)| *expires >= now_unix);
        }
        *watermark = Some(db_now);
        if let Ok(mut at) = self.refreshed_at.lock() {
            *at = Some(Instant::now());
        }
        Ok(true)
    }
}
