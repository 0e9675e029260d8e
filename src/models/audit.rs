//! The audit trail: `audit_events`, append-only (the database refuses updates and deletes).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::audit_events;
use crate::db::DbConnection;
use crate::error::Error;

diesel::define_sql_function! {
    /// SQL's `lower`, on both databases.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// What a deleted account's name becomes in the audit trail.
pub const DELETED_USER: &str = "deleted user";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A new account signed up.
    Signup,
    /// A sign-in succeeded.
    LoginOk,
    /// A sign-in failed (the reason is in `detail`).
    LoginFailed,
    /// Failures locked an account (or an unknown name).
    LoginLocked,
    /// Someone signed out.
    Logout,
    /// A user changed their password.
    PasswordChanged,
    /// Sessions were ended by their owner or an admin.
    SessionsRevoked,
    /// An admin changed a role.
    RoleChanged,
    /// An admin disabled an account.
    UserDisabled,
    /// An admin enabled an account.
    UserEnabled,
    /// An admin cleared a lockout.
    UserUnlocked,
    /// A form post failed the CSRF check.
    CsrfRejected,
    /// An administrator was created from the command line.
    AdminCreated,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A user turned on two-factor sign-in.
    TwoFactorEnabled,
    /// Two-factor sign-in was turned off (by the user, or reset by an admin).
    TwoFactorDisabled,
    /// A second-factor code or recovery code was refused (the reason is in `detail`).
    TwoFactorFailed,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed,
    /// A user replaced their recovery codes.
    RecoveryCodesReplaced,
    /// A refresh value that had already been replaced was presented again; the session was ended.
    RefreshReuse,
    /// "Confirm it's you" passed: sudo mode for `sudo_window_secs`.
    SudoProof,
    /// "Confirm it's you" failed (wrong password or code).
    SudoFailed,
    /// A browser that signed in was given a device cookie: its attempts skip the account's lockout.
    DeviceTrustGranted,
    /// A trusted device failed its own limit and lost its trust.
    DeviceTrustRevoked,
    /// A user proved their address by following its link.
    EmailVerified,
    /// A user's address changed (confirmed from the new address).
    EmailChanged,
    /// An address change was undone from the old address; every session ended.
    EmailChangeUndone,
    /// "Forgot your password?" for an existing account (whether a mail went is in `detail`).
    PasswordResetRequested,
    /// A password was set through a reset link (mailed, or an admin's).
    PasswordReset,
    /// An admin (or the command line) made a one-time reset link for a user.
    ResetLinkCreated,
    /// A user downloaded their data.
    DataExported,
    /// An account was deleted (by its owner or an admin): the tombstone, with no personal data.
    AccountDeleted,
    /// An admin (or the command line) invited an address.
    InvitationCreated,
    /// An admin withdrew an open invitation.
    InvitationWithdrawn,
    /// An invitation was accepted: the account it made.
    InvitationAccepted,
    /// A user registered a passkey (its name in `detail`).
    PasskeyAdded,
    /// A passkey was removed (by its owner or an admin); it signs in nobody from now on.
    PasskeyRemoved,
    /// A passkey answered with a signature counter at or below the last one seen: it may have
    /// been cloned. The sign-in was refused.
    PasskeyCounterRegressed,
}

impl AuditKind {
    /// Every kind, for filters.
    pub const ALL: [AuditKind; 39] = [
        AuditKind::Signup,
        AuditKind::LoginOk,
        AuditKind::LoginFailed,
        AuditKind::LoginLocked,
        AuditKind::Logout,
        AuditKind::PasswordChanged,
        AuditKind::SessionsRevoked,
        AuditKind::RoleChanged,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserUnlocked,
        AuditKind::CsrfRejected,
        AuditKind::AdminCreated,
        AuditKind::ApiKeyCreated,
        AuditKind::ApiKeyRevoked,
        AuditKind::TwoFactorEnabled,
        AuditKind::TwoFactorDisabled,
        AuditKind::TwoFactorFailed,
        AuditKind::RecoveryCodeUsed,
        AuditKind::RecoveryCodesReplaced,
        AuditKind::RefreshReuse,
        AuditKind::SudoProof,
        AuditKind::SudoFailed,
        AuditKind::DeviceTrustGranted,
        AuditKind::DeviceTrustRevoked,
        AuditKind::EmailVerified,
        AuditKind::EmailChanged,
        AuditKind::EmailChangeUndone,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::ResetLinkCreated,
        AuditKind::DataExported,
        AuditKind::AccountDeleted,
        AuditKind::InvitationCreated,
        AuditKind::InvitationWithdrawn,
        AuditKind::InvitationAccepted,
        AuditKind::PasskeyAdded,
        AuditKind::PasskeyRemoved,
        AuditKind::PasskeyCounterRegressed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Signup => "signup",
            AuditKind::LoginOk => "login_ok",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginLocked => "login_locked",
            AuditKind::Logout => "logout",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::SessionsRevoked => "sessions_revoked",
            AuditKind::RoleChanged => "role_changed",
            AuditKind::UserDisabled => "user_disabled",
            AuditKind::UserEnabled => "user_enabled",
            AuditKind::UserUnlocked => "user_unlocked",
            AuditKind::CsrfRejected => "csrf_rejected",
            AuditKind::AdminCreated => "admin_created",
            AuditKind::ApiKeyCreated => "api_key_created",
            AuditKind::ApiKeyRevoked => "api_key_revoked",
            AuditKind::TwoFactorEnabled => "two_factor_enabled",
            AuditKind::TwoFactorDisabled => "two_factor_disabled",
            AuditKind::TwoFactorFailed => "two_factor_failed",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::RecoveryCodesReplaced => "recovery_codes_replaced",
            AuditKind::RefreshReuse => "refresh_reuse",
            AuditKind::SudoProof => "sudo_proof",
            AuditKind::SudoFailed => "sudo_failed",
            AuditKind::DeviceTrustGranted => "device_trust_granted",
            AuditKind::DeviceTrustRevoked => "device_trust_revoked",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::EmailChanged => "email_changed",
            AuditKind::EmailChangeUndone => "email_change_undone",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::ResetLinkCreated => "reset_link_created",
            AuditKind::DataExported => "data_exported",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::InvitationCreated => "invitation_created",
            AuditKind::InvitationWithdrawn => "invitation_withdrawn",
            AuditKind::InvitationAccepted => "invitation_accepted",
            AuditKind::PasskeyAdded => "passkey_added",
            AuditKind::PasskeyRemoved => "passkey_removed",
            AuditKind::PasskeyCounterRegressed => "passkey_counter_regressed",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A row about to be appended.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    /// When.
    pub at: PrimitiveDateTime,
    /// What ([`AuditKind::as_str`]).
    pub kind: String,
    /// Who did it (user id).
    pub actor_id: Option<String>,
    /// Who did it (username).
    pub actor: Option<String>,
    /// To whom (user id).
    pub subject_id: Option<String>,
    /// To whom (username, or the name typed at a failed sign-in).
    pub subject: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// With what.
    pub user_agent: Option<String>,
    /// Anything else: a failure reason, the new role, a count.
    pub detail: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    /// Insertion order.
    pub id: i64,
    /// When.
    pub at: PrimitiveDateTime,
    /// What.
    pub kind: String,
    /// Who did it (user id).
    pub actor_id: Option<String>,
    /// Who did it.
    pub actor: Option<String>,
    /// To whom (user id).
    pub subject_id: Option<String>,
    /// To whom.
    pub subject: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// With what.
    pub user_agent: Option<String>,
    /// Anything else.
    pub detail: Option<String>,
}

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events where this username is the actor or the subject.
    pub user: Option<String>,
    /// Events of this kind.
    pub kind: Option<String>,
    /// Events from this address.
    pub ip: Option<String>,
    /// At or after.
    pub from: Option<PrimitiveDateTime>,
    /// Before.
    pub to: Option<PrimitiveDateTime>,
}

type Boxed<'a> = audit_events::BoxedQuery<'a, crate::db::DbBackend>;

impl AuditFilter {
    fn apply<'a>(&self, mut query: Boxed<'a>) -> Boxed<'a> {
        if let Some(user) = &self.user {
            query = query.filter(
                audit_events::actor
                    .eq(user.clone())
                    .or(audit_events::subject.eq(user.clone())),
            );
        }
        if let Some(kind) = &self.kind {
            query = query.filter(audit_events::kind.eq(kind.clone()));
        }
        if let Some(ip) = &self.ip {
            query = query.filter(audit_events::ip.eq(ip.clone()));
        }
        if let Some(from) = self.from {
            query = query.filter(audit_events::at.ge(from));
        }
        if let Some(to) = self.to {
            query = query.filter(audit_events::at.lt(to));
        }
        query
    }
}

impl AuditEvent {
    /// Appends an event.
    pub fn record(conn: &mut DbConnection, event: &NewAuditEvent) -> Result<(), Error> {
        diesel::insert_into(audit_events::table)
            .values(event)
            .execute(conn)?;
        Ok(())
    }

    /// One page of matching events, newest first, and how many match in all.
    pub fn search(
        conn: &mut DbConnection,
        filter: &AuditFilter,
        page: i64,
        per_page: i64,
    ) -> Result<(Vec<AuditEvent>, i64), Error> {
        let total: i64 = filter
            .apply(audit_events::table.into_boxed())
            .count()
            .get_result(conn)?;
        let events = filter
            .apply(audit_events::table.into_boxed())
            .order(audit_events::id.desc())
            .limit(per_page)
            .offset((page.max(1) - 1) * per_page)
            .select(AuditEvent::as_select())
            .load(conn)?;
        Ok((events, total))
    }

    /// Every event where `user_id` is the actor or the subject, oldest first (a user's export).
    pub fn about_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<AuditEvent>, Error> {
        Ok(audit_events::table
            .filter(
                audit_events::actor_id
                    .eq(user_id)
                    .or(audit_events::subject_id.eq(user_id)),
            )
            .order(audit_events::id.asc())
            .select(AuditEvent::as_select())
            .load(conn)?)
    }

    /// Erases a deleted account's personal data from the trail (the one update the database
    /// allows): rows where it is the subject keep their id, time, kind and user ids but lose the
    /// name (now [`DELETED_USER`]), the address, the browser and the detail; rows where it only
    /// acted on someone else lose its name, the address and the browser, and the detail when
    /// that names the account. Rows naming it as typed at a sign-in, with no id (before the
    /// account existed), lose the name. Returns how many rows changed.
    pub fn erase_user(
        conn: &mut DbConnection,
        user_id: &str,
        names: &[&str],
    ) -> Result<usize, Error> {
        let none: Option<String> = None;
        let mut n =
            diesel::update(audit_events::table.filter(audit_events::subject_id.eq(user_id)))
                .set((
                    audit_events::subject.eq(DELETED_USER),
                    audit_events::ip.eq(none.clone()),
                    audit_events::user_agent.eq(none.clone()),
                    audit_events::detail.eq(none.clone()),
                ))
                .execute(conn)?;
        n += diesel::update(audit_events::table.filter(audit_events::actor_id.eq(user_id)))
            .set((
                audit_events::actor.eq(DELETED_USER),
                audit_events::ip.eq(none.clone()),
                audit_events::user_agent.eq(none.clone()),
            ))
            .execute(conn)?;
        // Details are free text: look for the names in each (a case-insensitive match that
        // behaves the same on both databases).
        let acted: Vec<(i64, Option<String>)> = audit_events::table
            .filter(audit_events::actor_id.eq(user_id))
            .filter(audit_events::detail.is_not_null())
            .select((audit_events::id, audit_events::detail))
            .load(conn)?;
        let names: Vec<String> = names
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| name.to_lowercase())
            .collect();
        for (id, detail) in acted {
            let detail = detail.unwrap_or_default().to_lowercase();
            if names.iter().any(|name| detail.contains(name.as_str())) {
                diesel::update(audit_events::table.filter(audit_events::id.eq(id)))
                    .set(audit_events::detail.eq(none.clone()))
                    .execute(conn)?;
            }
        }
        for name in &names {
            n += diesel::update(
                audit_events::table
                    .filter(audit_events::subject_id.is_null())
                    .filter(lower(audit_events::subject).eq(name.clone())),
            )
            .set(audit_events::subject.eq(DELETED_USER))
            .execute(conn)?;
        }
        Ok(n)
    }

    /// Up to `limit` matching events, newest first (for CSV export).
    pub fn export(
        conn: &mut DbConnection,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, Error> {
        Ok(filter
            .apply(audit_events::table.into_boxed())
            .order(audit_events::id.desc())
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)?)
    }
}
