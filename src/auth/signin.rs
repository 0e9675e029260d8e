//! Checking credentials, shared by the HTML sign-in form and `POST /api/token`: per-client
//! throttling, account lockout (in the database, so every instance counts the same failures),
//! argon2 verification against a dummy hash for unknown names, and the audit trail.

use std::time::Duration;

use rocket::request::{FromRequest, Outcome, Request};

use super::two_factor::{self, Redeemed};
use super::{PasswordHasher, Sessions, Throttle};
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{AuditKind, LoginAttempt, RecoveryCode, TwoFactor, User};
use crate::peer::Peer;
use crate::validation::PASSWORD_MAX_CHARS;

/// The outcome of a sign-in attempt.
#[derive(Debug)]
pub enum Verdict {
    /// Right password, enabled account; the failure count is cleared.
    Accepted(User),
    /// Right password and right second factor (the code step); the failure count is cleared.
    Verified(User),
    /// Wrong password or unknown name (never says which).
    Invalid,
    /// Locked after too many failures; try again after this long.
    Locked(Duration),
    /// The password was right but an admin disabled the account.
    Disabled,
    /// Too many attempts from this client; try again after this long.
    Throttled(Duration),
    /// The password was right and the account asks for a code from its authenticator app;
    /// nothing is cleared or stamped until the code is right too.
    SecondFactor(User),
}

/// How long from `now` until a lock set to end at `until` ends (at least a second).
fn wait_until(until: time::PrimitiveDateTime, now: time::PrimitiveDateTime) -> Duration {
    Duration::from_secs((until - now).whole_seconds().max(1) as u64)
}

/// How the code step of a sign-in went, inside its database work.
enum SecondStep {
    Right,
    Recovery(i64),
    NotNeeded,
    Wrong(&'static str),
    Locked(time::PrimitiveDateTime),
}

/// What checking credentials needs, as one request guard.
pub struct SignIn<'r> {
    db: &'r Db,
    hasher: &'r PasswordHasher,
    sessions: &'r Sessions,
    throttle: &'r Throttle,
    audit: &'r Audit,
    settings: &'r Settings,
    /// The client.
    pub peer: Peer,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignIn<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let r = req.rocket();
        match (
            r.state::<Db>(),
            r.state::<PasswordHasher>(),
            r.state::<Sessions>(),
            r.state::<Throttle>(),
            r.state::<Audit>(),
            r.state::<Settings>(),
        ) {
            (
                Some(db),
                Some(hasher),
                Some(sessions),
                Some(throttle),
                Some(audit),
                Some(settings),
            ) => Outcome::Success(SignIn {
                db,
                hasher,
                sessions,
                throttle,
                audit,
                settings,
                peer: Peer::of(req),
            }),
            _ => Outcome::Error((rocket::http::Status::InternalServerError, ())),
        }
    }
}

impl SignIn<'_> {
    /// The audit recorder.
    pub fn audit(&self) -> &Audit {
        self.audit
    }

    /// Counts a sign-in attempt against this client's limit.
    pub fn throttle_login(&self) -> Result<(), Duration> {
        self.throttle.login(self.peer.ip)
    }

    /// The session service.
    pub fn sessions(&self) -> &Sessions {
        self.sessions
    }

    /// Checks `login` (username or email) and `password`, counting failures and recording events.
    pub async fn check(&self, login: &str, password: String) -> Result<Verdict, Error> {
        let peer = &self.peer;
        if let Err(wait) = self.throttle.login(peer.ip) {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, peer)
                        .subject(Who::name(login))
                        .detail("throttled"),
                )
                .await;
            return Ok(Verdict::Throttled(wait));
        }
        let now = self.sessions.clock().db_now();
        let (user, key, locked_until) = self
            .db
            .run({
                let login = login.to_string();
                move |conn| {
                    let user = User::find_by_login(conn, &login)?;
                    let key = match &user {
                        Some(user) => LoginAttempt::key_for_user(&user.id),
                        None => LoginAttempt::key_for_name(&login),
                    };
                    let locked = LoginAttempt::locked_until(conn, &key, now)?;
                    Ok((user, key, locked))
                }
            })
            .await?;
        let subject = match &user {
            Some(u) => Who::user(&u.id, &u.username),
            None => Who::name(login),
        };
        if let Some(until) = locked_until {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, peer)
                        .subject(subject)
                        .detail("locked"),
                )
                .await;
            return Ok(Verdict::Locked(wait_until(until, now)));
        }

        // No account has a longer password; refusing before hashing keeps the work bounded.
        let verified = password.chars().count() <= PASSWORD_MAX_CHARS
            && self
                .hasher
                .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
                .await?;
        let failure = match &user {
            None => Some("unknown_user"),
            Some(_) if !verified => Some("bad_password"),
            _ => None,
        };
        if let Some(reason) = failure {
            return self
                .failed(AuditKind::LoginFailed, subject, reason, key, now)
                .await;
        }
        if user.as_ref().is_some_and(|u| u.disabled) {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, peer)
                        .subject(subject)
                        .detail("disabled"),
                )
                .await;
            return Ok(Verdict::Disabled);
        }
        let Some(user) = user else {
            return Ok(Verdict::Invalid);
        };
        let id = user.id.clone();
        let needs_code = self
            .db
            .run(move |conn| {
                if TwoFactor::enabled(conn, &id)?.is_some() {
                    return Ok(true);
                }
                LoginAttempt::clear(conn, &key)?;
                User::record_login(conn, &id)?;
                Ok(false)
            })
            .await?;
        if needs_code {
            return Ok(Verdict::SecondFactor(user));
        }
        Ok(Verdict::Accepted(user))
    }

    /// Checks the second step of a sign-in whose password was right: a code from the
    /// authenticator app (each 30-second code works once, on any instance) or an unused
    /// recovery code. Wrong codes count towards the same lockout as wrong passwords.
    pub async fn check_second_factor(&self, user_id: &str, input: &str) -> Result<Verdict, Error> {
        let peer = &self.peer;
        let id = user_id.to_string();
        let found = self.db.run(move |conn| User::find(conn, &id)).await?;
        let Some(user) = found else {
            return Ok(Verdict::Invalid);
        };
        let subject = Who::user(&user.id, &user.username);
        if let Err(wait) = self.throttle.login(peer.ip) {
            self.audit
                .record(
                    Event::new(AuditKind::TwoFactorFailed, peer)
                        .subject(subject)
                        .detail("throttled"),
                )
                .await;
            return Ok(Verdict::Throttled(wait));
        }
        if user.disabled {
            return Ok(Verdict::Disabled);
        }
        let now = self.sessions.clock().now();
        let db_now = self.sessions.clock().db_now();
        let key = LoginAttempt::key_for_user(&user.id);
        let input = input.trim().to_string();
        let as_app_code = two_factor::looks_like_app_code(&input);
        let outcome = self
            .db
            .run({
                let (id, key) = (user.id.clone(), key.clone());
                move |conn| {
                    if let Some(until) = LoginAttempt::locked_until(conn, &key, db_now)? {
                        return Ok(SecondStep::Locked(until));
                    }
                    let Some(tf) = TwoFactor::enabled(conn, &id)? else {
                        // Turned off (by an admin) since the password step: the password
                        // alone signs in now.
                        return Ok(SecondStep::NotNeeded);
                    };
                    if input.is_empty() {
                        return Ok(SecondStep::Wrong("empty"));
                    }
                    let result = match two_factor::redeem(conn, &tf, &input, now)? {
                        Redeemed::AppCode => SecondStep::Right,
                        Redeemed::RecoveryCode => {
                            SecondStep::Recovery(RecoveryCode::remaining(conn, &id)?)
                        }
                        Redeemed::Reused => SecondStep::Wrong("code_reused"),
                        Redeemed::Wrong if as_app_code => SecondStep::Wrong("bad_code"),
                        Redeemed::Wrong => SecondStep::Wrong("bad_recovery_code"),
                    };
                    Ok(result)
                }
            })
            .await?;
        match outcome {
            SecondStep::Locked(until) => {
                self.audit
                    .record(
                        Event::new(AuditKind::TwoFactorFailed, peer)
                            .subject(subject)
                            .detail("locked"),
                    )
                    .await;
                return Ok(Verdict::Locked(wait_until(until, db_now)));
            }
            SecondStep::Wrong(reason) => {
                return self
                    .failed(AuditKind::TwoFactorFailed, subject, reason, key, db_now)
                    .await;
            }
            SecondStep::Recovery(left) => {
                self.audit
                    .record(
                        Event::new(AuditKind::RecoveryCodeUsed, peer)
                            .by_self(subject)
                            .detail(format!("{left} left")),
                    )
                    .await;
            }
            SecondStep::Right | SecondStep::NotNeeded => {}
        }
        let verified = !matches!(outcome, SecondStep::NotNeeded);
        let id = user.id.clone();
        self.db
            .run(move |conn| {
                LoginAttempt::clear(conn, &key)?;
                User::record_login(conn, &id)
            })
            .await?;
        Ok(if verified {
            Verdict::Verified(user)
        } else {
            Verdict::Accepted(user)
        })
    }

    /// Counts a failure towards the lockout of `key` and records it: `Locked` if this one
    /// locked the account (or name), `Invalid` otherwise.
    async fn failed(
        &self,
        kind: AuditKind,
        subject: Who<'_>,
        reason: &str,
        key: String,
        now: time::PrimitiveDateTime,
    ) -> Result<Verdict, Error> {
        let policy = self.settings.lockout_policy();
        let locked = self
            .db
            .run(move |conn| LoginAttempt::record_failure(conn, &key, now, &policy))
            .await?;
        let peer = &self.peer;
        self.audit
            .record(Event::new(kind, peer).subject(subject).detail(reason))
            .await;
        let Some(until) = locked else {
            return Ok(Verdict::Invalid);
        };
        let detail = format!("locked until {}", crate::view::format_db_time(until));
        self.audit
            .record(
                Event::new(AuditKind::LoginLocked, peer)
                    .subject(subject)
                    .detail(detail),
            )
            .await;
        Ok(Verdict::Locked(wait_until(until, now)))
    }

    /// Records a successful sign-in (after the session exists).
    pub async fn record_success(&self, user: &User, how: &str) {
        self.audit
            .record(
                Event::new(AuditKind::LoginOk, &self.peer)
                    .by_self(Who::user(&user.id, &user.username))
                    .detail(how),
            )
            .await;
    }
}
