//! Rendering pages: every template gets the same base context (title, nav, flash) plus its own.

use rocket::http::{Header, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect, Responder};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::{CsrfToken, CurrentUser};
use crate::models::Role;

/// Renders `template` in the site layout. `extra` must be a JSON object; its keys join the base ones.
pub fn page(
    template: &'static str,
    title: &str,
    user: Option<&CurrentUser>,
    flash: Option<FlashMessage<'_>>,
    csrf: &CsrfToken,
    extra: Value,
) -> Template {
    let mut context = json!({
        "title": title,
        "nav": {
            "signed_in": user.is_some(),
            "username": user.map_or("", |u| u.username.as_str()),
            "is_admin": user.is_some_and(|u| u.role == Role::Admin),
        },
        "flash": flash.map(|f| json!({ "kind": f.kind(), "message": f.message() })),
        "csrf_token": csrf.0,
    });
    if let (Some(base), Value::Object(extra)) = (context.as_object_mut(), extra) {
        base.extend(extra);
    }
    Template::render(template, context)
}

/// A form handler's answer: on to the next page with a message, or the same form again with errors.
#[derive(Responder)]
pub enum FormOutcome {
    /// Success: a 303 with a flash message.
    Done(Flash<Redirect>),
    /// The form again, with its errors and a 4xx status.
    Redo((Status, Template)),
    /// The form again with 429 and how long to wait.
    Wait(Throttled),
}

/// A 429 answer with `Retry-After`.
#[derive(Responder)]
#[response(status = 429)]
pub struct Throttled {
    /// The page to show.
    pub page: Template,
    /// Seconds to wait.
    pub retry_after: Header<'static>,
}

impl Throttled {
    /// `page` with a `Retry-After` of `wait` (rounded up to whole seconds, at least 1).
    pub fn new(page: Template, wait: std::time::Duration) -> Throttled {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Throttled {
            page,
            retry_after: Header::new("Retry-After", secs.max(1).to_string()),
        }
    }
}

/// "1 minute", "5 minutes", "30 seconds": how long to wait, in words.
pub fn wait_words(wait: std::time::Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs < 60 {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

/// How times are shown on pages: `2026-11-22 21:30 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// [`format_time`] for database timestamps (stored in UTC).
pub fn format_db_time(t: time::PrimitiveDateTime) -> String {
    format_time(t.assume_utc())
}

/// Percent-encodes `s` for a query-string value, leaving unreserved characters (RFC 3986) and
/// those in `keep` as they are.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
