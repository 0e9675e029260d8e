//! "Forgot your password?": asking for a reset link by mail, and setting a new password through
//! a link (mailed, or made by an admin). The request answers the same for every name, so it
//! never tells whether an account exists; the reset page still asks for the account's second
//! factor, ends every session and revokes the API keys, then signs the person in.

use rocket::http::uri::{fmt::Path, Segments};
use rocket::http::{CookieJar, Status};
use serde_json::json;
use time::Duration;

use super::signin::too_many;
use crate::auth::signin::{Delivery, Proof, Refused, SignIn, Verified};
use crate::auth::{two_factor, CsrfForm};
use crate::config::Notice;
use crate::error::Error;
use crate::events::{Event, Who};
use crate::mail::{HowChanged, Letter, RESET_LINK_MINUTES};
use crate::models::{
    AccountToken, AuditKind, LoginAttempt, OutboxMail, TokenFor, TokenPurpose, TwoFactor, User,
};
use crate::routes::services::Services;
use crate::validation::{field, FieldErrors};
use crate::view::{wait_words, FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![forgot_page, forgot, reset_page, reset]
}

/// No username or address is longer; a longer entry matches nothing and is not looked up.
const LOGIN_MAX_CHARS: usize = 320;

const CODE_MISSING: &str = "Enter the 6-digit code from your authenticator app, or one of your \
     recovery codes.";

const WRONG_CODE: &str = "That code is not right, or was already used. Enter the current \
     6-digit code from your authenticator app, or one of your recovery codes.";

/// The request form.
#[derive(Debug, rocket::FromForm)]
struct Forgot {
    /// Username or email.
    #[field(default = String::new(), validate = field::filled("Enter your username or email."))]
    username: String,
}

/// The new-password form on a reset link's page.
#[derive(Debug, rocket::FromForm)]
struct NewPassword {
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    password_confirm: String,
    /// An app code or a recovery code (accounts with two-factor only).
    #[field(default = String::new())]
    code: String,
}

fn forgot_form(ctx: PageContext<'_>, values: serde_json::Value, errors: &FieldErrors) -> Page {
    ctx.page(
        "auth/forgot",
        "Forgot your password?",
        json!({ "values": values, "errors": errors }),
    )
}

/// The request form.
#[rocket::get("/password/forgot")]
fn forgot_page(ctx: PageContext<'_>) -> Page {
    forgot_form(ctx, json!({}), &FieldErrors::new())
}

/// What a request for a link came to (never shown: the answer is the same for each).
enum Requested {
    Unknown,
    Disabled(User),
    Capped(User),
    Mailed(User),
}

/// Mails a reset link when `login` names an active account under its hourly cap. Both paths
/// hash nothing; the known one writes the link and its mail in one transaction.
async fn request_link(site: &Services<'_>, login: String) -> Result<(), Error> {
    let (mailer, now) = (site.mail.clone(), site.now());
    let ip = site.peer.ip.map(|ip| ip.to_string());
    let cap = site.settings.password_reset_per_account_per_hour;
    let requested = site
        .db
        .run(move |conn| {
            let Some(user) = User::find_by_login(conn, &login)? else {
                return Ok(Requested::Unknown);
            };
            if user.disabled {
                return Ok(Requested::Disabled(user));
            }
            let since = now - Duration::hours(1);
            if AccountToken::issued_since(conn, &user.id, TokenPurpose::PasswordReset, since)?
                >= cap
            {
                return Ok(Requested::Capped(user));
            }
            let about = TokenFor {
                user_id: Some(user.id.clone()),
                email: Some(user.email.clone()),
                ..TokenFor::default()
            };
            let ttl = Duration::minutes(RESET_LINK_MINUTES);
            let issued = AccountToken::issue(TokenPurpose::PasswordReset, about, now, ttl);
            let letter = Letter::password_reset(&mailer, &user, &issued.raw, ip, now);
            let mail = mailer.compose(&letter, now)?;
            conn.write_transaction::<_, Error, _>(|conn| {
                AccountToken::replace(conn, &issued, TokenPurpose::PasswordReset, now)?;
                OutboxMail::queue(conn, &mail)
            })
            .map_err(Error::not_saved)?;
            Ok(Requested::Mailed(user))
        })
        .await?;
    let (user, detail) = match requested {
        Requested::Unknown => {
            log::info!(
                target: "latchkey::auth",
                "auth event=password_reset_requested detail=\"no such account\" ip={}",
                site.peer.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
            );
            return Ok(());
        }
        Requested::Mailed(user) => {
            site.mail.wake();
            (user, "link mailed".to_string())
        }
        Requested::Disabled(user) => (user, "no mail: the account is disabled".to_string()),
        Requested::Capped(user) => (
            user,
            format!("no mail: {cap} link(s) already mailed within the hour"),
        ),
    };
    let event = Event::new(AuditKind::PasswordResetRequested, &site.peer)
        .subject(Who::user(&user.id, &user.username))
        .detail(detail);
    site.audit.record(event).await;
    Ok(())
}

/// Mails a reset link if the name or address belongs to an active account, and answers "check
/// your email" either way: the same bytes whether it exists, is disabled or is unknown.
#[rocket::post("/password/forgot", data = "<form>")]
async fn forgot(
    form: CsrfForm<'_, Forgot>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = site.throttle.password_reset(site.peer.ip).await? {
        return Ok(too_many(ctx, wait));
    }
    let values = json!({ "username": form.submitted("username").trim() });
    let login = match form.parsed() {
        Ok(forgot) => forgot.username.trim().to_string(),
        Err(errors) => return Ok(FormOutcome::redo(forgot_form(ctx, values, &errors))),
    };
    if login.chars().count() <= LOGIN_MAX_CHARS {
        request_link(&site, login).await?;
    }
    Ok(FormOutcome::Show(ctx.page(
        "auth/forgot_sent",
        "Check your email",
        json!({ "minutes": RESET_LINK_MINUTES }),
    )))
}

/// A reset link that opens: its row, its account (active) and whether a code is needed.
struct OpenLink {
    token: AccountToken,
    user: User,
    two_factor: bool,
}

/// The link `raw` opens, if any: an unused, unexpired mailed or admin reset link of an active
/// account (a mailed one only while the account still has the address it went to).
async fn open_link(site: &Services<'_>, raw: &str) -> Result<Option<OpenLink>, Error> {
    if raw.is_empty() || raw.len() > 64 {
        return Ok(None);
    }
    let (raw, now) = (raw.to_string(), site.now());
    site.db
        .run(move |conn| {
            let token =
                match AccountToken::find_valid(conn, TokenPurpose::PasswordReset, &raw, now)? {
                    Some(token) => token,
                    None => {
                        match AccountToken::find_valid(conn, TokenPurpose::AdminReset, &raw, now)? {
                            Some(token) => token,
                            None => return Ok(None),
                        }
                    }
                };
            let Some(user_id) = token.user_id.clone() else {
                return Ok(None);
            };
            let Some(user) = User::find(conn, &user_id)?.filter(|u| !u.disabled) else {
                return Ok(None);
            };
            let mailed = token.purpose == TokenPurpose::PasswordReset.as_str();
            if mailed
                && token.email.as_deref().map(str::to_lowercase) != Some(user.email_key.clone())
            {
                return Ok(None);
            }
            let two_factor = TwoFactor::enabled(conn, &user.id)?.is_some();
            Ok(Some(OpenLink {
                token,
                user,
                two_factor,
            }))
        })
        .await
}

/// The answer to a link that opens nothing (unknown, used, expired, superseded, an account
/// disabled since): one page, one status, no reason.
fn invalid_link(ctx: PageContext<'_>, site: &Services<'_>) -> FormOutcome {
    log::info!(
        target: "latchkey::auth",
        "auth event=reset_link_refused ip={}",
        site.peer.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
    );
    let page = ctx.page("auth/reset_invalid", "This link no longer works", json!({}));
    FormOutcome::Redo((Status::BadRequest, page))
}

fn reset_form(ctx: PageContext<'_>, raw: &str, link: &OpenLink, errors: &FieldErrors) -> Page {
    ctx.page(
        "auth/reset",
        "Choose a new password",
        json!({
            "token": raw,
            "username": link.user.username,
            "two_factor": link.two_factor,
            "errors": errors,
        }),
    )
}

/// The token in the path, whatever it holds (`..`, slashes, odd Unicode): all of it is looked
/// up, and anything but a real link gets the same page.
fn raw_token(segments: Segments<'_, Path>) -> String {
    segments.collect::<Vec<_>>().join("/")
}

/// The new-password form of a valid link, or the page saying it no longer works.
#[rocket::get("/password/reset/<token..>")]
async fn reset_page(
    token: Segments<'_, Path>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let raw = raw_token(token);
    Ok(match open_link(&site, &raw).await? {
        Some(link) => FormOutcome::Show(reset_form(ctx, &raw, &link, &FieldErrors::new())),
        None => invalid_link(ctx, &site),
    })
}

/// Sets the new password (after the account's code, when it has two-factor), uses the link up,
/// clears the lockout, ends every session, revokes the API keys, mails the notice and signs in.
#[rocket::post("/password/reset/<token..>", data = "<form>")]
async fn reset(
    token: Segments<'_, Path>,
    form: CsrfForm<'_, NewPassword>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let raw = raw_token(token);
    let Some(link) = open_link(&site, &raw).await? else {
        return Ok(invalid_link(ctx, &site));
    };
    let (password, confirm, code) = match form.parsed() {
        Ok(f) => (f.password, f.password_confirm, f.code),
        Err(_) => Default::default(),
    };
    let mut errors = FieldErrors::new();
    super::welcome::check_new_password(
        password.clone(),
        confirm,
        &[&link.user.username, &link.user.email],
        &mut errors,
    )
    .await?;
    if link.two_factor && code.trim().is_empty() {
        errors.add("code", CODE_MISSING);
    }
    if !errors.is_empty() {
        return Ok(FormOutcome::redo(reset_form(ctx, &raw, &link, &errors)));
    }
    // The code last: a right code is used up, so it is only spent on an otherwise good form.
    let proof = if link.two_factor {
        match signin.reset_code(&link.user, &code).await {
            Ok(proof) => proof,
            Err(Refused::Failed(e)) => return Err(e),
            Err(Refused::Invalid) => {
                errors.add("code", WRONG_CODE);
                let page = reset_form(ctx, &raw, &link, &errors);
                return Ok(FormOutcome::redo(page));
            }
            Err(Refused::TwoFactorUnavailable) => {
                errors.add("code", two_factor::UNAVAILABLE);
                let page = reset_form(ctx, &raw, &link, &errors);
                return Ok(FormOutcome::redo(page));
            }
            Err(Refused::Locked(wait) | Refused::Throttled(wait)) => {
                let message = format!("Too many wrong codes. Try again in {}.", wait_words(wait));
                let page = reset_form(ctx, &raw, &link, &FieldErrors::form(message));
                return Ok(FormOutcome::wait(page, wait));
            }
        }
    } else {
        Proof::ResetLink
    };

    let hash = site.hasher.hash(password).await?;
    let (token, uid, now) = (link.token.clone(), link.user.id.clone(), site.now());
    let done = site
        .db
        .run(move |conn| {
            conn.write_transaction::<_, Error, _>(|conn| {
                // The link's own row decides: of two requests racing with it, one gets here.
                if !AccountToken::consume(conn, &token, now)? {
                    return Ok(None);
                }
                let Some(user) = User::find(conn, &uid)?.filter(|u| !u.disabled) else {
                    return Err(Error::NotFound);
                };
                User::set_password_hash(conn, &uid, &hash, now)?;
                // The mailbox (or an admin) vouched for this person: the lockouts go.
                LoginAttempt::clear(conn, &LoginAttempt::key_for_user(&uid))?;
                LoginAttempt::clear(conn, &LoginAttempt::key_for_reset(&uid))?;
                User::record_login(conn, &uid, now)?;
                Ok(Some(user))
            })
            .map_err(Error::not_saved)
        })
        .await;
    let user = match done {
        Ok(Some(user)) => user,
        Ok(None) | Err(Error::NotFound) => return Ok(invalid_link(ctx, &site)),
        Err(e) => return Err(e),
    };

    let (ended, keys) = site.sessions.end_all_with_keys(&user.id, None).await?;
    let who = Who::user(&user.id, &user.username);
    let how = if link.token.purpose == TokenPurpose::AdminReset.as_str() {
        "link from an administrator"
    } else {
        "mailed link"
    };
    site.record_own(AuditKind::PasswordReset, who, Some(how.to_string()))
        .await;
    if ended > 0 {
        let detail = format!("{ended} session(s), after password reset");
        site.record_own(AuditKind::SessionsRevoked, who, Some(detail))
            .await;
    }
    site.record_keys_revoked(who, &keys, "after password reset")
        .await;
    let notice = Letter::password_changed(
        site.mail,
        &user,
        HowChanged::Reset,
        site.peer.ip.map(|ip| ip.to_string()),
        now,
    );
    site.mail
        .notify(site.db, Notice::PasswordChanged, &notice, now)
        .await;

    let verified = Verified { user, proof };
    signin
        .finish(
            &verified,
            Delivery::Cookie {
                jar,
                remember: false,
            },
        )
        .await?;
    let mut message = "Your password has been reset and you are signed in.".to_string();
    if ended > 0 || !keys.is_empty() {
        message.push_str(&format!(
            " {ended} session(s) elsewhere were signed out and {} API key(s) revoked.",
            keys.len()
        ));
    }
    Ok(FormOutcome::success("/private", message))
}
