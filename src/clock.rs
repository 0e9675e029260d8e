//! The site's idea of "now". Production reads the system clock; tests move it forward to check
//! idle and absolute session timeouts and lockout expiry without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// The current time, plus an offset that only tests change.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Now, as stored in the database (UTC without offset).
    pub fn db_now(&self) -> PrimitiveDateTime {
        let now = self.now();
        PrimitiveDateTime::new(now.date(), now.time())
    }

    /// Now, in Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves this clock forward (tests).
    pub fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }
}
