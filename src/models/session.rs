//! A sign-in: the `sessions` table. Tokens carry its id (`sid`); renewal and revocation go through it.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::ended_sessions;
use crate::db::schema::sessions;
use crate::db::DbConnection;
use crate::error::Error;

/// Longest user-agent string kept.
const MAX_USER_AGENT: usize = 512;

/// A row of `sessions`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Random id, the token's `sid`.
    pub id: String,
    /// Whose session.
    pub user_id: String,
    /// When the sign-in happened.
    pub created_at: PrimitiveDateTime,
    /// Last renewal (activity is recorded when the token is renewed).
    pub last_seen_at: PrimitiveDateTime,
    /// Absolute end: 12 hours, or 30 days with "remember me".
    pub expires_at: PrimitiveDateTime,
    /// "Remember me" was ticked: no idle timeout, a persistent cookie.
    pub remember: bool,
    /// The browser's User-Agent at sign-in (truncated).
    pub user_agent: String,
    /// The client address at sign-in.
    pub ip: String,
    /// When it was revoked, by the database's clock.
    pub revoked_at: Option<PrimitiveDateTime>,
    /// The sign-in passed two-factor (password and a code).
    pub two_factor: bool,
    /// Ended because a replaced refresh value came back (someone else held a copy).
    pub stolen: bool,
    /// When the owner last proved who they are (sign-in, or "Confirm it's you"); `None` for a
    /// session made from an API key, which never counts as a fresh proof.
    pub authenticated_at: Option<PrimitiveDateTime>,
    /// A passkey proved the sign-in (alone, or as the second factor): tokens say `hwk`.
    pub passkey: bool,
}

/// A revoked session as the revocation list needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// The `sid`.
    pub id: String,
    /// After this, no token of the session is valid anyway and the entry can go.
    pub expires_at: PrimitiveDateTime,
    /// Ended as stolen (refresh reuse), so its holder is told why.
    pub stolen: bool,
}

impl Session {
    /// A new session row, not yet stored.
    pub fn new(
        user_id: &str,
        now: PrimitiveDateTime,
        lifetime: time::Duration,
        remember: bool,
        user_agent: &str,
        ip: &str,
    ) -> Session {
        let bytes: [u8; 16] = rand::random();
        Session {
            id: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            user_id: user_id.to_string(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + lifetime,
            remember,
            user_agent: user_agent.chars().take(MAX_USER_AGENT).collect(),
            ip: ip.to_string(),
            revoked_at: None,
            two_factor: false,
            stolen: false,
            authenticated_at: Some(now),
            passkey: false,
        }
    }

    /// Records a fresh proof (sudo mode) for a live session — with `second_factor`, one that
    /// included a two-factor code, so the session now counts as a two-factor sign-in; whether
    /// there was one to update.
    pub fn reauthenticate(
        conn: &mut DbConnection,
        id: &str,
        now: PrimitiveDateTime,
        second_factor: bool,
    ) -> Result<bool, Error> {
        let live = sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now));
        if second_factor {
            diesel::update(live)
                .set(sessions::two_factor.eq(true))
                .execute(conn)?;
        }
        let updated = diesel::update(live)
            .set(sessions::authenticated_at.eq(Some(now)))
            .execute(conn)?;
        Ok(updated == 1)
    }

    /// Stores a new session.
    pub fn insert(&self, conn: &mut DbConnection) -> Result<(), Error> {
        diesel::insert_into(sessions::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// Looks a session up by id.
    pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Session>, Error> {
        Ok(sessions::table
            .filter(sessions::id.eq(id))
            .select(Session::as_select())
            .first(conn)
            .optional()?)
    }

    /// Records activity (at renewal).
    pub fn touch(conn: &mut DbConnection, id: &str, now: PrimitiveDateTime) -> Result<(), Error> {
        diesel::update(sessions::table.filter(sessions::id.eq(id)))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
        Ok(())
    }

    /// Whether the session may still be used at `now`.
    pub fn is_live(&self, now: PrimitiveDateTime, idle_timeout: time::Duration) -> bool {
        self.revoked_at.is_none()
            && now < self.expires_at
            && (self.remember || now - self.last_seen_at <= idle_timeout)
    }

    /// Revokes one session of `user_id` (or of anyone when `user_id` is `None`); returns it if
    /// it was live.
    pub fn revoke(
        conn: &mut DbConnection,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<RevokedSession>, Error> {
        let mut query = sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::revoked_at.is_null())
            .into_boxed();
        if let Some(user_id) = user_id {
            query = query.filter(sessions::user_id.eq(user_id));
        }
        let Some(session) = query.select(Session::as_select()).first(conn).optional()? else {
            return Ok(None);
        };
        diesel::update(sessions::table.filter(sessions::id.eq(id)))
            .set(sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
        Ok(Some(RevokedSession {
            id: session.id,
            expires_at: session.expires_at,
            stolen: false,
        }))
    }

    /// Ends a live session because a replaced refresh value came back; returns it if it was live.
    pub fn end_as_stolen(
        conn: &mut DbConnection,
        id: &str,
    ) -> Result<Option<RevokedSession>, Error> {
        let ended = diesel::update(
            sessions::table
                .filter(sessions::id.eq(id))
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(diesel::dsl::now),
            sessions::stolen.eq(true),
        ))
        .returning((sessions::id, sessions::expires_at))
        .get_result::<(String, PrimitiveDateTime)>(conn)
        .optional()?;
        Ok(ended.map(|(id, expires_at)| RevokedSession {
            id,
            expires_at,
            stolen: true,
        }))
    }

    /// Revokes every live session of a user, except `keep`; returns those revoked.
    pub fn revoke_all_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<RevokedSession>, Error> {
        conn.write_transaction(|conn| {
            let live: Vec<(String, PrimitiveDateTime)> = sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::id.ne(keep.unwrap_or("")))
                .select((sessions::id, sessions::expires_at))
                .load(conn)?;
            let ids: Vec<&str> = live.iter().map(|(id, _)| id.as_str()).collect();
            if !ids.is_empty() {
                diesel::update(sessions::table.filter(sessions::id.eq_any(&ids)))
                    .set(sessions::revoked_at.eq(diesel::dsl::now))
                    .execute(conn)?;
            }
            Ok(live
                .into_iter()
                .map(|(id, expires_at)| RevokedSession {
                    id,
                    expires_at,
                    stolen: false,
                })
                .collect())
        })
    }

    /// Every session row of a user, ended ones included, newest first (a user's export).
    pub fn all_for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<Session>, Error> {
        Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .order(sessions::created_at.desc())
            .select(Session::as_select())
            .load(conn)?)
    }

    /// A user's sessions that are not revoked and not past their absolute expiry, newest first.
    pub fn active_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<Vec<Session>, Error> {
        Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .order(sessions::last_seen_at.desc())
            .select(Session::as_select())
            .load(conn)?)
    }

    /// The database's current time (revocations are stamped and read by it, so instances whose
    /// clocks differ still see each other's revocations).
    pub fn database_now(conn: &mut DbConnection) -> Result<PrimitiveDateTime, Error> {
        Ok(diesel::select(diesel::dsl::now).get_result(conn)?)
    }

    /// Sessions revoked at or after `since` (all still-unexpired revoked ones when `None`).
    pub fn revoked_since(
        conn: &mut DbConnection,
        since: Option<PrimitiveDateTime>,
        now: PrimitiveDateTime,
    ) -> Result<Vec<RevokedSession>, Error> {
        let query = sessions::table.filter(sessions::revoked_at.is_not_null());
        let rows: Vec<(String, PrimitiveDateTime, bool)> = match since {
            Some(since) => query
                .filter(sessions::revoked_at.ge(since))
                .select((sessions::id, sessions::expires_at, sessions::stolen))
                .load(conn)?,
            None => query
                .filter(sessions::expires_at.gt(now))
                .select((sessions::id, sessions::expires_at, sessions::stolen))
                .load(conn)?,
        };
        // Sessions of deleted accounts: their rows are gone, their ids are kept here.
        let ended = ended_sessions::table.into_boxed();
        let ended = match since {
            Some(since) => ended.filter(ended_sessions::ended_at.ge(since)),
            None => ended.filter(ended_sessions::expires_at.gt(now)),
        };
        let ended: Vec<(String, PrimitiveDateTime)> = ended
            .select((ended_sessions::id, ended_sessions::expires_at))
            .load(conn)?;
        let rows = rows.into_iter().chain(
            ended
                .into_iter()
                .map(|(id, expires_at)| (id, expires_at, false)),
        );
        Ok(rows
            .map(|(id, expires_at, stolen)| RevokedSession {
                id,
                expires_at,
                stolen,
            })
            .collect())
    }

    /// Deletes sessions that ended more than a day ago (and the ids kept of deleted accounts'
    /// sessions); returns how many.
    pub fn prune(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<usize, Error> {
        let before = now - time::Duration::days(1);
        let ended =
            diesel::delete(ended_sessions::table.filter(ended_sessions::expires_at.lt(before)))
                .execute(conn)?;
        Ok(ended
            + diesel::delete(sessions::table.filter(sessions::expires_at.lt(before)))
                .execute(conn)?)
    }

    /// Keeps the ids of every unexpired session of `user_id`, before the account (and with it
    /// the session rows) is deleted, so every instance's revocation list still learns of them;
    /// returns them as revoked sessions.
    pub fn keep_ended_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<Vec<RevokedSession>, Error> {
        let rows: Vec<(String, PrimitiveDateTime)> = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now))
            .select((sessions::id, sessions::expires_at))
            .load(conn)?;
        for (id, expires_at) in &rows {
            diesel::insert_into(ended_sessions::table)
                .values((
                    ended_sessions::id.eq(id),
                    ended_sessions::expires_at.eq(expires_at),
                    ended_sessions::ended_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
        }
        Ok(rows
            .into_iter()
            .map(|(id, expires_at)| RevokedSession {
                id,
                expires_at,
                stolen: false,
            })
            .collect())
    }
}
