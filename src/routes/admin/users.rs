//! The user list and one user's page, and what an admin can do to a user: change the role,
//! disable and enable, clear a lockout, reset two-factor, end sessions, revoke API keys, hand
//! out a one-time password reset link, delete the account.

use rocket::form::{self, FromFormField, ValueField};
use serde::Serialize;
use serde_json::json;

use super::action::{AdminAction, Ending, Record};
use super::query_text;
use crate::auth::{Admin, CsrfForm, CsrfOnly};
use crate::config::Notice;
use crate::error::Error;
use crate::mail::Letter;
use crate::models::{
    AccountToken, ApiKey, AuditKind, DeletedBy, LoginAttempt, Passkey, Role, TokenFor,
    TokenPurpose, TwoFactor, User,
};
use crate::routes::services::Services;
use crate::text::{format_db_time, percent_encode};
use crate::view::{
    FormOutcome, KeyView, Page, PageContext, Pagination, PasskeyView, SessionView, UserView,
};

/// Routes of this module.
pub(super) fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        users,
        user_detail,
        change_role,
        disable,
        enable,
        unlock,
        reset_two_factor,
        revoke_sessions,
        revoke_session,
        revoke_api_key,
        remove_passkey,
        create_reset_link,
        delete_user,
    ]
}

/// A row of the user list.
#[derive(Serialize)]
struct ListedUser {
    #[serde(flatten)]
    user: UserView,
    /// The admin looking at the list.
    is_self: bool,
}

/// The user list with search and pagination.
#[rocket::get("/admin?<q>&<page>")]
async fn users(
    admin: Admin,
    q: Option<&str>,
    page: Option<i64>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let q = query_text(q);
    let pagination = Pagination::new(page);
    let found = site
        .db
        .run({
            let q = q.clone();
            move |conn| User::search(conn, &q, pagination.page, pagination.per_page)
        })
        .await?;
    let users: Vec<_> = found
        .users
        .iter()
        .map(|u| ListedUser {
            user: UserView::of(u),
            is_self: u.id == admin.0.id,
        })
        .collect();
    let base_query = if q.is_empty() {
        String::new()
    } else {
        format!("q={}&", percent_encode(&q, b""))
    };
    Ok(ctx.page(
        "admin/users",
        "Admin panel",
        json!({
            "users": users,
            "q": q,
            "page": pagination.page,
            "pages": pagination.pages(found.total),
            "total": found.total,
            "base_query": base_query,
        }),
    ))
}

/// One user on their admin page: the profile, lockout and two-factor state.
#[derive(Serialize)]
struct UserDetail {
    #[serde(flatten)]
    user: UserView,
    locked_until: String,
    failed_logins: i32,
    two_factor_since: String,
}

/// One user: details, lockout, sessions, API keys.
#[rocket::get("/admin/users/<id>")]
async fn user_detail(
    admin: Admin,
    id: &str,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Page, Error> {
    let now = site.now();
    let id = id.to_string();
    let (user, attempts, keys, two_factor, passkeys) = site
        .db
        .run(move |conn| {
            let user = User::find(conn, &id)?.ok_or(Error::NotFound)?;
            let attempts = LoginAttempt::find(conn, &LoginAttempt::key_for_user(&user.id))?;
            let keys = ApiKey::for_user(conn, &user.id)?;
            let two_factor = TwoFactor::enabled(conn, &user.id)?;
            let passkeys = Passkey::for_user(conn, &user.id)?;
            Ok((user, attempts, keys, two_factor, passkeys))
        })
        .await?;
    let sessions = site.sessions.list_for_user(&user.id).await?;
    let subject = UserDetail {
        user: UserView::of(&user),
        locked_until: attempts
            .as_ref()
            .and_then(|a| a.locked_until)
            .filter(|until| *until > now)
            .map(format_db_time)
            .unwrap_or_default(),
        failed_logins: attempts.map_or(0, |a| a.failures),
        two_factor_since: two_factor
            .and_then(|t| t.enabled_at)
            .map(format_db_time)
            .unwrap_or_default(),
    };
    Ok(ctx.page(
        "admin/user",
        &format!("User {}", user.username),
        json!({
            "subject": subject,
            "is_self": admin.0.id == user.id,
            "sessions": sessions.iter().map(|s| SessionView::of(s, None)).collect::<Vec<_>>(),
            "api_keys": keys.iter().map(|k| KeyView::of(k, now)).collect::<Vec<_>>(),
            "passkeys": passkeys.iter().map(PasskeyView::of).collect::<Vec<_>>(),
        }),
    ))
}

/// The role form: `user` or `admin`.
#[derive(Debug, rocket::FromForm)]
struct RoleChange {
    role: RoleField,
}

#[derive(Debug)]
struct RoleField(Role);

impl<'v> FromFormField<'v> for RoleField {
    fn from_value(field: ValueField<'v>) -> form::Result<'v, Self> {
        Role::parse(field.value)
            .map(RoleField)
            .ok_or_else(|| form::Error::validation("Choose a role: user or admin.").into())
    }
}

/// Sets a user's role to `user` or `admin`; their sessions end in the same transaction, so the
/// change applies at once.
#[rocket::post("/admin/users/<id>/role", data = "<form>")]
async fn change_role(
    action: AdminAction<'_>,
    id: &str,
    form: CsrfForm<'_, RoleChange>,
) -> Result<FormOutcome, Error> {
    let Ok(RoleChange {
        role: RoleField(role),
    }) = form.parsed()
    else {
        return Ok(action.refused("Choose a role: user or admin."));
    };
    let changed = action
        .change(
            id,
            move |conn, id, now| {
                let user = User::set_role(conn, id, role, now)?;
                Ok((
                    user,
                    Record::new(AuditKind::RoleChanged, Some(role.as_str())),
                ))
            },
            Ending::Sessions("role changed"),
        )
        .await;
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) => return action.explain(e),
    };
    let what = if role == Role::Admin {
        "an admin"
    } else {
        "a user"
    };
    if changed.id == action.admin.0.id {
        return Ok(FormOutcome::success(
            "/login",
            format!("You are now {what}. Please sign in again."),
        ));
    }
    Ok(action.done(format!("{} is now {what}.", changed.username)))
}

/// Disables or enables an account; disabling ends its sessions in the same transaction.
async fn set_disabled(
    action: AdminAction<'_>,
    id: &str,
    disabled: bool,
) -> Result<FormOutcome, Error> {
    if disabled && id == action.admin.0.id {
        return Ok(action.refused("You cannot disable your own account."));
    }
    let kind = if disabled {
        AuditKind::UserDisabled
    } else {
        AuditKind::UserEnabled
    };
    let changed = action
        .change(
            id,
            move |conn, id, now| {
                let user = User::set_disabled(conn, id, disabled, now)?;
                Ok((user, Record::new(kind, None)))
            },
            match disabled {
                true => Ending::SessionsAndKeys("account disabled"),
                false => Ending::Nothing,
            },
        )
        .await;
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) => return action.explain(e),
    };
    let state = if disabled { "disabled" } else { "enabled" };
    Ok(action.done(format!("{} is now {state}.", changed.username)))
}

/// Disables an account: it can no longer sign in, and its sessions end.
#[rocket::post("/admin/users/<id>/disable", data = "<_form>")]
async fn disable(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    set_disabled(action, id, true).await
}

/// Re-enables a disabled account.
#[rocket::post("/admin/users/<id>/enable", data = "<_form>")]
async fn enable(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    set_disabled(action, id, false).await
}

/// Clears a lockout and the failure count.
#[rocket::post("/admin/users/<id>/unlock", data = "<_form>")]
async fn unlock(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    let key = LoginAttempt::key_for_user(&user.id);
    action
        .site
        .db
        .run(move |conn| LoginAttempt::clear(conn, &key))
        .await?;
    action
        .record(&user, Record::new(AuditKind::UserUnlocked, None))
        .await;
    Ok(action.done(format!("{} can sign in again.", user.username)))
}

/// Turns off a user's two-factor sign-in (a lost phone and no recovery codes) and ends their
/// sessions, in one transaction; their password alone signs them in afterwards.
#[rocket::post("/admin/users/<id>/two-factor/reset", data = "<_form>")]
async fn reset_two_factor(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let changed = action
        .change(
            id,
            |conn, id, _now| {
                let user = User::find(conn, id)?.ok_or(Error::NotFound)?;
                if !TwoFactor::remove(conn, id)? {
                    return Err(Error::Refused(format!(
                        "{} does not use two-factor sign-in.",
                        user.username
                    )));
                }
                let detail = Some("reset by an administrator");
                Ok((user, Record::new(AuditKind::TwoFactorDisabled, detail)))
            },
            Ending::SessionsAndKeys("two-factor reset"),
        )
        .await;
    if let Ok(changed) = &changed {
        let now = action.site.now();
        let letter = Letter::two_factor_changed(action.site.mail, changed, false, now);
        action
            .site
            .mail
            .notify(action.site.db, Notice::TwoFactorChanged, &letter, now)
            .await;
    }
    match changed {
        Ok(changed) => Ok(action.done(format!(
            "Two-factor sign-in is off for {}; their password alone signs them in now.",
            changed.username
        ))),
        Err(e) => action.explain(e),
    }
}

/// Ends every session of a user and revokes their API keys.
#[rocket::post("/admin/users/<id>/sessions/revoke", data = "<_form>")]
async fn revoke_sessions(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    let (n, keys) = action.end_everything(&user).await?;
    Ok(action.done(format!(
        "Ended {n} session(s) and revoked {keys} API key(s) of {}.",
        user.username
    )))
}

/// Ends one session of a user.
#[rocket::post("/admin/users/<id>/sessions/<sid>/revoke", data = "<_form>")]
async fn revoke_session(
    action: AdminAction<'_>,
    id: &str,
    sid: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    if !action.site.sessions.end(sid, Some(&user.id)).await? {
        return Ok(action.refused("That session has already ended."));
    }
    let detail = Some("1 session, by an administrator");
    action
        .record(&user, Record::new(AuditKind::SessionsRevoked, detail))
        .await;
    Ok(action.done(format!("Ended a session of {}.", user.username)))
}

/// Revokes one of a user's API keys.
#[rocket::post("/admin/users/<id>/api-keys/<key_id>/revoke", data = "<_form>")]
async fn revoke_api_key(
    action: AdminAction<'_>,
    id: &str,
    key_id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    let (key_id, uid, now) = (key_id.to_string(), user.id.clone(), action.site.now());
    let Some(key) = action
        .site
        .db
        .run(move |conn| ApiKey::revoke(conn, &key_id, &uid, now))
        .await?
    else {
        return Ok(action.refused("That key is already revoked."));
    };
    let detail = format!("{} {}", key.prefix, key.name);
    action
        .record(&user, Record::new(AuditKind::ApiKeyRevoked, Some(&detail)))
        .await;
    Ok(action.done(format!(
        "Revoked the key \"{}\" of {}.",
        key.name, user.username
    )))
}

/// Removes one of a user's passkeys (a lost or stolen device): it signs nobody in from this
/// moment, on every instance.
#[rocket::post("/admin/users/<id>/passkeys/<passkey_id>/remove", data = "<_form>")]
async fn remove_passkey(
    action: AdminAction<'_>,
    id: &str,
    passkey_id: &str,
    _form: CsrfOnly<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    let (passkey_id, uid) = (passkey_id.to_string(), user.id.clone());
    let Some(name) = action
        .site
        .db
        .run(move |conn| Passkey::remove(conn, &uid, &passkey_id))
        .await?
    else {
        return Ok(action.refused("That passkey was already removed."));
    };
    action
        .record(&user, Record::new(AuditKind::PasskeyRemoved, Some(&name)))
        .await;
    let now = action.site.now();
    let letter = Letter::passkey_changed(action.site.mail, &user, &name, false, now);
    action
        .site
        .mail
        .notify(action.site.db, Notice::PasskeysChanged, &letter, now)
        .await;
    Ok(action.done(format!(
        "Removed the passkey \"{name}\" of {}.",
        user.username
    )))
}

/// How long an admin's reset link works.
const ADMIN_RESET_HOURS: i64 = 24;

/// Makes a one-time password reset link for a user (24 hours; an older one of theirs stops
/// working) and shows it once, on a page of its own that is never cached. No mail is sent: the
/// admin hands the link over.
#[rocket::post("/admin/users/<id>/reset-link", data = "<_form>")]
async fn create_reset_link(
    action: AdminAction<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
    ctx: PageContext<'_>,
) -> Result<FormOutcome, Error> {
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    if user.disabled {
        return Ok(action.refused(format!(
            "{} is disabled: enable the account first, or the link will not work.",
            user.username
        )));
    }
    let now = action.site.now();
    let about = TokenFor {
        user_id: Some(user.id.clone()),
        created_by: Some(action.admin.0.id.clone()),
        ..TokenFor::default()
    };
    let ttl = time::Duration::hours(ADMIN_RESET_HOURS);
    let issued = AccountToken::issue(TokenPurpose::AdminReset, about, now, ttl);
    let row = issued.clone();
    action
        .site
        .db
        .run(move |conn| AccountToken::replace(conn, &row, TokenPurpose::AdminReset, now))
        .await?;
    let detail = format!("valid {ADMIN_RESET_HOURS} hours");
    action
        .record(
            &user,
            Record::new(AuditKind::ResetLinkCreated, Some(&detail)),
        )
        .await;
    let link = action
        .site
        .mail
        .link(&format!("/password/reset/{}", issued.raw));
    Ok(FormOutcome::Show(ctx.page(
        "admin/reset_link",
        &format!("Reset link for {}", user.username),
        json!({
            "subject": UserView::of(&user),
            "link": link,
            "expires_at": format_db_time(issued.row.expires_at),
            "hours": ADMIN_RESET_HOURS,
        }),
    )))
}

/// The confirmation of an admin's deletion: the username, typed.
#[derive(Debug, rocket::FromForm)]
struct DeleteConfirmation {
    #[field(default = String::new())]
    username: String,
}

/// Deletes a user's account, as its owner could (the same function underneath), once the admin
/// typed its username; refuses to delete the last active admin. An admin deletes their own
/// account from their account page, not here.
#[rocket::post("/admin/users/<id>/delete", data = "<form>")]
async fn delete_user(
    action: AdminAction<'_>,
    id: &str,
    form: CsrfForm<'_, DeleteConfirmation>,
) -> Result<FormOutcome, Error> {
    if id == action.admin.0.id {
        return Ok(action
            .refused("Delete your own account from your account page, not from the admin panel."));
    }
    let Some(user) = action.find_user(id).await? else {
        return Ok(action.refused("That user no longer exists."));
    };
    let typed = form.parsed().map(|c| c.username).unwrap_or_default();
    if !typed.trim().eq_ignore_ascii_case(&user.username) {
        return Ok(action.refused(format!(
            "To delete {}, type their username in the box beside the button.",
            user.username
        )));
    }
    let by = DeletedBy::Admin {
        id: action.admin.0.id.clone(),
        name: action.admin.0.username.clone(),
    };
    match crate::routes::deletion::delete_account(&action.site, &user.id, by).await {
        Ok(_) => Ok(FormOutcome::success(
            "/admin",
            format!("The account of {} has been deleted.", user.username),
        )),
        Err(e) => action.explain(e),
    }
}
