//! The services a handler works with, as one request guard: the database, sessions, password
//! hashing, rate limits, the audit trail, the clock — and the client, for the audit trail.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use time::PrimitiveDateTime;

use crate::auth::{PasswordHasher, Sessions, Throttle};
use crate::db::Db;
use crate::events::{Audit, Event, Who};
use crate::models::AuditKind;
use crate::peer::Peer;

/// Everything a handler needs from the running site.
pub struct Services<'r> {
    /// The database.
    pub db: &'r Db,
    /// Sessions: start, end, list.
    pub sessions: &'r Sessions,
    /// argon2, off the async workers.
    pub hasher: &'r PasswordHasher,
    /// Per-client and per-user rate limits.
    pub throttle: &'r Throttle,
    /// The audit trail.
    pub audit: &'r Audit,
    /// Who is asking.
    pub peer: Peer,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Services<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let r = req.rocket();
        match (
            r.state::<Db>(),
            r.state::<Sessions>(),
            r.state::<PasswordHasher>(),
            r.state::<Throttle>(),
            r.state::<Audit>(),
        ) {
            (Some(db), Some(sessions), Some(hasher), Some(throttle), Some(audit)) => {
                Outcome::Success(Services {
                    db,
                    sessions,
                    hasher,
                    throttle,
                    audit,
                    peer: Peer::of(req),
                })
            }
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

impl Services<'_> {
    /// Now, as the database stores it (the site's clock, which tests move).
    pub fn now(&self) -> PrimitiveDateTime {
        self.sessions.clock().db_now()
    }

    /// Records something a user did to their own account.
    pub async fn record_own(&self, kind: AuditKind, who: Who<'_>, detail: Option<String>) {
        let mut event = Event::new(kind, &self.peer).by_self(who);
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        self.audit.record(event).await;
    }
}
