//! Security events: each is one structured log line (`key=value`, with the client IP, readable
//! by fail2ban) and one row in the append-only audit table. Values are Debug-quoted so a username
//! cannot forge a line. Never a password or a token.

use std::net::IpAddr;

use crate::clock::Clock;
use crate::db::{Db, DbConnection};
use crate::error::Error;
use crate::models::{AuditEvent, AuditKind, NewAuditEvent};
use crate::peer::Peer;

const TARGET: &str = "latchkey::auth";

/// A user named in an event: id when the account exists, and the name.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// User id, if the account exists.
    pub id: Option<&'a str>,
    /// Username, or the name typed.
    pub name: &'a str,
}

impl<'a> Who<'a> {
    /// An existing account.
    pub fn user(id: &'a str, name: &'a str) -> Who<'a> {
        Who { id: Some(id), name }
    }

    /// A name that may not belong to any account.
    pub fn name(name: &'a str) -> Who<'a> {
        Who { id: None, name }
    }
}

/// One event, built up and then recorded.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    kind: AuditKind,
    actor: Option<Who<'a>>,
    subject: Option<Who<'a>>,
    detail: Option<String>,
    peer: &'a Peer,
}

impl<'a> Event<'a> {
    /// An event of `kind` from `peer`.
    pub fn new(kind: AuditKind, peer: &'a Peer) -> Event<'a> {
        Event {
            kind,
            actor: None,
            subject: None,
            detail: None,
            peer,
        }
    }

    /// Who did it.
    pub fn actor(mut self, who: Who<'a>) -> Self {
        self.actor = Some(who);
        self
    }

    /// To whom (defaults to the actor in the log line).
    pub fn subject(mut self, who: Who<'a>) -> Self {
        self.subject = Some(who);
        self
    }

    /// Done by a user to themselves.
    pub fn by_self(self, who: Who<'a>) -> Self {
        self.actor(who).subject(who)
    }

    /// A reason, a count, a new role.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Writes the event's log line (for an event stored inside a transaction: once it committed).
    pub fn log(&self) {
        let mut line = format!("auth event={}", self.kind.as_str());
        if let (Some(actor), Some(subject)) = (self.actor, self.subject) {
            if actor.name != subject.name {
                line.push_str(&format!(" actor={:?}", actor.name));
            }
        }
        if let Some(who) = self.subject.or(self.actor) {
            line.push_str(&format!(" user={:?}", who.name));
        }
        if let Some(detail) = &self.detail {
            line.push_str(&format!(" detail={detail:?}"));
        }
        line.push_str(&format!(" ip={}", ip(self.peer.ip)));
        match self.kind {
            AuditKind::LoginFailed | AuditKind::LoginLocked | AuditKind::CsrfRejected => {
                log::warn!(target: TARGET, "{line}")
            }
            _ => log::info!(target: TARGET, "{line}"),
        }
    }

    fn row(&self, clock: &Clock) -> NewAuditEvent {
        let owned = |s: &str| (!s.is_empty()).then(|| s.to_string());
        NewAuditEvent {
            at: clock.db_now(),
            kind: self.kind.as_str().to_string(),
            actor_id: self.actor.and_then(|w| w.id).map(str::to_string),
            actor: self.actor.map(|w| w.name.to_string()),
            subject_id: self.subject.and_then(|w| w.id).map(str::to_string),
            subject: self.subject.map(|w| w.name.to_string()),
            ip: self.peer.ip.map(|ip| ip.to_string()),
            user_agent: owned(&self.peer.user_agent),
            detail: self.detail.clone(),
        }
    }

    /// Logs the event and appends it to the audit table on this connection.
    pub fn record_with(&self, conn: &mut DbConnection, clock: &Clock) -> Result<(), Error> {
        self.log();
        self.store(conn, clock)
    }

    /// Appends the event to the audit table on this connection, inside the caller's transaction,
    /// without its log line (write that with [`Event::log`] once the transaction committed).
    pub fn store(&self, conn: &mut DbConnection, clock: &Clock) -> Result<(), Error> {
        AuditEvent::record(conn, &self.row(clock))
    }
}

/// Records events; managed state.
#[derive(Clone)]
pub struct Audit {
    db: Db,
    clock: Clock,
}

impl Audit {
    /// The recorder for a database.
    pub fn new(db: Db, clock: Clock) -> Audit {
        Audit { db, clock }
    }

    /// Logs the event and appends it to the audit table. A failed append is logged as an error
    /// but does not fail the user's request, which has already happened.
    pub async fn record(&self, event: Event<'_>) {
        event.log();
        let row = event.row(&self.clock);
        if let Err(e) = self
            .db
            .run(move |conn| AuditEvent::record(conn, &row))
            .await
        {
            log::error!(target: TARGET, "audit event {} not stored: {e}", event.kind.as_str());
        }
    }
}

fn ip(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// A presented token failed verification (log only: it names no account).
pub fn token_rejected(reason: &str, addr: Option<IpAddr>) {
    log::warn!(target: TARGET, "auth event=token_rejected detail={reason:?} ip={}", ip(addr));
}
