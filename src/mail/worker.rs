//! Each instance's mail sender: takes due mail from the outbox (a claim no other instance can
//! take at the same time), delivers it, and records the outcome — sent (body wiped), retried
//! later with a doubling wait, or given up after `mail_max_attempts`. It runs at once when this
//! instance queues mail and every second otherwise (mail queued by other instances, retries).

use std::sync::Arc;
use std::time::Duration;

use rocket::{Orbit, Rocket};
use time::PrimitiveDateTime;

use super::{Body, Mailer, Transport};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::models::OutboxMail;

/// How long a claim lasts: longer than one delivery may take.
const LEASE: time::Duration = time::Duration::seconds(60);
/// Mails taken per round.
const BATCH: i64 = 10;
/// How often the outbox is looked at when nothing woke the sender.
const POLL: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
const MAX_WAIT_SECS: i64 = 3600;

/// What the sender needs.
pub struct Sender {
    db: Db,
    clock: Clock,
    mailer: Mailer,
    transport: Transport,
    instance: String,
    retry_secs: i64,
    max_attempts: i32,
    message_host: String,
}

impl Sender {
    /// A sender for this instance.
    pub fn new(
        settings: &Settings,
        db: Db,
        clock: Clock,
        mailer: Mailer,
        transport: Transport,
    ) -> Sender {
        let message_host = mailer.from().email.domain().to_string();
        Sender {
            db,
            clock,
            mailer,
            transport,
            instance: format!(
                "{}-{}",
                settings.instance_name.as_deref().unwrap_or("latchkey"),
                uuid::Uuid::new_v4()
            ),
            retry_secs: settings.mail_retry_secs,
            max_attempts: settings.mail_max_attempts,
            message_host,
        }
    }

    /// When the attempt after `attempts` failed ones is due.
    fn retry_at(&self, attempts: i32, now: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doubling = 1_i64 << (attempts - 1).clamp(0, 20);
        let wait = (self.retry_secs * doubling).min(MAX_WAIT_SECS);
        Some(now + time::Duration::seconds(wait))
    }

    /// One round: claims due mail and delivers it; returns how many were claimed.
    pub async fn round(&self) -> Result<usize, Error> {
        let (instance, now) = (self.instance.clone(), self.clock.db_now());
        let claimed = self
            .db
            .run(move |conn| OutboxMail::claim(conn, &instance, now, LEASE, BATCH))
            .await?;
        let count = claimed.len();
        for mail in claimed {
            let outcome = match self.open(&mail) {
                Ok(body) => {
                    self.transport
                        .deliver(self.mailer.from(), &mail, body, &self.message_host)
                        .await
                }
                Err(e) => Err(e),
            };
            let (id, instance, now) = (mail.id.clone(), self.instance.clone(), self.clock.db_now());
            match outcome {
                Ok(()) => {
                    let marked = self
                        .db
                        .run(move |conn| OutboxMail::mark_sent(conn, &id, &instance, now))
                        .await?;
                    if !marked {
                        log::warn!("mail {} was sent after its claim lapsed", mail.id);
                    }
                }
                Err(why) => {
                    let attempts = mail.attempts + 1;
                    let retry_at = self.retry_at(attempts, now);
                    match retry_at {
                        Some(at) => log::warn!(
                            "mail {} ({}) not sent, attempt {attempts}, next at {at}: {why}",
                            mail.id,
                            mail.kind
                        ),
                        None => log::error!(
                            "mail {} ({}) given up after {attempts} attempts: {why}",
                            mail.id,
                            mail.kind
                        ),
                    }
                    self.db
                        .run(move |conn| {
                            OutboxMail::mark_failed(conn, &id, &instance, &why, retry_at, now)
                        })
                        .await?;
                }
            }
        }
        Ok(count)
    }

    /// The mail's text and HTML, unsealed.
    fn open(&self, mail: &OutboxMail) -> Result<Body, String> {
        let plain = self
            .mailer
            .seal()
            .open(&mail.id, &mail.body)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&plain).map_err(|e| format!("mail body unreadable: {e}"))
    }
}

/// Starts this instance's sender; it stops when the server shuts down.
pub fn spawn(rocket: &Rocket<Orbit>) {
    let (Some(sender), Some(mailer)) = (
        rocket.state::<Arc<Sender>>().cloned(),
        rocket.state::<Mailer>(),
    ) else {
        return;
    };
    let wake = mailer.wake_signal();
    let shutdown = rocket.shutdown();
    rocket::tokio::spawn(async move {
        rocket::tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = rocket::tokio::time::sleep(POLL) => {}
            }
            loop {
                match sender.round().await {
                    Ok(claimed) => {
                        if failing {
                            failing = false;
                            log::info!("outbox readable again");
                        }
                        if claimed < BATCH as usize {
                            break;
                        }
                    }
                    Err(e) => {
                        if !failing {
                            failing = true;
                            log::warn!("outbox not read: {e}");
                        }
                        break;
                    }
                }
            }
        }
    });
}
