//! Checking credentials, shared by the HTML sign-in form and `POST /api/token`: per-client
//! throttling, account lockout (in the database, so every instance counts the same failures),
//! argon2 verification against a dummy hash for unknown names, and the audit trail.

use std::time::Duration;

use rocket::request::{FromRequest, Outcome, Request};

use super::{PasswordHasher, Sessions, Throttle};
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{AuditKind, LoginAttempt, User};
use crate::peer::Peer;
use crate::validation::PASSWORD_MAX_CHARS;

/// The outcome of a sign-in attempt.
#[derive(Debug)]
pub enum Verdict {
    /// Right password, enabled account; the failure count is cleared.
    Accepted(User),
    /// Wrong password or unknown name (never says which).
    Invalid,
    /// Locked after too many failures; try again after this long.
    Locked(Duration),
    /// The password was right but an admin disabled the account.
    Disabled,
    /// Too many attempts from this client; try again after this long.
    Throttled(Duration),
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
        let wait_until = |until: time::PrimitiveDateTime| {
            Duration::from_secs((until - now).whole_seconds().max(1) as u64)
        };
        if let Some(until) = locked_until {
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, peer)
                        .subject(subject)
                        .detail("locked"),
                )
                .await;
            return Ok(Verdict::Locked(wait_until(until)));
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
            let policy = self.settings.lockout_policy();
            let locked = self
                .db
                .run({
                    let key = key.clone();
                    move |conn| LoginAttempt::record_failure(conn, &key, now, &policy)
                })
                .await?;
            self.audit
                .record(
                    Event::new(AuditKind::LoginFailed, peer)
                        .subject(subject)
                        .detail(reason),
                )
                .await;
            if let Some(until) = locked {
                let detail = format!("locked until {}", crate::view::format_db_time(until));
                self.audit
                    .record(
                        Event::new(AuditKind::LoginLocked, peer)
                            .subject(subject)
                            .detail(detail),
                    )
                    .await;
                return Ok(Verdict::Locked(wait_until(until)));
            }
            return Ok(Verdict::Invalid);
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
        self.db
            .run(move |conn| {
                LoginAttempt::clear(conn, &key)?;
                User::record_login(conn, &id)
            })
            .await?;
        Ok(Verdict::Accepted(user))
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
