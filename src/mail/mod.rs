//! Mail: letters rendered from `templates/mail` (a text part and an HTML part, no images, no
//! tracking), queued in the outbox beside the change they are about, and sent off the request
//! path by each instance's [`worker`] over SMTP (or written as `.eml` files when no server is
//! configured).
//!
//! A handler composes a [`Letter`] into an [`OutboxMail`] ([`Mailer::compose`]), saves it with
//! [`OutboxMail::queue`] in the same transaction as its change, then calls [`Mailer::wake`] so
//! this instance's worker sends it at once. [`Mailer::send`] does all three for a mail that goes
//! alone (a notice).

mod letters;
mod transport;
pub mod worker;

use std::sync::Arc;

use lettre::message::Mailbox;
use rocket::tokio::sync::Notify;
use rocket_dyn_templates::tera::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::PrimitiveDateTime;

use crate::auth::{Seal, Tokens};
use crate::config::{Notice, Settings};
use crate::db::Db;
use crate::error::Error;
use crate::models::OutboxMail;
use crate::view::Pages;

pub use letters::{HowChanged, RESET_LINK_MINUTES};
pub use transport::Transport;

/// One mail to write: its template (`templates/mail/<kind>.html.tera` and
/// `<kind>_text.txt.tera`), recipient, subject and the template's values.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The template name, also the outbox's `kind`.
    pub kind: &'static str,
    /// The recipient's address.
    pub to: String,
    /// The account the mail concerns (for export and deletion).
    pub user_id: Option<String>,
    /// The subject line.
    pub subject: String,
    /// The template's own values; `site_url` and `subject` are added.
    pub values: Value,
}

/// The two parts of a mail, sealed together in the outbox.
#[derive(Serialize, Deserialize)]
pub struct Body {
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// Writes letters and hands them to the outbox; managed state (cheap to clone).
#[derive(Clone)]
pub struct Mailer {
    pages: Pages,
    origin: String,
    from: Mailbox,
    notices: Vec<Notice>,
    tokens: Arc<Tokens>,
    wake: Arc<Notify>,
}

impl Mailer {
    /// A mailer whose links start with `origin` (the site as browsers reach it).
    pub fn new(
        settings: &Settings,
        origin: String,
        pages: Pages,
        tokens: Arc<Tokens>,
    ) -> Result<Mailer, Error> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|e| Error::Config(format!("mail_from: {e}")))?;
        Ok(Mailer {
            pages,
            origin: origin.trim_end_matches('/').to_string(),
            from,
            notices: settings.mail_notices.clone(),
            tokens,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The absolute URL of a path on this site, for links in mail. Always from `public_origin`
    /// (or the configured port), never from the request's `Host`, which an attacker chooses.
    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.origin, path)
    }

    /// Whether the operator left this notice on.
    pub fn notice_on(&self, notice: Notice) -> bool {
        self.notices.contains(&notice)
    }

    /// The From address.
    pub(crate) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The seal of outbox bodies, from the keyring in use now.
    pub(crate) fn seal(&self) -> Seal {
        Seal::outbox(&self.tokens.keyring())
    }

    /// Wakes this instance's sender (after the transaction that queued mail committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn wake_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The letter rendered and sealed as an outbox row, due now.
    pub fn compose(&self, letter: &Letter, now: PrimitiveDateTime) -> Result<OutboxMail, Error> {
        let mut context =
            Context::from_value(letter.values.clone()).unwrap_or_else(|_| Context::new());
        context.insert("site_url", &self.link("/"));
        context.insert("subject", &letter.subject);
        let render = |name: String| {
            self.pages
                .render_mail(&name, &context)
                .map_err(|e| Error::Config(format!("mail template {name}: {e}")))
        };
        let body = Body {
            text: render(format!("mail/{}_text", letter.kind))?,
            html: render(format!("mail/{}", letter.kind))?,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let plain = serde_json::to_string(&body).map_err(|e| Error::Config(e.to_string()))?;
        let sealed = self.seal().seal(&id, &plain)?;
        Ok(OutboxMail {
            id,
            kind: letter.kind.to_string(),
            user_id: letter.user_id.clone(),
            recipient: letter.to.clone(),
            subject: letter.subject.clone(),
            body: sealed,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            claimed_by: None,
            claimed_until: None,
            sent_at: None,
            failed_at: None,
            last_error: None,
        })
    }

    /// Composes, queues and wakes the sender: for a mail that goes on its own (a notice).
    pub async fn send(
        &self,
        db: &Db,
        letter: &Letter,
        now: PrimitiveDateTime,
    ) -> Result<(), Error> {
        let mail = self.compose(letter, now)?;
        db.run(move |conn| OutboxMail::queue(conn, &mail)).await?;
        self.wake();
        Ok(())
    }

    /// Like [`Mailer::send`] for a notice the operator may have turned off; a failure is logged,
    /// not returned (the change it is about is already saved).
    pub async fn notify(&self, db: &Db, notice: Notice, letter: &Letter, now: PrimitiveDateTime) {
        if !self.notice_on(notice) {
            return;
        }
        if let Err(e) = self.send(db, letter, now).await {
            log::error!(
                "{} notice for user {} not queued: {e}",
                letter.kind,
                letter.user_id.as_deref().unwrap_or("-")
            );
        }
    }
}
