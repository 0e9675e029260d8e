//! The services a handler works with, as one request guard: the database, sessions, password
//! hashing, rate limits, the audit trail, the clock — and the client, for the audit trail.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use time::PrimitiveDateTime;

use crate::auth::two_factor::{self, Redeemed};
use crate::auth::{PasswordHasher, Sessions, Throttle};
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::mail::Mailer;
use crate::models::{ApiKey, AuditKind, TwoFactor, User};
use crate::peer::Peer;
use crate::validation::PASSWORD_MAX_CHARS;

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
    /// The site's settings.
    pub settings: &'r Settings,
    /// Mail: letters to the outbox.
    pub mail: &'r Mailer,
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
            r.state::<Settings>(),
            r.state::<Mailer>(),
        ) {
            (
                Some(db),
                Some(sessions),
                Some(hasher),
                Some(throttle),
                Some(audit),
                Some(settings),
                Some(mail),
            ) => Outcome::Success(Services {
                db,
                sessions,
                hasher,
                throttle,
                audit,
                settings,
                mail,
                peer: Peer::of(req),
            }),
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

impl Services<'_> {
    /// Whether `password` is the user's password (bounded before hashing, like every check).
    pub async fn password_ok(&self, user_id: &str, password: &str) -> Result<bool, Error> {
        if password.is_empty() || password.chars().count() > PASSWORD_MAX_CHARS {
            return Ok(false);
        }
        let id = user_id.to_string();
        let stored = self
            .db
            .run(move |conn| User::find(conn, &id))
            .await?
            .map(|u| u.password_hash);
        self.hasher.verify(password.to_string(), stored).await
    }

    /// Checks `input` as the user's app code (each works once) or, with `recovery`, an unused
    /// recovery code too (which it uses up): `None` when accepted, else the sentence to show —
    /// `wrong`, or, when the stored secret does not open (logged), that the app is unavailable.
    pub async fn code_refusal(
        &self,
        user_id: &str,
        input: &str,
        recovery: bool,
        wrong: &'static str,
    ) -> Result<Option<&'static str>, Error> {
        let (id, input, now, seal) = (
            user_id.to_string(),
            input.trim().to_string(),
            self.sessions.clock().now(),
            self.sessions.two_factor_seal(),
        );
        let checked = self
            .db
            .run(move |conn| {
                let Some(tf) = TwoFactor::enabled(conn, &id)? else {
                    return Ok(false);
                };
                let redeemed = if recovery {
                    two_factor::redeem(conn, &tf, &seal, &input, now)?
                } else {
                    two_factor::redeem_app_code(conn, &tf, &seal, &input, now)?
                };
                Ok(matches!(
                    redeemed,
                    Redeemed::AppCode | Redeemed::RecoveryCode
                ))
            })
            .await;
        match checked {
            Ok(true) => Ok(None),
            Ok(false) => Ok(Some(wrong)),
            Err(Error::SecretUnreadable(why)) => {
                log::error!("two-factor code not checked: {why}");
                Ok(Some(two_factor::UNAVAILABLE))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the user has two-factor sign-in turned on.
    pub async fn has_two_factor(&self, user_id: &str) -> Result<bool, Error> {
        let id = user_id.to_string();
        self.db
            .run(move |conn| Ok(TwoFactor::enabled(conn, &id)?.is_some()))
            .await
    }

    /// Now, as the database stores it (the site's clock, which tests move).
    pub fn now(&self) -> PrimitiveDateTime {
        self.sessions.clock().db_now()
    }

    /// Records the revocation of each of `keys`, done by the user themself, with its cause.
    pub async fn record_keys_revoked(&self, who: Who<'_>, keys: &[ApiKey], cause: &str) {
        for key in keys {
            let detail = key.revoked_detail(cause);
            self.record_own(AuditKind::ApiKeyRevoked, who, Some(detail))
                .await;
        }
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
