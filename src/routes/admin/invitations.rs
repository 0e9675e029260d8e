//! Invitations on the panel: invite an address with a role (the link is mailed and shown once
//! here, for handing over without mail), list the open ones, withdraw one.

use rocket::http::Status;
use serde_json::json;

use super::action::AdminAction;
use crate::auth::{Admin, CsrfForm};
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{AuditKind, Invitation, NotInvited, Role};
use crate::routes::services::Services;
use crate::text::format_db_time;
use crate::validation::{field, FieldErrors};
use crate::view::{FormOutcome, Page, PageContext};

/// The panel's page of invitations.
const PAGE: &str = "/admin/invitations";

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![invitations, invite, withdraw]
}

/// The invitation form.
#[derive(Debug, rocket::FromForm)]
struct Invite {
    #[field(default = String::new(), validate = field::email())]
    email: String,
}

/// "Withdraw": names the invitation by its stored hash.
#[derive(Debug, rocket::FromForm)]
struct Withdraw {
    #[field(default = String::new())]
    invitation: String,
}

/// The page: the form, and the open invitations.
async fn invitations_page(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    values: serde_json::Value,
    errors: &FieldErrors,
    made: Option<serde_json::Value>,
) -> Result<Page, Error> {
    let now = site.now();
    let pending = site
        .db
        .run(move |conn| Invitation::pending(conn, now))
        .await?;
    let pending: Vec<_> = pending
        .into_iter()
        .map(|p| {
            json!({
                "id": p.token.token_hash,
                "email": p.token.email.unwrap_or_default(),
                "role": p.token.role.unwrap_or_default(),
                "by": p.by.unwrap_or_else(|| "the command line".into()),
                "created": format_db_time(p.token.created_at),
                "expires": format_db_time(p.token.expires_at),
            })
        })
        .collect();
    Ok(ctx.page(
        "admin/invitations",
        "Invitations",
        json!({
            "pending": pending,
            "values": values,
            "errors": errors,
            "made": made,
        }),
    ))
}

/// The open invitations and the form to invite someone.
#[rocket::get("/admin/invitations")]
async fn invitations(
    _admin: Admin,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    invitations_page(
        ctx,
        &site,
        json!({ "role": "user" }),
        &FieldErrors::new(),
        None,
    )
    .await
}

/// Invites an address: the invitation stored and mailed, and its link shown this once (a page,
/// not a redirect, never cached).
#[rocket::post("/admin/invitations", data = "<form>")]
async fn invite(
    action: AdminAction<'_>,
    form: CsrfForm<'_, Invite>,
    ctx: PageContext<'_>,
) -> Result<(Status, Page), Error> {
    let site = &action.site;
    let values = json!({
        "email": form.submitted("email").trim(),
        "role": form.submitted("role"),
    });
    let role = Role::parse(form.submitted("role").trim());
    let parsed = form.parsed();
    let mut errors = match &parsed {
        Ok(_) => FieldErrors::new(),
        Err(errors) => errors.clone(),
    };
    if role.is_none() {
        errors.add("role", "Choose the role: user or admin.");
    }
    let (Ok(input), Some(role), true) = (parsed, role, errors.is_empty()) else {
        let page = invitations_page(ctx, site, values, &errors, None).await?;
        return Ok((Status::UnprocessableEntity, page));
    };
    let email = input.email.trim().to_string();
    let admin = action.admin.0.clone();
    let (mailer, now) = (site.mail.clone(), site.now());
    let made = {
        let (email, id, name) = (email.clone(), admin.id.clone(), admin.username.clone());
        site.db
            .run(move |conn| Invitation::make(conn, &mailer, &email, role, (Some(&id), &name), now))
            .await?
    };
    let link = match made {
        Ok(link) => link,
        Err(NotInvited::HasAccount) => {
            errors.add(
                "email",
                "That address already has an account: there is no one to invite. Find them under Users.",
            );
            let page = invitations_page(ctx, site, values, &errors, None).await?;
            return Ok((Status::Conflict, page));
        }
    };
    site.mail.wake();
    let event = Event::new(AuditKind::InvitationCreated, &site.peer)
        .actor(Who::user(&admin.id, &admin.username))
        .subject(Who::name(&email))
        .detail(format!("role {}", role.as_str()));
    site.audit.record(event).await;
    let made = json!({
        "email": email,
        "role": role.as_str(),
        "link": link,
        "expires": format_db_time(now + crate::models::INVITATION_TTL),
    });
    let page = invitations_page(
        ctx,
        site,
        json!({ "role": "user" }),
        &FieldErrors::new(),
        Some(made),
    )
    .await?;
    Ok((Status::Ok, page))
}

/// Withdraws an open invitation: its link opens nothing from now on.
#[rocket::post("/admin/invitations/withdraw", data = "<form>")]
async fn withdraw(
    action: AdminAction<'_>,
    form: CsrfForm<'_, Withdraw>,
) -> Result<FormOutcome, Error> {
    let site = &action.site;
    let hash = form.parsed().map(|w| w.invitation).unwrap_or_default();
    let now = site.now();
    let withdrawn = site
        .db
        .run(move |conn| Invitation::withdraw(conn, &hash, now))
        .await?;
    let Some(token) = withdrawn else {
        return Ok(FormOutcome::error(
            PAGE,
            "That invitation is no longer open: it was accepted, withdrawn or it expired.",
        ));
    };
    let email = token.email.unwrap_or_default();
    let admin = &action.admin.0;
    let event = Event::new(AuditKind::InvitationWithdrawn, &site.peer)
        .actor(Who::user(&admin.id, &admin.username))
        .subject(Who::name(&email))
        .detail(format!("role {}", token.role.unwrap_or_default()));
    site.audit.record(event).await;
    Ok(FormOutcome::success(
        PAGE,
        format!("The invitation to {email} is withdrawn; its link opens nothing now."),
    ))
}
