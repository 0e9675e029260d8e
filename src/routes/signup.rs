//! Sign up: a new account, signed in at once (`email_verification = "off"`), or made and sent
//! a link to confirm its address first.

use rocket::http::{CookieJar, Status};
use serde_json::{json, Value};
use time::Duration;

use super::invitations::invite_only_page;
use super::signin::too_many;
use crate::auth::signin::SignIn;
use crate::auth::CsrfForm;
use crate::config::{EmailVerification, Settings, SignupMode};
use crate::error::Error;
use crate::events::Who;
use crate::mail::Letter;
use crate::models::{
    AccountToken, AuditKind, NewUser, OutboxMail, Role, SignupConflict, TokenFor, TokenPurpose,
    User,
};
use crate::routes::services::Services;
use crate::validation::{field, FieldErrors};
use crate::view::{FormOutcome, Page, PageContext};

/// How long a verification link works, in hours.
pub const VERIFY_TTL_HOURS: i64 = 48;

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

/// Creates an account; with verification off, signs the new user in and sends them to the
/// private page, else mails a link and answers "Check your email".
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
    super::welcome::check_new_password(password, confirm, &[raw_username, raw_email], &mut errors)
        .await?;
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
    let verifying = site.settings.email_verification != EmailVerification::Off;
    if verifying {
        // Usernames are public, so a taken one may be said; a taken address may not.
        if conflict.username {
            conflict_errors(
                SignupConflict {
                    username: true,
                    email: false,
                },
                &mut errors,
            );
            return Ok(FormOutcome::redo(signup_form(ctx, values, &errors)));
        }
        return signup_to_verify(ctx, &site, username, email, signup.password, conflict.email)
            .await;
    }
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
    super::welcome::welcome(signin, user, jar).await
}

/// Sign-up when addresses are verified: the account is made but not signed in, and a link goes
/// to the address. An address that already has an account gets the same answer, byte for byte,
/// and its owner a mail saying someone tried; no account is made. Both paths hash the password
/// (off the workers), so their timing does not tell them apart either.
async fn signup_to_verify(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    username: &str,
    email: &str,
    password: String,
    address_taken: bool,
) -> Result<FormOutcome, Error> {
    let hash = site.hasher.hash(password).await?;
    let now = site.now();
    let mut taken = address_taken;
    if !taken {
        let new = NewUser::new(username, email, hash, Role::User, now);
        match site.db.run(move |conn| User::create(conn, &new)).await? {
            Ok(user) => {
                let issued = AccountToken::issue(
                    TokenPurpose::VerifyEmail,
                    TokenFor {
                        user_id: Some(user.id.clone()),
                        email: Some(user.email.clone()),
                        ..TokenFor::default()
                    },
                    now,
                    Duration::hours(VERIFY_TTL_HOURS),
                );
                let mail = site
                    .mail
                    .compose(&Letter::verify_email(site.mail, &user, &issued.raw), now)?;
                site.db
                    .run(move |conn| {
                        conn.write_transaction(|conn| {
                            AccountToken::insert(conn, &issued)?;
                            OutboxMail::queue(conn, &mail)
                        })
                    })
                    .await?;
                site.mail.wake();
                site.record_own(
                    AuditKind::Signup,
                    Who::user(&user.id, &user.username),
                    Some("address not yet verified".into()),
                )
                .await;
            }
            // Lost a race: a username taken meanwhile is said; an address is not.
            Err(conflict) if conflict.email => taken = true,
            Err(conflict) => {
                let mut errors = FieldErrors::new();
                conflict_errors(conflict, &mut errors);
                let values = json!({ "username": username, "email": email });
                return Ok(FormOutcome::redo(signup_form(ctx, values, &errors)));
            }
        }
    }
    if taken {
        let key = email.to_string();
        if let Some(owner) = site
            .db
            .run(move |conn| User::find_by_login(conn, &key))
            .await?
        {
            let letter = Letter::signup_attempt(site.mail, &owner, now);
            site.mail.send(site.db, &letter, now).await?;
        }
    }
    Ok(FormOutcome::Show(check_email_page(ctx)))
}

/// "Check your email": the same page for a new account and for an address already registered
/// (it names neither the address nor the username).
fn check_email_page(ctx: PageContext<'_>) -> Page {
    ctx.page("auth/check_email", "Check your email", Value::Null)
}
