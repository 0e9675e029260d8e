//! API keys: `api_keys`. A key is `lk_` plus 32 random bytes; only its SHA-256 is stored (the key
//! is random, so a fast hash is enough), with a short prefix to recognise it by.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::api_keys;
use crate::db::DbConnection;
use crate::error::Error;

/// Characters of the key shown after creation.
const PREFIX_LEN: usize = 10;

/// What a key's tokens may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// GET requests only.
    Read,
    /// Whatever the owner's role allows.
    Full,
}

impl KeyScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Full => "full",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<KeyScope> {
        match s {
            "read" => Some(KeyScope::Read),
            "full" => Some(KeyScope::Full),
            _ => None,
        }
    }
}

/// A row of `api_keys`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    /// Row id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// What it is for.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// SHA-256 of the whole key, hex.
    pub key_hash: String,
    /// `read` or `full`.
    pub scope: String,
    /// When it was made.
    pub created_at: PrimitiveDateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<PrimitiveDateTime>,
    /// Last exchange for a token.
    pub last_used_at: Option<PrimitiveDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<PrimitiveDateTime>,
}

fn hash(key: &str) -> String {
    crate::text::sha256_hex(key)
}

impl ApiKey {
    /// A new key for `user_id`: the row to store and the secret to show once.
    pub fn generate(
        user_id: &str,
        name: &str,
        scope: KeyScope,
        now: PrimitiveDateTime,
        expires_at: Option<PrimitiveDateTime>,
    ) -> (ApiKey, String) {
        let secret = format!("lk_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let row = ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: secret.chars().take(PREFIX_LEN).collect(),
            key_hash: hash(&secret),
            scope: scope.as_str().to_string(),
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        (row, secret)
    }

    /// The stored scope.
    pub fn scope(&self) -> KeyScope {
        KeyScope::parse(&self.scope).unwrap_or(KeyScope::Read)
    }

    /// `active`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: PrimitiveDateTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }

    /// Stores a new key.
    pub fn insert(&self, conn: &mut DbConnection) -> Result<(), Error> {
        diesel::insert_into(api_keys::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// The usable key matching `secret` (not revoked, not expired), stamping its last use.
    pub fn redeem(
        conn: &mut DbConnection,
        secret: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<ApiKey>, Error> {
        let Some(key) = api_keys::table
            .filter(api_keys::key_hash.eq(hash(secret)))
            .select(ApiKey::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        if key.status(now) != "active" {
            return Ok(None);
        }
        diesel::update(api_keys::table.filter(api_keys::id.eq(&key.id)))
            .set(api_keys::last_used_at.eq(Some(now)))
            .execute(conn)?;
        Ok(Some(key))
    }

    /// A user's keys, newest first.
    pub fn for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<ApiKey>, Error> {
        Ok(api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .order(api_keys::created_at.desc())
            .select(ApiKey::as_select())
            .load(conn)?)
    }

    /// Revokes a key of `user_id`; returns it if it was not revoked already.
    pub fn revoke(
        conn: &mut DbConnection,
        id: &str,
        user_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<ApiKey>, Error> {
        let Some(key) = api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKey::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::revoked_at.eq(Some(now)))
            .execute(conn)?;
        Ok(Some(key))
    }

    /// Revokes every active key of `user_id` (log out everywhere, a password change, an
    /// admin ending their sessions, disabling them, a two-factor reset); returns the keys it
    /// revoked.
    pub fn revoke_all_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<Vec<ApiKey>, Error> {
        let active = api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKey::as_select())
            .load(conn)?;
        diesel::update(
            api_keys::table
                .filter(api_keys::user_id.eq(user_id))
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(Some(now)))
        .execute(conn)?;
        Ok(active)
    }

    /// What the audit trail says about this key when it is revoked for `cause`.
    pub fn revoked_detail(&self, cause: &str) -> String {
        format!("{} {}, {cause}", self.prefix, self.name)
    }
}
