//! The security overview's numbers: failed sign-ins, lockouts and throttled requests per hour
//! (last 24 hours) and per day (last 7 days), the most targeted accounts and the busiest
//! source addresses, all read from `audit_events`.
//!
//! Portable by construction: one plain diesel query fetches the rows of the three kinds in the
//! window (at most [`SecurityStats::MAX_ROWS`], newest first) and Rust buckets them, so SQLite and PostgreSQL
//! give the same answer without dialect-specific date functions.

use std::collections::HashMap;

use diesel::prelude::*;
use time::{Duration, PrimitiveDateTime, Time};

use super::{AuditEvent, AuditKind};
use crate::db::schema::audit_events;
use crate::db::DbConnection;
use crate::error::Error;

/// How many entries each top list keeps.
pub const TOP: usize = 10;

/// The detail a refused-because-throttled sign-in attempt is recorded with.
pub const THROTTLED_DETAIL: &str = "throttled";

/// One of the overview's three series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// A sign-in or second-factor code refused (not for throttling).
    Failed = 0,
    /// Failures locked an account or name.
    Locked = 1,
    /// A sign-in attempt refused because its address sent too many.
    Throttled = 2,
}

impl Series {
    /// The three, in the order the chart and the tables draw them.
    pub const ALL: [Series; 3] = [Series::Failed, Series::Locked, Series::Throttled];

    /// Which series an audit row belongs to, if any.
    pub fn of(kind: &str, detail: Option<&str>) -> Option<Series> {
        let failed = [AuditKind::LoginFailed, AuditKind::TwoFactorFailed];
        if kind == AuditKind::LoginLocked.as_str() {
            Some(Series::Locked)
        } else if !failed.iter().any(|k| k.as_str() == kind) {
            None
        } else if detail == Some(THROTTLED_DETAIL) {
            Some(Series::Throttled)
        } else {
            Some(Series::Failed)
        }
    }
}

/// Counts of the three series in one time bucket, indexed by [`Series`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Where the bucket starts (UTC).
    pub start: PrimitiveDateTime,
    /// Failed, locked, throttled.
    pub counts: [i64; 3],
}

/// Everything the security overview shows.
#[derive(Debug, Clone)]
pub struct SecurityStats {
    /// 24 hourly buckets, oldest first; the last holds the current hour so far.
    pub hours: Vec<Bucket>,
    /// 7 daily buckets (UTC days), oldest first; the last is today so far.
    pub days: Vec<Bucket>,
    /// Names with the most failed sign-ins and lockouts over the 7 days, most first.
    pub accounts: Vec<(String, i64)>,
    /// Addresses with the most events of the three series over the 7 days, most first.
    pub addresses: Vec<(String, i64)>,
    /// True when [`SecurityStats::MAX_ROWS`] were read: older rows in the window were not counted.
    pub truncated: bool,
}

#[derive(Queryable)]
struct Row {
    at: PrimitiveDateTime,
    kind: String,
    detail: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
}

impl SecurityStats {
    /// Most rows read for one overview; beyond it the oldest are left out (and the page says so).
    pub const MAX_ROWS: i64 = 100_000;

    /// Where the week's first bucket starts: midnight (UTC) six days before `now`'s day.
    pub fn week_start(now: PrimitiveDateTime) -> PrimitiveDateTime {
        PrimitiveDateTime::new(now.date(), Time::MIDNIGHT) - Duration::days(6)
    }

    /// Where the day's first bucket starts: the start of `now`'s hour, less 23 hours.
    pub fn day_start(now: PrimitiveDateTime) -> PrimitiveDateTime {
        let hour = Time::from_hms(now.hour(), 0, 0).unwrap_or(Time::MIDNIGHT);
        PrimitiveDateTime::new(now.date(), hour) - Duration::hours(23)
    }
}

impl AuditEvent {
    /// The security overview as of `now`.
    pub fn security_stats(
        conn: &mut DbConnection,
        now: PrimitiveDateTime,
    ) -> Result<SecurityStats, Error> {
        let week_start = SecurityStats::week_start(now);
        let day_start = SecurityStats::day_start(now);
        let kinds = [
            AuditKind::LoginFailed,
            AuditKind::TwoFactorFailed,
            AuditKind::LoginLocked,
        ]
        .map(|k| k.as_str());
        let rows: Vec<Row> = audit_events::table
            .filter(audit_events::kind.eq_any(kinds))
            .filter(audit_events::at.ge(week_start))
            .filter(audit_events::at.le(now))
            .order(audit_events::id.desc())
            .limit(SecurityStats::MAX_ROWS)
            .select((
                audit_events::at,
                audit_events::kind,
                audit_events::detail,
                audit_events::subject,
                audit_events::ip,
            ))
            .load(conn)?;
        let truncated = rows.len() as i64 >= SecurityStats::MAX_ROWS;
        let mut hours = buckets(day_start, Duration::hours(1), 24);
        let mut days = buckets(week_start, Duration::days(1), 7);
        let mut accounts: HashMap<String, i64> = HashMap::new();
        let mut addresses: HashMap<String, i64> = HashMap::new();
        for row in rows {
            let Some(series) = Series::of(&row.kind, row.detail.as_deref()) else {
                continue;
            };
            count(&mut days, week_start, Duration::days(1), row.at, series);
            count(&mut hours, day_start, Duration::hours(1), row.at, series);
            if series != Series::Throttled {
                if let Some(subject) = row.subject.filter(|s| !s.is_empty()) {
                    *accounts.entry(subject).or_default() += 1;
                }
            }
            if let Some(ip) = row.ip.filter(|s| !s.is_empty()) {
                *addresses.entry(ip).or_default() += 1;
            }
        }
        Ok(SecurityStats {
            hours,
            days,
            accounts: top(accounts),
            addresses: top(addresses),
            truncated,
        })
    }
}

fn buckets(start: PrimitiveDateTime, width: Duration, n: i64) -> Vec<Bucket> {
    (0..n)
        .map(|i| Bucket {
            start: start + width * i as i32,
            counts: [0; 3],
        })
        .collect()
}

fn count(
    buckets: &mut [Bucket],
    start: PrimitiveDateTime,
    width: Duration,
    at: PrimitiveDateTime,
    series: Series,
) {
    if at < start {
        return;
    }
    let index = ((at - start).whole_seconds() / width.whole_seconds()) as usize;
    if let Some(bucket) = buckets.get_mut(index) {
        bucket.counts[series as usize] += 1;
    }
}

/// The [`TOP`] largest counts, most first; ties by name so the order is stable.
fn top(counts: HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut all: Vec<(String, i64)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(TOP);
    all
}
