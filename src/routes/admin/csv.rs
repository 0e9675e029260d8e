//! The audit log as CSV, with the panel's filters, for spreadsheets and archives.

use rocket::http::{ContentType, Header};

use super::audit::{audit_query, Filters};
use crate::auth::Admin;
use crate::error::Error;
use crate::models::AuditEvent;
use crate::routes::services::Services;

/// Most rows in one download.
const CSV_MAX_ROWS: i64 = 50_000;

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![audit_csv]
}

/// The audit log as CSV (same filters), for spreadsheets and archives.
#[derive(rocket::Responder)]
pub(super) struct CsvDownload {
    body: String,
    content_type: ContentType,
    disposition: Header<'static>,
}

/// Quotes a CSV cell and defuses spreadsheet formulas (`=`, `+`, `-`, `@` at the start).
fn csv_cell(s: &str) -> String {
    let defused = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// `GET /admin/audit.csv` with the page's filters.
#[rocket::get("/admin/audit.csv?<filters..>")]
async fn audit_csv(
    _admin: Admin,
    filters: Filters<'_>,
    site: Services<'_>,
) -> Result<CsvDownload, Error> {
    let query = audit_query(site.db, &filters).await?;
    let filter = query.filter;
    let events = site
        .db
        .run(move |conn| AuditEvent::export(conn, &filter, CSV_MAX_ROWS))
        .await?;
    let mut body = String::from("time,kind,actor,subject,ip,user_agent,detail\r\n");
    for e in &events {
        let at =
            e.at.assume_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
        let cells = [
            at.as_str(),
            e.kind.as_str(),
            e.actor.as_deref().unwrap_or(""),
            e.subject.as_deref().unwrap_or(""),
            e.ip.as_deref().unwrap_or(""),
            e.user_agent.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or(""),
        ];
        body.push_str(&cells.map(csv_cell).join(","));
        body.push_str("\r\n");
    }
    Ok(CsvDownload {
        body,
        content_type: ContentType::new("text", "csv").with_params(("charset", "utf-8")),
        disposition: Header::new(
            "Content-Disposition",
            "attachment; filename=\"latchkey-audit.csv\"",
        ),
    })
}
