//! Mail waiting to be sent, and a record of what was sent: `outbox`. A mail is queued in the same
//! transaction as the change it is about (the reset token, the new address), so either both are
//! saved or neither. Instances claim due rows for a minute at a time (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite serialises writers), so two instances never send the same mail at once; a
//! claim that lapses (the instance died mid-send) is taken up again.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use time::{Duration, PrimitiveDateTime};

use crate::db::schema::outbox;
use crate::db::DbConnection;
use crate::error::Error;

/// A row of `outbox`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxMail {
    /// UUID; also the mail's Message-ID, so a resend after a crash is recognisable.
    pub id: String,
    /// Which letter (its template name, e.g. `password_reset`).
    pub kind: String,
    /// The account it concerns, if any (deleted with the account).
    pub user_id: Option<String>,
    /// The address it goes to.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Text and HTML parts, sealed (see `mail::Mailer`); empty once sent or given up.
    pub body: String,
    /// When it was queued.
    pub created_at: PrimitiveDateTime,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Not tried before this.
    pub next_attempt_at: PrimitiveDateTime,
    /// The instance sending it now.
    pub claimed_by: Option<String>,
    /// Until when that instance has it.
    pub claimed_until: Option<PrimitiveDateTime>,
    /// When the mail server accepted it.
    pub sent_at: Option<PrimitiveDateTime>,
    /// When it was given up after the last attempt (or could not be built at all).
    pub failed_at: Option<PrimitiveDateTime>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
}

/// Where a mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// Waiting for its first or next attempt.
    Queued,
    /// Accepted by the mail server.
    Sent,
    /// Given up.
    Failed,
}

impl MailState {
    /// Its name on the admin page.
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }
}

/// How many mails are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting (first attempt or retry).
    pub queued: i64,
    /// Accepted by the mail server.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
}

const CLAIM_POSTGRES: &str = "UPDATE outbox SET claimed_by = $1, claimed_until = $2 \
     WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
     AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3) \
     ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING *";
const CLAIM_SQLITE: &str = "UPDATE outbox SET claimed_by = ?, claimed_until = ? \
     WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
     AND next_attempt_at <= ?3 AND (claimed_until IS NULL OR claimed_until < ?3) \
     ORDER BY next_attempt_at LIMIT ?4) RETURNING *";

macro_rules! claim {
    ($conn:expr, $sql:expr, $by:expr, $until:expr, $now:expr, $limit:expr) => {
        diesel::sql_query($sql)
            .bind::<Text, _>($by)
            .bind::<Timestamp, _>($until)
            .bind::<Timestamp, _>($now)
            .bind::<BigInt, _>($limit)
            .get_results::<OutboxMail>($conn)
    };
}

impl OutboxMail {
    /// Where the mail stands.
    pub fn state(&self) -> MailState {
        if self.sent_at.is_some() {
            MailState::Sent
        } else if self.failed_at.is_some() {
            MailState::Failed
        } else {
            MailState::Queued
        }
    }

    /// Queues a mail (in the caller's transaction, beside the change it is about).
    pub fn queue(conn: &mut DbConnection, mail: &OutboxMail) -> Result<(), Error> {
        diesel::insert_into(outbox::table)
            .values(mail)
            .execute(conn)?;
        Ok(())
    }

    /// Takes up to `limit` due mails for instance `by` until `now + lease`: none that another
    /// instance holds, none twice. A read comes first: every instance asks every second, and on
    /// SQLite even an UPDATE that matches nothing takes the database's one write lock.
    pub fn claim(
        conn: &mut DbConnection,
        by: &str,
        now: PrimitiveDateTime,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, Error> {
        let due: Option<String> = outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(now))
            .filter(
                outbox::claimed_until
                    .is_null()
                    .or(outbox::claimed_until.lt(now)),
            )
            .select(outbox::id)
            .first(conn)
            .optional()?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let until = now + lease;
        Ok(match conn {
            DbConnection::Postgres(c) => claim!(c, CLAIM_POSTGRES, by, until, now, limit)?,
            DbConnection::Sqlite(c) => claim!(c, CLAIM_SQLITE, by, until, now, limit)?,
        })
    }

    /// Records that the mail server took the mail, and wipes the body; `false` when this
    /// instance's claim had lapsed and another took the mail (it will not be marked twice).
    pub fn mark_sent(
        conn: &mut DbConnection,
        id: &str,
        by: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, Error> {
        let n = diesel::update(
            outbox::table
                .filter(outbox::id.eq(id))
                .filter(outbox::claimed_by.eq(by))
                .filter(outbox::sent_at.is_null()),
        )
        .set((
            outbox::sent_at.eq(Some(now)),
            outbox::body.eq(""),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::claimed_by.eq(None::<String>),
            outbox::claimed_until.eq(None::<PrimitiveDateTime>),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Records a failed attempt: tried again at `retry_at`, or, with `None`, given up (the body
    /// wiped).
    pub fn mark_failed(
        conn: &mut DbConnection,
        id: &str,
        by: &str,
        error: &str,
        retry_at: Option<PrimitiveDateTime>,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        let error: String = error.chars().take(500).collect();
        let row = outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(by))
            .filter(outbox::sent_at.is_null());
        match retry_at {
            Some(at) => diesel::update(row)
                .set((
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::next_attempt_at.eq(at),
                    outbox::last_error.eq(Some(error)),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<PrimitiveDateTime>),
                ))
                .execute(conn)?,
            None => diesel::update(row)
                .set((
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::failed_at.eq(Some(now)),
                    outbox::body.eq(""),
                    outbox::last_error.eq(Some(error)),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<PrimitiveDateTime>),
                ))
                .execute(conn)?,
        };
        Ok(())
    }

    /// The newest mails first, for the admin panel.
    pub fn recent(
        conn: &mut DbConnection,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<OutboxMail>, Error> {
        Ok(outbox::table
            .order((outbox::created_at.desc(), outbox::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(OutboxMail::as_select())
            .load(conn)?)
    }

    /// How many mails are queued, sent and failed.
    pub fn counts(conn: &mut DbConnection) -> Result<OutboxCounts, Error> {
        let sent = outbox::table
            .filter(outbox::sent_at.is_not_null())
            .count()
            .get_result(conn)?;
        let failed = outbox::table
            .filter(outbox::failed_at.is_not_null())
            .count()
            .get_result(conn)?;
        let queued = outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .count()
            .get_result(conn)?;
        Ok(OutboxCounts {
            queued,
            sent,
            failed,
        })
    }

    /// Mails about one user, newest first (their data export).
    pub fn for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<OutboxMail>, Error> {
        Ok(outbox::table
            .filter(outbox::user_id.eq(user_id))
            .order(outbox::created_at.desc())
            .select(OutboxMail::as_select())
            .load(conn)?)
    }

    /// Deletes every mail about one user (account deletion: the addresses are personal data).
    pub fn delete_for_user(conn: &mut DbConnection, user_id: &str) -> Result<usize, Error> {
        Ok(diesel::delete(outbox::table.filter(outbox::user_id.eq(user_id))).execute(conn)?)
    }

    /// Deletes every mail to one address that names no account (account deletion: mail sent
    /// before the account existed, such as an invitation, still carries the address).
    pub fn delete_for_address(conn: &mut DbConnection, address: &str) -> Result<usize, Error> {
        // Compared in Rust: SQLite's lower() folds ASCII only, PostgreSQL's follows the server
        // locale; the rows without an owner are few (invitations, "someone tried" notices).
        let mut n = 0;
        let rows: Vec<(String, String)> = outbox::table
            .filter(outbox::user_id.is_null())
            .select((outbox::id, outbox::recipient))
            .load(conn)?;
        for (id, recipient) in rows {
            if recipient.to_lowercase() == address.to_lowercase() {
                n += diesel::delete(outbox::table.filter(outbox::id.eq(id))).execute(conn)?;
            }
        }
        Ok(n)
    }

    /// Deletes sent and failed mails older than `keep` (the background pruner).
    pub fn prune(
        conn: &mut DbConnection,
        now: PrimitiveDateTime,
        keep: Duration,
    ) -> Result<usize, Error> {
        Ok(diesel::delete(
            outbox::table
                .filter(
                    outbox::sent_at
                        .is_not_null()
                        .or(outbox::failed_at.is_not_null()),
                )
                .filter(outbox::created_at.lt(now - keep)),
        )
        .execute(conn)?)
    }
}
