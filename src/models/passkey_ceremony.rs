//! Passkey ceremonies between their two steps: `passkey_ceremonies`. The first step stores what
//! the server expects (webauthn-rs's state: the challenge and the allowed credentials); the
//! second takes it out — deleted as it is read, so a challenge answers once, on any instance —
//! and refuses it after five minutes.

use diesel::prelude::*;
use time::{Duration, PrimitiveDateTime};

use crate::db::schema::passkey_ceremonies;
use crate::db::DbConnection;
use crate::error::Error;

/// How long the browser has between the two steps (webauthn-rs's own timeout).
pub const CEREMONY_TTL: Duration = Duration::minutes(5);

/// What a ceremony is for; a state made for one never finishes another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Adding a passkey to a signed-in account.
    Register,
    /// Signing in with a passkey and no name typed.
    SignIn,
    /// A passkey as the second factor after the password.
    SecondFactor,
    /// "Confirm it's you" (sudo mode) with a passkey.
    Confirm,
}

impl CeremonyPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyPurpose::Register => "register",
            CeremonyPurpose::SignIn => "sign_in",
            CeremonyPurpose::SecondFactor => "second_factor",
            CeremonyPurpose::Confirm => "confirm",
        }
    }
}

/// A ceremony taken out for its second step.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The account it was begun for (`None` for a sign-in with no name typed).
    pub user_id: Option<String>,
    /// webauthn-rs's state, JSON.
    pub state: String,
}

/// A row of `passkey_ceremonies`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkey_ceremonies)]
struct CeremonyRow {
    id: String,
    purpose: String,
    user_id: Option<String>,
    state: String,
    expires_at: PrimitiveDateTime,
}

/// Stores a ceremony's first step; its id (random, 128 bits) goes to the browser.
pub fn begin(
    conn: &mut DbConnection,
    purpose: CeremonyPurpose,
    user_id: Option<&str>,
    state: String,
    now: PrimitiveDateTime,
) -> Result<String, Error> {
    let row = CeremonyRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        purpose: purpose.as_str().to_string(),
        user_id: user_id.map(str::to_string),
        state,
        expires_at: now + CEREMONY_TTL,
    };
    diesel::insert_into(passkey_ceremonies::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.id)
}

/// Takes ceremony `id` out for its second step: `None` when it does not exist, was taken
/// already, is for another purpose or has expired. Whatever is found is deleted.
pub fn take(
    conn: &mut DbConnection,
    id: &str,
    purpose: CeremonyPurpose,
    now: PrimitiveDateTime,
) -> Result<Option<Ceremony>, Error> {
    conn.write_transaction(|conn| {
        let found: Option<CeremonyRow> = passkey_ceremonies::table
            .find(id)
            .select(CeremonyRow::as_select())
            .first(conn)
            .optional()?;
        let Some(row) = found else {
            return Ok(None);
        };
        let deleted = diesel::delete(passkey_ceremonies::table.find(id)).execute(conn)?;
        if deleted != 1 || row.purpose != purpose.as_str() || row.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Ceremony {
            user_id: row.user_id,
            state: row.state,
        }))
    })
}

/// Deletes ceremonies that expired (the background pruner).
pub fn prune(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<usize, Error> {
    Ok(
        diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::expires_at.le(now)))
            .execute(conn)?,
    )
}
