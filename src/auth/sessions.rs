//! Sign-in sessions: starting one (row + access token + refresh value + cookies), renewing the
//! access token from the session's rotating refresh value (with theft detection), and ending one
//! or all of a user's sessions.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use rocket::http::CookieJar;
use time::{Duration, OffsetDateTime};

use super::cookie::{CookieKind, Cookies};
use super::revocations::Revocations;
use super::tokens::{Claims, Subject, Tokens};
use crate::clock::Clock;
use crate::config::{EmailVerification, Settings};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{
    ApiKey, AuditKind, DeletedAccount, DeletedBy, RefreshToken, RevokedSession, Session, User,
};
use crate::peer::Peer;

/// What a sign-in proved beyond a password; its tokens' `amr` say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// A second factor, or a passkey (which counts as multi-factor on its own).
    pub two_factor: bool,
    /// A passkey, alone or after the password.
    pub passkey: bool,
}

/// What kind of session a sign-in opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A browser's, continued by renewing its cookie; "remember me" makes it last longer.
    Browser {
        /// "Remember me" was ticked.
        remember: bool,
    },
    /// A program's: Bearer tokens, read-only when its API key is.
    Api {
        /// The token may only read.
        read_only: bool,
        /// A refresh token continues the session up to its absolute lifetime (a password
        /// sign-in); without one the session lasts as long as its one token (an API key).
        refreshable: bool,
    },
}

/// What a refresh value was good for.
#[derive(Debug)]
pub enum Refresh {
    /// The session's current value: a new access token and a new refresh value (the old one is
    /// superseded).
    Rotated(Started, User),
    /// A value replaced a moment ago (within `refresh_grace_secs`), as when two tabs renew at
    /// once: a new access token, and no new refresh value (the browser already holds it).
    Parallel(Started, User),
    /// A value replaced longer ago presented again: someone else holds a copy. The session has
    /// been ended (and the reuse audited).
    Reused,
    /// A value of a session that was already ended as stolen (its other holder is told why).
    Stolen,
    /// An unknown value, or one whose session is over (ended, expired, idle too long, user gone
    /// or disabled).
    Invalid,
}

/// Prefix of refresh values, so one is recognisable in a leak report (and never parses as a JWT).
const REFRESH_PREFIX: &str = "lkr_";

/// A new refresh value: 256 random bits.
fn new_refresh_value() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Longest refresh value looked up (longer input is refused without a database read).
const MAX_REFRESH_BYTES: usize = 128;

/// Most usernames remembered per instance; emptied when full.
const NAMES_MAX: usize = 50_000;

/// A session just opened, with its first token.
#[derive(Debug, Clone)]
pub struct Started {
    /// The stored row.
    pub session: Session,
    /// The signed token.
    pub token: String,
    /// What it says.
    pub claims: Claims,
    /// The session's new refresh value (browsers, and programs that signed in with a password).
    pub refresh: Option<String>,
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
    refresh_grace: Duration,
    /// `email_verification = "required"`: tokens of unverified users say so.
    verification_required: bool,
    /// User id → username. Tokens carry no personal data, so pages that greet the user look the
    /// name up here (usernames never change), and in the database on a miss.
    names: RwLock<HashMap<String, String>>,
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
            refresh_grace: Duration::seconds(settings.refresh_grace_secs),
            verification_required: settings.email_verification == EmailVerification::Required,
            names: RwLock::new(HashMap::new()),
        }
    }

    /// The token signer/verifier.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The keys that seal and open two-factor secrets, from the keyring in use now.
    pub fn two_factor_seal(&self) -> super::Seal {
        super::Seal::two_factor(&self.tokens.keyring())
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

    /// Opens a session for `user`: the row, its first access token and (browsers, password
    /// sign-ins over the API) its first refresh value. A browser's session lasts its absolute
    /// lifetime (longer with "remember me"); so does a program's that gets a refresh token; a
    /// program's from an API key lasts as long as its one token, so it shows on the devices page
    /// and can be revoked. `factors` says what the sign-in passed beyond a password.
    pub async fn start(
        &self,
        user: &User,
        kind: Kind,
        factors: Factors,
        peer: &Peer,
    ) -> Result<Started, Error> {
        let (lifetime, remember, read_only, refreshable) = match kind {
            Kind::Browser { remember: true } => (self.remember_lifetime, true, false, true),
            Kind::Browser { remember: false } => (self.lifetime, false, false, true),
            Kind::Api {
                read_only,
                refreshable: true,
            } => (self.lifetime, false, read_only, true),
            Kind::Api {
                read_only,
                refreshable: false,
            } => (
                Duration::seconds(self.tokens.ttl_secs()),
                false,
                read_only,
                false,
            ),
        };
        let now = self.clock.db_now();
        let mut session = Session::new(
            &user.id,
            now,
            lifetime,
            remember,
            &peer.user_agent,
            &peer.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        );
        session.two_factor = factors.two_factor;
        session.passkey = factors.passkey;
        if !refreshable && matches!(kind, Kind::Api { .. }) {
            // Made from an API key: a key is not a proof of the person.
            session.authenticated_at = None;
        }
        let refresh = refreshable.then(new_refresh_value);
        let row = session.clone();
        let hash = refresh.as_deref().map(RefreshToken::hash);
        self.db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    row.insert(conn)?;
                    if let Some(hash) = hash {
                        RefreshToken::insert(conn, &hash, &row.id, now)?;
                    }
                    Ok(())
                })
            })
            .await?;
        self.remember_name(user);
        self.token_for(user, session, read_only, refresh)
    }

    /// A fresh access token for `user` in `session`; it says what the session's sign-in passed
    /// and never outlives the session.
    fn token_for(
        &self,
        user: &User,
        session: Session,
        read_only: bool,
        refresh: Option<String>,
    ) -> Result<Started, Error> {
        let auth_time = session
            .authenticated_at
            .map(|t| t.assume_utc().unix_timestamp());
        let subject = Subject::of(user, &session.id, read_only)
            .with_two_factor(session.two_factor)
            .with_passkey(session.passkey)
            .with_auth_time(auth_time)
            .with_email_unverified(self.verification_required && user.email_verified_at.is_none());
        let (token, claims) =
            self.tokens
                .issue(&subject, self.clock.now(), session.expires_at.assume_utc())?;
        Ok(Started {
            session,
            token,
            claims,
            refresh,
        })
    }

    /// Records a fresh proof of the person for session `sid` of `user_id` (sudo mode; with
    /// `second_factor`, a proof that included a two-factor code, which makes the session a
    /// two-factor one) and returns a new access token carrying it (`auth_time`, `amr`); `None`
    /// when the session is over or the user is gone or disabled. The refresh value stays.
    pub async fn reauthenticate(
        &self,
        sid: &str,
        user_id: &str,
        second_factor: bool,
    ) -> Result<Option<Started>, Error> {
        let (sid, user_id, now) = (sid.to_string(), user_id.to_string(), self.clock.db_now());
        let found = self
            .db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    if !Session::reauthenticate(conn, &sid, now, second_factor)? {
                        return Ok(None);
                    }
                    let session = Session::find(conn, &sid)?.filter(|s| s.user_id == user_id);
                    let user = User::find(conn, &user_id)?.filter(|u| !u.disabled);
                    Ok(session.zip(user))
                })
            })
            .await?;
        match found {
            Some((session, user)) => Ok(Some(self.token_for(&user, session, false, None)?)),
            None => Ok(None),
        }
    }

    /// A new access token for session `sid` of `user_id` that says what the user row says now
    /// (after the address was verified or changed in this browser); `None` when the session is
    /// over or the user is gone or disabled. The refresh value stays; nothing is stamped.
    pub async fn reissue(&self, sid: &str, user_id: &str) -> Result<Option<Started>, Error> {
        let (sid, user_id, now, idle) = (
            sid.to_string(),
            user_id.to_string(),
            self.clock.db_now(),
            self.idle_timeout,
        );
        let found = self
            .db
            .run(move |conn| {
                let session = Session::find(conn, &sid)?
                    .filter(|s| s.user_id == user_id && s.is_live(now, idle));
                let user = User::find(conn, &user_id)?.filter(|u| !u.disabled);
                Ok(session.zip(user))
            })
            .await?;
        match found {
            Some((session, user)) => Ok(Some(self.token_for(&user, session, false, None)?)),
            None => Ok(None),
        }
    }

    /// Puts a started session's access token in the session cookie, and its refresh value (when
    /// it has a new one) in the refresh cookie; both persistent only with "remember me".
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
        if let Some(refresh) = &started.refresh {
            jar.add(
                self.cookies
                    .make(CookieKind::Refresh, refresh.clone(), max_age),
            );
        }
    }

    /// Continues a session from a refresh value (the browser's cookie, or an API client's
    /// `refresh_token`): rotates it when it is the session's current one, renews the access
    /// token alone inside the grace for parallel tabs, and ends the session when a value
    /// replaced longer ago comes back (theft). The session must be live and its user present
    /// and enabled. Tokens made from it are never read-only: only API-key tokens are, and
    /// those have no refresh value.
    /// A reuse is audited (`refresh_reuse`, about the session's user, from `peer`) in the same
    /// transaction that ends the session.
    pub async fn refresh(&self, value: &str, peer: &Peer) -> Result<Refresh, Error> {
        if value.len() > MAX_REFRESH_BYTES || !value.starts_with(REFRESH_PREFIX) {
            return Ok(Refresh::Invalid);
        }
        let hash = RefreshToken::hash(value);
        let next = new_refresh_value();
        let next_hash = RefreshToken::hash(&next);
        let (now, idle, grace) = (self.clock.db_now(), self.idle_timeout, self.refresh_grace);
        let (event_peer, clock) = (peer.clone(), self.clock.clone());
        let outcome = self
            .db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    // The conditional update comes first, so on SQLite the transaction takes the
                    // write lock before it reads, and of two requests presenting the same
                    // current value exactly one rotates it.
                    let rotated = RefreshToken::supersede(conn, &hash, now)?;
                    let Some(row) = RefreshToken::find(conn, &hash)? else {
                        return Ok(Stored::Invalid);
                    };
                    let Some(session) = Session::find(conn, &row.session_id)? else {
                        return Ok(Stored::Invalid);
                    };
                    if session.stolen {
                        return Ok(Stored::Stolen);
                    }
                    let Some(user) = User::find(conn, &session.user_id)?.filter(|u| !u.disabled)
                    else {
                        return Ok(Stored::Invalid);
                    };
                    if !session.is_live(now, idle) {
                        return Ok(Stored::Invalid);
                    }
                    let replaced_at = row.superseded_at.unwrap_or(now);
                    if rotated {
                        RefreshToken::insert(conn, &next_hash, &session.id, now)?;
                        Session::touch(conn, &session.id, now)?;
                        Ok(Stored::Rotated(session, user))
                    } else if now - replaced_at <= grace {
                        Session::touch(conn, &session.id, now)?;
                        Ok(Stored::Parallel(session, user))
                    } else {
                        let ended = Session::end_as_stolen(conn, &session.id)?;
                        reuse_event(&event_peer, &user).store(conn, &clock)?;
                        Ok(Stored::Reused(user, ended))
                    }
                })
            })
            .await?;
        Ok(match outcome {
            Stored::Invalid => Refresh::Invalid,
            Stored::Stolen => Refresh::Stolen,
            Stored::Rotated(session, user) => {
                self.remember_name(&user);
                Refresh::Rotated(self.token_for(&user, session, false, Some(next))?, user)
            }
            Stored::Parallel(session, user) => {
                self.remember_name(&user);
                Refresh::Parallel(self.token_for(&user, session, false, None)?, user)
            }
            Stored::Reused(user, revoked) => {
                reuse_event(peer, &user).log();
                self.revocations
                    .add(&revoked.into_iter().collect::<Vec<_>>());
                Refresh::Reused
            }
        })
    }

    /// The username of a user id, from memory or (once per instance) the database; `None` when
    /// no enabled user has that id.
    pub async fn username(&self, user_id: &str) -> Result<Option<String>, Error> {
        if let Some(name) = self.names.read().ok().and_then(|n| n.get(user_id).cloned()) {
            return Ok(Some(name));
        }
        let uid = user_id.to_string();
        let user = self
            .db
            .run(move |conn| Ok(User::find(conn, &uid)?.filter(|u| !u.disabled)))
            .await?;
        Ok(user.map(|user| {
            self.remember_name(&user);
            user.username
        }))
    }

    fn remember_name(&self, user: &User) {
        if let Ok(mut names) = self.names.write() {
            if names.len() >= NAMES_MAX {
                names.clear();
            }
            if !names.contains_key(&user.id) {
                names.insert(user.id.clone(), user.username.clone());
            }
        }
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

    /// Ends every session of a user except `keep` and revokes every API key of theirs, in one
    /// transaction; returns how many sessions ended and the keys revoked.
    pub async fn end_all_with_keys(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<(usize, Vec<ApiKey>), Error> {
        let (uid, keep, now) = (
            user_id.to_string(),
            keep.map(str::to_string),
            self.clock.db_now(),
        );
        let (revoked, keys) = self
            .db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    let revoked = Session::revoke_all_for_user(conn, &uid, keep.as_deref())?;
                    let keys = ApiKey::revoke_all_for_user(conn, &uid, now)?;
                    Ok((revoked, keys))
                })
            })
            .await?;
        self.revocations.add(&revoked);
        Ok((revoked.len(), keys))
    }

    /// Deletes an account ([`User::delete_with_trail`]: one transaction) and makes its sessions
    /// refused at once here (every other instance reads them within a second) and its name
    /// forgotten, so nothing remembered about it outlives it. The one way an account is deleted,
    /// by its owner or an admin. `LastAdmin` when it is the last active admin.
    pub async fn delete_account(
        &self,
        user_id: &str,
        by: DeletedBy,
    ) -> Result<DeletedAccount, Error> {
        let (uid, now) = (user_id.to_string(), self.clock.db_now());
        let deleted = self
            .db
            .run(move |conn| User::delete_with_trail(conn, &uid, now, &by))
            .await?;
        self.revocations.add(&deleted.sessions);
        self.forget_name(user_id);
        Ok(deleted)
    }

    /// Forgets the username remembered for a user id (a deleted account).
    fn forget_name(&self, user_id: &str) {
        if let Ok(mut names) = self.names.write() {
            names.remove(user_id);
        }
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

    /// Clears the session and refresh cookies.
    pub fn clear_cookie(&self, jar: &CookieJar<'_>) {
        jar.remove(self.cookies.removal(CookieKind::Session));
        jar.remove(self.cookies.removal(CookieKind::Refresh));
    }
}

/// The audit event of a refresh value that came back after it was replaced.
fn reuse_event<'a>(peer: &'a Peer, user: &'a User) -> Event<'a> {
    Event::new(AuditKind::RefreshReuse, peer)
        .subject(Who::user(&user.id, &user.username))
        .detail("a replaced refresh value came back; the session was ended")
}

/// What the refresh transaction found, before tokens are signed.
enum Stored {
    Rotated(Session, User),
    Parallel(Session, User),
    Reused(User, Option<RevokedSession>),
    Stolen,
    Invalid,
}
