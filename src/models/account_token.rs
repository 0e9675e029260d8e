//! Single-use links: `account_tokens`, one row per link handed out (by mail or by an admin). The
//! link carries 32 random bytes; only their SHA-256 is stored, so a database dump opens nothing.
//! A token is used up by one conditional UPDATE, so two requests racing with the same link cannot
//! both succeed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use time::{Duration, PrimitiveDateTime};

use crate::db::schema::account_tokens;
use crate::db::DbConnection;
use crate::error::Error;

/// What a link is for; each kind is only ever accepted where it belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// "Forgot your password?" by mail (30 minutes).
    PasswordReset,
    /// A reset link an admin made for a user (24 hours).
    AdminReset,
    /// Proves the account's address (sign-up, resend).
    VerifyEmail,
    /// Confirms a new address, sent to it.
    EmailChange,
    /// Puts the old address back, sent to it after a change (7 days).
    EmailUndo,
    /// An invitation to sign up (7 days).
    Invitation,
}

impl TokenPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::AdminReset => "admin_reset",
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::EmailChange => "email_change",
            TokenPurpose::EmailUndo => "email_undo",
            TokenPurpose::Invitation => "invitation",
        }
    }
}

/// A row of `account_tokens`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_tokens)]
pub struct AccountToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// [`TokenPurpose::as_str`].
    pub purpose: String,
    /// The account the link acts on (none for an invitation).
    pub user_id: Option<String>,
    /// The address the link is about: the new one of a change, the old one of an undo, the invited.
    pub email: Option<String>,
    /// An invitation's role.
    pub role: Option<String>,
    /// The admin who made it (admin resets, invitations).
    pub created_by: Option<String>,
    /// When it was made.
    pub created_at: PrimitiveDateTime,
    /// After this it opens nothing.
    pub expires_at: PrimitiveDateTime,
    /// When it was used, or voided (a newer link, a password change).
    pub used_at: Option<PrimitiveDateTime>,
}

/// A link about to be handed out: the raw token (for the URL, never stored) and its row.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// URL-safe, 43 characters; goes into the link and nowhere else.
    pub raw: String,
    /// The row to insert.
    pub row: AccountToken,
}

/// What is known about the link being handed out.
#[derive(Debug, Clone, Default)]
pub struct TokenFor {
    /// The account it acts on.
    pub user_id: Option<String>,
    /// The address it is about.
    pub email: Option<String>,
    /// An invitation's role.
    pub role: Option<String>,
    /// The admin who made it.
    pub created_by: Option<String>,
}

/// SHA-256 of a raw token, hex; what is stored and looked up.
pub fn token_hash(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl AccountToken {
    /// A fresh random token for `purpose`, valid for `ttl` from `now` (not yet stored).
    pub fn issue(
        purpose: TokenPurpose,
        about: TokenFor,
        now: PrimitiveDateTime,
        ttl: Duration,
    ) -> IssuedToken {
        let bytes: [u8; 32] = rand::random();
        let raw = URL_SAFE_NO_PAD.encode(bytes);
        IssuedToken {
            row: AccountToken {
                token_hash: token_hash(&raw),
                purpose: purpose.as_str().to_string(),
                user_id: about.user_id,
                email: about.email,
                role: about.role,
                created_by: about.created_by,
                created_at: now,
                expires_at: now + ttl,
                used_at: None,
            },
            raw,
        }
    }

    /// Stores an issued token.
    pub fn insert(conn: &mut DbConnection, token: &IssuedToken) -> Result<(), Error> {
        diesel::insert_into(account_tokens::table)
            .values(&token.row)
            .execute(conn)?;
        Ok(())
    }

    /// The unused, unexpired token of `purpose` whose raw value is `raw`; `None` for anything
    /// else (unknown, used, voided, expired, another purpose, malformed).
    pub fn find_valid(
        conn: &mut DbConnection,
        purpose: TokenPurpose,
        raw: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<AccountToken>, Error> {
        if raw.is_empty() || raw.len() > 64 {
            return Ok(None);
        }
        Ok(account_tokens::table
            .filter(account_tokens::token_hash.eq(token_hash(raw)))
            .filter(account_tokens::purpose.eq(purpose.as_str()))
            .filter(account_tokens::used_at.is_null())
            .filter(account_tokens::expires_at.gt(now))
            .select(AccountToken::as_select())
            .first(conn)
            .optional()?)
    }

    /// Uses the token up; `false` when it was no longer valid (used, voided or expired meanwhile),
    /// so of two racing requests exactly one gets `true`.
    pub fn consume(
        conn: &mut DbConnection,
        token: &AccountToken,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let n = diesel::update(
            account_tokens::table
                .filter(account_tokens::token_hash.eq(&token.token_hash))
                .filter(account_tokens::used_at.is_null())
                .filter(account_tokens::expires_at.gt(now)),
        )
        .set(account_tokens::used_at.eq(Some(now)))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Voids every unused token of these purposes for the user (a newer link, a password change,
    /// an address change); returns how many.
    pub fn void_for_user(
        conn: &mut DbConnection,
        user_id: &str,
        purposes: &[TokenPurpose],
        now: PrimitiveDateTime,
    ) -> Result<usize, Error> {
        let names: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
        Ok(diesel::update(
            account_tokens::table
                .filter(account_tokens::user_id.eq(user_id))
                .filter(account_tokens::purpose.eq_any(names))
                .filter(account_tokens::used_at.is_null()),
        )
        .set(account_tokens::used_at.eq(Some(now)))
        .execute(conn)?)
    }

    /// Voids the user's unused tokens of `purpose` and stores `token` in their place: only the
    /// newest link of a kind works. Call it inside the transaction that hands the link out.
    pub fn replace(
        conn: &mut DbConnection,
        token: &IssuedToken,
        purpose: TokenPurpose,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        if let Some(user_id) = &token.row.user_id {
            AccountToken::void_for_user(conn, user_id, &[purpose], now)?;
        }
        AccountToken::insert(conn, token)
    }

    /// How many tokens of `purpose` were made for the user since `since`, used or not (the
    /// per-account cap on reset mails).
    pub fn issued_since(
        conn: &mut DbConnection,
        user_id: &str,
        purpose: TokenPurpose,
        since: PrimitiveDateTime,
    ) -> Result<i64, Error> {
        Ok(account_tokens::table
            .filter(account_tokens::user_id.eq(user_id))
            .filter(account_tokens::purpose.eq(purpose.as_str()))
            .filter(account_tokens::created_at.gt(since))
            .count()
            .get_result(conn)?)
    }

    /// Deletes every token about an address that names no account (account deletion: an
    /// invitation to the address carries it); returns how many.
    pub fn delete_for_address(conn: &mut DbConnection, address: &str) -> Result<usize, Error> {
        // Compared in Rust: SQLite's lower() folds ASCII only, PostgreSQL's follows the server
        // locale; the rows without an owner are few (invitations, "someone tried" notices).
        let address = address.to_lowercase();
        let rows: Vec<(String, Option<String>)> = account_tokens::table
            .filter(account_tokens::user_id.is_null())
            .filter(account_tokens::email.is_not_null())
            .select((account_tokens::token_hash, account_tokens::email))
            .load(conn)?;
        let mut n = 0;
        for (hash, email) in rows {
            if email.is_some_and(|e| e.to_lowercase() == address) {
                n += diesel::delete(
                    account_tokens::table.filter(account_tokens::token_hash.eq(hash)),
                )
                .execute(conn)?;
            }
        }
        Ok(n)
    }

    /// Deletes tokens that expired more than a day ago (the background pruner).
    pub fn prune(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<usize, Error> {
        Ok(diesel::delete(
            account_tokens::table.filter(account_tokens::expires_at.lt(now - Duration::days(1))),
        )
        .execute(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tokens_are_random_and_only_their_hash_is_kept() {
        let now = time::macros::datetime!(2026-11-30 12:00);
        let a = AccountToken::issue(
            TokenPurpose::PasswordReset,
            TokenFor::default(),
            now,
            Duration::minutes(30),
        );
        let b = AccountToken::issue(
            TokenPurpose::PasswordReset,
            TokenFor::default(),
            now,
            Duration::minutes(30),
        );
        assert_ne!(a.raw, b.raw);
        assert_eq!(a.raw.len(), 43);
        assert_eq!(a.row.token_hash, token_hash(&a.raw));
        assert_ne!(a.row.token_hash, a.raw);
        assert_eq!(a.row.expires_at, now + Duration::minutes(30));
    }
}
