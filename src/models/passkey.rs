//! Passkeys: `passkeys`. Each row is one WebAuthn credential of one account: webauthn-rs's record
//! of it (public key, signature counter, flags) as JSON, found by its credential id.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::passkeys;
use crate::db::DbConnection;
use crate::error::Error;

/// Most passkeys one account may hold.
pub const MAX_PASSKEYS: usize = 20;

/// A row of `passkeys`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct Passkey {
    /// Row id (in the page's links).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The credential id, base64url: unique across all accounts.
    pub credential_id: String,
    /// The owner's name for it ("Phone", "YubiKey").
    pub name: String,
    /// webauthn-rs's `Passkey`, JSON.
    pub passkey: String,
    /// When it was registered.
    pub created_at: PrimitiveDateTime,
    /// When it last signed in (or passed a second-factor step).
    pub last_used_at: Option<PrimitiveDateTime>,
}

/// The base64url form of a raw credential id, as stored.
pub fn credential_id_text(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

impl Passkey {
    /// A new row for `user_id`, not yet stored.
    pub fn new(
        user_id: &str,
        credential_id: &[u8],
        name: &str,
        passkey: String,
        now: PrimitiveDateTime,
    ) -> Passkey {
        Passkey {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            credential_id: credential_id_text(credential_id),
            name: name.to_string(),
            passkey,
            created_at: now,
            last_used_at: None,
        }
    }

    /// Stores it unless the account already holds [`MAX_PASSKEYS`]; `false` then. A credential
    /// id already stored (for any account) is a unique violation, the caller's refusal.
    pub fn insert_within_limit(&self, conn: &mut DbConnection) -> Result<bool, Error> {
        conn.write_transaction(|conn| {
            if Passkey::for_user(conn, &self.user_id)?.len() >= MAX_PASSKEYS {
                return Ok(false);
            }
            diesel::insert_into(passkeys::table)
                .values(self)
                .execute(conn)?;
            Ok(true)
        })
    }

    /// The account's passkeys, oldest first.
    pub fn for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<Passkey>, Error> {
        Ok(passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .order((passkeys::created_at.asc(), passkeys::id.asc()))
            .select(Passkey::as_select())
            .load(conn)?)
    }

    /// Whether the account holds any passkey.
    pub fn any_for_user(conn: &mut DbConnection, user_id: &str) -> Result<bool, Error> {
        Ok(diesel::select(diesel::dsl::exists(
            passkeys::table.filter(passkeys::user_id.eq(user_id)),
        ))
        .get_result(conn)?)
    }

    /// The passkey with this raw credential id, whoever owns it.
    pub fn find_by_credential(
        conn: &mut DbConnection,
        credential_id: &[u8],
    ) -> Result<Option<Passkey>, Error> {
        Ok(passkeys::table
            .filter(passkeys::credential_id.eq(credential_id_text(credential_id)))
            .select(Passkey::as_select())
            .first(conn)
            .optional()?)
    }

    /// One of the account's passkeys by row id (`None` for another account's).
    pub fn find_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        id: &str,
    ) -> Result<Option<Passkey>, Error> {
        Ok(passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id))
            .select(Passkey::as_select())
            .first(conn)
            .optional()?)
    }

    /// Renames one of the account's passkeys; whether it was theirs.
    pub fn rename(
        conn: &mut DbConnection,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, Error> {
        let updated = diesel::update(
            passkeys::table
                .filter(passkeys::id.eq(id))
                .filter(passkeys::user_id.eq(user_id)),
        )
        .set(passkeys::name.eq(name))
        .execute(conn)?;
        Ok(updated == 1)
    }

    /// Removes one of the account's passkeys: from now on it signs nobody in. Its name, if it
    /// was theirs.
    pub fn remove(
        conn: &mut DbConnection,
        user_id: &str,
        id: &str,
    ) -> Result<Option<String>, Error> {
        conn.write_transaction(|conn| {
            let Some(found) = Passkey::find_for_user(conn, user_id, id)? else {
                return Ok(None);
            };
            diesel::delete(passkeys::table.filter(passkeys::id.eq(id))).execute(conn)?;
            Ok(Some(found.name))
        })
    }

    /// Records a sign-in with it: the time, and webauthn-rs's record when it changed (a higher
    /// signature counter, new backup flags). `false` when the passkey was removed meanwhile.
    pub fn record_use(
        conn: &mut DbConnection,
        id: &str,
        updated: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let row = passkeys::table.filter(passkeys::id.eq(id));
        let n = match updated {
            Some(json) => diesel::update(row)
                .set((
                    passkeys::last_used_at.eq(Some(now)),
                    passkeys::passkey.eq(json),
                ))
                .execute(conn)?,
            None => diesel::update(row)
                .set(passkeys::last_used_at.eq(Some(now)))
                .execute(conn)?,
        };
        Ok(n == 1)
    }
}
