//! The outbox on the panel: how many mails are queued, sent and failed, and the newest ones —
//! who, what and how it went, never a body.

use serde_json::json;

use crate::auth::Admin;
use crate::error::Error;
use crate::models::OutboxMail;
use crate::routes::services::Services;
use crate::text::format_db_time;
use crate::view::{Page, PageContext, Pagination};

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![outbox]
}

/// The outbox, newest first, 25 a page.
#[rocket::get("/admin/mail?<page>")]
async fn outbox(
    _admin: Admin,
    page: Option<i64>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let pagination = Pagination::new(page);
    let (mails, counts) = site
        .db
        .run(move |conn| {
            let offset = (pagination.page - 1).saturating_mul(pagination.per_page);
            let mails = OutboxMail::recent(conn, pagination.per_page, offset)?;
            Ok((mails, OutboxMail::counts(conn)?))
        })
        .await?;
    let total = counts.queued + counts.sent + counts.failed;
    let time = |t: Option<time::PrimitiveDateTime>| t.map(format_db_time).unwrap_or_default();
    let mails: Vec<_> = mails
        .iter()
        .map(|m| {
            json!({
                "kind": m.kind,
                "recipient": m.recipient,
                "subject": m.subject,
                "state": m.state().as_str(),
                "attempts": m.attempts,
                "last_error": m.last_error.clone().unwrap_or_default(),
                "created": format_db_time(m.created_at),
                "sent": time(m.sent_at),
                "failed": time(m.failed_at),
                "next_attempt": if m.state() == crate::models::MailState::Queued {
                    format_db_time(m.next_attempt_at)
                } else {
                    String::new()
                },
            })
        })
        .collect();
    Ok(ctx.page(
        "admin/mail",
        "Mail",
        json!({
            "mails": mails,
            "counts": {
                "queued": counts.queued,
                "sent": counts.sent,
                "failed": counts.failed,
            },
            "max_attempts": site.settings.mail_max_attempts,
            "page": pagination.page,
            "pages": pagination.pages(total),
            "total": total,
            "base_query": "",
        }),
    ))
}
