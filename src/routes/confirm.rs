//! "Confirm it's you" (sudo mode): the password, or the two-factor code when two-factor is on,
//! before a sensitive action. A proof counts for `sudo_window_secs`; then the person goes back
//! to where they were (`next`).

use rocket::http::CookieJar;
use serde_json::json;

use crate::auth::next::safe_next;
use crate::auth::two_factor::WRONG_APP_CODE;
use crate::auth::{CsrfForm, CurrentUser, Via};
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::AuditKind;
use crate::routes::services::Services;
use crate::validation::FieldErrors;
use crate::view::{wait_words, FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![confirm_page, confirm]
}

/// The password, or (two-factor on) the app's code.
#[derive(Debug, rocket::FromForm)]
struct Proof {
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    code: String,
}

const WRONG_PASSWORD: &str = "That is not your password.";

fn confirm_form(
    ctx: PageContext<'_>,
    two_factor: bool,
    next: Option<&str>,
    errors: &FieldErrors,
) -> Page {
    ctx.page(
        "auth/confirm",
        "Confirm it's you",
        json!({
            "two_factor": two_factor,
            "next": next.unwrap_or(""),
            "errors": errors,
        }),
    )
}

/// The form.
#[rocket::get("/confirm?<next>")]
async fn confirm_page(
    next: Option<&str>,
    user: &CurrentUser,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let next = next.and_then(safe_next);
    let two_factor = site.has_two_factor(&user.id).await?;
    Ok(confirm_form(
        ctx,
        two_factor,
        next.as_deref(),
        &FieldErrors::new(),
    ))
}

/// Checks the proof; on success the session's `auth_time` is now and the browser gets a token
/// that says so, then goes back to `next`.
#[rocket::post("/confirm?<next>", data = "<form>")]
async fn confirm(
    next: Option<&str>,
    user: &CurrentUser,
    form: CsrfForm<'_, Proof>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let next = next.and_then(safe_next);
    let two_factor = site.has_two_factor(&user.id).await?;
    if let Err(wait) = site.throttle.password_change(&user.id) {
        let message = format!("Too many attempts. Try again in {}.", wait_words(wait));
        let page = confirm_form(
            ctx,
            two_factor,
            next.as_deref(),
            &FieldErrors::form(message),
        );
        return Ok(FormOutcome::wait(page, wait));
    }
    let proof = form.parsed().unwrap_or(Proof {
        password: String::new(),
        code: String::new(),
    });
    // The field asked for is also what the audit trail says was given.
    let (refused, field) = if two_factor {
        let refused = site
            .code_refusal(&user.id, &proof.code, false, WRONG_APP_CODE)
            .await?;
        (refused, "code")
    } else {
        let ok = site.password_ok(&user.id, &proof.password).await?;
        ((!ok).then_some(WRONG_PASSWORD), "password")
    };
    let who = Who::user(&user.id, &user.username);
    if let Some(message) = refused {
        let event = Event::new(AuditKind::SudoFailed, &site.peer)
            .by_self(who)
            .detail(field);
        site.audit.record(event).await;
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        let page = confirm_form(ctx, two_factor, next.as_deref(), &errors);
        return Ok(FormOutcome::redo(page));
    }
    // Only a browser session can be confirmed here; a program gets a new token from /api/token.
    let started = match user.via {
        Via::Cookie => {
            site.sessions
                .reauthenticate(&user.session_id, &user.id, two_factor)
                .await?
        }
        Via::Bearer => None,
    };
    let Some(started) = started else {
        return Ok(FormOutcome::error(
            "/login",
            "Your session has ended. Please sign in again.",
        ));
    };
    site.sessions.set_cookie(jar, &started);
    let event = Event::new(AuditKind::SudoProof, &site.peer)
        .by_self(who)
        .detail(field);
    site.audit.record(event).await;
    Ok(FormOutcome::success(
        next.unwrap_or_else(|| "/account".to_string()),
        "Thanks. You can go ahead for the next few minutes.",
    ))
}
