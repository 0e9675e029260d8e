//! Per-client rate limits for sign-in (forms and `/api/token`), sign-up and "Forgot your
//! password?", counted in the
//! database (`models/rate_counter.rs`) so that all instances together allow what one does; and
//! the per-user password-change limit, in memory per instance. Only the requests they limit pay
//! for the database round trip. Account lockout lives in `models/login_attempt.rs`.
//!
//! The shared limits use a sliding-window estimate over one-minute windows: this window's
//! count plus the previous window's, weighted by how much of it still overlaps the last minute.
//! A burst cannot get twice the limit by straddling a window boundary, and each check costs one
//! upsert and one read.

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::models::RateCounter;

/// Length of a shared counter's window, in seconds.
const WINDOW_SECS: i64 = 60;

/// Windows older than this many seconds are pruned (the current and the previous one are read).
const KEEP_SECS: i64 = 2 * WINDOW_SECS;

/// What a shared counter counts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Login,
    Signup,
    PasswordReset,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Signup => "signup",
            Kind::PasswordReset => "password_reset",
        }
    }
}

/// The limits (cheap to clone: the state is shared).
#[derive(Clone)]
pub struct Throttle(Arc<Limits>);

struct Limits {
    db: Db,
    clock: Clock,
    login: u32,
    signup: u32,
    password_reset: u32,
    password_change: DefaultKeyedRateLimiter<String>,
}

fn address(ip: Option<IpAddr>) -> String {
    ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).to_string()
}

/// Whether `current` hits in this window plus `previous` weighted by the part of the last
/// minute it still covers stay within `limit`; `Err(wait)` otherwise.
fn judge(limit: u32, current: i32, previous: i32, now: i64, start: i64) -> Result<(), Duration> {
    let elapsed = now - start;
    let overlap = (WINDOW_SECS - elapsed) as f64 / WINDOW_SECS as f64;
    let estimate = f64::from(current) + f64::from(previous) * overlap;
    if estimate <= f64::from(limit) {
        Ok(())
    } else {
        Err(Duration::from_secs((WINDOW_SECS - elapsed).max(1) as u64))
    }
}

impl Throttle {
    /// Limits from the settings (attempts per minute), counted in `db` by `clock`'s time.
    pub fn new(settings: &Settings, db: Db, clock: Clock) -> Throttle {
        let per_user = NonZeroU32::new(settings.password_change_per_user_per_minute.max(1))
            .unwrap_or(NonZeroU32::MIN);
        Throttle(Arc::new(Limits {
            db,
            clock,
            login: settings.login_per_ip_per_minute,
            signup: settings.signup_per_ip_per_minute,
            password_reset: settings.password_reset_per_ip_per_minute,
            password_change: RateLimiter::keyed(Quota::per_minute(per_user)),
        }))
    }

    /// Counts an attempt of `kind` from `ip` in the database; `Ok(Err(wait))` when over
    /// `limit`. A database failure is an error: the caller answers 503 (sign-in and sign-up
    /// need the database anyway), so an outage never lifts the limit.
    async fn shared(
        &self,
        kind: Kind,
        limit: u32,
        ip: Option<IpAddr>,
    ) -> Result<Result<(), Duration>, Error> {
        let now = self.0.clock.unix();
        let start = now - now.rem_euclid(WINDOW_SECS);
        let address = address(ip);
        let (current, previous) = self
            .0
            .db
            .run(move |conn| {
                let current = RateCounter::hit(conn, kind.as_str(), &address, start)?;
                let previous =
                    RateCounter::count(conn, kind.as_str(), &address, start - WINDOW_SECS)?;
                Ok((current, previous))
            })
            .await?;
        Ok(judge(limit.max(1), current, previous, now, start))
    }

    /// A sign-in attempt from `ip`; `Ok(Err(wait))` when over the limit.
    pub async fn login(&self, ip: Option<IpAddr>) -> Result<Result<(), Duration>, Error> {
        self.shared(Kind::Login, self.0.login, ip).await
    }

    /// A sign-up attempt from `ip`; `Ok(Err(wait))` when over the limit.
    pub async fn signup(&self, ip: Option<IpAddr>) -> Result<Result<(), Duration>, Error> {
        self.shared(Kind::Signup, self.0.signup, ip).await
    }

    /// A "Forgot your password?" request from `ip`; `Ok(Err(wait))` when over the limit.
    pub async fn password_reset(&self, ip: Option<IpAddr>) -> Result<Result<(), Duration>, Error> {
        self.shared(Kind::PasswordReset, self.0.password_reset, ip)
            .await
    }

    /// A password-change attempt by `user_id` (in memory, per instance).
    pub fn password_change(&self, user_id: &str) -> Result<(), Duration> {
        check(&self.0.password_change, &user_id.to_string())
    }

    /// Forgets quiet users' password-change allowance and deletes the shared counters' old
    /// windows (bounds memory and rows). Runs in the background, never on a request.
    pub async fn forget_idle(&self) -> Result<usize, Error> {
        self.0.password_change.retain_recent();
        let before = self.0.clock.unix() - KEEP_SECS;
        self.0
            .db
            .run(move |conn| RateCounter::prune(conn, before))
            .await
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Duration> {
    limiter.check_key(key).map_err(|not_until| {
        not_until
            .wait_time_from(DefaultClock::default().now())
            .max(Duration::from_secs(1))
    })
}
