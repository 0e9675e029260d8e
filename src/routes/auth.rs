//! Sign up, sign in, sign out.

use std::time::Duration;

use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::json;

use crate::auth::next::safe_next;
use crate::auth::signin::{SignIn, Verdict};
use crate::auth::two_factor::{PendingSignIn, PENDING_SECS};
use crate::auth::{Csrf, CsrfForm, CsrfToken, CurrentUser, PasswordHasher, Sessions, Throttle};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{AuditKind, NewUser, Role, SignupConflict, User};
use crate::peer::Peer;
use crate::validation::{self, FieldErrors};
use crate::view::{page, percent_encode, wait_words, FormOutcome, Page, Throttled};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![signup_page, signup, login_page, login, logout]
}

/// The one answer to any failed sign-in, so it never tells whether the account exists.
const INVALID_LOGIN: &str = "Invalid username or password.";

fn signup_form(
    values: serde_json::Value,
    errors: &FieldErrors,
    csrf: &CsrfToken,
    status: Status,
) -> FormOutcome {
    let template = page(
        "auth/signup",
        "Sign up",
        None,
        None,
        csrf,
        json!({ "values": values, "errors": errors }),
    );
    FormOutcome::Redo((status, template))
}

fn conflict_errors(conflict: SignupConflict, errors: &mut FieldErrors) {
    if conflict.username {
        errors.add(
            "username",
            "That username is already taken. Choose another one.",
        );
    }
    if conflict.email {
        errors.add(
            "email",
            "That email address is already registered. Sign in instead, or use another address.",
        );
    }
}

/// The "too many attempts" page for a per-client limit.
fn too_many(csrf: &CsrfToken, wait: Duration) -> FormOutcome {
    let template = page(
        "errors/error",
        "Too many requests",
        None,
        None,
        csrf,
        json!({
            "status": 429,
            "heading": "Too many requests",
            "message": format!("Too many attempts from your network. Please wait {} and try again.", wait_words(wait)),
        }),
    );
    FormOutcome::Wait(Throttled::new(template, wait))
}

/// The sign-up form.
#[rocket::get("/signup")]
fn signup_page(
    user: Option<CurrentUser>,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
) -> Page {
    page(
        "auth/signup",
        "Sign up",
        user.as_ref(),
        flash,
        &csrf,
        json!({ "values": {}, "errors": {} }),
    )
}

/// Creates an account, signs the new user in and sends them to the private page.
#[rocket::post("/signup", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn signup(
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    sessions: &State<Sessions>,
    throttle: &State<Throttle>,
    audit: &State<Audit>,
    jar: &CookieJar<'_>,
    peer: Peer,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = throttle.signup(peer.ip) {
        return Ok(too_many(&csrf, wait));
    }
    let (raw_username, raw_email) = (form.get("username"), form.get("email"));
    let password = form.get("password").to_string();
    let confirm = form.get("password_confirm").to_string();
    let values = json!({ "username": raw_username.trim(), "email": raw_email.trim() });

    let mut errors = FieldErrors::new();
    let username = errors.check("username", validation::username(raw_username));
    let email = errors.check("email", validation::email(raw_email));
    let context: Vec<String> = [raw_username, raw_email]
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let password_errors = rocket::tokio::task::spawn_blocking({
        let password = password.clone();
        move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            validation::new_password(&password, &confirm, &context)
        }
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    for (name, message) in password_errors {
        errors.add(name, message);
    }
    let (Some(username), Some(email)) = (username, email) else {
        return Ok(signup_form(
            values,
            &errors,
            &csrf,
            Status::UnprocessableEntity,
        ));
    };
    let conflict = db
        .run({
            let (u, e) = (username.clone(), email.clone());
            move |conn| User::conflicts(conn, &u, &e)
        })
        .await?;
    conflict_errors(conflict, &mut errors);
    if !errors.is_empty() {
        return Ok(signup_form(
            values,
            &errors,
            &csrf,
            Status::UnprocessableEntity,
        ));
    }

    let hash = hasher.hash(password).await?;
    let new = NewUser::new(&username, &email, hash, Role::User);
    let created = db.run(move |conn| User::create(conn, &new)).await?;
    let user = match created {
        Ok(user) => user,
        Err(conflict) => {
            conflict_errors(conflict, &mut errors);
            return Ok(signup_form(
                values,
                &errors,
                &csrf,
                Status::UnprocessableEntity,
            ));
        }
    };
    sessions
        .start(jar, &user, false, false, &peer.user_agent, peer.ip)
        .await?;
    audit
        .record(Event::new(AuditKind::Signup, &peer).by_self(Who::user(&user.id, &user.username)))
        .await;
    Ok(FormOutcome::Done(Flash::success(
        Redirect::to("/private"),
        format!("Welcome, {}! Your account is ready.", user.username),
    )))
}

fn login_form(
    values: serde_json::Value,
    errors: &FieldErrors,
    next: Option<String>,
    csrf: &CsrfToken,
) -> Page {
    page(
        "auth/login",
        "Sign in",
        None,
        None,
        csrf,
        json!({ "values": values, "errors": errors, "next": next.unwrap_or_default() }),
    )
}

/// The sign-in form; `next` is where to go afterwards (local paths only).
#[rocket::get("/login?<next>")]
fn login_page(
    next: Option<&str>,
    user: Option<CurrentUser>,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
) -> Page {
    let next = next.and_then(safe_next).unwrap_or_default();
    page(
        "auth/login",
        "Sign in",
        user.as_ref(),
        flash,
        &csrf,
        json!({ "values": {}, "errors": {}, "next": next }),
    )
}

/// Checks the credentials (with lockout and per-client throttling) and starts a session.
#[rocket::post("/login?<next>", data = "<form>")]
async fn login(
    next: Option<&str>,
    form: CsrfForm,
    csrf: CsrfToken,
    signin: SignIn<'_>,
    keys: &State<Csrf>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let next = next.and_then(safe_next);
    let login = form.get("username").trim().to_string();
    let password = form.get("password").to_string();
    let remember = form.get("remember") == "on";
    let values = json!({ "username": login, "remember": remember });

    let mut errors = FieldErrors::new();
    if login.is_empty() {
        errors.add("username", "Enter your username or email.");
    }
    if password.is_empty() {
        errors.add("password", "Enter your password.");
    }
    if !errors.is_empty() {
        let page = login_form(values, &errors, next, &csrf);
        return Ok(FormOutcome::Redo((Status::UnprocessableEntity, page)));
    }
    let user = match signin.check(&login, password).await? {
        // `check` never answers `Verified`: that is the code step's answer.
        Verdict::Accepted(user) | Verdict::Verified(user) => user,
        Verdict::SecondFactor(user) => {
            let sessions = signin.sessions();
            let pending = PendingSignIn {
                user_id: user.id.clone(),
                remember,
                expires: sessions.clock().unix() + PENDING_SECS,
            };
            pending.save(jar, keys, sessions.cookie());
            let target = match next {
                Some(next) => format!("/login/two-factor?next={}", percent_encode(&next, b"/")),
                None => "/login/two-factor".to_string(),
            };
            return Ok(FormOutcome::Done(Flash::success(
                Redirect::to(target),
                "Password accepted. Now enter the code from your authenticator app.",
            )));
        }
        Verdict::Throttled(wait) => return Ok(too_many(&csrf, wait)),
        Verdict::Locked(wait) => {
            errors.add(
                "form",
                format!(
                    "Too many failed sign-ins. Try again in {}.",
                    wait_words(wait)
                ),
            );
            let page = login_form(values, &errors, next, &csrf);
            return Ok(FormOutcome::Wait(Throttled::new(page, wait)));
        }
        Verdict::Invalid => {
            errors.add("form", INVALID_LOGIN);
            let page = login_form(values, &errors, next, &csrf);
            return Ok(FormOutcome::Redo((Status::UnprocessableEntity, page)));
        }
        Verdict::Disabled => {
            errors.add(
                "form",
                "This account has been disabled. Contact an administrator if you think this is a mistake.",
            );
            let page = login_form(values, &errors, next, &csrf);
            return Ok(FormOutcome::Redo((Status::Forbidden, page)));
        }
    };
    finish_sign_in(&signin, jar, &user, remember, false, next, "password").await
}

/// Starts the session of a sign-in whose checks all passed, and goes to `next` (or `/private`).
/// `two_factor` says a second factor was checked too.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish_sign_in(
    signin: &SignIn<'_>,
    jar: &CookieJar<'_>,
    user: &User,
    remember: bool,
    two_factor: bool,
    next: Option<String>,
    how: &str,
) -> Result<FormOutcome, Error> {
    let peer = &signin.peer;
    signin
        .sessions()
        .start(jar, user, remember, two_factor, &peer.user_agent, peer.ip)
        .await?;
    let kind = if remember { "remember" } else { "session" };
    signin.record_success(user, &format!("{kind}, {how}")).await;
    let target = next.unwrap_or_else(|| "/private".to_string());
    Ok(FormOutcome::Done(Flash::success(
        Redirect::to(target),
        format!("Signed in as {}.", user.username),
    )))
}

/// Ends the session (on every instance) and clears the cookie.
#[rocket::post("/logout", data = "<_form>")]
async fn logout(
    _form: CsrfForm,
    user: Option<CurrentUser>,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    jar: &CookieJar<'_>,
    peer: Peer,
) -> Result<Flash<Redirect>, Error> {
    sessions.clear_cookie(jar);
    if let Some(user) = &user {
        sessions.end(&user.session_id, Some(&user.id)).await?;
        audit
            .record(
                Event::new(AuditKind::Logout, &peer).by_self(Who::user(&user.id, &user.username)),
            )
            .await;
    }
    Ok(Flash::success(Redirect::to("/"), "You have signed out."))
}
