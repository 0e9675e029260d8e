//! A person who can sign in: the `users` table and every query on it.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use time::PrimitiveDateTime;

use crate::db::schema::users;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::{
    AccountToken, ApiKey, AuditEvent, AuditKind, LoginAttempt, NewAuditEvent, OutboxMail,
    RevokedSession, Session, TokenPurpose, DELETED_USER,
};

/// What a user may do beyond their own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Any signed-up person.
    User,
    /// May open the admin panel and manage users.
    Admin,
}

impl Role {
    /// The name stored in the database and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or submitted role name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// UUID, as text.
    pub id: String,
    /// As the person typed it.
    pub username: String,
    /// Lower-cased, unique: usernames are unique regardless of case.
    pub username_key: String,
    /// As the person typed it.
    pub email: String,
    /// Lower-cased, unique.
    pub email_key: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: PrimitiveDateTime,
    /// Last change to the row.
    pub updated_at: PrimitiveDateTime,
    /// Last successful sign-in.
    pub last_login_at: Option<PrimitiveDateTime>,
    /// When the address was proved (a link followed from it); `None`: not verified.
    pub email_verified_at: Option<PrimitiveDateTime>,
}

/// A user about to be inserted; fields already validated.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    /// UUID, as text.
    pub id: String,
    /// Validated username.
    pub username: String,
    /// `username` lower-cased.
    pub username_key: String,
    /// Validated email.
    pub email: String,
    /// `email` lower-cased.
    pub email_key: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// Always false for new users.
    pub disabled: bool,
    /// Now.
    pub created_at: PrimitiveDateTime,
    /// Now.
    pub updated_at: PrimitiveDateTime,
}

impl NewUser {
    /// A new active account with a fresh id.
    pub fn new(
        username: &str,
        email: &str,
        password_hash: String,
        role: Role,
        now: PrimitiveDateTime,
    ) -> NewUser {
        NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            username_key: username.to_lowercase(),
            email: email.to_string(),
            email_key: email.to_lowercase(),
            password_hash,
            role: role.as_str().to_string(),
            disabled: false,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Which unique field a signup collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignupConflict {
    /// The username is in use (in any letter case).
    pub username: bool,
    /// The email is in use (in any letter case).
    pub email: bool,
}

impl SignupConflict {
    /// True when either field is taken.
    pub fn any(self) -> bool {
        self.username || self.email
    }
}

/// Who deleted an account, for its tombstone in the audit trail.
#[derive(Debug, Clone)]
pub enum DeletedBy {
    /// Its owner, on their account page.
    Owner,
    /// An administrator, from the admin panel.
    Admin {
        /// The admin's id.
        id: String,
        /// The admin's username.
        name: String,
    },
}

/// What went with a deleted account.
#[derive(Debug, Clone)]
pub struct DeletedAccount {
    /// The row as it was (for the goodbye mail: the last use of the address).
    pub user: User,
    /// Its sessions that had not expired: the revocation list must refuse them.
    pub sessions: Vec<RevokedSession>,
    /// Its API keys that were still active.
    pub keys: Vec<ApiKey>,
}

/// One page of the admin panel's user list.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users on this page, oldest first.
    pub users: Vec<User>,
    /// How many users match the search in all.
    pub total: i64,
}

impl User {
    /// The stored role; a row with an unknown role is treated as a plain user.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }

    /// Looks a user up by id.
    pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<User>, Error> {
        Ok(users::table
            .filter(users::id.eq(id))
            .select(User::as_select())
            .first(conn)
            .optional()?)
    }

    /// Looks a user up by username or email, ignoring letter case.
    pub fn find_by_login(conn: &mut DbConnection, login: &str) -> Result<Option<User>, Error> {
        let key = login.trim().to_lowercase();
        let column = if key.contains('@') {
            users::table.filter(users::email_key.eq(key)).into_boxed()
        } else {
            users::table
                .filter(users::username_key.eq(key))
                .into_boxed()
        };
        Ok(column.select(User::as_select()).first(conn).optional()?)
    }

    /// Which of these are already in use.
    pub fn conflicts(
        conn: &mut DbConnection,
        username: &str,
        email: &str,
    ) -> Result<SignupConflict, Error> {
        let username_taken: i64 = users::table
            .filter(users::username_key.eq(username.to_lowercase()))
            .count()
            .get_result(conn)?;
        let email_taken: i64 = users::table
            .filter(users::email_key.eq(email.to_lowercase()))
            .count()
            .get_result(conn)?;
        Ok(SignupConflict {
            username: username_taken > 0,
            email: email_taken > 0,
        })
    }

    /// Inserts a user. A unique-index collision (also from a concurrent signup) comes back as
    /// `Ok(Err(conflict))`, so exactly one of two racing signups wins.
    pub fn create(
        conn: &mut DbConnection,
        new: &NewUser,
    ) -> Result<Result<User, SignupConflict>, Error> {
        let inserted = diesel::insert_into(users::table).values(new).execute(conn);
        match inserted {
            Ok(_) => Ok(Ok(User::find(conn, &new.id)?.ok_or(Error::NotFound)?)),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                let conflict = User::conflicts(conn, &new.username, &new.email)?;
                // The winner may have been rolled back since; report the name, the likelier clash.
                Ok(Err(if conflict.any() {
                    conflict
                } else {
                    SignupConflict {
                        username: true,
                        email: false,
                    }
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stamps a successful sign-in.
    pub fn record_login(
        conn: &mut DbConnection,
        id: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set(users::last_login_at.eq(Some(now)))
            .execute(conn)?;
        Ok(())
    }

    /// Marks the address verified, if the account's address is still `email` (any letter
    /// case); returns whether it did.
    pub fn mark_email_verified(
        conn: &mut DbConnection,
        id: &str,
        email: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let n = diesel::update(
            users::table
                .filter(users::id.eq(id))
                .filter(users::email_key.eq(email.to_lowercase())),
        )
        .set((
            users::email_verified_at.eq(Some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Whether an account other than `id` has `email` (any letter case).
    pub fn email_taken_by_other(
        conn: &mut DbConnection,
        id: &str,
        email: &str,
    ) -> Result<bool, Error> {
        let n: i64 = users::table
            .filter(users::email_key.eq(email.to_lowercase()))
            .filter(users::id.ne(id))
            .count()
            .get_result(conn)?;
        Ok(n > 0)
    }

    /// Gives the account a new address, verified now (it was proved by a link sent to it).
    /// Another account taking it meanwhile fails with the database's unique violation.
    pub fn set_email(
        conn: &mut DbConnection,
        id: &str,
        email: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        let n = diesel::update(users::table.filter(users::id.eq(id)))
            .set((
                users::email.eq(email),
                users::email_key.eq(email.to_lowercase()),
                users::email_verified_at.eq(Some(now)),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// Replaces the password hash, and voids every reset link still out for the account (a link
    /// from before the change must not undo it).
    pub fn set_password_hash(
        conn: &mut DbConnection,
        id: &str,
        hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        let n = diesel::update(users::table.filter(users::id.eq(id)))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn)?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        AccountToken::void_for_user(
            conn,
            id,
            &[TokenPurpose::PasswordReset, TokenPurpose::AdminReset],
            now,
        )?;
        Ok(())
    }

    /// Changes a user's role; refuses to leave the site without an active admin.
    pub fn set_role(
        conn: &mut DbConnection,
        id: &str,
        role: Role,
        now: PrimitiveDateTime,
    ) -> Result<User, Error> {
        User::guarded_update(conn, id, |conn| {
            diesel::update(users::table.filter(users::id.eq(id)))
                .set((users::role.eq(role.as_str()), users::updated_at.eq(now)))
                .execute(conn)
        })
    }

    /// Disables or re-enables a user; refuses to disable the last active admin.
    pub fn set_disabled(
        conn: &mut DbConnection,
        id: &str,
        disabled: bool,
        now: PrimitiveDateTime,
    ) -> Result<User, Error> {
        User::guarded_update(conn, id, |conn| {
            diesel::update(users::table.filter(users::id.eq(id)))
                .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
                .execute(conn)
        })
    }

    /// Applies `change` and checks, inside the same transaction, that an active admin remains.
    ///
    /// Writers are serialised so two admins demoting each other at once cannot both succeed:
    /// PostgreSQL takes a self-exclusive table lock; SQLite's first write takes its single
    /// writer lock, and the count runs after it.
    fn guarded_update(
        conn: &mut DbConnection,
        id: &str,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<usize>,
    ) -> Result<User, Error> {
        conn.write_transaction(|conn| {
            if matches!(conn, DbConnection::Postgres(_)) {
                diesel::sql_query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").execute(conn)?;
            }
            if change(conn)? == 0 {
                return Err(Error::NotFound);
            }
            if User::count_active_admins(conn)? == 0 {
                return Err(Error::LastAdmin);
            }
            User::find(conn, id)?.ok_or(Error::NotFound)
        })
    }

    /// Deletes an account and everything about it, in one transaction: its sessions (their ids
    /// kept for the revocation lists of every instance), API keys, two-factor, recovery codes,
    /// devices and links (by the foreign keys' cascade), its lockout counter, its mail and links
    /// to its address; erases its personal data from the audit trail and appends the
    /// `account_deleted` tombstone (user id, no personal data). Refuses (`LastAdmin`) to delete
    /// the last active admin: writers are serialised as in [`User::set_role`], so two admins
    /// deleting themselves at once cannot both succeed.
    pub fn delete_with_trail(
        conn: &mut DbConnection,
        id: &str,
        now: PrimitiveDateTime,
        by: &DeletedBy,
    ) -> Result<DeletedAccount, Error> {
        conn.write_transaction(|conn| {
            if matches!(conn, DbConnection::Postgres(_)) {
                diesel::sql_query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").execute(conn)?;
            }
            // A write first: on SQLite it takes the single writer lock before the count below.
            let touched = diesel::update(users::table.filter(users::id.eq(id)))
                .set(users::updated_at.eq(now))
                .execute(conn)?;
            if touched == 0 {
                return Err(Error::NotFound);
            }
            let user = User::find(conn, id)?.ok_or(Error::NotFound)?;
            if user.role() == Role::Admin && !user.disabled && User::count_active_admins(conn)? <= 1
            {
                return Err(Error::LastAdmin);
            }
            let sessions = Session::keep_ended_for_user(conn, id, now)?;
            let keys = ApiKey::revoke_all_for_user(conn, id, now)?;
            LoginAttempt::clear(conn, &LoginAttempt::key_for_user(id))?;
            OutboxMail::delete_for_user(conn, id)?;
            OutboxMail::delete_for_address(conn, &user.email)?;
            AccountToken::delete_for_address(conn, &user.email)?;
            AuditEvent::erase_user(conn, id, &[&user.username, &user.email])?;
            // Sessions, refresh values, API keys, two-factor, recovery codes, trusted devices
            // and the account's links go by ON DELETE CASCADE.
            diesel::delete(users::table.filter(users::id.eq(id))).execute(conn)?;
            let (actor_id, actor, detail) = match by {
                DeletedBy::Owner => (id.to_string(), DELETED_USER.to_string(), "by its owner"),
                DeletedBy::Admin { id, name } => (id.clone(), name.clone(), "by an administrator"),
            };
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    at: now,
                    kind: AuditKind::AccountDeleted.as_str().to_string(),
                    actor_id: Some(actor_id),
                    actor: Some(actor),
                    subject_id: Some(id.to_string()),
                    subject: Some(DELETED_USER.to_string()),
                    ip: None,
                    user_agent: None,
                    detail: Some(detail.to_string()),
                },
            )?;
            Ok(DeletedAccount {
                user,
                sessions,
                keys,
            })
        })
    }

    /// Admins who are not disabled.
    pub fn count_active_admins(conn: &mut DbConnection) -> Result<i64, Error> {
        Ok(users::table
            .filter(users::role.eq(Role::Admin.as_str()))
            .filter(users::disabled.eq(false))
            .count()
            .get_result(conn)?)
    }

    /// Users whose username or email contains `query` (any case), a page at a time, oldest first.
    pub fn search(
        conn: &mut DbConnection,
        query: &str,
        page: i64,
        per_page: i64,
    ) -> Result<UserPage, Error> {
        let pattern = format!("%{}%", escape_like(&query.trim().to_lowercase()));
        let filtered = || {
            users::table
                .filter(
                    users::username_key
                        .like(pattern.clone())
                        .escape('\\')
                        .or(users::email_key.like(pattern.clone()).escape('\\')),
                )
                .into_boxed()
        };
        let total: i64 = filtered().count().get_result(conn)?;
        let users = filtered()
            .order((users::created_at.asc(), users::id.asc()))
            .limit(per_page)
            .offset((page.max(1) - 1) * per_page)
            .select(User::as_select())
            .load(conn)?;
        Ok(UserPage { users, total })
    }
}

/// Makes `%`, `_` and `\` match themselves in a LIKE pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
