//! The public home page and the "private link" page.

use rocket::request::FlashMessage;
use rocket_dyn_templates::Template;
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::CurrentUser;
use crate::view::{format_time, page};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![home, private]
}

/// Public: says whether you are signed in and where to go.
#[rocket::get("/")]
fn home(user: Option<CurrentUser>, flash: Option<FlashMessage<'_>>) -> Template {
    let role = user.as_ref().map_or("", |u| u.role.as_str());
    page(
        "home",
        "Home",
        user.as_ref(),
        flash,
        json!({ "role": role }),
    )
}

/// Any signed-in user: who you are, your role and when the sign-in expires.
#[rocket::get("/private")]
fn private(user: CurrentUser, flash: Option<FlashMessage<'_>>) -> Template {
    let minutes_left = ((user.expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0)
        + 59)
        / 60;
    page(
        "private",
        "Private link",
        Some(&user),
        flash,
        json!({
            "user": {
                "username": user.username,
                "role": user.role.as_str(),
                "expires_at": format_time(user.expires_at),
                "expires_in_minutes": minutes_left,
            }
        }),
    )
}
