//! Sign-in sessions: starting one (row + token + cookie), renewing the token from the row, and
//! ending one or all of a user's sessions.

use std::net::IpAddr;
use std::sync::Arc;

use rocket::http::CookieJar;
use time::{Duration, OffsetDateTime};

use super::cookie::SessionCookie;
use super::revocations::Revocations;
use super::tokens::{Claims, Subject};
use super::{CurrentUser, Tokens};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::models::{RevokedSession, Session, User};

/// Everything that issues, renews and revokes sessions; managed state.
pub struct Sessions {
    db: Db,
    tokens: Arc<Tokens>,
    clock: Clock,
    revocations: Arc<Revocations>,
    cookie: SessionCookie,
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
            revocations: Arc::new(Revocations::new(std::time::Duration::from_millis(
                settings.revocation_refresh_ms,
            ))),
            cookie: SessionCookie::new(settings.cookie_secure()),
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

    /// The cookie's name and flags.
    pub fn cookie(&self) -> &SessionCookie {
        &self.cookie
    }

    /// This instance's revocation list.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Signs `user` in: a session row, a token, the cookie (persistent only with `remember`).
    /// `two_factor` says the sign-in passed a second factor; the session's tokens carry it.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        jar: &CookieJar<'_>,
        user: &User,
        remember: bool,
        two_factor: bool,
        user_agent: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, Error> {
        let lifetime = if remember {
            self.remember_lifetime
        } else {
            self.lifetime
        };
        let session = self
            .insert_row(user, lifetime, remember, two_factor, user_agent, ip)
            .await?;
        let subject = Subject::of(user, &session.id, false).with_two_factor(two_factor);
        self.set_cookie(jar, &subject, &session)?;
        Ok(session)
    }

    /// Stores a new session row for `user`.
    async fn insert_row(
        &self,
        user: &User,
        lifetime: Duration,
        remember: bool,
        two_factor: bool,
        user_agent: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, Error> {
        let mut session = Session::new(
            &user.id,
            self.clock.db_now(),
            lifetime,
            remember,
            user_agent,
            &ip.map(|ip| ip.to_string()).unwrap_or_default(),
        );
        session.two_factor = two_factor;
        let row = session.clone();
        self.db.run(move |conn| row.insert(conn)).await?;
        Ok(session)
    }

    fn set_cookie(
        &self,
        jar: &CookieJar<'_>,
        subject: &Subject<'_>,
        session: &Session,
    ) -> Result<Claims, Error> {
        let now = self.clock.now();
        let ends = session.expires_at.assume_utc();
        let (token, claims) = self.tokens.issue(subject, now, ends)?;
        let max_age = session
            .remember
            .then(|| rocket::time::Duration::seconds((ends - now).whole_seconds().max(0)));
        jar.add(self.cookie.with_token(token, max_age));
        Ok(claims)
    }

    /// Signs a program in: a session row that lasts as long as its one token (so it shows on the
    /// devices page and can be revoked), and the token. No cookie.
    pub async fn start_api(
        &self,
        user: &User,
        read_only: bool,
        two_factor: bool,
        user_agent: &str,
        ip: Option<IpAddr>,
    ) -> Result<(String, Claims), Error> {
        let lifetime = Duration::seconds(self.tokens.ttl_secs());
        let session = self
            .insert_row(user, lifetime, false, two_factor, user_agent, ip)
            .await?;
        let subject = Subject::of(user, &session.id, read_only).with_two_factor(two_factor);
        self.tokens
            .issue(&subject, self.clock.now(), session.expires_at.assume_utc())
    }

    /// Issues a fresh token from the session row if the session is still live (not revoked, not
    /// past its absolute or idle limit, user present and enabled). `Ok(None)` means it is over.
    pub async fn renew(
        &self,
        jar: &CookieJar<'_>,
        claims: &Claims,
    ) -> Result<Option<CurrentUser>, Error> {
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
        let subject = Subject::of(&user, &session.id, false).with_two_factor(session.two_factor);
        let claims = self.set_cookie(jar, &subject, &session)?;
        Ok(Some(CurrentUser::from_claims(
            &claims,
            super::guards::Via::Cookie,
        )))
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
        jar.remove(self.cookie.removal());
    }
}
