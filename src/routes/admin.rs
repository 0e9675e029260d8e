//! The admin panel: find users, change roles, disable and enable accounts, end sessions, clear
//! lockouts, and read the audit log.

use rocket::http::{ContentType, Header};
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::json;
use time::macros::format_description;
use time::{Date, PrimitiveDateTime, Time};

use super::account::session_view;
use super::api_keys::key_view;
use crate::auth::next::safe_next;
use crate::auth::{Admin, CsrfForm, CsrfToken, Sessions};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{
    ApiKey, AuditEvent, AuditFilter, AuditKind, LoginAttempt, Role, TwoFactor, User,
};
use crate::peer::Peer;
use crate::view::{format_db_time, page, percent_encode, Page};

/// Users (and audit events) shown per page.
pub const PER_PAGE: i64 = 25;
/// Longest search string used.
const MAX_QUERY_CHARS: usize = 100;
/// Most rows in one CSV download.
const CSV_MAX_ROWS: i64 = 50_000;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
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
        audit_log,
        audit_csv
    ]
}

/// Where to return after an admin action: the admin page the form was on (from `Referer`,
/// local `/admin…` paths only), else the user list.
pub struct ReturnTo(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ReturnTo {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let host = req.headers().get_one("Host").unwrap_or("");
        let path = req.headers().get_one("Referer").and_then(|referer| {
            let (_, rest) = referer.split_once("://")?;
            let (authority, path) = rest.split_at(rest.find('/')?);
            (authority.eq_ignore_ascii_case(host)).then_some(path)
        });
        let target = path
            .and_then(safe_next)
            .filter(|p| p == "/admin" || p.starts_with("/admin?") || p.starts_with("/admin/users/"))
            .unwrap_or_else(|| "/admin".to_string());
        Outcome::Success(ReturnTo(target))
    }
}

/// The user list with search and pagination.
#[rocket::get("/admin?<q>&<page>")]
async fn users(
    admin: Admin,
    q: Option<&str>,
    page: Option<i64>,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
) -> Result<Page, Error> {
    let q: String = q
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let requested = page.unwrap_or(1).clamp(1, i64::MAX / PER_PAGE);
    let found = db
        .run({
            let q = q.clone();
            move |conn| User::search(conn, &q, requested, PER_PAGE)
        })
        .await?;
    let pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let users: Vec<_> = found
        .users
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "role": u.role().as_str(),
                "disabled": u.disabled,
                "created_at": format_db_time(u.created_at),
                "last_login_at": u.last_login_at.map(format_db_time).unwrap_or_default(),
                "is_self": u.id == admin.0.id,
            })
        })
        .collect();
    let base_query = if q.is_empty() {
        String::new()
    } else {
        format!("q={}&", percent_encode(&q, b""))
    };
    Ok(crate::view::page(
        "admin/users",
        "Admin panel",
        Some(&admin.0),
        flash,
        &csrf,
        json!({
            "users": users,
            "q": q,
            "page": requested,
            "pages": pages,
            "total": found.total,
            "base_query": base_query,
        }),
    ))
}

/// One user: details, lockout, sessions.
#[rocket::get("/admin/users/<id>")]
async fn user_detail(
    admin: Admin,
    id: &str,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
    sessions: &State<Sessions>,
) -> Result<Page, Error> {
    let now = sessions.clock().db_now();
    let id = id.to_string();
    let (user, attempts, keys, two_factor) = db
        .run(move |conn| {
            let user = User::find(conn, &id)?.ok_or(Error::NotFound)?;
            let attempts = LoginAttempt::find(conn, &LoginAttempt::key_for_user(&user.id))?;
            let keys = ApiKey::for_user(conn, &user.id)?;
            let two_factor = TwoFactor::enabled(conn, &user.id)?;
            Ok((user, attempts, keys, two_factor))
        })
        .await?;
    let list = sessions.list_for_user(&user.id).await?;
    let locked_until = attempts
        .as_ref()
        .and_then(|a| a.locked_until)
        .filter(|until| *until > now)
        .map(format_db_time)
        .unwrap_or_default();
    Ok(page(
        "admin/user",
        &format!("User {}", user.username),
        Some(&admin.0),
        flash,
        &csrf,
        json!({
            "subject": {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "role": user.role().as_str(),
                "disabled": user.disabled,
                "created_at": format_db_time(user.created_at),
                "last_login_at": user.last_login_at.map(format_db_time).unwrap_or_default(),
                "locked_until": locked_until,
                "failed_logins": attempts.map_or(0, |a| a.failures),
                "two_factor_since": two_factor
                    .and_then(|t| t.enabled_at)
                    .map(format_db_time)
                    .unwrap_or_default(),
            },
            "sessions": list.iter().map(|s| session_view(s, None)).collect::<Vec<_>>(),
            "api_keys": keys.iter().map(|k| key_view(k, now)).collect::<Vec<_>>(),
        }),
    ))
}

fn back(to: &ReturnTo, result: Result<String, String>) -> Flash<Redirect> {
    match result {
        Ok(message) => Flash::success(Redirect::to(to.0.clone()), message),
        Err(message) => Flash::error(Redirect::to(to.0.clone()), message),
    }
}

/// Maps the outcome of an admin change to the message shown on the panel.
fn explain(result: Result<User, Error>) -> Result<Result<User, String>, Error> {
    match result {
        Ok(user) => Ok(Ok(user)),
        Err(Error::LastAdmin) => Ok(Err(
            "That would leave no active administrator. Make someone else an admin first.".into(),
        )),
        Err(Error::NotFound) => Ok(Err("That user no longer exists.".into())),
        Err(e) => Err(e),
    }
}

/// Everything an admin action needs, as one request guard: the admin (403 for anyone else),
/// the services that end sessions and record events, the client, and where to go back to.
pub struct AdminAction<'r> {
    admin: Admin,
    sessions: &'r Sessions,
    audit: &'r Audit,
    db: &'r Db,
    peer: Peer,
    to: ReturnTo,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminAction<'r> {
    type Error = crate::auth::guards::AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let admin = rocket::outcome::try_outcome!(req.guard::<Admin>().await);
        let rocket = req.rocket();
        let (Some(sessions), Some(audit), Some(db)) = (
            rocket.state::<Sessions>(),
            rocket.state::<Audit>(),
            rocket.state::<Db>(),
        ) else {
            return Outcome::Error((
                rocket::http::Status::InternalServerError,
                crate::auth::guards::AuthFailure::Unavailable,
            ));
        };
        let to = match req.guard::<ReturnTo>().await {
            Outcome::Success(to) => to,
            _ => ReturnTo("/admin".to_string()),
        };
        Outcome::Success(AdminAction {
            admin,
            sessions,
            audit,
            db,
            peer: Peer::of(req),
            to,
        })
    }
}

impl AdminAction<'_> {
    async fn record(&self, kind: AuditKind, user: &User, detail: Option<String>) {
        let mut event = Event::new(kind, &self.peer)
            .actor(Who::user(&self.admin.0.id, &self.admin.0.username))
            .subject(Who::user(&user.id, &user.username));
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        self.audit.record(event).await;
    }

    /// Ends all of `user`'s sessions (on every instance within a second) and records it.
    async fn end_sessions(&self, user: &User, why: &str) -> Result<usize, Error> {
        let n = self.sessions.end_all_for_user(&user.id, None).await?;
        if n > 0 {
            self.record(
                AuditKind::SessionsRevoked,
                user,
                Some(format!("{n} session(s), {why}")),
            )
            .await;
        }
        Ok(n)
    }

    /// Back to the page the form was on, with a message.
    fn back(&self, result: Result<String, String>) -> Flash<Redirect> {
        back(&self.to, result)
    }

    async fn find_user(&self, id: &str) -> Result<Option<User>, Error> {
        let id = id.to_string();
        self.db.run(move |conn| User::find(conn, &id)).await
    }
}

/// Sets a user's role to `user` or `admin`; their sessions end, so the change applies at once.
#[rocket::post("/admin/users/<id>/role", data = "<form>")]
async fn change_role(
    ctx: AdminAction<'_>,
    id: &str,
    form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    let Some(role) = Role::parse(form.get("role")) else {
        return Ok(ctx.back(Err("Choose a role: user or admin.".into())));
    };
    let id = id.to_string();
    let user = match explain(
        ctx.db
            .run(move |conn| User::set_role(conn, &id, role))
            .await,
    )? {
        Ok(user) => user,
        Err(message) => return Ok(ctx.back(Err(message))),
    };
    ctx.record(
        AuditKind::RoleChanged,
        &user,
        Some(role.as_str().to_string()),
    )
    .await;
    ctx.end_sessions(&user, "role changed").await?;
    let what = if role == Role::Admin {
        "an admin"
    } else {
        "a user"
    };
    if user.id == ctx.admin.0.id {
        return Ok(Flash::success(
            Redirect::to("/login"),
            format!("You are now {what}. Please sign in again."),
        ));
    }
    Ok(ctx.back(Ok(format!("{} is now {what}.", user.username))))
}

async fn set_disabled(
    ctx: AdminAction<'_>,
    id: &str,
    disabled: bool,
) -> Result<Flash<Redirect>, Error> {
    if disabled && id == ctx.admin.0.id {
        return Ok(ctx.back(Err("You cannot disable your own account.".into())));
    }
    let id = id.to_string();
    let user = match explain(
        ctx.db
            .run(move |conn| User::set_disabled(conn, &id, disabled))
            .await,
    )? {
        Ok(user) => user,
        Err(message) => return Ok(ctx.back(Err(message))),
    };
    let kind = if disabled {
        AuditKind::UserDisabled
    } else {
        AuditKind::UserEnabled
    };
    ctx.record(kind, &user, None).await;
    if disabled {
        ctx.end_sessions(&user, "account disabled").await?;
    }
    let state = if disabled { "disabled" } else { "enabled" };
    Ok(ctx.back(Ok(format!("{} is now {state}.", user.username))))
}

/// Disables an account: it can no longer sign in, and its sessions end.
#[rocket::post("/admin/users/<id>/disable", data = "<_form>")]
async fn disable(
    ctx: AdminAction<'_>,
    id: &str,
    _form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    set_disabled(ctx, id, true).await
}

/// Re-enables a disabled account.
#[rocket::post("/admin/users/<id>/enable", data = "<_form>")]
async fn enable(ctx: AdminAction<'_>, id: &str, _form: CsrfForm) -> Result<Flash<Redirect>, Error> {
    set_disabled(ctx, id, false).await
}

/// Clears a lockout and the failure count.
#[rocket::post("/admin/users/<id>/unlock", data = "<_form>")]
async fn unlock(ctx: AdminAction<'_>, id: &str, _form: CsrfForm) -> Result<Flash<Redirect>, Error> {
    let Some(user) = ctx.find_user(id).await? else {
        return Ok(ctx.back(Err("That user no longer exists.".into())));
    };
    let key = LoginAttempt::key_for_user(&user.id);
    ctx.db
        .run(move |conn| LoginAttempt::clear(conn, &key))
        .await?;
    ctx.record(AuditKind::UserUnlocked, &user, None).await;
    Ok(ctx.back(Ok(format!("{} can sign in again.", user.username))))
}

/// Turns off a user's two-factor sign-in (a lost phone and no recovery codes) and ends their
/// sessions; their password alone signs them in afterwards.
#[rocket::post("/admin/users/<id>/two-factor/reset", data = "<_form>")]
async fn reset_two_factor(
    ctx: AdminAction<'_>,
    id: &str,
    _form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    let Some(user) = ctx.find_user(id).await? else {
        return Ok(ctx.back(Err("That user no longer exists.".into())));
    };
    let uid = user.id.clone();
    if !ctx
        .db
        .run(move |conn| TwoFactor::remove(conn, &uid))
        .await?
    {
        return Ok(ctx.back(Err(format!(
            "{} does not use two-factor sign-in.",
            user.username
        ))));
    }
    ctx.record(
        AuditKind::TwoFactorDisabled,
        &user,
        Some("reset by an administrator".into()),
    )
    .await;
    ctx.end_sessions(&user, "two-factor reset").await?;
    Ok(ctx.back(Ok(format!(
        "Two-factor sign-in is off for {}; their password alone signs them in now.",
        user.username
    ))))
}

/// Ends every session of a user.
#[rocket::post("/admin/users/<id>/sessions/revoke", data = "<_form>")]
async fn revoke_sessions(
    ctx: AdminAction<'_>,
    id: &str,
    _form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    let Some(user) = ctx.find_user(id).await? else {
        return Ok(ctx.back(Err("That user no longer exists.".into())));
    };
    let n = ctx.end_sessions(&user, "by an administrator").await?;
    Ok(ctx.back(Ok(format!("Ended {n} session(s) of {}.", user.username))))
}

/// Ends one session of a user.
#[rocket::post("/admin/users/<id>/sessions/<sid>/revoke", data = "<_form>")]
async fn revoke_session(
    ctx: AdminAction<'_>,
    id: &str,
    sid: &str,
    _form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    let Some(user) = ctx.find_user(id).await? else {
        return Ok(ctx.back(Err("That user no longer exists.".into())));
    };
    if !ctx.sessions.end(sid, Some(&user.id)).await? {
        return Ok(ctx.back(Err("That session has already ended.".into())));
    }
    ctx.record(
        AuditKind::SessionsRevoked,
        &user,
        Some("1 session, by an administrator".into()),
    )
    .await;
    Ok(ctx.back(Ok(format!("Ended a session of {}.", user.username))))
}

/// Revokes one of a user's API keys.
#[rocket::post("/admin/users/<id>/api-keys/<key_id>/revoke", data = "<_form>")]
async fn revoke_api_key(
    ctx: AdminAction<'_>,
    id: &str,
    key_id: &str,
    _form: CsrfForm,
) -> Result<Flash<Redirect>, Error> {
    let Some(user) = ctx.find_user(id).await? else {
        return Ok(ctx.back(Err("That user no longer exists.".into())));
    };
    let (key_id, uid, now) = (
        key_id.to_string(),
        user.id.clone(),
        ctx.sessions.clock().db_now(),
    );
    let Some(key) = ctx
        .db
        .run(move |conn| ApiKey::revoke(conn, &key_id, &uid, now))
        .await?
    else {
        return Ok(ctx.back(Err("That key is already revoked.".into())));
    };
    ctx.record(
        AuditKind::ApiKeyRevoked,
        &user,
        Some(format!("{} {}", key.prefix, key.name)),
    )
    .await;
    Ok(ctx.back(Ok(format!(
        "Revoked the key \"{}\" of {}.",
        key.name, user.username
    ))))
}

/// The audit log's filters, as submitted and as applied.
struct AuditQuery {
    filter: AuditFilter,
    shown: serde_json::Value,
    base_query: String,
}

fn parse_day(s: Option<&str>) -> Option<Date> {
    let s = s?.trim();
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

async fn audit_query(
    db: &Db,
    user: Option<&str>,
    kind: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<AuditQuery, Error> {
    let user: String = user
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let kind = kind.and_then(AuditKind::parse);
    let (from, to) = (parse_day(from), parse_day(to));
    // Filter by the exact stored username when the name matches an account.
    let user_exact = if user.is_empty() {
        None
    } else {
        let typed = user.clone();
        Some(
            db.run(move |conn| Ok(User::find_by_login(conn, &typed)?.map(|u| u.username)))
                .await?
                .unwrap_or(user.clone()),
        )
    };
    let filter = AuditFilter {
        user: user_exact,
        kind: kind.map(|k| k.as_str().to_string()),
        from: from.map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT)),
        to: to
            .and_then(|d| d.next_day())
            .map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT)),
    };
    let day = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let mut base_query = String::new();
    for (key, value) in [
        ("user", user.clone()),
        (
            "kind",
            kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        ),
        ("from", day(from)),
        ("to", day(to)),
    ] {
        if !value.is_empty() {
            base_query.push_str(&format!("{key}={}&", percent_encode(&value, b"")));
        }
    }
    Ok(AuditQuery {
        filter,
        shown: json!({
            "user": user,
            "kind": kind.map(|k| k.as_str()).unwrap_or(""),
            "from": day(from),
            "to": day(to),
        }),
        base_query,
    })
}

/// The audit log, newest first, filtered by user, kind and date range.
#[rocket::get("/admin/audit?<user>&<kind>&<from>&<to>&<page>")]
#[allow(clippy::too_many_arguments)]
async fn audit_log(
    admin: Admin,
    user: Option<&str>,
    kind: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    page: Option<i64>,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
) -> Result<Page, Error> {
    let query = audit_query(db, user, kind, from, to).await?;
    let requested = page.unwrap_or(1).clamp(1, i64::MAX / PER_PAGE);
    let filter = query.filter.clone();
    let (events, total) = db
        .run(move |conn| AuditEvent::search(conn, &filter, requested, PER_PAGE))
        .await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "at": format_db_time(e.at),
                "kind": e.kind,
                "actor": e.actor.clone().unwrap_or_default(),
                "subject": e.subject.clone().unwrap_or_default(),
                "ip": e.ip.clone().unwrap_or_default(),
                "user_agent": e.user_agent.clone().unwrap_or_default(),
                "detail": e.detail.clone().unwrap_or_default(),
            })
        })
        .collect();
    let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
    Ok(crate::view::page(
        "admin/audit",
        "Audit log",
        Some(&admin.0),
        flash,
        &csrf,
        json!({
            "events": events,
            "kinds": kinds,
            "filters": query.shown,
            "page": requested,
            "pages": pages,
            "total": total,
            "base_query": query.base_query,
        }),
    ))
}

/// The audit log as CSV (same filters), for spreadsheets and archives.
#[derive(rocket::Responder)]
pub struct CsvDownload {
    body: String,
    content_type: ContentType,
    disposition: Header<'static>,
}

/// Quotes a CSV cell and defuses spreadsheet formulas (`=`, `+`, `-`, `@` at the start).
fn csv_cell(s: &str) -> String {
    let defused = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// `GET /admin/audit.csv` with the page's filters.
#[rocket::get("/admin/audit.csv?<user>&<kind>&<from>&<to>")]
async fn audit_csv(
    _admin: Admin,
    user: Option<&str>,
    kind: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    db: &State<Db>,
) -> Result<CsvDownload, Error> {
    let query = audit_query(db, user, kind, from, to).await?;
    let filter = query.filter;
    let events = db
        .run(move |conn| AuditEvent::export(conn, &filter, CSV_MAX_ROWS))
        .await?;
    let mut body = String::from("time,kind,actor,subject,ip,user_agent,detail\r\n");
    for e in &events {
        let at =
            e.at.assume_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
        let cells = [
            at.as_str(),
            e.kind.as_str(),
            e.actor.as_deref().unwrap_or(""),
            e.subject.as_deref().unwrap_or(""),
            e.ip.as_deref().unwrap_or(""),
            e.user_agent.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or(""),
        ];
        body.push_str(&cells.map(csv_cell).join(","));
        body.push_str("\r\n");
    }
    Ok(CsvDownload {
        body,
        content_type: ContentType::new("text", "csv").with_params(("charset", "utf-8")),
        disposition: Header::new(
            "Content-Disposition",
            "attachment; filename=\"latchkey-audit.csv\"",
        ),
    })
}
