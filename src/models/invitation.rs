//! Invitations: `account_tokens` rows of purpose `invitation`, each naming the invited address,
//! the role the account will have and the admin who made it. At most one is open per address
//! (a newer one voids the older); accepting one uses it up in the transaction that creates the
//! account.

use diesel::prelude::*;
use time::{Duration, PrimitiveDateTime};

use super::{
    AccountToken, IssuedToken, NewUser, OutboxMail, Role, SignupConflict, TokenFor, TokenPurpose,
    User,
};
use crate::db::schema::{account_tokens, users};
use crate::db::DbConnection;
use crate::error::Error;

/// How long an invitation stays open.
pub const INVITATION_TTL: Duration = Duration::days(7);

/// An open invitation as the admin panel lists it.
#[derive(Debug, Clone)]
pub struct PendingInvitation {
    /// The token row (its hash names it for "Withdraw").
    pub token: AccountToken,
    /// The admin who made it, by name (when they still exist).
    pub by: Option<String>,
}

/// Why an invitation was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInvited {
    /// The address already has an account.
    HasAccount,
}

/// Why accepting an invitation did not create the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepted {
    /// The link is unknown, used, withdrawn or expired.
    Gone,
    /// The username (or, meanwhile, the address) is taken.
    Conflict(SignupConflict),
}

/// Invitation queries on `account_tokens`.
pub struct Invitation;

impl Invitation {
    /// A fresh invitation for `email` with `role`, made by admin `by` (not yet stored).
    pub fn issue(email: &str, role: Role, by: Option<&str>, now: PrimitiveDateTime) -> IssuedToken {
        AccountToken::issue(
            TokenPurpose::Invitation,
            TokenFor {
                user_id: None,
                email: Some(email.to_string()),
                role: Some(role.as_str().to_string()),
                created_by: by.map(str::to_string),
            },
            now,
            INVITATION_TTL,
        )
    }

    /// Invites `email` as `role` on behalf of admin `by` (id, name): the invitation stored, its
    /// mail queued (call [`crate::mail::Mailer::wake`] after), older open invitations to the
    /// address voided. Returns the link, or why not.
    pub fn make(
        conn: &mut DbConnection,
        mailer: &crate::mail::Mailer,
        email: &str,
        role: Role,
        by: (Option<&str>, &str),
        now: PrimitiveDateTime,
    ) -> Result<Result<String, NotInvited>, Error> {
        let issued = Invitation::issue(email, role, by.0, now);
        let link = mailer.link(&format!("/invite/{}", issued.raw));
        let letter = crate::mail::Letter::invitation(
            mailer,
            email,
            &link,
            by.1,
            role,
            issued.row.expires_at,
        );
        let mail = mailer.compose(&letter, now)?;
        Ok(Invitation::create(conn, &issued, &mail, now)?.map(|()| link))
    }

    /// Stores `issued` and queues its mail in one transaction, after voiding the address's older
    /// open invitations; refused when the address already has an account.
    pub fn create(
        conn: &mut DbConnection,
        issued: &IssuedToken,
        mail: &OutboxMail,
        now: PrimitiveDateTime,
    ) -> Result<Result<(), NotInvited>, Error> {
        let email = issued.row.email.clone().unwrap_or_default();
        conn.write_transaction::<_, Error, _>(|conn| {
            let taken: i64 = users::table
                .filter(users::email_key.eq(email.to_lowercase()))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Ok(Err(NotInvited::HasAccount));
            }
            Invitation::void_for_email(conn, &email, now)?;
            AccountToken::insert(conn, issued)?;
            OutboxMail::queue(conn, mail)?;
            Ok(Ok(()))
        })
    }

    /// Voids every open invitation to `email` (any letter case); returns how many.
    pub fn void_for_email(
        conn: &mut DbConnection,
        email: &str,
        now: PrimitiveDateTime,
    ) -> Result<usize, Error> {
        let key = email.to_lowercase();
        let open: Vec<AccountToken> = Invitation::open(conn, now)?
            .into_iter()
            .filter(|t| t.email.as_deref().map(str::to_lowercase) == Some(key.clone()))
            .collect();
        let hashes: Vec<String> = open.into_iter().map(|t| t.token_hash).collect();
        if hashes.is_empty() {
            return Ok(0);
        }
        Ok(diesel::update(
            account_tokens::table
                .filter(account_tokens::token_hash.eq_any(hashes))
                .filter(account_tokens::used_at.is_null()),
        )
        .set(account_tokens::used_at.eq(Some(now)))
        .execute(conn)?)
    }

    /// Every open (unused, unexpired) invitation, newest first.
    fn open(conn: &mut DbConnection, now: PrimitiveDateTime) -> Result<Vec<AccountToken>, Error> {
        Ok(account_tokens::table
            .filter(account_tokens::purpose.eq(TokenPurpose::Invitation.as_str()))
            .filter(account_tokens::used_at.is_null())
            .filter(account_tokens::expires_at.gt(now))
            .order(account_tokens::created_at.desc())
            .select(AccountToken::as_select())
            .load(conn)?)
    }

    /// The open invitations with the names of the admins who made them, newest first.
    pub fn pending(
        conn: &mut DbConnection,
        now: PrimitiveDateTime,
    ) -> Result<Vec<PendingInvitation>, Error> {
        let open = Invitation::open(conn, now)?;
        let mut pending = Vec::with_capacity(open.len());
        for token in open {
            let by = match &token.created_by {
                Some(id) => User::find(conn, id)?.map(|u| u.username),
                None => None,
            };
            pending.push(PendingInvitation { token, by });
        }
        Ok(pending)
    }

    /// Withdraws the open invitation whose stored hash is `hash`; the withdrawn row, or `None`
    /// when it was no longer open.
    pub fn withdraw(
        conn: &mut DbConnection,
        hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<AccountToken>, Error> {
        let Some(token) = account_tokens::table
            .filter(account_tokens::token_hash.eq(hash))
            .filter(account_tokens::purpose.eq(TokenPurpose::Invitation.as_str()))
            .select(AccountToken::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        Ok(AccountToken::consume(conn, &token, now)?.then_some(token))
    }

    /// Creates the invited account in one transaction: the invitation used up, the user with its
    /// address and role, the address marked verified. Nothing changes when any part fails.
    pub fn accept(
        conn: &mut DbConnection,
        raw: &str,
        username: &str,
        password_hash: String,
        now: PrimitiveDateTime,
    ) -> Result<Result<User, NotAccepted>, Error> {
        let (raw, username) = (raw.to_string(), username.to_string());
        conn.write_transaction::<_, Error, _>(|conn| {
            let Some(token) = AccountToken::find_valid(conn, TokenPurpose::Invitation, &raw, now)?
            else {
                return Ok(Err(NotAccepted::Gone));
            };
            let email = token.email.clone().unwrap_or_default();
            let role = token
                .role
                .as_deref()
                .and_then(Role::parse)
                .unwrap_or(Role::User);
            // Checked before the insert: on PostgreSQL a failed insert spoils the transaction.
            let conflict = User::conflicts(conn, &username, &email)?;
            if conflict.any() {
                return Ok(Err(NotAccepted::Conflict(conflict)));
            }
            if !AccountToken::consume(conn, &token, now)? {
                return Ok(Err(NotAccepted::Gone));
            }
            let new = NewUser::new(&username, &email, password_hash, role, now);
            let user = match User::create(conn, &new)? {
                Ok(user) => user,
                Err(conflict) => return Err(Error::Refused(conflict_sentence(conflict))),
            };
            diesel::update(users::table.filter(users::id.eq(&user.id)))
                .set(users::email_verified_at.eq(Some(now)))
                .execute(conn)?;
            Ok(Ok(User::find(conn, &user.id)?.ok_or(Error::NotFound)?))
        })
    }

    /// The open invitation `raw` opens, if any.
    pub fn find(
        conn: &mut DbConnection,
        raw: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<AccountToken>, Error> {
        AccountToken::find_valid(conn, TokenPurpose::Invitation, raw, now)
    }
}

fn conflict_sentence(conflict: SignupConflict) -> String {
    if conflict.email {
        "That address has an account now.".into()
    } else {
        "That username was taken a moment ago. Choose another one.".into()
    }
}
