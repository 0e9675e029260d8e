//! The public home page and the "private link" page.

use rocket::State;
use serde_json::Value;

use crate::auth::{CurrentUser, Sessions};
use crate::text::format_time;
use crate::view::{Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![home, private]
}

/// Public: says whether you are signed in and where to go.
#[rocket::get("/")]
fn home(user: Option<CurrentUser>, ctx: PageContext<'_>) -> Page {
    let role = user.as_ref().map_or("", |u| u.role.as_str());
    ctx.page("home", "Home", Value::Null).text("role", role)
}

/// Any signed-in user: who you are, your role and when the sign-in ends at the latest.
#[rocket::get("/private")]
fn private(user: &CurrentUser, ctx: PageContext<'_>, sessions: &State<Sessions>) -> Page {
    let left = (user.session_expires_at - sessions.clock().now()).whole_seconds();
    let minutes_left = (left.max(0) + 59) / 60;
    let minutes = if minutes_left == 1 {
        "minute"
    } else {
        "minutes"
    };
    // The busiest page: text values only, so it is rendered from a skeleton (view/skeleton.rs).
    ctx.page("private", "Private link", Value::Null)
        .text("user_username", user.username.as_str())
        .text("user_role", user.role.as_str())
        .text("expires_at", format_time(user.session_expires_at))
        .text("expires_in", format!("{minutes_left} {minutes}"))
}
