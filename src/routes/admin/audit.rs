//! The audit log on the panel: newest first, filtered by user, kind, address and date range, 25
//! a page.
//! The filters are shared with the CSV download.

use rocket::form::FromForm;
use serde_json::json;
use time::macros::format_description;
use time::{Date, PrimitiveDateTime, Time};

use super::query_text;
use crate::auth::Admin;
use crate::db::Db;
use crate::error::Error;
use crate::models::{AuditEvent, AuditFilter, AuditKind, User};
use crate::routes::services::Services;
use crate::text::{format_db_time, percent_encode};
use crate::view::{Page, PageContext, Pagination};

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![audit_log]
}

/// The filters as they come in the query string; each may be absent or empty.
#[derive(Debug, Default, FromForm)]
pub(super) struct Filters<'r> {
    user: Option<&'r str>,
    kind: Option<&'r str>,
    ip: Option<&'r str>,
    from: Option<&'r str>,
    to: Option<&'r str>,
}

/// The audit log's filters, as submitted and as applied.
pub(super) struct AuditQuery {
    pub(super) filter: AuditFilter,
    shown: serde_json::Value,
    base_query: String,
}

fn parse_day(s: Option<&str>) -> Option<Date> {
    let s = s?.trim();
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// The filters as applied: an exact username when the name matches an account, a known kind,
/// whole days.
pub(super) async fn audit_query(db: &Db, filters: &Filters<'_>) -> Result<AuditQuery, Error> {
    let user = query_text(filters.user);
    let kind = filters.kind.and_then(AuditKind::parse);
    let ip = query_text(filters.ip);
    let (from, to) = (parse_day(filters.from), parse_day(filters.to));
    // Filter by the exact stored username when the name matches an account.
    let user_exact = if user.is_empty() {
        None
    } else {
        let typed = user.clone();
        Some(
            db.run(move |conn| Ok(User::find_by_login(conn, &typed)?.map(|u| u.username)))
                .await?
                .unwrap_or(user.clone()),
        )
    };
    let filter = AuditFilter {
        user: user_exact,
        kind: kind.map(|k| k.as_str().to_string()),
        ip: (!ip.is_empty()).then(|| ip.clone()),
        from: from.map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT)),
        to: to
            .and_then(|d| d.next_day())
            .map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT)),
    };
    let day = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let mut base_query = String::new();
    for (key, value) in [
        ("user", user.clone()),
        (
            "kind",
            kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        ),
        ("ip", ip.clone()),
        ("from", day(from)),
        ("to", day(to)),
    ] {
        if !value.is_empty() {
            base_query.push_str(&format!("{key}={}&", percent_encode(&value, b"")));
        }
    }
    Ok(AuditQuery {
        filter,
        shown: json!({
            "user": user,
            "kind": kind.map(|k| k.as_str()).unwrap_or(""),
            "ip": ip,
            "from": day(from),
            "to": day(to),
        }),
        base_query,
    })
}

/// The audit log, newest first, filtered by user, kind, address and date range.
#[rocket::get("/admin/audit?<page>&<filters..>")]
async fn audit_log(
    _admin: Admin,
    filters: Filters<'_>,
    page: Option<i64>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let query = audit_query(site.db, &filters).await?;
    let pagination = Pagination::new(page);
    let filter = query.filter.clone();
    let (events, total) = site
        .db
        .run(move |conn| AuditEvent::search(conn, &filter, pagination.page, pagination.per_page))
        .await?;
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "at": format_db_time(e.at),
                "kind": e.kind,
                "actor": e.actor.clone().unwrap_or_default(),
                "subject": e.subject.clone().unwrap_or_default(),
                "ip": e.ip.clone().unwrap_or_default(),
                "user_agent": e.user_agent.clone().unwrap_or_default(),
                "detail": e.detail.clone().unwrap_or_default(),
            })
        })
        .collect();
    let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
    Ok(ctx.page(
        "admin/audit",
        "Audit log",
        json!({
            "events": events,
            "kinds": kinds,
            "filters": query.shown,
            "page": pagination.page,
            "pages": pagination.pages(total),
            "total": total,
            "base_query": query.base_query,
        }),
    ))
}
