//! Changing an address (sudo mode): a link to the new address, then a notice with an undo link
//! to the old one, whose button puts it back and ends every session.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rocket::http::CookieJar;
use serde_json::json;
use time::Duration;

use super::{domain, link_refused, load, reissue_if_own};
use crate::auth::{AnyUser, CsrfForm, CsrfOnly, CsrfToken, Sudo};
use crate::config::Notice;
use crate::error::Error;
use crate::events::Who;
use crate::mail::{Letter, Mailer};
use crate::models::{AccountToken, AuditKind, OutboxMail, TokenFor, TokenPurpose, User};
use crate::routes::services::Services;
use crate::validation::{field, FieldErrors};
use crate::view::{page, FormOutcome, Page, PageContext};

/// Address changes one account may ask for per hour.
const CHANGES_PER_HOUR: i64 = 3;

/// How long a link to a new address works, in hours.
const CHANGE_TTL_HOURS: i64 = 24;

/// How long the undo link sent to the old address works, in days.
const UNDO_TTL_DAYS: i64 = 7;

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        change_page,
        change_request,
        change_link,
        undo_page,
        undo_link
    ]
}

/// The change-address form.
#[derive(Debug, rocket::FromForm)]
struct EmailChange {
    #[field(default = String::new(), validate = field::email())]
    email: String,
}

fn change_form(ctx: PageContext<'_>, row: &User, value: &str, errors: &FieldErrors) -> Page {
    ctx.page(
        "email/change",
        "Change your email address",
        json!({ "email": row.email, "values": { "email": value }, "errors": errors }),
    )
}

/// The change-address form (sudo mode).
#[rocket::get("/account/email")]
async fn change_page(
    user: Sudo<'_>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let Some(row) = load(&site, &user.0.id).await? else {
        return Ok(FormOutcome::error("/login", "Please sign in again."));
    };
    Ok(FormOutcome::Show(change_form(
        ctx,
        &row,
        "",
        &FieldErrors::new(),
    )))
}

/// Asks for a new address (sudo mode): a link goes to it. An address another account has gets
/// the same answer and no mail at all, so the form tells nobody which addresses are registered.
#[rocket::post("/account/email", data = "<form>")]
async fn change_request(
    user: Sudo<'_>,
    form: CsrfForm<'_, EmailChange>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let Some(row) = load(&site, &user.0.id).await? else {
        return Ok(FormOutcome::error("/login", "Please sign in again."));
    };
    let typed = form.submitted("email").trim().to_string();
    let new = match form.parsed() {
        Ok(change) => change.email.trim().to_string(),
        Err(errors) => return Ok(FormOutcome::redo(change_form(ctx, &row, &typed, &errors))),
    };
    if new.to_lowercase() == row.email_key {
        let mut errors = FieldErrors::new();
        errors.add("email", "That is already your address. Enter the new one.");
        return Ok(FormOutcome::redo(change_form(ctx, &row, &typed, &errors)));
    }
    let now = site.now();
    let (id, address) = (row.id.clone(), new.clone());
    let (recent, taken) = site
        .db
        .run(move |conn| {
            let recent = AccountToken::issued_since(
                conn,
                &id,
                TokenPurpose::EmailChange,
                now - Duration::hours(1),
            )?;
            Ok((recent, User::email_taken_by_other(conn, &id, &address)?))
        })
        .await?;
    if recent >= CHANGES_PER_HOUR {
        let errors = FieldErrors::form(
            "You asked for several address changes in the last hour. Please wait an hour and \
             try again.",
        );
        return Ok(FormOutcome::wait(
            change_form(ctx, &row, &typed, &errors),
            std::time::Duration::from_secs(3600),
        ));
    }
    let mut issued = AccountToken::issue(
        TokenPurpose::EmailChange,
        TokenFor {
            user_id: Some(row.id.clone()),
            email: Some(new.clone()),
            ..TokenFor::default()
        },
        now,
        Duration::hours(CHANGE_TTL_HOURS),
    );
    // A taken address: the same rows as a free one (the request counts towards the limit and
    // voids older links) but the link is void from the start and no mail goes anywhere.
    let mail = if taken {
        issued.row.used_at = Some(now);
        None
    } else {
        Some(site.mail.compose(
            &Letter::email_change(site.mail, &row, &new, &issued.raw),
            now,
        )?)
    };
    let id = row.id.clone();
    site.db
        .run(move |conn| {
            conn.write_transaction(|conn| {
                AccountToken::void_for_user(conn, &id, &[TokenPurpose::EmailChange], now)?;
                AccountToken::insert(conn, &issued)?;
                if let Some(mail) = &mail {
                    OutboxMail::queue(conn, mail)?;
                }
                Ok(())
            })
        })
        .await?;
    site.mail.wake();
    Ok(FormOutcome::success(
        "/account",
        "We sent a confirmation link to the new address. Follow it within 24 hours to start \
         using that address; until then your account keeps its current one.",
    ))
}

/// What following a change or undo link came to.
enum Followed {
    /// Not a valid link of this kind.
    Invalid,
    /// Valid, but another account has the address now (nothing changed).
    Taken,
    /// Done: the account row after the change, and the address it had before.
    Done(Box<User>, String),
}

/// Whether an error is the database refusing a second account with the same address.
fn is_unique_violation(e: &Error) -> bool {
    matches!(
        e,
        Error::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// Follows the link sent to a new address: in one transaction, checks the address is still
/// free, makes it the account's (verified), uses the link up and queues the notice with its
/// undo link to the old address.
#[rocket::get("/email/change/<token>")]
async fn change_link(
    token: &str,
    user: Option<AnyUser<'_>>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let (raw, now) = (token.to_string(), site.now());
    let mailer: Mailer = site.mail.clone();
    let notice = site.mail.notice_on(Notice::EmailChanged);
    let followed = site
        .db
        .run(move |conn| {
            conn.write_transaction(|conn| {
                let Some(token) =
                    AccountToken::find_valid(conn, TokenPurpose::EmailChange, &raw, now)?
                else {
                    return Ok(Followed::Invalid);
                };
                let (Some(uid), Some(new)) = (token.user_id.clone(), token.email.clone()) else {
                    return Ok(Followed::Invalid);
                };
                let Some(before) = User::find(conn, &uid)? else {
                    return Ok(Followed::Invalid);
                };
                if User::email_taken_by_other(conn, &uid, &new)? {
                    return Ok(Followed::Taken);
                }
                if !AccountToken::consume(conn, &token, now)? {
                    return Ok(Followed::Invalid);
                }
                User::set_email(conn, &uid, &new, now)?;
                AccountToken::void_for_user(conn, &uid, &[TokenPurpose::EmailChange], now)?;
                let old = before.email.clone();
                let after = User::find(conn, &uid)?.ok_or(Error::NotFound)?;
                if notice {
                    let undo = AccountToken::issue(
                        TokenPurpose::EmailUndo,
                        TokenFor {
                            user_id: Some(uid.clone()),
                            email: Some(old.clone()),
                            ..TokenFor::default()
                        },
                        now,
                        Duration::days(UNDO_TTL_DAYS),
                    );
                    AccountToken::insert(conn, &undo)?;
                    let letter =
                        Letter::email_changed(&mailer, &after, &old, &domain(&new), &undo.raw, now);
                    OutboxMail::queue(conn, &mailer.compose(&letter, now)?)?;
                }
                Ok(Followed::Done(Box::new(after), old))
            })
        })
        .await;
    let followed = match followed {
        Err(e) if is_unique_violation(&e) => Followed::Taken,
        other => other?,
    };
    let signed_in = user.map(|u| u.0);
    match followed {
        Followed::Invalid => Ok(link_refused(
            ctx,
            "This link does not work",
            "This link to confirm a new address is not valid: it may have been used already, \
             replaced by a newer request, or be older than 24 hours. Your account keeps its \
             current address; ask for the change again from your account page.",
            ("/account/email", "Change your address again"),
        )),
        Followed::Taken => Ok(link_refused(
            ctx,
            "That address is not available",
            "Another account uses this address now, so it cannot become yours. Your account \
             keeps its current address.",
            ("/account", "Back to your account"),
        )),
        Followed::Done(row, _old) => {
            site.mail.wake();
            site.record_own(
                AuditKind::EmailChanged,
                Who::user(&row.id, &row.username),
                Some(format!("new address at {}", domain(&row.email))),
            )
            .await;
            if reissue_if_own(&site, jar, signed_in, &row.id).await? {
                return Ok(FormOutcome::success(
                    "/account",
                    format!("Your address is now {}.", row.email),
                ));
            }
            Ok(FormOutcome::success(
                "/login",
                "Your new address is confirmed. Sign in.",
            ))
        }
    }
}

/// The undo link sent to the old address opens a page with one button: a GET changes nothing,
/// so a mail scanner that fetches links cannot undo a change its owner made.
#[rocket::get("/email/undo/<token>")]
async fn undo_page(
    token: &str,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let (raw, now) = (token.to_string(), site.now());
    let found = site
        .db
        .run(move |conn| AccountToken::find_valid(conn, TokenPurpose::EmailUndo, &raw, now))
        .await?;
    match found.and_then(|t| t.email) {
        Some(old) => Ok(FormOutcome::Show(ctx.page(
            "email/undo",
            "Undo the change of your address?",
            json!({ "email": old, "action": format!("/email/undo/{token}") }),
        ))),
        None => Ok(undo_refused(ctx)),
    }
}

/// An undo link that opens nothing.
fn undo_refused(ctx: PageContext<'_>) -> FormOutcome {
    link_refused(
        ctx,
        "This link does not work",
        "This undo link is not valid: it may have been used already or be older than 7 days. If \
         someone else changed your address, reset your password and contact your administrator.",
        ("/password/forgot", "Reset your password"),
    )
}

/// The undo page's button: puts the old address back (verified), ends every session and revokes
/// every API key of the account, and voids every link still out for it (changes, undos, password
/// resets), so whoever changed the address keeps no way in through it.
#[rocket::post("/email/undo/<token>", data = "<_form>")]
async fn undo_link(
    token: &str,
    _form: CsrfOnly<'_>,
    user: Option<AnyUser<'_>>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let (raw, now) = (token.to_string(), site.now());
    let followed = site
        .db
        .run(move |conn| {
            conn.write_transaction(|conn| {
                let Some(token) =
                    AccountToken::find_valid(conn, TokenPurpose::EmailUndo, &raw, now)?
                else {
                    return Ok(Followed::Invalid);
                };
                let (Some(uid), Some(old)) = (token.user_id.clone(), token.email.clone()) else {
                    return Ok(Followed::Invalid);
                };
                let Some(before) = User::find(conn, &uid)? else {
                    return Ok(Followed::Invalid);
                };
                if User::email_taken_by_other(conn, &uid, &old)? {
                    return Ok(Followed::Taken);
                }
                if !AccountToken::consume(conn, &token, now)? {
                    return Ok(Followed::Invalid);
                }
                User::set_email(conn, &uid, &old, now)?;
                AccountToken::void_for_user(
                    conn,
                    &uid,
                    &[
                        TokenPurpose::EmailChange,
                        TokenPurpose::EmailUndo,
                        TokenPurpose::PasswordReset,
                        TokenPurpose::VerifyEmail,
                    ],
                    now,
                )?;
                let after = User::find(conn, &uid)?.ok_or(Error::NotFound)?;
                Ok(Followed::Done(Box::new(after), before.email))
            })
        })
        .await;
    let followed = match followed {
        Err(e) if is_unique_violation(&e) => Followed::Taken,
        other => other?,
    };
    let row = match followed {
        Followed::Invalid => return Ok(undo_refused(ctx)),
        Followed::Taken => {
            return Ok(link_refused(
                ctx,
                "That address is not available",
                "Another account uses your old address now, so it cannot be put back. Contact \
                 your administrator.",
                ("/", "Home"),
            ))
        }
        Followed::Done(row, _) => row,
    };
    let (ended, keys) = site.sessions.end_all_with_keys(&row.id, None).await?;
    let who = Who::user(&row.id, &row.username);
    site.record_own(
        AuditKind::EmailChangeUndone,
        who,
        Some(format!(
            "address at {} restored; {ended} session(s) ended",
            domain(&row.email)
        )),
    )
    .await;
    site.record_keys_revoked(who, &keys, "address change undone")
        .await;
    // This browser's session (if it was this account's) is over: the page shows it signed out.
    if user.as_ref().is_some_and(|u| u.0.id == row.id) {
        site.sessions.clear_cookie(jar);
    }
    Ok(FormOutcome::Show(page(
        "email/undone",
        "Your address is back",
        None,
        None,
        &CsrfToken(String::new()),
        json!({ "email": row.email }),
    )))
}
