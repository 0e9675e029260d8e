//! The admin panel: find users, change roles, disable and enable accounts.

use std::net::IpAddr;

use rocket::form::Form;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use rocket_dyn_templates::Template;
use serde_json::json;

use super::Fields;
use crate::auth::Admin;
use crate::db::Db;
use crate::error::Error;
use crate::events;
use crate::models::{Role, User};
use crate::view::{format_db_time, percent_encode};

/// Users shown per page.
pub const PER_PAGE: i64 = 25;
/// Longest search string used.
const MAX_QUERY_CHARS: usize = 100;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![users, change_role, disable, enable]
}

/// The user list with search and pagination.
#[rocket::get("/admin?<q>&<page>")]
async fn users(
    admin: Admin,
    q: Option<&str>,
    page: Option<i64>,
    flash: Option<FlashMessage<'_>>,
    db: &State<Db>,
) -> Result<Template, Error> {
    let q: String = q
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let requested = page.unwrap_or(1).clamp(1, i64::MAX / PER_PAGE);
    let found = db
        .run({
            let q = q.clone();
            move |conn| User::search(conn, &q, requested, PER_PAGE)
        })
        .await?;
    let pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let users: Vec<_> = found
        .users
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "role": u.role().as_str(),
                "disabled": u.disabled,
                "created_at": format_db_time(u.created_at),
                "last_login_at": u.last_login_at.map(format_db_time).unwrap_or_default(),
                "is_self": u.id == admin.0.id,
            })
        })
        .collect();
    let base_query = if q.is_empty() {
        String::new()
    } else {
        format!("q={}&", percent_encode(&q, b""))
    };
    Ok(crate::view::page(
        "admin/users",
        "Admin panel",
        Some(&admin.0),
        flash,
        json!({
            "users": users,
            "q": q,
            "page": requested,
            "pages": pages,
            "total": found.total,
            "base_query": base_query,
        }),
    ))
}

fn back(result: Result<String, String>) -> Flash<Redirect> {
    match result {
        Ok(message) => Flash::success(Redirect::to("/admin"), message),
        Err(message) => Flash::error(Redirect::to("/admin"), message),
    }
}

/// Maps the outcome of an admin change to the message shown on the panel.
fn explain(result: Result<User, Error>) -> Result<Result<User, String>, Error> {
    match result {
        Ok(user) => Ok(Ok(user)),
        Err(Error::LastAdmin) => Ok(Err(
            "That would leave no active administrator. Make someone else an admin first.".into(),
        )),
        Err(Error::NotFound) => Ok(Err("That user no longer exists.".into())),
        Err(e) => Err(e),
    }
}

/// Sets a user's role to `user` or `admin`.
#[rocket::post("/admin/users/<id>/role", data = "<form>")]
async fn change_role(
    admin: Admin,
    id: &str,
    form: Form<Fields>,
    db: &State<Db>,
    ip: Option<IpAddr>,
) -> Result<Flash<Redirect>, Error> {
    let Some(role) = Role::parse(form.get("role")) else {
        return Ok(back(Err("Choose a role: user or admin.".into())));
    };
    let id = id.to_string();
    let result = explain(db.run(move |conn| User::set_role(conn, &id, role)).await)?;
    Ok(back(result.map(|user| {
        events::role_changed(&admin.0.username, &user.username, role.as_str(), ip);
        format!(
            "{} is now {}.",
            user.username,
            if role == Role::Admin {
                "an admin"
            } else {
                "a user"
            }
        )
    })))
}

async fn set_disabled(
    admin: Admin,
    id: &str,
    disabled: bool,
    db: &Db,
    ip: Option<IpAddr>,
) -> Result<Flash<Redirect>, Error> {
    if disabled && id == admin.0.id {
        return Ok(back(Err("You cannot disable your own account.".into())));
    }
    let id = id.to_string();
    let result = explain(
        db.run(move |conn| User::set_disabled(conn, &id, disabled))
            .await,
    )?;
    Ok(back(result.map(|user| {
        events::disabled_changed(&admin.0.username, &user.username, disabled, ip);
        format!(
            "{} is now {}.",
            user.username,
            if disabled { "disabled" } else { "enabled" }
        )
    })))
}

/// Disables an account: it can no longer sign in.
#[rocket::post("/admin/users/<id>/disable")]
async fn disable(
    admin: Admin,
    id: &str,
    db: &State<Db>,
    ip: Option<IpAddr>,
) -> Result<Flash<Redirect>, Error> {
    set_disabled(admin, id, true, db, ip).await
}

/// Re-enables a disabled account.
#[rocket::post("/admin/users/<id>/enable")]
async fn enable(
    admin: Admin,
    id: &str,
    db: &State<Db>,
    ip: Option<IpAddr>,
) -> Result<Flash<Redirect>, Error> {
    set_disabled(admin, id, false, db, ip).await
}
