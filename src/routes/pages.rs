//! The public home page and the "private link" page.

use rocket::request::FlashMessage;
use rocket::State;
use serde_json::{json, Value};

use crate::auth::{CsrfToken, CurrentUser, Sessions};
use crate::view::{format_time, page, Page};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![home, private]
}

/// Public: says whether you are signed in and where to go.
#[rocket::get("/")]
fn home(user: Option<CurrentUser>, flash: Option<FlashMessage<'_>>, csrf: CsrfToken) -> Page {
    let role = user.as_ref().map_or("", |u| u.role.as_str());
    page(
        "home",
        "Home",
        user.as_ref(),
        flash,
        &csrf,
        json!({ "role": role }),
    )
}

/// Any signed-in user: who you are, your role and when the sign-in ends at the latest.
#[rocket::get("/private")]
fn private(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    sessions: &State<Sessions>,
) -> Page {
    let left = (user.session_expires_at - sessions.clock().now()).whole_seconds();
    let minutes_left = (left.max(0) + 59) / 60;
    // The busiest page: typed values straight into the context, under flat keys.
    page(
        "private",
        "Private link",
        Some(&user),
        flash,
        &csrf,
        Value::Null,
    )
    .with("user_username", &user.username)
    .with("user_role", user.role.as_str())
    .with("expires_at", &format_time(user.session_expires_at))
    .with("expires_in_minutes", &minutes_left)
}
