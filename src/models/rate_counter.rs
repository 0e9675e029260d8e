//! Per-address request counters shared by every instance: `rate_counters`, one row per kind
//! (sign-in, sign-up), client address and fixed window. Counting is one upsert, so attempts
//! made on several instances at once all add up.

use diesel::prelude::*;

use crate::db::schema::rate_counters;
use crate::db::DbConnection;
use crate::error::Error;

/// A row about to be counted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = rate_counters)]
struct NewHit<'a> {
    kind: &'a str,
    address: &'a str,
    window_start: i64,
    hits: i32,
}

/// A counter of requests per (kind, address, window).
pub struct RateCounter;

/// The same upsert for each backend (diesel's `on_conflict` does not go through the
/// `MultiConnection` enum).
macro_rules! upsert {
    ($conn:expr, $row:expr) => {
        diesel::insert_into(rate_counters::table)
            .values($row)
            .on_conflict((
                rate_counters::kind,
                rate_counters::address,
                rate_counters::window_start,
            ))
            .do_update()
            .set(rate_counters::hits.eq(rate_counters::hits + 1))
            .returning(rate_counters::hits)
            .get_result::<i32>($conn)
    };
}

impl RateCounter {
    /// Counts one request of `kind` from `address` in the window starting at `window_start`
    /// (Unix seconds); returns the window's count including this one.
    pub fn hit(
        conn: &mut DbConnection,
        kind: &str,
        address: &str,
        window_start: i64,
    ) -> Result<i32, Error> {
        let row = NewHit {
            kind,
            address,
            window_start,
            hits: 1,
        };
        Ok(match conn {
            DbConnection::Sqlite(c) => upsert!(c, &row)?,
            DbConnection::Postgres(c) => upsert!(c, &row)?,
        })
    }

    /// The count of `kind` from `address` in the window starting at `window_start` (0 if none).
    pub fn count(
        conn: &mut DbConnection,
        kind: &str,
        address: &str,
        window_start: i64,
    ) -> Result<i32, Error> {
        Ok(rate_counters::table
            .filter(rate_counters::kind.eq(kind))
            .filter(rate_counters::address.eq(address))
            .filter(rate_counters::window_start.eq(window_start))
            .select(rate_counters::hits)
            .first(conn)
            .optional()?
            .unwrap_or(0))
    }

    /// Deletes windows that started before `before` (Unix seconds); returns how many.
    pub fn prune(conn: &mut DbConnection, before: i64) -> Result<usize, Error> {
        Ok(
            diesel::delete(rate_counters::table.filter(rate_counters::window_start.lt(before)))
                .execute(conn)?,
        )
    }
}
