//! "Confirm it's you" (sudo mode): the password, or the two-factor code when two-factor is on,
//! or one of the account's passkeys, before a sensitive action. A proof counts for
//! `sudo_window_secs`; then the person goes back to where they were (`next`).

use rocket::http::{CookieJar, Status};
use rocket::serde::json::Json;
use serde_json::{json, Value};

use super::passkey_signin::{options_answer, refusal_sentence, PasskeyAnswer};
use crate::auth::passkeys::PasskeyRefusal;
use crate::auth::signin::{PasskeyRefused, SignIn};

use crate::auth::next::safe_next;
use crate::auth::two_factor::WRONG_APP_CODE;
use crate::auth::{CsrfForm, CsrfOnly, CurrentUser, Via};
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{AuditKind, Passkey};
use crate::routes::services::Services;
use crate::text::percent_encode;
use crate::validation::FieldErrors;
use crate::view::{wait_words, FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![confirm_page, confirm, passkey_options, passkey]
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

/// What the page offers: the code (two-factor on) or the password, and a passkey when the
/// account has one.
#[derive(Debug, Clone, Copy)]
struct Ways {
    two_factor: bool,
    passkey: bool,
}

impl Ways {
    async fn of(site: &Services<'_>, user_id: &str) -> Result<Ways, Error> {
        let id = user_id.to_string();
        let passkey = site
            .db
            .run(move |conn| Passkey::any_for_user(conn, &id))
            .await?;
        Ok(Ways {
            two_factor: site.has_two_factor(user_id).await?,
            passkey,
        })
    }
}

fn confirm_form(
    ctx: PageContext<'_>,
    ways: Ways,
    next: Option<&str>,
    errors: &FieldErrors,
) -> Page {
    ctx.page(
        "auth/confirm",
        "Confirm it's you",
        json!({
            "two_factor": ways.two_factor,
            "passkey": ways.passkey,
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
    let ways = Ways::of(&site, &user.id).await?;
    Ok(confirm_form(
        ctx,
        ways,
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
    let ways = Ways::of(&site, &user.id).await?;
    let two_factor = ways.two_factor;
    if let Err(wait) = site.throttle.password_change(&user.id) {
        let message = format!("Too many attempts. Try again in {}.", wait_words(wait));
        let page = confirm_form(ctx, ways, next.as_deref(), &FieldErrors::form(message));
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
        let page = confirm_form(ctx, ways, next.as_deref(), &errors);
        return Ok(FormOutcome::redo(page));
    }
    confirmed(user, &site, jar, two_factor, field, next).await
}

/// A proof passed: the session's `auth_time` is now (and, with `second_factor`, it counts as
/// two-factor), the browser gets a token saying so and goes back to `next`.
async fn confirmed(
    user: &CurrentUser,
    site: &Services<'_>,
    jar: &CookieJar<'_>,
    second_factor: bool,
    how: &str,
    next: Option<String>,
) -> Result<FormOutcome, Error> {
    let who = Who::user(&user.id, &user.username);
    // Only a browser session can be confirmed here; a program gets a new token from /api/token.
    let started = match user.via {
        Via::Cookie => {
            site.sessions
                .reauthenticate(&user.session_id, &user.id, second_factor)
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
        .detail(how);
    site.audit.record(event).await;
    Ok(FormOutcome::success(
        next.unwrap_or_else(|| "/account".to_string()),
        "Thanks. You can go ahead for the next few minutes.",
    ))
}

/// The options for confirming with one of the account's passkeys.
#[rocket::post("/confirm/passkey/options", data = "<_form>")]
async fn passkey_options(
    user: &CurrentUser,
    _form: CsrfOnly<'_>,
    signin: SignIn<'_>,
) -> (Status, Json<Value>) {
    options_answer(signin.begin_passkey_confirm(&user.id).await)
}

/// Checks the passkey's answer; a passkey counts as two-factor.
#[rocket::post("/confirm/passkey?<next>", data = "<form>")]
async fn passkey(
    next: Option<&str>,
    user: &CurrentUser,
    form: CsrfForm<'_, PasskeyAnswer>,
    signin: SignIn<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let next = next.and_then(safe_next);
    let back = match &next {
        Some(n) => format!("/confirm?next={}", percent_encode(n, b"/")),
        None => "/confirm".to_string(),
    };
    let Ok(answer) = form.parsed() else {
        return Ok(FormOutcome::error(
            back,
            refusal_sentence(&PasskeyRefusal::Expired.into()),
        ));
    };
    match signin
        .passkey_confirm(&user.id, &answer.ceremony, &answer.credential)
        .await
    {
        Ok(_name) => confirmed(user, &site, jar, true, "passkey", next).await,
        Err(PasskeyRefused::Failed(e)) => Err(e),
        Err(refused) => Ok(FormOutcome::error(back, refusal_sentence(&refused))),
    }
}
