//! Sign up: a new account, signed in at once.

use rocket::http::{CookieJar, Status};
use serde_json::json;

use super::invitations::invite_only_page;
use super::signin::too_many;
use crate::auth::signin::{Delivery, Proof, SignIn, Verified};
use crate::auth::CsrfForm;
use crate::config::{Settings, SignupMode};
use crate::error::Error;
use crate::models::{NewUser, Role, SignupConflict, User};
use crate::routes::services::Services;
use crate::validation::{self, field, FieldErrors};
use crate::view::{FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![signup_page, signup]
}

/// The sign-up form. The password rules (length, then strength with zxcvbn, which is slow) run
/// off the async workers after the form is read.
#[derive(Debug, rocket::FromForm)]
struct Signup {
    #[field(default = String::new(), validate = field::username())]
    username: String,
    #[field(default = String::new(), validate = field::email())]
    email: String,
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    password_confirm: String,
}

fn signup_form(ctx: PageContext<'_>, values: serde_json::Value, errors: &FieldErrors) -> Page {
    ctx.page(
        "auth/signup",
        "Sign up",
        json!({ "values": values, "errors": errors }),
    )
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
fn signup_page(ctx: PageContext<'_>, settings: &rocket::State<Settings>) -> (Status, Page) {
    if settings.signup_mode == SignupMode::InviteOnly {
        return invite_only_page(ctx, Status::Ok);
    }
    (Status::Ok, signup_form(ctx, json!({}), &FieldErrors::new()))
}

/// Creates an account, signs the new user in and sends them to the private page.
#[rocket::post("/signup", data = "<form>")]
async fn signup(
    form: CsrfForm<'_, Signup>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    if site.settings.signup_mode == SignupMode::InviteOnly {
        return Ok(FormOutcome::Redo(invite_only_page(ctx, Status::Forbidden)));
    }
    if let Err(wait) = site.throttle.signup(site.peer.ip).await? {
        return Ok(too_many(ctx, wait));
    }
    let (raw_username, raw_email) = (form.submitted("username"), form.submitted("email"));
    let values = json!({ "username": raw_username.trim(), "email": raw_email.trim() });
    let (raw_password, raw_confirm) = (
        form.submitted("password"),
        form.submitted("password_confirm"),
    );
    let parsed = form.parsed();
    let (mut errors, password, confirm) = match &parsed {
        Ok(signup) => (
            FieldErrors::new(),
            signup.password.clone(),
            signup.password_confirm.clone(),
        ),
        Err(errors) => (
            errors.clone(),
            raw_password.to_string(),
            raw_confirm.to_string(),
        ),
    };
    let context: Vec<String> = [raw_username, raw_email]
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let password_errors = rocket::tokio::task::spawn_blocking(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        validation::new_password(&password, &confirm, &context)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    for (name, message) in password_errors {
        errors.add(name, message);
    }
    let signup = match parsed {
        Ok(signup) if errors.is_empty() => signup,
        _ => return Ok(FormOutcome::redo(signup_form(ctx, values, &errors))),
    };
    let (username, email) = (signup.username.trim(), signup.email.trim());
    let conflict = site
        .db
        .run({
            let (u, e) = (username.to_string(), email.to_string());
            move |conn| User::conflicts(conn, &u, &e)
        })
        .await?;
    conflict_errors(conflict, &mut errors);
    if !errors.is_empty() {
        return Ok(FormOutcome::redo(signup_form(ctx, values, &errors)));
    }

    let hash = site.hasher.hash(signup.password).await?;
    let new = NewUser::new(username, email, hash, Role::User, site.now());
    let user = match site.db.run(move |conn| User::create(conn, &new)).await? {
        Ok(user) => user,
        Err(conflict) => {
            conflict_errors(conflict, &mut errors);
            return Ok(FormOutcome::redo(signup_form(ctx, values, &errors)));
        }
    };
    let verified = Verified {
        user,
        proof: Proof::NewAccount,
    };
    signin
        .finish(
            &verified,
            Delivery::Cookie {
                jar,
                remember: false,
            },
        )
        .await?;
    Ok(FormOutcome::success(
        "/private",
        format!(
            "Welcome, {}! Your account is ready.",
            verified.user.username
        ),
    ))
}
