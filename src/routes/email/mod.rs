//! Addresses: proving one ([`verify`]: the link mailed at sign-up, "Send the link again", and —
//! with `email_verification = "required"` — the "Confirm your address" page an unverified user is
//! held on), and changing one ([`change`]: sudo mode; a link to the new address, then a notice
//! with an undo link to the old one that puts it back and ends every session).
//!
//! Links are single-use account tokens (`models/account_token.rs`), each accepted only by its
//! own route; a wrong, used, voided or expired one gets a page saying so, never an error.

mod change;
mod verify;

use rocket::http::{CookieJar, Status};
use serde_json::json;

use super::services::Services;
use crate::auth::CurrentUser;
use crate::error::Error;
use crate::models::User;
use crate::view::{FormOutcome, PageContext};

pub use verify::CONFIRM_PAGE;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    let mut routes = verify::routes();
    routes.extend(change::routes());
    routes
}

/// A link that opened nothing: the page saying so, in the layout, 400.
fn link_refused(
    ctx: PageContext<'_>,
    heading: &str,
    message: &str,
    action: (&str, &str),
) -> FormOutcome {
    FormOutcome::Redo((
        Status::BadRequest,
        ctx.page(
            "email/link",
            heading,
            json!({
                "heading": heading,
                "message": message,
                "action_url": action.0,
                "action_label": action.1,
            }),
        ),
    ))
}

/// The user row behind a session.
async fn load(site: &Services<'_>, id: &str) -> Result<Option<User>, Error> {
    let id = id.to_string();
    site.db.run(move |conn| User::find(conn, &id)).await
}

/// After the user row changed in a way the session's token carries (the address verified),
/// gives this browser a token that says so — when the browser is signed in as that user. Other
/// browsers learn it at their next renewal.
async fn reissue_if_own(
    site: &Services<'_>,
    jar: &CookieJar<'_>,
    signed_in: Option<&CurrentUser>,
    user_id: &str,
) -> Result<bool, Error> {
    let Some(user) = signed_in.filter(|u| u.id == user_id) else {
        return Ok(false);
    };
    match site.sessions.reissue(&user.session_id, &user.id).await? {
        Some(started) => {
            site.sessions.set_cookie(jar, &started);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The domain of an address, for the audit trail and the notice (never the whole address).
fn domain(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default()
}
