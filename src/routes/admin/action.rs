//! What every admin action needs, as one request guard: the admin (403 for anyone else), a
//! fresh proof (sudo mode: otherwise "Confirm it's you" first), the services, the client, and the admin page to go back to. Changes to a user that must not be
//! half-done — a role change, disabling, a two-factor reset — commit in one transaction with
//! their audit events and the end of the user's sessions.

use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use time::PrimitiveDateTime;

use crate::auth::next::referer_path;
use crate::auth::{Admin, AuthFailure, Sudo};
use crate::db::DbConnection;
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{ApiKey, AuditKind, Session, User};
use crate::peer::Peer;
use crate::routes::services::Services;
use crate::view::FormOutcome;

/// Where to return after an admin action: the admin page the form was on (from `Referer`,
/// local `/admin…` paths only), else the user list.
fn return_to(req: &Request<'_>) -> String {
    referer_path(req)
        .filter(|p| p == "/admin" || p.starts_with("/admin?") || p.starts_with("/admin/users/"))
        .unwrap_or_else(|| "/admin".to_string())
}

/// An admin acting on the panel.
pub struct AdminAction<'r> {
    /// The admin.
    pub admin: Admin,
    /// The services.
    pub site: Services<'r>,
    to: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminAction<'r> {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let admin = try_outcome!(req.guard::<Admin>().await);
        // Every change an admin makes to a user needs a fresh proof (sudo mode).
        try_outcome!(req.guard::<Sudo<'r>>().await);
        let site = match req.guard::<Services<'r>>().await {
            Outcome::Success(site) => site,
            _ => {
                let status = rocket::http::Status::InternalServerError;
                return Outcome::Error((status, AuthFailure::Unavailable));
            }
        };
        Outcome::Success(AdminAction {
            admin,
            site,
            to: return_to(req),
        })
    }
}

/// The audit event of an admin's `record` about `user`.
fn event<'a>(peer: &'a Peer, actor: Who<'a>, user: &'a User, record: &Record) -> Event<'a> {
    let event = Event::new(record.kind, peer)
        .actor(actor)
        .subject(Who::user(&user.id, &user.username));
    match &record.detail {
        Some(detail) => event.detail(detail.clone()),
        None => event,
    }
}

/// What else ends with a change to a user, and why (for the audit trail).
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// Nothing else.
    Nothing,
    /// Every session of theirs.
    Sessions(&'a str),
    /// Every session and every API key of theirs: a change that must leave them no way in
    /// (disabling, a two-factor reset).
    SessionsAndKeys(&'a str),
}

/// The audit record of one change: what, and an optional detail.
pub struct Record {
    kind: AuditKind,
    detail: Option<String>,
}

impl Record {
    /// An event of `kind` with an optional detail (a reason, a new role).
    pub fn new(kind: AuditKind, detail: Option<&str>) -> Record {
        Record {
            kind,
            detail: detail.map(str::to_string),
        }
    }
}

impl AdminAction<'_> {
    /// Back to the page the form was on, with a success message.
    pub fn done(&self, message: impl Into<String>) -> FormOutcome {
        FormOutcome::success(self.to.clone(), message)
    }

    /// Back to the page the form was on, with an error message.
    pub fn refused(&self, message: impl Into<String>) -> FormOutcome {
        FormOutcome::error(self.to.clone(), message)
    }

    /// The message for a change the database refused, or the error to answer with.
    pub fn explain(&self, e: Error) -> Result<FormOutcome, Error> {
        match e {
            Error::LastAdmin => Ok(self.refused(
                "That would leave no active administrator. Make someone else an admin first.",
            )),
            Error::NotFound => Ok(self.refused("That user no longer exists.")),
            Error::Refused(message) => Ok(self.refused(message)),
            e => Err(e),
        }
    }

    /// The user an action names, if they exist.
    pub async fn find_user(&self, id: &str) -> Result<Option<User>, Error> {
        let id = id.to_string();
        self.site.db.run(move |conn| User::find(conn, &id)).await
    }

    /// Ends every session of `user` and revokes their API keys (on every instance within a
    /// second), and audits both; returns how many sessions ended and keys were revoked.
    pub async fn end_everything(&self, user: &User) -> Result<(usize, usize), Error> {
        let (n, keys) = self.site.sessions.end_all_with_keys(&user.id, None).await?;
        if n > 0 {
            let detail = format!("{n} session(s), by an administrator");
            self.record(user, Record::new(AuditKind::SessionsRevoked, Some(&detail)))
                .await;
        }
        for key in &keys {
            let detail = key.revoked_detail("sessions ended by an administrator");
            self.record(user, Record::new(AuditKind::ApiKeyRevoked, Some(&detail)))
                .await;
        }
        Ok((n, keys.len()))
    }

    /// Records an event about `user` done by the admin (outside any transaction).
    pub async fn record(&self, user: &User, record: Record) {
        let actor = Who::user(&self.admin.0.id, &self.admin.0.username);
        let event = event(&self.site.peer, actor, user, &record);
        self.site.audit.record(event).await;
    }

    /// Applies `change` to user `id` (given the connection, the id and now), records it and
    /// ends what `ending` says (every session, and maybe every API key, of theirs, each
    /// revocation audited with its cause), all in one transaction: if any part fails, nothing changed
    /// (answered with 503), and a demoted or disabled user keeps no session. The ended sessions
    /// are refused on every instance within a second. Returns the user as the change left them.
    pub async fn change<F>(&self, id: &str, change: F, ending: Ending<'_>) -> Result<User, Error>
    where
        F: FnOnce(&mut DbConnection, &str, PrimitiveDateTime) -> Result<(User, Record), Error>
            + Send
            + 'static,
    {
        let (id, now) = (id.to_string(), self.site.now());
        let (admin, peer) = (self.admin.0.clone(), self.site.peer.clone());
        let clock = self.site.sessions.clock().clone();
        let (end_why, keys_too) = match ending {
            Ending::Nothing => (None, false),
            Ending::Sessions(why) => (Some(why.to_string()), false),
            Ending::SessionsAndKeys(why) => (Some(why.to_string()), true),
        };
        let (user, revoked) = self
            .site
            .db
            .run(move |conn| {
                let actor = Who::user(&admin.id, &admin.username);
                let committed = conn.write_transaction::<_, Error, _>(|conn| {
                    let (user, record) = change(conn, &id, now)?;
                    let mut records = vec![record];
                    let mut revoked = Vec::new();
                    if let Some(why) = &end_why {
                        revoked = Session::revoke_all_for_user(conn, &user.id, None)?;
                        if !revoked.is_empty() {
                            records.push(Record {
                                kind: AuditKind::SessionsRevoked,
                                detail: Some(format!("{} session(s), {why}", revoked.len())),
                            });
                        }
                        if keys_too {
                            for key in ApiKey::revoke_all_for_user(conn, &user.id, now)? {
                                records.push(Record {
                                    kind: AuditKind::ApiKeyRevoked,
                                    detail: Some(key.revoked_detail(why)),
                                });
                            }
                        }
                    }
                    for record in &records {
                        event(&peer, actor, &user, record).store(conn, &clock)?;
                    }
                    Ok((user, revoked, records))
                });
                let (user, revoked, records) = committed.map_err(Error::not_saved)?;
                for record in &records {
                    event(&peer, actor, &user, record).log();
                }
                Ok((user, revoked))
            })
            .await?;
        self.site.sessions.mark_revoked(&revoked);
        Ok(user)
    }
}
