//! Two-factor sign-in: the `two_factor` row of a user's authenticator app and their single-use
//! `recovery_codes`, with every query on them.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::{recovery_codes, two_factor};
use crate::db::DbConnection;
use crate::error::Error;

/// A user's authenticator app; `enabled_at` is `None` while the setup waits for its first code.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = two_factor)]
pub struct TwoFactor {
    /// The user.
    pub user_id: String,
    /// The shared secret as stored: sealed (`v1.<kid>.…`, see `auth::Seal`); open it
    /// before use.
    pub secret: String,
    /// When the setup began.
    pub created_at: PrimitiveDateTime,
    /// When the first code was accepted; from then on sign-in asks for a code.
    pub enabled_at: Option<PrimitiveDateTime>,
    /// The last 30-second step whose code was accepted (a code works once).
    pub last_step: i64,
}

impl TwoFactor {
    /// The user's row, enabled or still being set up.
    pub fn find(conn: &mut DbConnection, user_id: &str) -> Result<Option<TwoFactor>, Error> {
        Ok(two_factor::table
            .find(user_id)
            .select(TwoFactor::as_select())
            .first(conn)
            .optional()?)
    }

    /// The user's row if sign-in asks them for a code.
    pub fn enabled(conn: &mut DbConnection, user_id: &str) -> Result<Option<TwoFactor>, Error> {
        Ok(TwoFactor::find(conn, user_id)?.filter(|t| t.enabled_at.is_some()))
    }

    /// Starts (or restarts) a setup with `secret` (already sealed); refuses when two-factor is already on.
    /// Returns the row to show.
    pub fn begin_setup(
        conn: &mut DbConnection,
        user_id: &str,
        secret: &str,
        now: PrimitiveDateTime,
    ) -> Result<TwoFactor, Error> {
        conn.write_transaction(|conn| {
            if let Some(existing) = TwoFactor::find(conn, user_id)? {
                if existing.enabled_at.is_some() {
                    return Ok(existing);
                }
                diesel::delete(two_factor::table.find(user_id)).execute(conn)?;
            }
            diesel::insert_into(two_factor::table)
                .values((
                    two_factor::user_id.eq(user_id),
                    two_factor::secret.eq(secret),
                    two_factor::created_at.eq(now),
                    two_factor::last_step.eq(0i64),
                ))
                .execute(conn)?;
            TwoFactor::find(conn, user_id)?.ok_or(Error::NotFound)
        })
    }

    /// Turns two-factor on after the first good code (at `step`), with fresh recovery codes.
    /// False when there was no pending setup (another tab finished or cancelled it).
    pub fn enable(
        conn: &mut DbConnection,
        user_id: &str,
        step: i64,
        recovery_codes: &[String],
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        conn.write_transaction(|conn| {
            let n = diesel::update(
                two_factor::table
                    .find(user_id)
                    .filter(two_factor::enabled_at.is_null()),
            )
            .set((
                two_factor::enabled_at.eq(Some(now)),
                two_factor::last_step.eq(step),
            ))
            .execute(conn)?;
            if n == 0 {
                return Ok(false);
            }
            RecoveryCode::replace_all(conn, user_id, recovery_codes, now)?;
            Ok(true)
        })
    }

    /// Accepts the code of `step` once: false if that step (or a later one) was already used,
    /// on this instance or any other.
    pub fn accept_step(conn: &mut DbConnection, user_id: &str, step: i64) -> Result<bool, Error> {
        let n = diesel::update(
            two_factor::table
                .find(user_id)
                .filter(two_factor::enabled_at.is_not_null())
                .filter(two_factor::last_step.lt(step)),
        )
        .set(two_factor::last_step.eq(step))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Every stored secret, as `(user_id, secret)`, for re-encryption.
    pub fn stored_secrets(conn: &mut DbConnection) -> Result<Vec<(String, String)>, Error> {
        Ok(two_factor::table
            .select((two_factor::user_id, two_factor::secret))
            .load(conn)?)
    }

    /// Stores `new` as the user's secret if it still is `old` (so two instances re-encrypting at
    /// once do not overwrite each other, or a new setup); true if it was replaced.
    pub fn replace_secret(
        conn: &mut DbConnection,
        user_id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, Error> {
        let n = diesel::update(
            two_factor::table
                .find(user_id)
                .filter(two_factor::secret.eq(old)),
        )
        .set(two_factor::secret.eq(new))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Turns two-factor off and drops the recovery codes. True if it was on or being set up.
    pub fn remove(conn: &mut DbConnection, user_id: &str) -> Result<bool, Error> {
        conn.write_transaction(|conn| {
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
                .execute(conn)?;
            let n = diesel::delete(two_factor::table.find(user_id)).execute(conn)?;
            Ok(n > 0)
        })
    }
}

/// One single-use recovery code, stored as its SHA-256 (the codes are random, so a fast hash is
/// enough, as for API keys).
pub struct RecoveryCode;

impl RecoveryCode {
    /// The stored form of a code: spaces, dashes and letter case do not matter.
    pub fn hash(code: &str) -> String {
        let normal: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        crate::text::sha256_hex(&normal)
    }

    /// Replaces the user's codes with `codes`.
    pub fn replace_all(
        conn: &mut DbConnection,
        user_id: &str,
        codes: &[String],
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        conn.write_transaction(|conn| {
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
                .execute(conn)?;
            for code in codes {
                diesel::insert_into(recovery_codes::table)
                    .values((
                        recovery_codes::id.eq(uuid::Uuid::new_v4().to_string()),
                        recovery_codes::user_id.eq(user_id),
                        recovery_codes::code_hash.eq(RecoveryCode::hash(code)),
                        recovery_codes::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Uses up `code` if it is one of the user's unused codes; true if it was.
    pub fn redeem(
        conn: &mut DbConnection,
        user_id: &str,
        code: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let n = diesel::update(
            recovery_codes::table
                .filter(recovery_codes::user_id.eq(user_id))
                .filter(recovery_codes::code_hash.eq(RecoveryCode::hash(code)))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(Some(now)))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// How many unused codes the user has left.
    pub fn remaining(conn: &mut DbConnection, user_id: &str) -> Result<i64, Error> {
        Ok(recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(conn)?)
    }
}
