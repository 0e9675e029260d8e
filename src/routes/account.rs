//! Your account: details, password change, and your devices (sessions).

use rocket::http::CookieJar;
use serde_json::json;

use crate::auth::{CsrfForm, CsrfOnly, CurrentUser};
use crate::config::{EmailVerification, Notice};
use crate::error::Error;
use crate::events::Who;
use crate::mail::{HowChanged, Letter};
use crate::models::{ApiKey, AuditKind, User};
use crate::routes::services::Services;
use crate::validation::{self, field, FieldErrors, PASSWORD_MAX_CHARS};
use crate::view::{wait_words, FormOutcome, KeyView, Page, PageContext, SessionView, UserView};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        account,
        change_password,
        devices,
        revoke_device,
        revoke_other_devices,
        logout_everywhere
    ]
}

/// The change-password form.
#[derive(Debug, rocket::FromForm)]
struct PasswordChange {
    #[field(default = String::new(), validate = field::given("Enter your current password."))]
    current_password: String,
    #[field(default = String::new())]
    new_password: String,
    #[field(default = String::new())]
    new_password_confirm: String,
}

/// The account row behind a valid token (a token outlives a deleted account by minutes at most).
async fn load_user(site: &Services<'_>, user: &CurrentUser) -> Result<Option<User>, Error> {
    let id = user.id.clone();
    site.db.run(move |conn| User::find(conn, &id)).await
}

/// The answer for a token whose account no longer exists: signed out.
fn gone(site: &Services<'_>, jar: &CookieJar<'_>) -> FormOutcome {
    site.sessions.clear_cookie(jar);
    FormOutcome::error(
        "/login",
        "Your account no longer exists. Please sign in again.",
    )
}

fn account_page(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    row: &User,
    errors: &FieldErrors,
) -> Page {
    let verification = site.settings.email_verification != EmailVerification::Off;
    ctx.page(
        "account/index",
        "Your account",
        json!({
            "user": UserView::of(row),
            "email_verified": row.email_verified_at.is_some(),
            "verification": verification,
            "values": {},
            "errors": errors,
        }),
    )
}

/// Account details and the change-password form.
#[rocket::get("/account")]
async fn account(
    user: CurrentUser,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    Ok(match load_user(&site, &user).await? {
        Some(row) => FormOutcome::Show(account_page(ctx, &site, &row, &FieldErrors::new())),
        None => gone(&site, jar),
    })
}

/// Changes your password after checking the current one, and signs out your other sessions.
#[rocket::post("/account/password", data = "<form>")]
async fn change_password(
    user: CurrentUser,
    form: CsrfForm<'_, PasswordChange>,
    ctx: PageContext<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let Some(row) = load_user(&site, &user).await? else {
        return Ok(gone(&site, jar));
    };
    if let Err(wait) = site.throttle.password_change(&user.id) {
        let errors = FieldErrors::form(format!(
            "Too many attempts. Please wait {} and try again.",
            wait_words(wait)
        ));
        return Ok(FormOutcome::wait(
            account_page(ctx, &site, &row, &errors),
            wait,
        ));
    }
    let (new_password, new_confirm) = (
        form.submitted("new_password"),
        form.submitted("new_password_confirm"),
    );
    // The box offering to revoke every API key too (ticked by default on the page).
    let revoke_keys = form.submitted("revoke_keys") == "on";
    let (mut errors, current, new, confirm) = match form.parsed() {
        Ok(change) => (
            FieldErrors::new(),
            change.current_password,
            change.new_password,
            change.new_password_confirm,
        ),
        // The current password was left empty: the new one is still checked.
        Err(errors) => (
            errors,
            String::new(),
            new_password.to_string(),
            new_confirm.to_string(),
        ),
    };
    if !current.is_empty()
        && (current.chars().count() > PASSWORD_MAX_CHARS
            || !site
                .hasher
                .verify(current.clone(), Some(row.password_hash.clone()))
                .await?)
    {
        errors.add("current_password", "That is not your current password.");
    }
    let mut new_errors =
        validation::new_password_off_workers(new.clone(), confirm, &[&row.username, &row.email])
            .await?;
    if new_errors.is_empty() && new == current {
        new_errors.push((
            "password",
            "Choose a password different from your current one.".into(),
        ));
    }
    for (name, message) in new_errors {
        let field = if name == "password" {
            "new_password"
        } else {
            "new_password_confirm"
        };
        errors.add(field, message);
    }
    if !errors.is_empty() {
        return Ok(FormOutcome::redo(account_page(ctx, &site, &row, &errors)));
    }

    let hash = site.hasher.hash(new).await?;
    let (id, now) = (row.id.clone(), site.now());
    site.db
        .run(move |conn| User::set_password_hash(conn, &id, &hash, now))
        .await?;
    let (ended, keys) = if revoke_keys {
        site.sessions
            .end_all_with_keys(&row.id, Some(&user.session_id))
            .await?
    } else {
        let ended = site
            .sessions
            .end_all_for_user(&row.id, Some(&user.session_id))
            .await?;
        (ended, Vec::new())
    };
    let who = Who::user(&row.id, &row.username);
    site.record_own(AuditKind::PasswordChanged, who, None).await;
    let notice = Letter::password_changed(
        site.mail,
        &row,
        HowChanged::Changed,
        site.peer.ip.map(|ip| ip.to_string()),
        now,
    );
    site.mail
        .notify(site.db, Notice::PasswordChanged, &notice, now)
        .await;
    if ended > 0 {
        let detail = format!("{ended} other session(s), after password change");
        site.record_own(AuditKind::SessionsRevoked, who, Some(detail))
            .await;
    }
    site.record_keys_revoked(who, &keys, "after password change")
        .await;
    let mut message = match ended {
        0 => "Your password has been changed.".to_string(),
        n => format!("Your password has been changed and {n} other session(s) were signed out."),
    };
    if !keys.is_empty() {
        message.push_str(&format!(" {} API key(s) were revoked.", keys.len()));
    }
    Ok(FormOutcome::success("/account", message))
}

/// Your active sessions, each with a sign-out button, and your active API keys (they are a way
/// in too).
#[rocket::get("/account/sessions")]
async fn devices(
    user: CurrentUser,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let list = site.sessions.list_for_user(&user.id).await?;
    let views: Vec<_> = list
        .iter()
        .map(|s| SessionView::of(s, Some(&user.session_id)))
        .collect();
    let (uid, now) = (user.id.clone(), site.now());
    let keys = site
        .db
        .run(move |conn| ApiKey::for_user(conn, &uid))
        .await?;
    let keys: Vec<_> = keys
        .iter()
        .map(|k| KeyView::of(k, now))
        .filter(|k| k.status == "active")
        .collect();
    Ok(ctx.page(
        "account/sessions",
        "Your devices",
        json!({ "sessions": views, "keys": keys }),
    ))
}

/// Signs one of your sessions out (this one included).
#[rocket::post("/account/sessions/<sid>/revoke", data = "<_form>")]
async fn revoke_device(
    user: CurrentUser,
    sid: &str,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    if !site.sessions.end(sid, Some(&user.id)).await? {
        return Ok(FormOutcome::error(
            "/account/sessions",
            "That session has already ended.",
        ));
    }
    record_revoked(&site, &user, "1 session").await;
    if sid == user.session_id {
        site.sessions.clear_cookie(jar);
        return Ok(FormOutcome::success("/", "You have signed out."));
    }
    Ok(FormOutcome::success(
        "/account/sessions",
        "That session has been signed out.",
    ))
}

/// Signs out every session but this one.
#[rocket::post("/account/sessions/revoke-others", data = "<_form>")]
async fn revoke_other_devices(
    user: CurrentUser,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let n = site
        .sessions
        .end_all_for_user(&user.id, Some(&user.session_id))
        .await?;
    record_revoked(&site, &user, &format!("{n} other session(s)")).await;
    Ok(FormOutcome::success(
        "/account/sessions",
        format!("Signed out {n} other session(s)."),
    ))
}

/// Signs out every session, this one included, and revokes every API key.
#[rocket::post("/account/logout-everywhere", data = "<_form>")]
async fn logout_everywhere(
    user: CurrentUser,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let (n, keys) = site.sessions.end_all_with_keys(&user.id, None).await?;
    site.sessions.clear_cookie(jar);
    record_revoked(&site, &user, &format!("{n} session(s), everywhere")).await;
    let who = Who::user(&user.id, &user.username);
    site.record_keys_revoked(who, &keys, "signed out everywhere")
        .await;
    Ok(FormOutcome::success(
        "/",
        "You have been signed out everywhere.",
    ))
}

async fn record_revoked(site: &Services<'_>, user: &CurrentUser, detail: &str) {
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::SessionsRevoked, who, Some(detail.to_string()))
        .await;
}
