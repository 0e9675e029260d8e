//! The audit trail: `audit_events`, append-only (the database refuses updates and deletes).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::db::schema::audit_events;
use crate::db::DbConnection;
use crate::error::Error;

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
    /// An admin (or the command line) invited an address.
    InvitationCreated,
    /// An admin withdrew an open invitation.
    InvitationWithdrawn,
    /// An invitation was accepted: the account it made.
    InvitationAccepted,
}

impl AuditKind {
    /// Every kind, for filters.
    pub const ALL: [AuditKind; 28] = [
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
        AuditKind::InvitationCreated,
        AuditKind::InvitationWithdrawn,
        AuditKind::InvitationAccepted,
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
            AuditKind::InvitationCreated => "invitation_created",
            AuditKind::InvitationWithdrawn => "invitation_withdrawn",
            AuditKind::InvitationAccepted => "invitation_accepted",
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
