//! Per-client rate limits (in memory, per instance) for sign-in, sign-up and password change.
//! Account lockout, which must be shared by all instances, lives in the database
//! (`models/login_attempt.rs`).

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;

/// The limits of one instance (cheap to clone: the state is shared).
#[derive(Clone)]
pub struct Throttle(Arc<Limits>);

struct Limits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    signup: DefaultKeyedRateLimiter<IpAddr>,
    password_change: DefaultKeyedRateLimiter<String>,
}

fn per_minute<K: Hash + Eq + Clone>(n: u32) -> DefaultKeyedRateLimiter<K> {
    RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN),
    ))
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

fn key(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl Throttle {
    /// Limits from the settings (attempts per minute).
    pub fn new(settings: &Settings) -> Throttle {
        Throttle(Arc::new(Limits {
            login: per_minute(settings.login_per_ip_per_minute),
            signup: per_minute(settings.signup_per_ip_per_minute),
            password_change: per_minute(settings.password_change_per_user_per_minute),
        }))
    }

    /// A sign-in attempt from `ip`; `Err(wait)` when over the limit.
    pub fn login(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        check(&self.0.login, &key(ip))
    }

    /// A sign-up attempt from `ip`.
    pub fn signup(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        check(&self.0.signup, &key(ip))
    }

    /// A password-change attempt by `user_id`.
    pub fn password_change(&self, user_id: &str) -> Result<(), Duration> {
        check(&self.0.password_change, &user_id.to_string())
    }

    /// Forgets clients whose allowance has fully recovered (bounds memory).
    pub fn forget_idle(&self) {
        self.0.login.retain_recent();
        self.0.signup.retain_recent();
        self.0.password_change.retain_recent();
    }
}
