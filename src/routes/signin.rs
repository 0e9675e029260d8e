//! Sign in (the password, then the code step when the account uses two-factor) and sign out.
//! The checks and the session itself are the sign-in pipeline's (`auth::signin`); these
//! handlers read the forms and show the answers.

use rocket::http::CookieJar;
use serde_json::json;

use crate::auth::next::safe_next;
use crate::auth::signin::{Delivery, FirstStep, Refused, SignIn, Verified};
use crate::auth::two_factor;
use crate::auth::{AnyUser, CsrfForm, CsrfOnly};
use crate::error::Error;
use crate::events::Who;
use crate::models::AuditKind;
use crate::routes::services::Services;
use crate::text::percent_encode;
use crate::validation::{field, FieldErrors};
use crate::view::{wait_words, FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![login_page, login, code_page, code, logout]
}

/// The one answer to any failed sign-in, so it never tells whether the account exists.
const INVALID_LOGIN: &str = "Invalid username or password.";

const WRONG_CODE: &str = "That code is not right, or was already used. Enter the current \
     6-digit code from your authenticator app, or one of your recovery codes.";

pub(super) const EXPIRED: &str = "Your sign-in took too long. Please sign in again.";

/// The sign-in form.
#[derive(Debug, rocket::FromForm)]
struct Login {
    /// Username or email.
    #[field(default = String::new(), validate = field::filled("Enter your username or email."))]
    username: String,
    #[field(default = String::new(), validate = field::given("Enter your password."))]
    password: String,
    /// "Remember me on this device".
    #[field(default = false)]
    remember: bool,
}

/// The code step's form.
#[derive(Debug, rocket::FromForm)]
struct Code {
    /// A code from the authenticator app, or a recovery code.
    #[field(
        default = String::new(),
        validate = field::filled("Enter the 6-digit code from your authenticator app.")
    )]
    code: String,
}

/// The "too many attempts" page for a per-client limit.
pub(crate) fn too_many(ctx: PageContext<'_>, wait: std::time::Duration) -> FormOutcome {
    let message = format!(
        "Too many attempts from your network. Please wait {} and try again.",
        wait_words(wait)
    );
    let page = ctx.page(
        "errors/error",
        "Too many requests",
        json!({ "status": 429, "heading": "Too many requests", "message": message }),
    );
    FormOutcome::wait(page, wait)
}

fn login_form(
    ctx: PageContext<'_>,
    values: serde_json::Value,
    errors: &FieldErrors,
    next: Option<&str>,
) -> Page {
    ctx.page(
        "auth/login",
        "Sign in",
        json!({ "values": values, "errors": errors, "next": next.unwrap_or_default() }),
    )
}

/// The sign-in form; `next` is where to go afterwards (local paths only).
#[rocket::get("/login?<next>")]
fn login_page(next: Option<&str>, ctx: PageContext<'_>) -> Page {
    let next = next.and_then(safe_next);
    login_form(ctx, json!({}), &FieldErrors::new(), next.as_deref())
}

/// Checks the credentials (with lockout and per-client throttling) and starts a session, or
/// holds the sign-in for its second factor.
#[rocket::post("/login?<next>", data = "<form>")]
async fn login(
    next: Option<&str>,
    form: CsrfForm<'_, Login>,
    ctx: PageContext<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let next = next.and_then(safe_next);
    // Shown again on error: the name and the box, never the password.
    let values = json!({
        "username": form.submitted("username").trim(),
        "remember": form.submitted("remember") == "on",
    });
    let login = match form.parsed() {
        Ok(login) => login,
        Err(errors) => {
            let page = login_form(ctx, values, &errors, next.as_deref());
            return Ok(FormOutcome::redo(page));
        }
    };
    let refused = match signin.password(login.username.trim(), login.password).await {
        Ok(FirstStep::SignedIn(verified)) => {
            return signed_in(&signin, jar, &verified, login.remember, next).await;
        }
        Ok(FirstStep::SecondFactor(user)) => {
            signin.hold(jar, &user, login.remember);
            let target = match next {
                Some(next) => format!("/login/two-factor?next={}", percent_encode(&next, b"/")),
                None => "/login/two-factor".to_string(),
            };
            return Ok(FormOutcome::success(
                target,
                "Password accepted. Now enter the code from your authenticator app.",
            ));
        }
        Err(refused) => refused,
    };
    let (message, wait) = match refused {
        Refused::Failed(e) => return Err(e),
        Refused::Throttled(wait) => return Ok(too_many(ctx, wait)),
        Refused::Locked(wait) => (
            format!(
                "Too many failed sign-ins. Try again in {}.",
                wait_words(wait)
            ),
            Some(wait),
        ),
        Refused::Invalid => (INVALID_LOGIN.to_string(), None),
        Refused::TwoFactorUnavailable => (two_factor::UNAVAILABLE.to_string(), None),
    };
    let page = login_form(ctx, values, &FieldErrors::form(message), next.as_deref());
    Ok(match wait {
        Some(wait) => FormOutcome::wait(page, wait),
        None => FormOutcome::redo(page),
    })
}

/// Starts the browser session of a verified sign-in and goes to `next` (or `/private`).
pub(super) async fn signed_in(
    signin: &SignIn<'_>,
    jar: &CookieJar<'_>,
    verified: &Verified,
    remember: bool,
    next: Option<String>,
) -> Result<FormOutcome, Error> {
    signin
        .finish(verified, Delivery::Cookie { jar, remember })
        .await?;
    Ok(FormOutcome::success(
        next.unwrap_or_else(|| "/private".to_string()),
        format!("Signed in as {}.", verified.user.username),
    ))
}

fn code_form(ctx: PageContext<'_>, errors: &FieldErrors, next: Option<&str>) -> Page {
    ctx.page(
        "auth/two_factor",
        "Two-factor sign-in",
        json!({ "errors": errors, "next": next.unwrap_or_default() }),
    )
}

/// The code step of a sign-in whose password was right.
#[rocket::get("/login/two-factor?<next>")]
fn code_page(
    next: Option<&str>,
    ctx: PageContext<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> FormOutcome {
    if signin.held(jar).is_none() {
        return FormOutcome::error("/login", EXPIRED);
    }
    let next = next.and_then(safe_next);
    FormOutcome::Show(code_form(ctx, &FieldErrors::new(), next.as_deref()))
}

/// Checks the code (or a recovery code) and starts the session.
#[rocket::post("/login/two-factor?<next>", data = "<form>")]
async fn code(
    next: Option<&str>,
    form: CsrfForm<'_, Code>,
    ctx: PageContext<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let Some(pending) = signin.held(jar) else {
        return Ok(FormOutcome::error("/login", EXPIRED));
    };
    let next = next.and_then(safe_next);
    let code = match form.parsed() {
        Ok(code) => code,
        Err(errors) => {
            let page = code_form(ctx, &errors, next.as_deref());
            return Ok(FormOutcome::redo(page));
        }
    };
    let verified = match signin.second_factor(&pending.user_id, &code.code).await {
        Ok(verified) => verified,
        Err(Refused::Failed(e)) => return Err(e),
        Err(Refused::Invalid) => {
            let mut errors = FieldErrors::new();
            errors.add("code", WRONG_CODE);
            return Ok(FormOutcome::redo(code_form(ctx, &errors, next.as_deref())));
        }
        Err(Refused::TwoFactorUnavailable) => {
            let mut errors = FieldErrors::new();
            errors.add("code", two_factor::UNAVAILABLE);
            return Ok(FormOutcome::redo(code_form(ctx, &errors, next.as_deref())));
        }
        Err(Refused::Locked(wait) | Refused::Throttled(wait)) => {
            let message = format!("Too many wrong codes. Try again in {}.", wait_words(wait));
            let page = code_form(ctx, &FieldErrors::form(message), next.as_deref());
            return Ok(FormOutcome::wait(page, wait));
        }
    };
    signin.release(jar);
    signed_in(&signin, jar, &verified, pending.remember, next).await
}

/// Ends the session (on every instance) and clears the cookie.
#[rocket::post("/logout", data = "<_form>")]
async fn logout(
    _form: CsrfOnly<'_>,
    user: Option<AnyUser<'_>>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    site.sessions.clear_cookie(jar);
    // Also the way out for a user whose address must be verified first.
    if let Some(AnyUser(user)) = user {
        site.sessions.end(&user.session_id, Some(&user.id)).await?;
        let who = Who::user(&user.id, &user.username);
        site.record_own(AuditKind::Logout, who, None).await;
    }
    Ok(FormOutcome::success("/", "You have signed out."))
}
