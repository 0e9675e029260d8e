//! Browsers that signed in to an account (OWASP's "device cookies"): `trusted_devices`. The
//! device cookie names the account and a row's nonce; while the row is trusted, attempts from
//! that browser are judged only by the row's own failure counter, so strangers who lock the
//! account out do not lock its owner out. Stored in the database so every instance agrees.

use diesel::prelude::*;
use time::{Duration, PrimitiveDateTime};

use crate::db::schema::trusted_devices;
use crate::db::DbConnection;
use crate::error::Error;

/// A row of `trusted_devices`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = trusted_devices)]
pub struct TrustedDevice {
    /// The random value the device cookie carries (URL-safe base64 of 32 bytes).
    pub nonce: String,
    /// The account the browser signed in to.
    pub user_id: String,
    /// When trust was granted.
    pub created_at: PrimitiveDateTime,
    /// When the cookie (and the row) ends.
    pub expires_at: PrimitiveDateTime,
    /// Failed sign-ins from this device in the current window.
    pub failures: i32,
    /// Start of the current failure window.
    pub window_start: Option<PrimitiveDateTime>,
    /// When the device lost its trust (too many failures of its own).
    pub revoked_at: Option<PrimitiveDateTime>,
}

/// How many failures a trusted device may make, and over how long.
#[derive(Debug, Clone, Copy)]
pub struct DevicePolicy {
    /// Failures within `window` that end the device's trust.
    pub limit: i32,
    /// The failure window.
    pub window: Duration,
}

impl TrustedDevice {
    /// Every device row of a user, newest first (a user's export).
    pub fn for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<TrustedDevice>, Error> {
        Ok(trusted_devices::table
            .filter(trusted_devices::user_id.eq(user_id))
            .order(trusted_devices::created_at.desc())
            .select(TrustedDevice::as_select())
            .load(conn)?)
    }

    /// Trusts a new device of `user_id` until `now + ttl`; returns its row.
    pub fn grant(
        conn: &mut DbConnection,
        user_id: &str,
        now: PrimitiveDateTime,
        ttl: Duration,
    ) -> Result<TrustedDevice, Error> {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        let row = TrustedDevice {
            nonce: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            user_id: user_id.to_string(),
            created_at: now,
            expires_at: now + ttl,
            failures: 0,
            window_start: None,
            revoked_at: None,
        };
        diesel::insert_into(trusted_devices::table)
            .values(&row)
            .execute(conn)?;
        Ok(row)
    }

    /// Whether `nonce` is a device of `user_id` still trusted at `now`.
    pub fn is_trusted(
        conn: &mut DbConnection,
        nonce: &str,
        user_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let found: i64 = trusted_devices::table
            .filter(trusted_devices::nonce.eq(nonce))
            .filter(trusted_devices::user_id.eq(user_id))
            .filter(trusted_devices::revoked_at.is_null())
            .filter(trusted_devices::expires_at.gt(now))
            .count()
            .get_result(conn)?;
        Ok(found > 0)
    }

    /// Counts a failure of device `nonce`; returns true when this failure ended its trust.
    pub fn record_failure(
        conn: &mut DbConnection,
        nonce: &str,
        now: PrimitiveDateTime,
        policy: DevicePolicy,
    ) -> Result<bool, Error> {
        let this = || trusted_devices::table.filter(trusted_devices::nonce.eq(nonce));
        conn.write_transaction(|conn| {
            // A window that ended starts again (this also takes the row's lock on PostgreSQL,
            // so failures counted by several instances at once add up).
            diesel::update(
                this().filter(
                    trusted_devices::window_start
                        .is_null()
                        .or(trusted_devices::window_start.le(now - policy.window)),
                ),
            )
            .set((
                trusted_devices::failures.eq(0),
                trusted_devices::window_start.eq(Some(now)),
            ))
            .execute(conn)?;
            diesel::update(this())
                .set(trusted_devices::failures.eq(trusted_devices::failures + 1))
                .execute(conn)?;
            let failures: Option<i32> = this()
                .select(trusted_devices::failures)
                .first(conn)
                .optional()?;
            if failures.unwrap_or(0) < policy.limit {
                return Ok(false);
            }
            let revoked = diesel::update(this().filter(trusted_devices::revoked_at.is_null()))
                .set(trusted_devices::revoked_at.eq(Some(now)))
                .execute(conn)?;
            Ok(revoked > 0)
        })
    }

    /// Device `nonce` signed in: forgets its failures and moves its end to `expires_at`.
    pub fn renew(
        conn: &mut DbConnection,
        nonce: &str,
        expires_at: PrimitiveDateTime,
    ) -> Result<(), Error> {
        diesel::update(trusted_devices::table.filter(trusted_devices::nonce.eq(nonce)))
            .set((
                trusted_devices::failures.eq(0),
                trusted_devices::window_start.eq(None::<PrimitiveDateTime>),
                trusted_devices::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// The row of `nonce`, if any.
    pub fn find(conn: &mut DbConnection, nonce: &str) -> Result<Option<TrustedDevice>, Error> {
        Ok(trusted_devices::table
            .filter(trusted_devices::nonce.eq(nonce))
            .select(TrustedDevice::as_select())
            .first(conn)
            .optional()?)
    }

    /// Deletes devices whose cookie has expired; returns how many.
    pub fn prune(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<usize, Error> {
        Ok(
            diesel::delete(trusted_devices::table.filter(trusted_devices::expires_at.lt(now)))
                .execute(conn)?,
        )
    }
}
