//! Two-factor sign-in: the code step of a sign-in, and setting up, using and turning off an
//! authenticator app from your account.

use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::{json, Value};

use crate::auth::next::safe_next;
use crate::auth::signin::{SignIn, Verdict};
use crate::auth::two_factor::{self, PendingSignIn, Redeemed};
use crate::auth::{Csrf, CsrfForm, CsrfToken, CurrentUser, PasswordHasher, Sessions, Throttle};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{AuditKind, RecoveryCode, TwoFactor, User};
use crate::peer::Peer;
use crate::routes::auth::finish_sign_in;
use crate::validation::{FieldErrors, PASSWORD_MAX_CHARS};
use crate::view::{format_db_time, page, wait_words, FormOutcome, Page, Throttled};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        code_page,
        code,
        settings,
        begin_setup,
        enable,
        replace_recovery_codes,
        disable
    ]
}

/// The name authenticator apps show next to the codes.
const ISSUER: &str = "latchkey";

const WRONG_CODE: &str = "That code is not right, or was already used. Enter the current \
     6-digit code from your authenticator app, or one of your recovery codes.";

const EXPIRED: &str = "Your sign-in took too long. Please sign in again.";

fn code_form(
    next: Option<&str>,
    errors: &FieldErrors,
    csrf: &CsrfToken,
    status: Status,
) -> (Status, Page) {
    let template = page(
        "auth/two_factor",
        "Two-factor sign-in",
        None,
        None,
        csrf,
        json!({ "errors": errors, "next": next.unwrap_or_default() }),
    );
    (status, template)
}

/// The code step of a sign-in whose password was right.
#[rocket::get("/login/two-factor?<next>")]
fn code_page(
    next: Option<&str>,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    keys: &State<Csrf>,
    sessions: &State<Sessions>,
    jar: &CookieJar<'_>,
) -> FormOutcome {
    if PendingSignIn::load(jar, keys, sessions.cookie(), sessions.clock().now()).is_none() {
        return FormOutcome::Done(Flash::error(Redirect::to("/login"), EXPIRED));
    }
    let next = next.and_then(safe_next);
    let template = page(
        "auth/two_factor",
        "Two-factor sign-in",
        None,
        flash,
        &csrf,
        json!({ "errors": {}, "next": next.unwrap_or_default() }),
    );
    FormOutcome::Redo((Status::Ok, template))
}

/// Checks the code (or a recovery code) and starts the session.
#[rocket::post("/login/two-factor?<next>", data = "<form>")]
async fn code(
    next: Option<&str>,
    form: CsrfForm,
    csrf: CsrfToken,
    signin: SignIn<'_>,
    keys: &State<Csrf>,
    jar: &CookieJar<'_>,
) -> Result<Result<FormOutcome, Flash<Redirect>>, Error> {
    let sessions = signin.sessions();
    let Some(pending) = PendingSignIn::load(jar, keys, sessions.cookie(), sessions.clock().now())
    else {
        return Ok(Err(Flash::error(Redirect::to("/login"), EXPIRED)));
    };
    let next = next.and_then(safe_next);
    let mut errors = FieldErrors::new();
    let input = form.get("code").trim().to_string();
    if input.is_empty() {
        errors.add(
            "code",
            "Enter the 6-digit code from your authenticator app.",
        );
        let redo = code_form(next.as_deref(), &errors, &csrf, Status::UnprocessableEntity);
        return Ok(Ok(FormOutcome::Redo(redo)));
    }
    let (user, verified) = match signin.check_second_factor(&pending.user_id, &input).await? {
        Verdict::Verified(user) => (user, true),
        // Two-factor was turned off since the password step: the password alone signed in.
        Verdict::Accepted(user) => (user, false),
        Verdict::Invalid | Verdict::SecondFactor(_) => {
            errors.add("code", WRONG_CODE);
            let redo = code_form(next.as_deref(), &errors, &csrf, Status::UnprocessableEntity);
            return Ok(Ok(FormOutcome::Redo(redo)));
        }
        Verdict::Locked(wait) | Verdict::Throttled(wait) => {
            errors.add(
                "form",
                format!("Too many wrong codes. Try again in {}.", wait_words(wait)),
            );
            let (_, template) = code_form(next.as_deref(), &errors, &csrf, Status::TooManyRequests);
            return Ok(Ok(FormOutcome::Wait(Throttled::new(template, wait))));
        }
        Verdict::Disabled => {
            PendingSignIn::clear(jar, sessions.cookie());
            return Ok(Err(Flash::error(
                Redirect::to("/login"),
                "This account has been disabled. Contact an administrator if you think this is a mistake.",
            )));
        }
    };
    PendingSignIn::clear(jar, sessions.cookie());
    let how = if !verified {
        "password (two-factor turned off meanwhile)"
    } else if two_factor::looks_like_app_code(&input) {
        "two-factor code"
    } else {
        "recovery code"
    };
    Ok(Ok(finish_sign_in(
        &signin,
        jar,
        &user,
        pending.remember,
        verified,
        next,
        how,
    )
    .await?))
}

/// What the settings page shows about a user's two-factor state.
async fn state_of(db: &Db, user_id: &str) -> Result<(Option<TwoFactor>, i64), Error> {
    let id = user_id.to_string();
    db.run(move |conn| {
        let row = TwoFactor::find(conn, &id)?;
        let left = RecoveryCode::remaining(conn, &id)?;
        Ok((row, left))
    })
    .await
}

/// The settings page as the database has it now, with a form's errors or new recovery codes.
async fn settings_page(
    db: &Db,
    user: &CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: &CsrfToken,
    errors: &FieldErrors,
    new_codes: Option<&[String]>,
) -> Result<Page, Error> {
    let (row, left) = state_of(db, &user.id).await?;
    let row = row.as_ref();
    let setup: Value = match row {
        Some(row) if row.enabled_at.is_none() => {
            let uri = two_factor::otpauth_uri(ISSUER, &user.username, &row.secret);
            let grouped: Vec<String> = row
                .secret
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            json!({
                "qr_svg": two_factor::qr_svg(&uri).unwrap_or_default(),
                "secret": grouped.join(" "),
                "uri": uri,
            })
        }
        _ => Value::Null,
    };
    Ok(page(
        "account/two_factor",
        "Two-factor sign-in",
        Some(user),
        flash,
        csrf,
        json!({
            "enabled": row.is_some_and(|r| r.enabled_at.is_some()),
            "enabled_at": row.and_then(|r| r.enabled_at).map(format_db_time).unwrap_or_default(),
            "codes_left": left,
            "setup": setup,
            "new_codes": new_codes,
            "errors": errors,
        }),
    ))
}

/// Your two-factor settings: set up, recovery codes, turn off.
#[rocket::get("/account/two-factor")]
async fn settings(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
) -> Result<Page, Error> {
    settings_page(db, &user, flash, &csrf, &FieldErrors::new(), None).await
}

/// Makes a new secret to scan; two-factor stays off until a code from it is entered.
#[rocket::post("/account/two-factor/setup", data = "<_form>")]
async fn begin_setup(
    user: CurrentUser,
    _form: CsrfForm,
    db: &State<Db>,
    sessions: &State<Sessions>,
) -> Result<Flash<Redirect>, Error> {
    let (id, secret, now) = (
        user.id.clone(),
        two_factor::new_secret(),
        sessions.clock().db_now(),
    );
    let row = db
        .run(move |conn| TwoFactor::begin_setup(conn, &id, &secret, now))
        .await?;
    if row.enabled_at.is_some() {
        return Ok(Flash::error(
            Redirect::to("/account/two-factor"),
            "Two-factor sign-in is already on.",
        ));
    }
    Ok(Flash::success(
        Redirect::to("/account/two-factor"),
        "Scan the QR code with your authenticator app, then enter the code it shows.",
    ))
}

/// A form on the settings page, redone with its errors (or a 429 when too many tries).
async fn redo(
    db: &Db,
    user: &CurrentUser,
    csrf: &CsrfToken,
    errors: &FieldErrors,
    wait: Option<std::time::Duration>,
) -> Result<FormOutcome, Error> {
    let template = settings_page(db, user, None, csrf, errors, None).await?;
    Ok(match wait {
        Some(wait) => FormOutcome::Wait(Throttled::new(template, wait)),
        None => FormOutcome::Redo((Status::UnprocessableEntity, template)),
    })
}

/// Counts an attempt at a code on the settings page against the per-user limit.
fn throttled(
    throttle: &Throttle,
    user: &CurrentUser,
) -> Option<(FieldErrors, std::time::Duration)> {
    let wait = throttle.password_change(&user.id).err()?;
    let mut errors = FieldErrors::new();
    errors.add(
        "form",
        format!(
            "Too many attempts. Please wait {} and try again.",
            wait_words(wait)
        ),
    );
    Some((errors, wait))
}

/// Turns two-factor on with the first code from the app, and shows the recovery codes once.
#[rocket::post("/account/two-factor/enable", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn enable(
    user: CurrentUser,
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    sessions: &State<Sessions>,
    throttle: &State<Throttle>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<Result<Page, FormOutcome>, Error> {
    if let Some((errors, wait)) = throttled(throttle, &user) {
        return Ok(Err(redo(db, &user, &csrf, &errors, Some(wait)).await?));
    }
    let id = user.id.clone();
    let row = db.run(move |conn| TwoFactor::find(conn, &id)).await?;
    let Some(row) = row.filter(|r| r.enabled_at.is_none()) else {
        return Ok(Err(FormOutcome::Done(Flash::error(
            Redirect::to("/account/two-factor"),
            "There is no setup to finish. Start again with \"Set up two-factor sign-in\".",
        ))));
    };
    // The password too, so a session left open somewhere cannot tie the account to a stranger's
    // phone.
    let mut errors = FieldErrors::new();
    if !password_ok(db, hasher, &user.id, form.get("password")).await? {
        errors.add("password", "That is not your password.");
    }
    let step = two_factor::check_code(&row.secret, form.get("code"), sessions.clock().now());
    if step.is_none() {
        errors.add(
            "code",
            "That code is not right. Enter the 6-digit code your app shows now.",
        );
    }
    let (Some(step), true) = (step, errors.is_empty()) else {
        return Ok(Err(redo(db, &user, &csrf, &errors, None).await?));
    };
    let codes = two_factor::new_recovery_codes();
    let (id, stored, now) = (user.id.clone(), codes.clone(), sessions.clock().db_now());
    let enabled = db
        .run(move |conn| TwoFactor::enable(conn, &id, step, &stored, now))
        .await?;
    if !enabled {
        return Ok(Err(FormOutcome::Done(Flash::error(
            Redirect::to("/account/two-factor"),
            "Two-factor sign-in was changed in another window. Check it here.",
        ))));
    }
    audit
        .record(
            Event::new(AuditKind::TwoFactorEnabled, &peer)
                .by_self(Who::user(&user.id, &user.username)),
        )
        .await;
    let shown = settings_page(db, &user, None, &csrf, &FieldErrors::new(), Some(&codes)).await?;
    Ok(Ok(shown))
}

/// Whether `password` is the user's password (bounded before hashing, like every check).
async fn password_ok(
    db: &Db,
    hasher: &PasswordHasher,
    user_id: &str,
    password: &str,
) -> Result<bool, Error> {
    if password.is_empty() || password.chars().count() > PASSWORD_MAX_CHARS {
        return Ok(false);
    }
    let id = user_id.to_string();
    let stored = db
        .run(move |conn| User::find(conn, &id))
        .await?
        .map(|u| u.password_hash);
    hasher.verify(password.to_string(), stored).await
}

/// Checks a code for a change on the settings page: the app's current code (each works once)
/// or, with `recovery`, an unused recovery code too (which it uses up).
async fn code_ok(
    db: &Db,
    sessions: &Sessions,
    user_id: &str,
    input: &str,
    recovery: bool,
) -> Result<bool, Error> {
    let (id, input, now) = (
        user_id.to_string(),
        input.trim().to_string(),
        sessions.clock().now(),
    );
    db.run(move |conn| {
        let Some(tf) = TwoFactor::enabled(conn, &id)? else {
            return Ok(false);
        };
        let redeemed = if recovery {
            two_factor::redeem(conn, &tf, &input, now)?
        } else {
            two_factor::redeem_app_code(conn, &tf, &input, now)?
        };
        Ok(matches!(
            redeemed,
            Redeemed::AppCode | Redeemed::RecoveryCode
        ))
    })
    .await
}

/// New recovery codes (the old ones stop working), after a current app code.
#[rocket::post("/account/two-factor/recovery-codes", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn replace_recovery_codes(
    user: CurrentUser,
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    sessions: &State<Sessions>,
    throttle: &State<Throttle>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<Result<Page, FormOutcome>, Error> {
    if let Some((errors, wait)) = throttled(throttle, &user) {
        return Ok(Err(redo(db, &user, &csrf, &errors, Some(wait)).await?));
    }
    if !code_ok(db, sessions, &user.id, form.get("code"), false).await? {
        let mut errors = FieldErrors::new();
        errors.add("replace_code", WRONG_APP_CODE);
        return Ok(Err(redo(db, &user, &csrf, &errors, None).await?));
    }
    let codes = two_factor::new_recovery_codes();
    let (id, stored, now) = (user.id.clone(), codes.clone(), sessions.clock().db_now());
    db.run(move |conn| RecoveryCode::replace_all(conn, &id, &stored, now))
        .await?;
    audit
        .record(
            Event::new(AuditKind::RecoveryCodesReplaced, &peer)
                .by_self(Who::user(&user.id, &user.username)),
        )
        .await;
    let shown = settings_page(db, &user, None, &csrf, &FieldErrors::new(), Some(&codes)).await?;
    Ok(Ok(shown))
}

const WRONG_APP_CODE: &str =
    "That code is not right, or was already used. Enter the 6-digit code your app shows now.";

/// Turns two-factor off, after the password and a current code (or a recovery code).
#[rocket::post("/account/two-factor/disable", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn disable(
    user: CurrentUser,
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    sessions: &State<Sessions>,
    throttle: &State<Throttle>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<FormOutcome, Error> {
    if let Some((errors, wait)) = throttled(throttle, &user) {
        return redo(db, &user, &csrf, &errors, Some(wait)).await;
    }
    let mut errors = FieldErrors::new();
    if !password_ok(db, hasher, &user.id, form.get("password")).await? {
        errors.add("password", "That is not your password.");
    }
    if !code_ok(db, sessions, &user.id, form.get("code"), true).await? {
        errors.add("code", WRONG_CODE);
    }
    if !errors.is_empty() {
        return redo(db, &user, &csrf, &errors, None).await;
    }
    let id = user.id.clone();
    db.run(move |conn| TwoFactor::remove(conn, &id)).await?;
    audit
        .record(
            Event::new(AuditKind::TwoFactorDisabled, &peer)
                .by_self(Who::user(&user.id, &user.username))
                .detail("by the user"),
        )
        .await;
    Ok(FormOutcome::Done(Flash::success(
        Redirect::to("/account/two-factor"),
        "Two-factor sign-in is off. Your password alone signs you in now.",
    )))
}
