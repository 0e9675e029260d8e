//! Failed sign-ins, counted in the database so every instance shares them: `login_attempts`.
//! Keyed by user id for real accounts (and `reset:<id>` for codes on the reset page) and by the typed name otherwise, so unknown names are
//! locked out exactly like real ones and the answer never tells them apart.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use time::{Duration, PrimitiveDateTime};

use crate::db::schema::login_attempts;
use crate::db::DbConnection;
use crate::error::Error;

/// After this long without a failure, the lockout level starts again from the first step.
const LEVEL_FORGOTTEN_AFTER: Duration = Duration::days(1);

/// A row of `login_attempts`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_attempts)]
pub struct LoginAttempt {
    /// `user:<id>` or `name:<lower-cased login>`.
    pub login_key: String,
    /// Failures in a row since the last success or lockout.
    pub failures: i32,
    /// Lockouts so far; picks the next, longer, lockout.
    pub lockouts: i32,
    /// Refused until then.
    pub locked_until: Option<PrimitiveDateTime>,
    /// The latest failure.
    pub last_failure_at: PrimitiveDateTime,
}

/// How lockouts grow.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Failures in a row that lock the account.
    pub threshold: i32,
    /// Lock durations, one per lockout; the last repeats.
    pub steps: Vec<Duration>,
}

impl LoginAttempt {
    /// The key for an existing account.
    pub fn key_for_user(user_id: &str) -> String {
        format!("user:{user_id}")
    }

    /// The key counting wrong two-factor codes on an account's reset page: its own, so a
    /// sign-in lockout never blocks a reset (the mailbox is proof enough to clear that) and a
    /// reset link never gives more guesses at the code than sign-in does.
    pub fn key_for_reset(user_id: &str) -> String {
        format!("reset:{user_id}")
    }

    /// The key for a name that matches no account.
    pub fn key_for_name(login: &str) -> String {
        format!("name:{}", login.trim().to_lowercase())
    }

    /// The row for `key`, if any.
    pub fn find(conn: &mut DbConnection, key: &str) -> Result<Option<LoginAttempt>, Error> {
        Ok(login_attempts::table
            .filter(login_attempts::login_key.eq(key))
            .select(LoginAttempt::as_select())
            .first(conn)
            .optional()?)
    }

    /// Until when `key` is locked, if it is locked at `now`.
    pub fn locked_until(
        conn: &mut DbConnection,
        key: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<PrimitiveDateTime>, Error> {
        Ok(LoginAttempt::find(conn, key)?
            .and_then(|row| row.locked_until)
            .filter(|until| *until > now))
    }

    /// Counts a failure; returns the lock's end when this failure locks the key.
    pub fn record_failure(
        conn: &mut DbConnection,
        key: &str,
        now: PrimitiveDateTime,
        policy: &LockoutPolicy,
    ) -> Result<Option<PrimitiveDateTime>, Error> {
        conn.write_transaction(|conn| {
            // Write first: it takes the row (PostgreSQL) or the writer lock (SQLite), so
            // failures counted by several instances at once add up.
            let bumped =
                diesel::update(login_attempts::table.filter(login_attempts::login_key.eq(key)))
                    .set((
                        login_attempts::failures.eq(login_attempts::failures + 1),
                        login_attempts::last_failure_at.eq(now),
                    ))
                    .execute(conn)?;
            if bumped == 0 {
                let row = LoginAttempt {
                    login_key: key.to_string(),
                    failures: 1,
                    lockouts: 0,
                    locked_until: None,
                    last_failure_at: now,
                };
                // A savepoint, so a concurrent first insert does not abort the transaction.
                let inserted = conn.write_transaction(|conn| {
                    diesel::insert_into(login_attempts::table)
                        .values(&row)
                        .execute(conn)
                });
                match inserted {
                    Ok(_) => {}
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                        diesel::update(
                            login_attempts::table.filter(login_attempts::login_key.eq(key)),
                        )
                        .set(login_attempts::failures.eq(login_attempts::failures + 1))
                        .execute(conn)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(row) = LoginAttempt::find(conn, key)? else {
                return Ok(None);
            };
            if row.failures < policy.threshold {
                return Ok(None);
            }
            // A lock that ended long ago no longer makes the next one longer.
            let level = if row
                .locked_until
                .is_some_and(|u| now - u > LEVEL_FORGOTTEN_AFTER)
            {
                0
            } else {
                row.lockouts.max(0)
            };
            let step = (level as usize).min(policy.steps.len().saturating_sub(1));
            let until = now
                + policy
                    .steps
                    .get(step)
                    .copied()
                    .unwrap_or(Duration::minutes(1));
            diesel::update(login_attempts::table.filter(login_attempts::login_key.eq(key)))
                .set((
                    login_attempts::failures.eq(0),
                    login_attempts::lockouts.eq(level + 1),
                    login_attempts::locked_until.eq(Some(until)),
                ))
                .execute(conn)?;
            Ok(Some(until))
        })
    }

    /// Forgets the failures of `key` (a successful sign-in, or an admin's unlock).
    pub fn clear(conn: &mut DbConnection, key: &str) -> Result<bool, Error> {
        Ok(
            diesel::delete(login_attempts::table.filter(login_attempts::login_key.eq(key)))
                .execute(conn)?
                > 0,
        )
    }
}
