//! Accepting an invitation: `/invite/<token>` shows the sign-up form with the invited address
//! (from the invitation, never from the form) and creates the account with the invitation's role,
//! the address already verified, then signs the new user in through the one sign-in pipeline.
//! Also the page `/signup` shows instead of its form when sign-up is by invitation only.

use rocket::http::{CookieJar, Status};
use serde_json::json;

use super::signin::too_many;
use crate::auth::signin::SignIn;
use crate::auth::CsrfForm;
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{AuditKind, Invitation, NotAccepted, Role, SignupConflict};
use crate::routes::services::Services;
use crate::validation::{field, FieldErrors};
use crate::view::{FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![invite_page, accept]
}

/// The sentence of a sign-up refused because it is by invitation only.
pub(crate) const INVITE_ONLY: &str =
    "Sign-up is by invitation only. Ask an administrator of this site to invite you.";

/// "Sign-up is by invitation only", with `status`.
pub(crate) fn invite_only_page(ctx: PageContext<'_>, status: Status) -> (Status, Page) {
    let page = ctx.page(
        "auth/invite_only",
        "Sign-up is by invitation only",
        json!({ "message": INVITE_ONLY }),
    );
    (status, page)
}

/// The form of an invitation: the address is not in it.
#[derive(Debug, rocket::FromForm)]
struct Accept {
    #[field(default = String::new(), validate = field::username())]
    username: String,
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    password_confirm: String,
}

fn invite_form(
    ctx: PageContext<'_>,
    token: &str,
    email: &str,
    role: Role,
    values: serde_json::Value,
    errors: &FieldErrors,
) -> Page {
    ctx.page(
        "auth/invite",
        "Accept your invitation",
        json!({
            "token": token,
            "email": email,
            "role": role.as_str(),
            "values": values,
            "errors": errors,
        }),
    )
}

/// The page of a link that opens nothing: 410, never a hint of why.
fn gone(ctx: PageContext<'_>) -> (Status, Page) {
    let page = ctx.page(
        "errors/error",
        "Invitation not valid",
        json!({
            "status": 410,
            "heading": "This invitation is not valid",
            "message": "The link was already used, withdrawn, replaced by a newer invitation, or it expired. Ask the administrator who invited you for a new one.",
        }),
    );
    (Status::Gone, page)
}

/// The sign-up form of a valid invitation.
#[rocket::get("/invite/<token>")]
async fn invite_page(
    token: &str,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<(Status, Page), Error> {
    let (raw, now) = (token.to_string(), site.now());
    let found = site
        .db
        .run(move |conn| Invitation::find(conn, &raw, now))
        .await?;
    let Some(invitation) = found else {
        return Ok(gone(ctx));
    };
    let email = invitation.email.unwrap_or_default();
    let role = invitation
        .role
        .as_deref()
        .and_then(Role::parse)
        .unwrap_or(Role::User);
    let page = invite_form(ctx, token, &email, role, json!({}), &FieldErrors::new());
    Ok((Status::Ok, page))
}

fn username_taken(conflict: SignupConflict, errors: &mut FieldErrors) {
    if conflict.username {
        errors.add(
            "username",
            "That username is already taken. Choose another one.",
        );
    }
    if conflict.email {
        errors.add(
            "form",
            "That address has an account already. Sign in instead.",
        );
    }
}

/// Creates the invited account and signs its owner in.
#[rocket::post("/invite/<token>", data = "<form>")]
async fn accept(
    token: &str,
    form: CsrfForm<'_, Accept>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = site.throttle.signup(site.peer.ip).await? {
        return Ok(too_many(ctx, wait));
    }
    let (raw, now) = (token.to_string(), site.now());
    let found = site
        .db
        .run(move |conn| Invitation::find(conn, &raw, now))
        .await?;
    let Some(invitation) = found else {
        let (status, page) = gone(ctx);
        return Ok(FormOutcome::Redo((status, page)));
    };
    let email = invitation.email.clone().unwrap_or_default();
    let role = invitation
        .role
        .as_deref()
        .and_then(Role::parse)
        .unwrap_or(Role::User);

    let raw_username = form.submitted("username");
    let values = json!({ "username": raw_username.trim() });
    let (raw_password, raw_confirm) = (
        form.submitted("password"),
        form.submitted("password_confirm"),
    );
    let parsed = form.parsed();
    let (mut errors, password, confirm) = match &parsed {
        Ok(accept) => (
            FieldErrors::new(),
            accept.password.clone(),
            accept.password_confirm.clone(),
        ),
        Err(errors) => (
            errors.clone(),
            raw_password.to_string(),
            raw_confirm.to_string(),
        ),
    };
    super::welcome::check_new_password(
        password,
        confirm,
        &[raw_username, email.as_str()],
        &mut errors,
    )
    .await?;
    let accept = match parsed {
        Ok(accept) if errors.is_empty() => accept,
        _ => {
            let page = invite_form(ctx, token, &email, role, values, &errors);
            return Ok(FormOutcome::redo(page));
        }
    };
    let username = accept.username.trim().to_string();
    let hash = site.hasher.hash(accept.password).await?;
    let (raw, name) = (token.to_string(), username.clone());
    let accepted = site
        .db
        .run(move |conn| Invitation::accept(conn, &raw, &name, hash, now))
        .await;
    let user = match accepted {
        Ok(Ok(user)) => user,
        Ok(Err(NotAccepted::Gone)) => {
            let (status, page) = gone(ctx);
            return Ok(FormOutcome::Redo((status, page)));
        }
        Ok(Err(NotAccepted::Conflict(conflict))) => {
            username_taken(conflict, &mut errors);
            let page = invite_form(ctx, token, &email, role, values, &errors);
            return Ok(FormOutcome::redo(page));
        }
        // Taken by a racing sign-up between the check and the insert: nothing was saved.
        Err(Error::Refused(message)) => {
            errors.add("username", message);
            let page = invite_form(ctx, token, &email, role, values, &errors);
            return Ok(FormOutcome::redo(page));
        }
        Err(e) => return Err(e),
    };
    let mut event = Event::new(AuditKind::InvitationAccepted, &site.peer)
        .by_self(Who::user(&user.id, &user.username))
        .detail(format!("role {}", user.role));
    if let Some(by) = &invitation.created_by {
        event = event.detail(format!("role {}, invited by user {by}", user.role));
    }
    site.audit.record(event).await;
    super::welcome::welcome(signin, user, jar).await
}
