//! Sign up, sign in, sign out.

use std::net::IpAddr;

use rocket::form::Form;
use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::time::Duration;
use rocket::State;
use rocket_dyn_templates::Template;
use serde_json::json;

use super::Fields;
use crate::auth::cookie::SessionCookie;
use crate::auth::next::safe_next;
use crate::auth::{CurrentUser, PasswordHasher, Tokens};
use crate::db::Db;
use crate::error::Error;
use crate::events;
use crate::models::{NewUser, Role, SignupConflict, User};
use crate::validation::{self, FieldErrors, PASSWORD_MAX_CHARS};
use crate::view::{page, FormOutcome};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![signup_page, signup, login_page, login, logout]
}

/// The one answer to any failed sign-in, so it never tells whether the account exists.
const INVALID_LOGIN: &str = "Invalid username or password.";

/// Issues a token for `user` and sets the session cookie; `remember` makes it outlive the browser.
pub(crate) fn start_session(
    tokens: &Tokens,
    cookie: &SessionCookie,
    jar: &CookieJar<'_>,
    user: &User,
    remember: bool,
) -> Result<(), Error> {
    let (token, _) = tokens.issue(&user.id, &user.username, user.role())?;
    let max_age = remember.then(|| Duration::seconds(tokens.ttl_secs()));
    jar.add(cookie.with_token(token, max_age));
    Ok(())
}

fn signup_form(values: serde_json::Value, errors: &FieldErrors, status: Status) -> FormOutcome {
    let template = page(
        "auth/signup",
        "Sign up",
        None,
        None,
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

/// The sign-up form.
#[rocket::get("/signup")]
fn signup_page(user: Option<CurrentUser>, flash: Option<FlashMessage<'_>>) -> Template {
    page(
        "auth/signup",
        "Sign up",
        user.as_ref(),
        flash,
        json!({ "values": {}, "errors": {} }),
    )
}

/// Creates an account, signs the new user in and sends them to the private page.
#[rocket::post("/signup", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn signup(
    form: Form<Fields>,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    tokens: &State<Tokens>,
    cookie: &State<SessionCookie>,
    jar: &CookieJar<'_>,
    ip: Option<IpAddr>,
) -> Result<FormOutcome, Error> {
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
        return Ok(signup_form(values, &errors, Status::UnprocessableEntity));
    };
    let conflict = db
        .run({
            let (u, e) = (username.clone(), email.clone());
            move |conn| User::conflicts(conn, &u, &e)
        })
        .await?;
    conflict_errors(conflict, &mut errors);
    if !errors.is_empty() {
        return Ok(signup_form(values, &errors, Status::UnprocessableEntity));
    }

    let hash = hasher.hash(password).await?;
    let new = NewUser::new(&username, &email, hash, Role::User);
    let created = db.run(move |conn| User::create(conn, &new)).await?;
    let user = match created {
        Ok(user) => user,
        Err(conflict) => {
            conflict_errors(conflict, &mut errors);
            return Ok(signup_form(values, &errors, Status::UnprocessableEntity));
        }
    };
    events::signup(&user.username, ip);
    start_session(tokens, cookie, jar, &user, false)?;
    Ok(FormOutcome::Done(Flash::success(
        Redirect::to("/private"),
        format!("Welcome, {}! Your account is ready.", user.username),
    )))
}

fn login_form(
    values: serde_json::Value,
    errors: &FieldErrors,
    next: Option<String>,
    status: Status,
) -> FormOutcome {
    let template = page(
        "auth/login",
        "Sign in",
        None,
        None,
        json!({ "values": values, "errors": errors, "next": next.unwrap_or_default() }),
    );
    FormOutcome::Redo((status, template))
}

/// The sign-in form; `next` is where to go afterwards (local paths only).
#[rocket::get("/login?<next>")]
fn login_page(
    next: Option<&str>,
    user: Option<CurrentUser>,
    flash: Option<FlashMessage<'_>>,
) -> Template {
    let next = next.and_then(safe_next).unwrap_or_default();
    page(
        "auth/login",
        "Sign in",
        user.as_ref(),
        flash,
        json!({ "values": {}, "errors": {}, "next": next }),
    )
}

/// Checks the credentials and sets the session cookie.
#[rocket::post("/login?<next>", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn login(
    next: Option<&str>,
    form: Form<Fields>,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    tokens: &State<Tokens>,
    cookie: &State<SessionCookie>,
    jar: &CookieJar<'_>,
    ip: Option<IpAddr>,
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
        return Ok(login_form(
            values,
            &errors,
            next,
            Status::UnprocessableEntity,
        ));
    }
    let refuse = |reason: &str, errors: &mut FieldErrors| {
        events::login_failed(&login, reason, ip);
        errors.add("form", INVALID_LOGIN);
        Ok(login_form(
            values.clone(),
            errors,
            next.clone(),
            Status::UnprocessableEntity,
        ))
    };
    // No account has a longer password; refusing before hashing keeps the work bounded.
    if password.chars().count() > PASSWORD_MAX_CHARS {
        return refuse("password_too_long", &mut errors);
    }

    let user = db
        .run({
            let login = login.clone();
            move |conn| User::find_by_login(conn, &login)
        })
        .await?;
    let verified = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match user {
        None => return refuse("unknown_user", &mut errors),
        Some(_) if !verified => return refuse("bad_password", &mut errors),
        Some(user) if user.disabled => {
            events::login_failed(&login, "disabled", ip);
            errors.add(
                "form",
                "This account has been disabled. Contact an administrator if you think this is a mistake.",
            );
            return Ok(login_form(values, &errors, next, Status::Forbidden));
        }
        Some(user) => user,
    };

    db.run({
        let id = user.id.clone();
        move |conn| User::record_login(conn, &id)
    })
    .await?;
    start_session(tokens, cookie, jar, &user, remember)?;
    events::login_ok(&user.username, ip);
    let target = next.unwrap_or_else(|| "/private".to_string());
    Ok(FormOutcome::Done(Flash::success(
        Redirect::to(target),
        format!("Signed in as {}.", user.username),
    )))
}

/// Clears the session cookie.
#[rocket::post("/logout")]
fn logout(
    user: Option<CurrentUser>,
    cookie: &State<SessionCookie>,
    jar: &CookieJar<'_>,
    ip: Option<IpAddr>,
) -> Flash<Redirect> {
    jar.remove(cookie.removal());
    if let Some(user) = &user {
        events::logout(&user.username, ip);
    }
    Flash::success(Redirect::to("/"), "You have signed out.")
}
