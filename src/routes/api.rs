//! The JSON API for programs: tokens for credentials, who am I, sign out, and the user list for
//! admins. Same users, roles, sessions, lockout and revocation as the HTML side.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use serde_json::{json, Value};

use crate::auth::csrf::ApiCsrf;
use crate::auth::signin::{SignIn, Verdict};
use crate::auth::{Admin, CurrentUser, Sessions};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::json::{ApiError, ApiQuery, Bounds, JsonObject};
use crate::models::{ApiKey, AuditKind, KeyScope, User};
use crate::peer::Peer;
use crate::view::format_time;

/// Users per page of `GET /api/admin/users`.
const PER_PAGE: i64 = 25;
/// Bounds of `GET /api/admin/users` and `POST /api/token` fields, as `openapi.json` states them.
const MAX_PAGE: i64 = 1_000_000_000;
const MAX_QUERY_CHARS: usize = 100;
const LOGIN: Bounds = Bounds {
    max_chars: 254,
    blank_ok: false,
};
const PASSWORD: Bounds = Bounds {
    max_chars: crate::validation::PASSWORD_MAX_CHARS,
    blank_ok: true,
};
const OTP: Bounds = Bounds {
    max_chars: 64,
    blank_ok: false,
};
const API_KEY: Bounds = Bounds {
    max_chars: 128,
    blank_ok: false,
};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![token, me, logout, admin_users, openapi]
}

/// The API's description, kept true by `tests/app/openapi.rs`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`: the OpenAPI 3 description of this API.
#[rocket::get("/api/openapi.json")]
fn openapi() -> (rocket::http::ContentType, &'static str) {
    (rocket::http::ContentType::JSON, OPENAPI)
}

/// What an endpoint answers: JSON, or a JSON error.
type ApiResult = Result<Json<Value>, ApiError>;

fn internal(e: Error) -> ApiError {
    let status = e.status();
    log::error!("API request failed: {e}");
    if status == Status::ServiceUnavailable {
        ApiError::new(
            status,
            "unavailable",
            "The service is temporarily unavailable. Try again shortly.",
        )
    } else {
        ApiError::new(
            Status::InternalServerError,
            "server_error",
            "Something went wrong on our side.",
        )
    }
}

/// `POST /api/token` with `{"username", "password"}` (username or email), or `{"api_key"}`:
/// a Bearer token (at most 15 minutes; a key's token has the key's scope).
#[rocket::post("/api/token", data = "<body>")]
async fn token(
    body: Result<JsonObject, ApiError>,
    signin: SignIn<'_>,
    db: &State<Db>,
) -> ApiResult {
    let body = body?;
    if body.has("api_key") {
        return token_for_key(body.text("api_key", API_KEY)?, &signin, db).await;
    }
    let login = body.text("username", LOGIN)?.trim().to_string();
    let password = body.text("password", PASSWORD)?.to_string();
    if body.has("otp") {
        body.text("otp", OTP)?;
    }
    let (user, two_factor) = match signin.check(&login, password).await.map_err(internal)? {
        Verdict::Accepted(user) | Verdict::Verified(user) => (user, false),
        Verdict::SecondFactor(user) => {
            if !body.has("otp") {
                return Err(ApiError::new(
                    Status::Unauthorized,
                    "two_factor_required",
                    "This account uses two-factor sign-in: send the current code from the \
                     authenticator app, or a recovery code, as \"otp\".",
                ));
            }
            let otp = body.string("otp")?;
            match signin
                .check_second_factor(&user.id, otp)
                .await
                .map_err(internal)?
            {
                Verdict::Verified(user) => (user, true),
                Verdict::Accepted(user) => (user, false),
                Verdict::Invalid | Verdict::SecondFactor(_) => {
                    return Err(ApiError::new(
                        Status::Unauthorized,
                        "invalid_grant",
                        "The two-factor code is not right, or was already used.",
                    ))
                }
                other => return Err(refused(other)),
            }
        }
        other => return Err(refused(other)),
    };
    let how = if two_factor { "api, two-factor" } else { "api" };
    issue(&signin, &user, false, two_factor, how).await
}

/// The answer to a sign-in that did not succeed.
fn refused(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::Disabled => ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "This account has been disabled.",
        ),
        Verdict::Locked(wait) => {
            ApiError::too_many(wait, "Too many failed sign-ins. Try again later.")
        }
        Verdict::Throttled(wait) => ApiError::too_many(
            wait,
            "Too many attempts from your network. Try again later.",
        ),
        Verdict::Invalid
        | Verdict::Accepted(_)
        | Verdict::Verified(_)
        | Verdict::SecondFactor(_) => ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "Invalid username or password.",
        ),
    }
}

async fn issue(
    signin: &SignIn<'_>,
    user: &User,
    read_only: bool,
    two_factor: bool,
    how: &str,
) -> ApiResult {
    let peer = &signin.peer;
    let (token, claims) = signin
        .sessions()
        .start_api(user, read_only, two_factor, &peer.user_agent, peer.ip)
        .await
        .map_err(internal)?;
    signin.record_success(user, how).await;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
        "user_id": user.id,
    })))
}

/// Exchanges an API key (not revoked, not expired, owner enabled) for a token of its scope.
async fn token_for_key(secret: &str, signin: &SignIn<'_>, db: &Db) -> ApiResult {
    if let Err(wait) = signin.throttle_login() {
        return Err(ApiError::too_many(
            wait,
            "Too many attempts from your network. Try again later.",
        ));
    }
    let (secret, now) = (
        secret.trim().to_string(),
        signin.sessions().clock().db_now(),
    );
    let found = db
        .run(move |conn| {
            let Some(key) = ApiKey::redeem(conn, &secret, now)? else {
                return Ok(None);
            };
            Ok(User::find(conn, &key.user_id)?
                .filter(|u| !u.disabled)
                .map(|u| (key, u)))
        })
        .await
        .map_err(internal)?;
    let Some((key, user)) = found else {
        signin
            .audit()
            .record(Event::new(AuditKind::LoginFailed, &signin.peer).detail("bad_api_key"))
            .await;
        return Err(ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "Invalid, expired or revoked API key.",
        ));
    };
    let how = format!("api key {} ({})", key.prefix, key.scope);
    issue(signin, &user, key.scope() == KeyScope::Read, false, &how).await
}

/// `GET /api/me`: the signed-in user, from the verified token alone (no database read).
#[rocket::get("/api/me")]
fn me(user: CurrentUser) -> ApiResult {
    Ok(Json(json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role.as_str(),
        "session_expires_at": format_rfc3339(user.session_expires_at),
    })))
}

fn format_rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format_time(t))
}

/// `POST /api/logout`: revokes the token's session on every instance.
#[rocket::post("/api/logout")]
async fn logout(
    user: CurrentUser,
    _csrf: ApiCsrf,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    peer: Peer,
) -> ApiResult {
    sessions
        .end(&user.session_id, Some(&user.id))
        .await
        .map_err(internal)?;
    audit
        .record(
            Event::new(AuditKind::Logout, &peer)
                .by_self(Who::user(&user.id, &user.username))
                .detail("api"),
        )
        .await;
    Ok(Json(json!({ "signed_out": true })))
}

/// `GET /api/admin/users?q=&page=`: users, 25 a page (admins only).
#[rocket::get("/api/admin/users")]
async fn admin_users(_admin: Admin, query: ApiQuery<'_>, db: &State<Db>) -> ApiResult {
    let q = query.text("q", MAX_QUERY_CHARS)?.trim().to_string();
    let page = query.page("page", MAX_PAGE)?;
    let found = db
        .run(move |conn| User::search(conn, &q, page, PER_PAGE))
        .await
        .map_err(internal)?;
    let users: Vec<Value> = found
        .users
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "role": u.role().as_str(),
                "disabled": u.disabled,
                "created_at": format_rfc3339(u.created_at.assume_utc()),
                "last_login_at": u.last_login_at.map(|t| format_rfc3339(t.assume_utc())),
            })
        })
        .collect();
    Ok(Json(json!({
        "users": users,
        "page": page,
        "per_page": PER_PAGE,
        "total": found.total,
    })))
}
