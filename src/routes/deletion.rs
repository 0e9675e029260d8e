//! Deleting an account: its owner on `/account/delete` (sudo mode and the username typed), or an
//! admin from the admin panel (see `admin/users.rs`). Both go through [`delete_account`]: one
//! transaction in the model ([`crate::models::User::delete_with_trail`]), the sessions refused on
//! every instance ([`crate::auth::Sessions::delete_account`]), then the goodbye mail.

use rocket::http::CookieJar;
use serde_json::json;

use crate::auth::{CsrfForm, Sudo};
use crate::error::Error;
use crate::events::{Event, Who};
use crate::mail::Letter;
use crate::models::{AuditKind, DeletedAccount, DeletedBy, Role, User, DELETED_USER};
use crate::routes::services::Services;
use crate::validation::FieldErrors;
use crate::view::{FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![delete_page, delete]
}

/// What the last active admin is told.
pub const LAST_ADMIN: &str =
    "You are the last active administrator, so your account cannot be deleted. Make someone else an admin first.";

/// The confirmation form: the username, typed.
#[derive(Debug, rocket::FromForm)]
struct Confirmation {
    #[field(default = String::new())]
    username: String,
}

fn delete_form(ctx: PageContext<'_>, username: &str, typed: &str, errors: &FieldErrors) -> Page {
    ctx.page(
        "account/delete",
        "Delete your account",
        json!({ "username": username, "typed": typed, "errors": errors }),
    )
}

/// What deleting removes and keeps, and the form (after "Confirm it's you"); the last active
/// admin is told at once that it will be refused.
#[rocket::get("/account/delete")]
async fn delete_page(
    sudo: Sudo<'_>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let id = sudo.0.id.clone();
    let last_admin = site
        .db
        .run(move |conn| {
            let admin =
                User::find(conn, &id)?.is_some_and(|u| u.role() == Role::Admin && !u.disabled);
            Ok(admin && User::count_active_admins(conn)? <= 1)
        })
        .await?;
    let errors = if last_admin {
        FieldErrors::form(LAST_ADMIN)
    } else {
        FieldErrors::new()
    };
    Ok(delete_form(ctx, &sudo.0.username, "", &errors))
}

/// Deletes your own account once you typed your username, signs this browser out and says
/// goodbye by mail.
#[rocket::post("/account/delete", data = "<form>")]
async fn delete(
    sudo: Sudo<'_>,
    form: CsrfForm<'_, Confirmation>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let user = sudo.0;
    let typed = form.submitted("username").trim().to_string();
    let matches = form
        .parsed()
        .is_ok_and(|c| c.username.trim().eq_ignore_ascii_case(&user.username));
    if !matches {
        let mut errors = FieldErrors::new();
        let message = if typed.is_empty() {
            "Type your username to confirm."
        } else {
            "That is not your username. Type it exactly as shown to delete your account."
        };
        errors.add("username", message);
        return Ok(FormOutcome::redo(delete_form(
            ctx,
            &user.username,
            &typed,
            &errors,
        )));
    }
    match delete_account(&site, &user.id, DeletedBy::Owner).await {
        Ok(_) => {}
        Err(Error::LastAdmin) => {
            let errors = FieldErrors::form(LAST_ADMIN);
            return Ok(FormOutcome::redo(delete_form(
                ctx,
                &user.username,
                &typed,
                &errors,
            )));
        }
        Err(Error::NotFound) => {
            site.sessions.clear_cookie(jar);
            return Ok(FormOutcome::error(
                "/login",
                "Your account no longer exists. Please sign in again.",
            ));
        }
        Err(e) => return Err(e),
    }
    site.sessions.clear_cookie(jar);
    Ok(FormOutcome::success("/", "Your account has been deleted."))
}

/// Deletes an account (by its owner or an admin): the one transaction, the revocations on
/// every instance, the tombstone's log line, then the goodbye mail (queued after the deletion
/// committed and naming no account, so it is the last use of the address).
pub async fn delete_account(
    site: &Services<'_>,
    user_id: &str,
    by: DeletedBy,
) -> Result<DeletedAccount, Error> {
    let by_admin = matches!(by, DeletedBy::Admin { .. });
    let actor = match &by {
        DeletedBy::Owner => None,
        DeletedBy::Admin { id, name } => Some((id.clone(), name.clone())),
    };
    let deleted = site.sessions.delete_account(user_id, by).await?;
    let subject = Who::user(user_id, DELETED_USER);
    let detail = if by_admin {
        "by an administrator"
    } else {
        "by its owner"
    };
    let event = Event::new(AuditKind::AccountDeleted, &site.peer)
        .subject(subject)
        .detail(detail);
    match &actor {
        Some((id, name)) => event.actor(Who::user(id, name)).log(),
        None => event.actor(subject).log(),
    }
    let now = site.now();
    let letter = Letter::account_deleted(site.mail, &deleted.user, by_admin, now);
    if let Err(e) = site.mail.send(site.db, &letter, now).await {
        log::error!("goodbye mail for deleted account {user_id} not queued: {e}");
    }
    Ok(deleted)
}
