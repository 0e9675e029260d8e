//! Refresh values: the `refresh_tokens` table. A session's refresh value rotates at every renewal;
//! each value is stored only as its SHA-256 hash, and superseded ones are kept (marked) until the
//! session is pruned, so one presented again is recognised.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::refresh_tokens;
use crate::db::DbConnection;
use crate::error::Error;

/// A row of `refresh_tokens`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    /// SHA-256 of the value, hex.
    pub token_hash: String,
    /// The session it continues.
    pub session_id: String,
    /// When it was handed out.
    pub issued_at: PrimitiveDateTime,
    /// When a newer value replaced it; `None` while it is the session's current one.
    pub superseded_at: Option<PrimitiveDateTime>,
}

impl RefreshToken {
    /// How a refresh value is stored: its SHA-256, hex (the value itself never is).
    pub fn hash(value: &str) -> String {
        crate::text::sha256_hex(value)
    }

    /// Stores a new current value for a session.
    pub fn insert(
        conn: &mut DbConnection,
        token_hash: &str,
        session_id: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        diesel::insert_into(refresh_tokens::table)
            .values(RefreshToken {
                token_hash: token_hash.to_string(),
                session_id: session_id.to_string(),
                issued_at: now,
                superseded_at: None,
            })
            .execute(conn)?;
        Ok(())
    }

    /// The row with this hash, if any.
    pub fn find(conn: &mut DbConnection, token_hash: &str) -> Result<Option<RefreshToken>, Error> {
        Ok(refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()?)
    }

    /// Marks a current value as replaced. `false` when it already was (another request, perhaps
    /// on another instance, rotated it first): the update is conditional, so only one wins.
    pub fn supersede(
        conn: &mut DbConnection,
        token_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let updated = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(token_hash))
                .filter(refresh_tokens::superseded_at.is_null()),
        )
        .set(refresh_tokens::superseded_at.eq(now))
        .execute(conn)?;
        Ok(updated == 1)
    }
}
