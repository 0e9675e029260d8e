//! Sign-in sessions: starting one (row + token + cookie), renewing the token from the row, and
//! ending one or all of a user's sessions.

use std::sync::Arc;

use rocket::http::CookieJar;
use time::{Duration, OffsetDateTime};

use super::cookie::{CookieKind, Cookies};
use super::revocations::Revocations;
use super::tokens::{Claims, Subject, Tokens};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::models::{RevokedSession, Session, User};
use crate::peer::Peer;

/// What kind of session a sign-in opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A browser's, continued by renewing its cookie; "remember me" makes it last longer.
    Browser {
        /// "Remember me" was ticked.
        remember: bool,
    },
    /// A program's: one Bearer token, read-only when its API key is.
    Api {
        /// The token may only read.
        read_only: bool,
    },
}

/// A session just opened, with its first token.
#[derive(Debug, Clone)]
pub struct Started {
    /// The stored row.
    pub session: Session,
    /// The signed token.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

/// Everything that issues, renews and revokes sessions; managed state.
pub struct Sessions {
    db: Db,
    tokens: Arc<Tokens>,
    clock: Clock,
    revocations: Arc<Revocations>,
    cookies: Cookies,
    lifetime: Duration,
    remember_lifetime: Duration,
    idle_timeout: Duration,
}

impl Sessions {
    /// Builds the service from its parts.
    pub fn new(settings: &Settings, db: Db, tokens: Tokens, clock: Clock) -> Sessions {
        Sessions {
            db,
            tokens: Arc::new(tokens),
            clock,
            revocations: Arc::new(Revocations::new(
                std::time::Duration::from_millis(settings.revocation_refresh_ms),
                std::time::Duration::from_secs(settings.revocation_max_age_secs),
            )),
            cookies: Cookies::new(settings.cookie_secure()),
            lifetime: Duration::seconds(settings.session_ttl_secs),
            remember_lifetime: Duration::seconds(settings.remember_ttl_secs),
            idle_timeout: Duration::seconds(settings.idle_timeout_secs),
        }
    }

    /// The token signer/verifier.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The token signer/verifier, shared (for the key reloader).
    pub fn tokens_shared(&self) -> Arc<Tokens> {
        Arc::clone(&self.tokens)
    }

    /// The site's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// How the site names and flags its cookies.
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }

    /// This instance's revocation list.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Opens a session for `user`: the row and its first token. A browser's session lasts its
    /// absolute lifetime (longer with "remember me"); a program's as long as its one token, so it
    /// shows on the devices page and can be revoked. `two_factor` says the sign-in passed a
    /// second factor; the session's tokens carry it.
    pub async fn start(
        &self,
        user: &User,
        kind: Kind,
        two_factor: bool,
        peer: &Peer,
    ) -> Result<Started, Error> {
        let (lifetime, remember, read_only) = match kind {
            Kind::Browser { remember: true } => (self.remember_lifetime, true, false),
            Kind::Browser { remember: false } => (self.lifetime, false, false),
            Kind::Api { read_only } => {
                (Duration::seconds(self.tokens.ttl_secs()), false, read_only)
            }
        };
        let mut session = Session::new(
            &user.id,
            self.clock.db_now(),
            lifetime,
            remember,
            &peer.user_agent,
            &peer.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        );
        session.two_factor = two_factor;
        let row = session.clone();
        self.db.run(move |conn| row.insert(conn)).await?;
        self.token_for(user, session, read_only)
    }

    /// A fresh token for `user` in `session`; it says what the session's sign-in passed and
    /// never outlives the session.
    fn token_for(&self, user: &User, session: Session, read_only: bool) -> Result<Started, Error> {
        let subject = Subject::of(user, &session.id, read_only).with_two_factor(session.two_factor);
        let (token, claims) =
            self.tokens
                .issue(&subject, self.clock.now(), session.expires_at.assume_utc())?;
        Ok(Started {
            session,
            token,
            claims,
        })
    }

    /// Puts a started session's token in the session cookie (persistent only with "remember me").
    pub fn set_cookie(&self, jar: &CookieJar<'_>, started: &Started) {
        let now = self.clock.now();
        let ends = started.session.expires_at.assume_utc();
        let max_age = started
            .session
            .remember
            .then(|| rocket::time::Duration::seconds((ends - now).whole_seconds().max(0)));
        jar.add(
            self.cookies
                .make(CookieKind::Session, started.token.clone(), max_age),
        );
    }

    /// Issues a fresh token from the session row if the session is still live (not revoked, not
    /// past its absolute or idle limit, user present and enabled), and sets it in the cookie.
    /// `Ok(None)` means the session is over.
    pub async fn renew(
        &self,
        jar: &CookieJar<'_>,
        claims: &Claims,
    ) -> Result<Option<Claims>, Error> {
        let now = self.clock.db_now();
        let idle = self.idle_timeout;
        let (sid, uid) = (claims.sid.clone(), claims.sub.clone());
        let found = self
            .db
            .run(move |conn| {
                let Some(session) = Session::find(conn, &sid)? else {
                    return Ok(None);
                };
                if session.user_id != uid || !session.is_live(now, idle) {
                    return Ok(None);
                }
                let Some(user) = User::find(conn, &uid)?.filter(|u| !u.disabled) else {
                    return Ok(None);
                };
                Session::touch(conn, &sid, now)?;
                Ok(Some((session, user)))
            })
            .await?;
        let Some((session, user)) = found else {
            return Ok(None);
        };
        let started = self.token_for(&user, session, false)?;
        self.set_cookie(jar, &started);
        Ok(Some(started.claims))
    }

    /// Whether a valid token is old enough to be renewed now (less than half its life left).
    pub fn wants_renewal(&self, claims: &Claims, now: OffsetDateTime) -> bool {
        let left = claims.exp - now.unix_timestamp();
        left < self.tokens.ttl_secs() / 2 && claims.exp < claims.sexp
    }

    /// Ends one session (sign-out, or the devices page); `owner` limits it to a user's own.
    pub async fn end(&self, sid: &str, owner: Option<&str>) -> Result<bool, Error> {
        let (sid, owner) = (sid.to_string(), owner.map(str::to_string));
        let revoked = self
            .db
            .run(move |conn| Session::revoke(conn, &sid, owner.as_deref()))
            .await?;
        let ended = revoked.is_some();
        self.revocations
            .add(&revoked.into_iter().collect::<Vec<_>>());
        Ok(ended)
    }

    /// Ends every session of a user except `keep`; returns how many ended.
    pub async fn end_all_for_user(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<usize, Error> {
        let (uid, keep) = (user_id.to_string(), keep.map(str::to_string));
        let revoked: Vec<RevokedSession> = self
            .db
            .run(move |conn| Session::revoke_all_for_user(conn, &uid, keep.as_deref()))
            .await?;
        self.revocations.add(&revoked);
        Ok(revoked.len())
    }

    /// Refuses sessions revoked by a committed change on this instance at once (other instances
    /// read them from the database within a second).
    pub fn mark_revoked(&self, revoked: &[RevokedSession]) {
        self.revocations.add(revoked);
    }

    /// Live sessions of a user, for the devices page and the admin panel.
    pub async fn list_for_user(&self, user_id: &str) -> Result<Vec<Session>, Error> {
        let (uid, now, idle) = (user_id.to_string(), self.clock.db_now(), self.idle_timeout);
        self.db
            .run(move |conn| {
                Ok(Session::active_for_user(conn, &uid, now)?
                    .into_iter()
                    .filter(|s| s.is_live(now, idle))
                    .collect())
            })
            .await
    }

    /// Clears the session cookie.
    pub fn clear_cookie(&self, jar: &CookieJar<'_>) {
        jar.remove(self.cookies.removal(CookieKind::Session));
    }
}
