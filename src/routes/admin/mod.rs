//! The admin panel: find users and act on them (`users.rs`), and read the audit log
//! (`audit.rs`, and its CSV download in `csv.rs`), and see attacks at a glance (`security.rs`), invite people (`invitations.rs`) and watch the outbox (`mail.rs`). Every action goes through [`AdminAction`].

pub(crate) mod action;
mod audit;
mod csv;
mod invitations;
mod mail;
mod security;
mod users;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    let mut routes = users::routes();
    routes.extend(audit::routes());
    routes.extend(csv::routes());
    routes.extend(security::routes());
    routes.extend(invitations::routes());
    routes.extend(mail::routes());
    routes
}

/// Longest search string used.
const MAX_QUERY_CHARS: usize = 100;

/// A search string as used: trimmed and at most [`MAX_QUERY_CHARS`] characters.
fn query_text(raw: Option<&str>) -> String {
    raw.unwrap_or("")
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect()
}
