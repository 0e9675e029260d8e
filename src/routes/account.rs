//! Your account: details and password change.

use std::net::IpAddr;

use rocket::form::Form;
use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::json;

use super::Fields;
use crate::auth::cookie::SessionCookie;
use crate::auth::{CurrentUser, PasswordHasher};
use crate::db::Db;
use crate::error::Error;
use crate::events;
use crate::models::User;
use crate::validation::{self, FieldErrors, PASSWORD_MAX_CHARS};
use crate::view::{format_db_time, page, FormOutcome};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![account, change_password]
}

/// The account row behind a valid token; a token for a deleted account signs the holder out.
async fn load_user(
    db: &Db,
    user: &CurrentUser,
    cookie: &SessionCookie,
    jar: &CookieJar<'_>,
) -> Result<Result<User, Flash<Redirect>>, Error> {
    let id = user.id.clone();
    match db.run(move |conn| User::find(conn, &id)).await? {
        Some(row) => Ok(Ok(row)),
        None => {
            jar.remove(cookie.removal());
            Ok(Err(Flash::error(
                Redirect::to("/login"),
                "Your account no longer exists. Please sign in again.",
            )))
        }
    }
}

fn account_page(
    row: &User,
    user: &CurrentUser,
    flash: Option<FlashMessage<'_>>,
    errors: &FieldErrors,
) -> rocket_dyn_templates::Template {
    page(
        "account/index",
        "Your account",
        Some(user),
        flash,
        json!({
            "user": {
                "username": row.username,
                "email": row.email,
                "role": row.role().as_str(),
                "created_at": format_db_time(row.created_at),
                "last_login_at": row.last_login_at.map(format_db_time).unwrap_or_default(),
            },
            "values": {},
            "errors": errors,
        }),
    )
}

/// Account details and the change-password form.
#[rocket::get("/account")]
async fn account(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    db: &State<Db>,
    cookie: &State<SessionCookie>,
    jar: &CookieJar<'_>,
) -> Result<Result<rocket_dyn_templates::Template, Flash<Redirect>>, Error> {
    Ok(load_user(db, &user, cookie, jar)
        .await?
        .map(|row| account_page(&row, &user, flash, &FieldErrors::new())))
}

/// Changes your password after checking the current one.
#[rocket::post("/account/password", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn change_password(
    user: CurrentUser,
    form: Form<Fields>,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    cookie: &State<SessionCookie>,
    jar: &CookieJar<'_>,
    ip: Option<IpAddr>,
) -> Result<Result<FormOutcome, Flash<Redirect>>, Error> {
    let row = match load_user(db, &user, cookie, jar).await? {
        Ok(row) => row,
        Err(redirect) => return Ok(Err(redirect)),
    };
    let current = form.get("current_password").to_string();
    let new = form.get("new_password").to_string();
    let confirm = form.get("new_password_confirm").to_string();

    let mut errors = FieldErrors::new();
    if current.is_empty() {
        errors.add("current_password", "Enter your current password.");
    } else if current.chars().count() > PASSWORD_MAX_CHARS
        || !hasher
            .verify(current.clone(), Some(row.password_hash.clone()))
            .await?
    {
        errors.add("current_password", "That is not your current password.");
    }
    let context = [row.username.clone(), row.email.clone()];
    let new_errors = rocket::tokio::task::spawn_blocking({
        let (new, current) = (new.clone(), current.clone());
        move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            let mut errors = validation::new_password(&new, &confirm, &context);
            if errors.is_empty() && new == current {
                errors.push((
                    "password",
                    "Choose a password different from your current one.".into(),
                ));
            }
            errors
        }
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    for (name, message) in new_errors {
        errors.add(
            if name == "password" {
                "new_password"
            } else {
                "new_password_confirm"
            },
            message,
        );
    }
    if !errors.is_empty() {
        let template = account_page(&row, &user, None, &errors);
        return Ok(Ok(FormOutcome::Redo((
            Status::UnprocessableEntity,
            template,
        ))));
    }

    let hash = hasher.hash(new).await?;
    let id = row.id.clone();
    db.run(move |conn| User::set_password_hash(conn, &id, &hash))
        .await?;
    events::password_changed(&row.username, ip);
    Ok(Ok(FormOutcome::Done(Flash::success(
        Redirect::to("/account"),
        "Your password has been changed.",
    ))))
}
