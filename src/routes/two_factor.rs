//! Your two-factor settings: set up an authenticator app, new recovery codes, turn it off. (The
//! code step of signing in is in `signin.rs`.)

use serde_json::{json, Value};

use crate::auth::two_factor;
use rocket::http::CookieJar;

use crate::auth::{CsrfForm, CsrfOnly, CurrentUser, Via};
use crate::config::Notice;
use crate::error::Error;
use crate::events::Who;
use crate::mail::Letter;
use crate::models::{AuditKind, RecoveryCode, TwoFactor};
use crate::routes::services::Services;
use crate::text::format_db_time;
use crate::validation::FieldErrors;
use crate::view::{wait_words, FormOutcome, Page, PageContext};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
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

const SETTINGS: &str = "/account/two-factor";

const UNREADABLE_SETUP: &str =
    "This setup can no longer be finished. Start again with \"Set up two-factor sign-in\".";

/// Turning two-factor on or off: the password and a code. Both are checked, so both can be
/// told wrong at once.
#[derive(Debug, rocket::FromForm)]
struct PasswordAndCode {
    #[field(default = String::new())]
    password: String,
    #[field(default = String::new())]
    code: String,
}

/// New recovery codes: a current code from the app.
#[derive(Debug, rocket::FromForm)]
struct AppCode {
    #[field(default = String::new())]
    code: String,
}

/// The settings page as the database has it now, with a form's errors or new recovery codes.
async fn settings_page(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    user: &CurrentUser,
    errors: &FieldErrors,
    new_codes: Option<&[String]>,
) -> Result<Page, Error> {
    let id = user.id.clone();
    let (row, left) = site
        .db
        .run(move |conn| {
            let row = TwoFactor::find(conn, &id)?;
            let left = RecoveryCode::remaining(conn, &id)?;
            Ok((row, left))
        })
        .await?;
    let row = row.as_ref();
    let pending = row.filter(|r| r.enabled_at.is_none()).and_then(|r| {
        // A setup whose secret does not open is shown as none: "Set up" starts a new one.
        site.sessions
            .two_factor_seal()
            .open(&r.user_id, &r.secret)
            .map_err(|e| log::error!("two-factor setup not shown: {e}"))
            .ok()
    });
    let setup: Value = match pending {
        Some(secret) => {
            let uri = two_factor::otpauth_uri(ISSUER, &user.username, &secret);
            let grouped: Vec<String> = secret
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
        None => Value::Null,
    };
    Ok(ctx.page(
        "account/two_factor",
        "Two-factor sign-in",
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

/// A form on the settings page, shown again with its errors.
async fn redo(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    user: &CurrentUser,
    errors: &FieldErrors,
) -> Result<FormOutcome, Error> {
    let page = settings_page(ctx, site, user, errors, None).await?;
    Ok(FormOutcome::redo(page))
}

/// The settings page again with 429, when attempts at codes on it went over the per-user limit.
async fn too_many(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    user: &CurrentUser,
    wait: std::time::Duration,
) -> Result<FormOutcome, Error> {
    let errors = FieldErrors::form(format!(
        "Too many attempts. Please wait {} and try again.",
        wait_words(wait)
    ));
    let page = settings_page(ctx, site, user, &errors, None).await?;
    Ok(FormOutcome::wait(page, wait))
}

/// Your two-factor settings: set up, recovery codes, turn off.
#[rocket::get("/account/two-factor")]
async fn settings(
    user: CurrentUser,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    settings_page(ctx, &site, &user, &FieldErrors::new(), None).await
}

/// Makes a new secret to scan; two-factor stays off until a code from it is entered.
#[rocket::post("/account/two-factor/setup", data = "<_form>")]
async fn begin_setup(
    user: CurrentUser,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let secret = site
        .sessions
        .two_factor_seal()
        .seal(&user.id, &two_factor::new_secret())?;
    let (id, now) = (user.id.clone(), site.now());
    let row = site
        .db
        .run(move |conn| TwoFactor::begin_setup(conn, &id, &secret, now))
        .await?;
    if row.enabled_at.is_some() {
        return Ok(FormOutcome::error(
            SETTINGS,
            "Two-factor sign-in is already on.",
        ));
    }
    Ok(FormOutcome::success(
        SETTINGS,
        "Scan the QR code with your authenticator app, then enter the code it shows.",
    ))
}

/// Turns two-factor on with the first code from the app, and shows the recovery codes once.
#[rocket::post("/account/two-factor/enable", data = "<form>")]
async fn enable(
    user: CurrentUser,
    form: CsrfForm<'_, PasswordAndCode>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = site.throttle.password_change(&user.id) {
        return too_many(ctx, &site, &user, wait).await;
    }
    let id = user.id.clone();
    let row = site.db.run(move |conn| TwoFactor::find(conn, &id)).await?;
    let Some(row) = row.filter(|r| r.enabled_at.is_none()) else {
        return Ok(FormOutcome::error(
            SETTINGS,
            "There is no setup to finish. Start again with \"Set up two-factor sign-in\".",
        ));
    };
    let Ok(input) = form.parsed() else {
        return redo(ctx, &site, &user, &FieldErrors::new()).await;
    };
    // The password too, so a session left open somewhere cannot tie the account to a stranger's
    // phone.
    let mut errors = FieldErrors::new();
    if !site.password_ok(&user.id, &input.password).await? {
        errors.add("password", "That is not your password.");
    }
    let step = match site
        .sessions
        .two_factor_seal()
        .open(&row.user_id, &row.secret)
    {
        Ok(secret) => two_factor::check_code(&secret, &input.code, site.sessions.clock().now()),
        Err(e) => {
            log::error!("two-factor setup cannot be finished: {e}");
            errors.add("code", UNREADABLE_SETUP);
            return redo(ctx, &site, &user, &errors).await;
        }
    };
    if step.is_none() {
        errors.add(
            "code",
            "That code is not right. Enter the 6-digit code your app shows now.",
        );
    }
    let (Some(step), true) = (step, errors.is_empty()) else {
        return redo(ctx, &site, &user, &errors).await;
    };
    let codes = two_factor::new_recovery_codes();
    let (id, stored, now) = (user.id.clone(), codes.clone(), site.now());
    let enabled = site
        .db
        .run(move |conn| TwoFactor::enable(conn, &id, step, &stored, now))
        .await?;
    if !enabled {
        return Ok(FormOutcome::error(
            SETTINGS,
            "Two-factor sign-in was changed in another window. Check it here.",
        ));
    }
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::TwoFactorEnabled, who, None)
        .await;
    site.mail
        .notify_user(site.db, Notice::TwoFactorChanged, &user.id, now, |m, u| {
            Letter::two_factor_changed(m, u, true, now)
        })
        .await;
    // The password and a code were just given: this session now counts as a two-factor
    // sign-in (an admin enrolling goes straight on to the panel) and as a fresh proof.
    if user.via == Via::Cookie {
        if let Some(started) = site
            .sessions
            .reauthenticate(&user.session_id, &user.id, true)
            .await?
        {
            site.sessions.set_cookie(jar, &started);
        }
    }
    let shown = settings_page(ctx, &site, &user, &FieldErrors::new(), Some(&codes)).await?;
    Ok(FormOutcome::Show(shown))
}

/// New recovery codes (the old ones stop working), after a current app code.
#[rocket::post("/account/two-factor/recovery-codes", data = "<form>")]
async fn replace_recovery_codes(
    user: CurrentUser,
    form: CsrfForm<'_, AppCode>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = site.throttle.password_change(&user.id) {
        return too_many(ctx, &site, &user, wait).await;
    }
    let code = form.parsed().map(|f| f.code).unwrap_or_default();
    let refused = site
        .code_refusal(&user.id, &code, false, two_factor::WRONG_APP_CODE)
        .await?;
    if let Some(message) = refused {
        let mut errors = FieldErrors::new();
        errors.add("replace_code", message);
        return redo(ctx, &site, &user, &errors).await;
    }
    let codes = two_factor::new_recovery_codes();
    let (id, stored, now) = (user.id.clone(), codes.clone(), site.now());
    site.db
        .run(move |conn| RecoveryCode::replace_all(conn, &id, &stored, now))
        .await?;
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::RecoveryCodesReplaced, who, None)
        .await;
    site.mail
        .notify_user(site.db, Notice::RecoveryCodes, &user.id, now, |m, u| {
            Letter::recovery_codes_made(m, u, now)
        })
        .await;
    let shown = settings_page(ctx, &site, &user, &FieldErrors::new(), Some(&codes)).await?;
    Ok(FormOutcome::Show(shown))
}

/// Turns two-factor off, after the password and a current code (or a recovery code).
#[rocket::post("/account/two-factor/disable", data = "<form>")]
async fn disable(
    user: CurrentUser,
    form: CsrfForm<'_, PasswordAndCode>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    if let Err(wait) = site.throttle.password_change(&user.id) {
        return too_many(ctx, &site, &user, wait).await;
    }
    let Ok(input) = form.parsed() else {
        return redo(ctx, &site, &user, &FieldErrors::new()).await;
    };
    let mut errors = FieldErrors::new();
    if !site.password_ok(&user.id, &input.password).await? {
        errors.add("password", "That is not your password.");
    }
    if let Some(message) = site
        .code_refusal(&user.id, &input.code, true, WRONG_CODE)
        .await?
    {
        errors.add("code", message);
    }
    if !errors.is_empty() {
        return redo(ctx, &site, &user, &errors).await;
    }
    let id = user.id.clone();
    site.db
        .run(move |conn| TwoFactor::remove(conn, &id))
        .await?;
    let who = Who::user(&user.id, &user.username);
    let detail = Some("by the user".to_string());
    site.record_own(AuditKind::TwoFactorDisabled, who, detail)
        .await;
    let now = site.now();
    site.mail
        .notify_user(site.db, Notice::TwoFactorChanged, &user.id, now, |m, u| {
            Letter::two_factor_changed(m, u, false, now)
        })
        .await;
    Ok(FormOutcome::success(
        SETTINGS,
        "Two-factor sign-in is off. Your password alone signs you in now.",
    ))
}
