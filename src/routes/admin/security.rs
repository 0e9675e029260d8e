//! The security overview: failed sign-ins, lockouts and throttled requests over the last 24
//! hours and 7 days as charts and tables, and the most targeted accounts and busiest addresses,
//! each linking to the audit log filtered for it.

use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::Error;
use crate::models::{AuditEvent, Bucket, SecurityStats, Series};
use crate::routes::services::Services;
use crate::text::percent_encode;
use crate::view::{BarChart, Page, PageContext, SeriesStyle};

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![security_overview]
}

/// The three series as drawn, in [`Series::ALL`] order.
const STYLES: [SeriesStyle; 3] = [
    SeriesStyle {
        name: "Failed sign-ins",
        class: "chart-failed",
        fill: "#c0262d",
    },
    SeriesStyle {
        name: "Lockouts",
        class: "chart-locked",
        fill: "#7a4d00",
    },
    SeriesStyle {
        name: "Throttled",
        class: "chart-throttled",
        fill: "#2454d6",
    },
];

/// The security overview.
#[rocket::get("/admin/security")]
async fn security_overview(
    _admin: Admin,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let now = site.now();
    let stats = site
        .db
        .run(move |conn| AuditEvent::security_stats(conn, now))
        .await?;
    let since = SecurityStats::week_start(now).date().to_string();
    let hours = period(
        &stats.hours,
        "hours",
        "Last 24 hours, per hour (UTC)",
        3,
        |b| format!("{:02}:00", b.start.hour()),
    );
    let days = period(&stats.days, "days", "Last 7 days, per day (UTC)", 1, |b| {
        format!("{}-{:02}", u8::from(b.start.month()), b.start.day())
    });
    let accounts: Vec<Value> = stats
        .accounts
        .iter()
        .map(|(name, n)| json!({"name": name, "count": n, "query": percent_encode(name, b"")}))
        .collect();
    let addresses: Vec<Value> = stats
        .addresses
        .iter()
        .map(|(ip, n)| json!({"ip": ip, "count": n, "query": percent_encode(ip, b"")}))
        .collect();
    let names: Vec<&str> = STYLES.iter().map(|s| s.name).collect();
    Ok(ctx.page(
        "admin/security",
        "Security overview",
        json!({
            "periods": [hours, days],
            "series": names,
            "accounts": accounts,
            "addresses": addresses,
            "since": since,
            "truncated": stats.truncated,
            "max_rows": SecurityStats::MAX_ROWS,
        }),
    ))
}

/// One period's chart, table rows and totals for the template.
fn period(
    buckets: &[Bucket],
    id: &str,
    title: &str,
    label_every: usize,
    label: impl Fn(&Bucket) -> String,
) -> Value {
    let mut totals = [0i64; 3];
    for b in buckets {
        for s in Series::ALL {
            totals[s as usize] += b.counts[s as usize];
        }
    }
    let desc = format!(
        "{}: {} failed sign-ins, {} lockouts, {} throttled requests.",
        title, totals[0], totals[1], totals[2]
    );
    let chart = BarChart {
        title,
        desc,
        series: &STYLES,
        bars: buckets
            .iter()
            .map(|b| (label(b), b.counts.to_vec()))
            .collect(),
        label_every,
        id,
    };
    let rows: Vec<Value> = buckets
        .iter()
        .map(|b| json!({"label": label(b), "counts": b.counts}))
        .collect();
    json!({
        "id": id,
        "title": title,
        "svg": chart.svg(),
        "rows": rows,
        "totals": totals,
    })
}
