//! Your account: details, password change, and your devices (sessions).

use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::json;

use crate::auth::{CsrfForm, CsrfToken, CurrentUser, PasswordHasher, Sessions, Throttle};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{AuditKind, Session, User};
use crate::peer::{describe_browser, Peer};
use crate::validation::{self, FieldErrors, PASSWORD_MAX_CHARS};
use crate::view::{format_db_time, page, wait_words, FormOutcome, Page, Throttled};

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

/// The account row behind a valid token; a token for a deleted account signs the holder out.
async fn load_user(
    db: &Db,
    user: &CurrentUser,
    sessions: &Sessions,
    jar: &CookieJar<'_>,
) -> Result<Result<User, Flash<Redirect>>, Error> {
    let id = user.id.clone();
    match db.run(move |conn| User::find(conn, &id)).await? {
        Some(row) => Ok(Ok(row)),
        None => {
            sessions.clear_cookie(jar);
            Ok(Err(Flash::error(
                Redirect::to("/login"),
                "Your account no longer exists. Please sign in again.",
            )))
        }
    }
}

fn account_page(
    row: &User,
    user: &CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: &CsrfToken,
    errors: &FieldErrors,
) -> Page {
    page(
        "account/index",
        "Your account",
        Some(user),
        flash,
        csrf,
        json!({
            "user": {
                "username": row.username,
                "email": row.email,
                "role": row.role().as_str(),
                "created_at": format_db_time(row.created_at),
                "last_login_at": row.last_login_at.map(format_db_time).unwrap_or_default(),
            },
            "values": {},
            "errors": errors,
        }),
    )
}

/// Account details and the change-password form.
#[rocket::get("/account")]
async fn account(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
    sessions: &State<Sessions>,
    jar: &CookieJar<'_>,
) -> Result<Result<Page, Flash<Redirect>>, Error> {
    Ok(load_user(db, &user, sessions, jar)
        .await?
        .map(|row| account_page(&row, &user, flash, &csrf, &FieldErrors::new())))
}

/// Changes your password after checking the current one, and signs out your other sessions.
#[rocket::post("/account/password", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn change_password(
    user: CurrentUser,
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    sessions: &State<Sessions>,
    throttle: &State<Throttle>,
    audit: &State<Audit>,
    jar: &CookieJar<'_>,
    peer: Peer,
) -> Result<Result<FormOutcome, Flash<Redirect>>, Error> {
    let row = match load_user(db, &user, sessions, jar).await? {
        Ok(row) => row,
        Err(redirect) => return Ok(Err(redirect)),
    };
    if let Err(wait) = throttle.password_change(&user.id) {
        let mut errors = FieldErrors::new();
        errors.add(
            "form",
            format!(
                "Too many attempts. Please wait {} and try again.",
                wait_words(wait)
            ),
        );
        let template = account_page(&row, &user, None, &csrf, &errors);
        return Ok(Ok(FormOutcome::Wait(Throttled::new(template, wait))));
    }
    let current = form.get("current_password").to_string();
    let new = form.get("new_password").to_string();
    let confirm = form.get("new_password_confirm").to_string();

    let mut errors = FieldErrors::new();
    if current.is_empty() {
        errors.add("current_password", "Enter your current password.");
    } else if current.chars().count() > PASSWORD_MAX_CHARS
        || !hasher
            .verify(current.clone(), Some(row.password_hash.clone()))
            .await?
    {
        errors.add("current_password", "That is not your current password.");
    }
    let context = [row.username.clone(), row.email.clone()];
    let new_errors = rocket::tokio::task::spawn_blocking({
        let (new, current) = (new.clone(), current.clone());
        move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            let mut errors = validation::new_password(&new, &confirm, &context);
            if errors.is_empty() && new == current {
                errors.push((
                    "password",
                    "Choose a password different from your current one.".into(),
                ));
            }
            errors
        }
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    for (name, message) in new_errors {
        let field = if name == "password" {
            "new_password"
        } else {
            "new_password_confirm"
        };
        errors.add(field, message);
    }
    if !errors.is_empty() {
        let template = account_page(&row, &user, None, &csrf, &errors);
        return Ok(Ok(FormOutcome::Redo((
            Status::UnprocessableEntity,
            template,
        ))));
    }

    let hash = hasher.hash(new).await?;
    let id = row.id.clone();
    db.run(move |conn| User::set_password_hash(conn, &id, &hash))
        .await?;
    let ended = sessions
        .end_all_for_user(&row.id, Some(&user.session_id))
        .await?;
    let who = Who::user(&row.id, &row.username);
    audit
        .record(Event::new(AuditKind::PasswordChanged, &peer).by_self(who))
        .await;
    if ended > 0 {
        audit
            .record(
                Event::new(AuditKind::SessionsRevoked, &peer)
                    .by_self(who)
                    .detail(format!("{ended} other session(s), after password change")),
            )
            .await;
    }
    let message = match ended {
        0 => "Your password has been changed.".to_string(),
        n => format!("Your password has been changed and {n} other session(s) were signed out."),
    };
    Ok(Ok(FormOutcome::Done(Flash::success(
        Redirect::to("/account"),
        message,
    ))))
}

/// A session as the devices pages show it.
pub(crate) fn session_view(session: &Session, current_sid: Option<&str>) -> serde_json::Value {
    json!({
        "id": session.id,
        "browser": describe_browser(&session.user_agent),
        "ip": session.ip,
        "created_at": format_db_time(session.created_at),
        "last_seen_at": format_db_time(session.last_seen_at),
        "expires_at": format_db_time(session.expires_at),
        "remember": session.remember,
        "current": current_sid == Some(session.id.as_str()),
    })
}

/// Your active sessions, each with a sign-out button.
#[rocket::get("/account/sessions")]
async fn devices(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    sessions: &State<Sessions>,
) -> Result<Page, Error> {
    let list = sessions.list_for_user(&user.id).await?;
    let views: Vec<_> = list
        .iter()
        .map(|s| session_view(s, Some(&user.session_id)))
        .collect();
    Ok(page(
        "account/sessions",
        "Your devices",
        Some(&user),
        flash,
        &csrf,
        json!({ "sessions": views }),
    ))
}

/// Signs one of your sessions out (this one included).
#[rocket::post("/account/sessions/<sid>/revoke", data = "<_form>")]
async fn revoke_device(
    user: CurrentUser,
    sid: &str,
    _form: CsrfForm,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    jar: &CookieJar<'_>,
    peer: Peer,
) -> Result<Flash<Redirect>, Error> {
    if !sessions.end(sid, Some(&user.id)).await? {
        return Ok(Flash::error(
            Redirect::to("/account/sessions"),
            "That session has already ended.",
        ));
    }
    record_revoked(audit, &user, &peer, "1 session").await;
    if sid == user.session_id {
        sessions.clear_cookie(jar);
        return Ok(Flash::success(Redirect::to("/"), "You have signed out."));
    }
    Ok(Flash::success(
        Redirect::to("/account/sessions"),
        "That session has been signed out.",
    ))
}

/// Signs out every session but this one.
#[rocket::post("/account/sessions/revoke-others", data = "<_form>")]
async fn revoke_other_devices(
    user: CurrentUser,
    _form: CsrfForm,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<Flash<Redirect>, Error> {
    let n = sessions
        .end_all_for_user(&user.id, Some(&user.session_id))
        .await?;
    record_revoked(audit, &user, &peer, &format!("{n} other session(s)")).await;
    Ok(Flash::success(
        Redirect::to("/account/sessions"),
        format!("Signed out {n} other session(s)."),
    ))
}

/// Signs out every session, this one included.
#[rocket::post("/account/logout-everywhere", data = "<_form>")]
async fn logout_everywhere(
    user: CurrentUser,
    _form: CsrfForm,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    jar: &CookieJar<'_>,
    peer: Peer,
) -> Result<Flash<Redirect>, Error> {
    let n = sessions.end_all_for_user(&user.id, None).await?;
    sessions.clear_cookie(jar);
    record_revoked(audit, &user, &peer, &format!("{n} session(s), everywhere")).await;
    Ok(Flash::success(
        Redirect::to("/"),
        "You have been signed out everywhere.",
    ))
}

async fn record_revoked(audit: &Audit, user: &CurrentUser, peer: &Peer, detail: &str) {
    let who = Who::user(&user.id, &user.username);
    audit
        .record(
            Event::new(AuditKind::SessionsRevoked, peer)
                .by_self(who)
                .detail(detail),
        )
        .await;
}
