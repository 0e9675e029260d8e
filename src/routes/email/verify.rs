//! Proving an address: the link mailed at sign-up, "Send the link again", and the "Confirm your
//! address" page an unverified user is held on when the site requires a verified address.

use rocket::http::CookieJar;
use serde_json::json;
use time::{Duration, PrimitiveDateTime};

use super::{link_refused, load, reissue_if_own};
use crate::auth::{AnyUser, CsrfOnly};
use crate::config::EmailVerification;
use crate::error::Error;
use crate::events::Who;
use crate::mail::Letter;
use crate::models::{AccountToken, AuditKind, OutboxMail, TokenFor, TokenPurpose, User};
use crate::routes::services::Services;
use crate::routes::signup::VERIFY_TTL_HOURS;
use crate::validation::FieldErrors;
use crate::view::{FormOutcome, Page, PageContext};

/// The "Confirm your address" page, where every page sends an unverified user when the site
/// requires a verified address.
pub const CONFIRM_PAGE: &str = "/account/verify-email";

/// Verification links one account may have mailed per hour (sign-up's included).
const RESENDS_PER_HOUR: i64 = 3;

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![verify_link, confirm_page, resend]
}

/// Follows a verification link: marks the address verified (if the account still has it),
/// then on to the account page (signed in) or the sign-in page.
#[rocket::get("/email/verify/<token>")]
async fn verify_link(
    token: &str,
    user: Option<AnyUser<'_>>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let (raw, now) = (token.to_string(), site.now());
    let verified = site
        .db
        .run(move |conn| {
            conn.write_transaction(|conn| {
                let Some(token) =
                    AccountToken::find_valid(conn, TokenPurpose::VerifyEmail, &raw, now)?
                else {
                    return Ok(None);
                };
                let (Some(uid), Some(email)) = (token.user_id.clone(), token.email.clone()) else {
                    return Ok(None);
                };
                if !AccountToken::consume(conn, &token, now)? {
                    return Ok(None);
                }
                if !User::mark_email_verified(conn, &uid, &email, now)? {
                    // The account has another address now: this link proves nothing about it.
                    return Ok(None);
                }
                User::find(conn, &uid)
            })
        })
        .await?;
    let signed_in = user.map(|u| u.0);
    let Some(row) = verified else {
        let action = match signed_in {
            Some(_) => ("/account", "Send a new link from your account"),
            None => ("/login", "Sign in to send a new link"),
        };
        return Ok(link_refused(
            ctx,
            "This link does not work",
            "This confirmation link is not valid: it may have been used already, replaced by a \
             newer one, or be older than 48 hours. Sign in and ask for a new link.",
            action,
        ));
    };
    site.record_own(
        AuditKind::EmailVerified,
        Who::user(&row.id, &row.username),
        None,
    )
    .await;
    if reissue_if_own(&site, jar, signed_in, &row.id).await? {
        return Ok(FormOutcome::success(
            "/account",
            "Your address is confirmed. Thank you!",
        ));
    }
    Ok(FormOutcome::success(
        "/login",
        "Your address is confirmed. Sign in.",
    ))
}

fn confirm_form(ctx: PageContext<'_>, row: &User, errors: &FieldErrors) -> Page {
    ctx.page(
        "email/confirm",
        "Confirm your address",
        json!({ "email": row.email, "errors": errors }),
    )
}

/// "Confirm your address": the only page of an unverified user when the site requires a
/// verified address. Once the address is verified (maybe in another browser), it lets them on.
#[rocket::get("/account/verify-email")]
async fn confirm_page(
    user: AnyUser<'_>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let Some(row) = load(&site, &user.0.id).await? else {
        site.sessions.clear_cookie(jar);
        return Ok(FormOutcome::error("/login", "Please sign in again."));
    };
    if row.email_verified_at.is_some() {
        if user.0.email_unverified {
            reissue_if_own(&site, jar, Some(user.0), &row.id).await?;
        }
        return Ok(FormOutcome::success(
            "/account",
            "Your address is confirmed.",
        ));
    }
    Ok(FormOutcome::Show(confirm_form(
        ctx,
        &row,
        &FieldErrors::new(),
    )))
}

/// Issues a verification link for `row`'s address (voiding older ones) and queues its mail, in
/// one transaction.
async fn send_verification(
    site: &Services<'_>,
    row: &User,
    now: PrimitiveDateTime,
) -> Result<(), Error> {
    let issued = AccountToken::issue(
        TokenPurpose::VerifyEmail,
        TokenFor {
            user_id: Some(row.id.clone()),
            email: Some(row.email.clone()),
            ..TokenFor::default()
        },
        now,
        Duration::hours(VERIFY_TTL_HOURS),
    );
    let mail = site
        .mail
        .compose(&Letter::verify_email(site.mail, row, &issued.raw), now)?;
    let id = row.id.clone();
    site.db
        .run(move |conn| {
            conn.write_transaction(|conn| {
                AccountToken::void_for_user(conn, &id, &[TokenPurpose::VerifyEmail], now)?;
                AccountToken::insert(conn, &issued)?;
                OutboxMail::queue(conn, &mail)
            })
        })
        .await?;
    site.mail.wake();
    Ok(())
}

/// "Send the link again": a new verification link (older ones stop working), at most
/// [`RESENDS_PER_HOUR`] an hour per account.
#[rocket::post("/account/verify-email", data = "<_form>")]
async fn resend(
    _form: CsrfOnly<'_>,
    user: AnyUser<'_>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let back = if user.0.email_unverified {
        CONFIRM_PAGE
    } else {
        "/account"
    };
    let Some(row) = load(&site, &user.0.id).await? else {
        return Ok(FormOutcome::error("/login", "Please sign in again."));
    };
    if site.settings.email_verification == EmailVerification::Off {
        return Ok(FormOutcome::error(
            "/account",
            "This site does not confirm addresses.",
        ));
    }
    if row.email_verified_at.is_some() {
        return Ok(FormOutcome::success(
            back,
            "Your address is already confirmed.",
        ));
    }
    let now = site.now();
    let id = row.id.clone();
    let recent = site
        .db
        .run(move |conn| {
            AccountToken::issued_since(
                conn,
                &id,
                TokenPurpose::VerifyEmail,
                now - Duration::hours(1),
            )
        })
        .await?;
    if recent >= RESENDS_PER_HOUR {
        let errors = FieldErrors::form(
            "We already sent several links in the last hour. Check your spam folder, or wait \
             an hour and try again.",
        );
        return Ok(FormOutcome::wait(
            confirm_form(ctx, &row, &errors),
            std::time::Duration::from_secs(3600),
        ));
    }
    send_verification(&site, &row, now).await?;
    Ok(FormOutcome::success(
        back,
        format!(
            "We sent a new link to {}. Links sent before no longer work.",
            row.email
        ),
    ))
}
