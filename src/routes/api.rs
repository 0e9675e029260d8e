//! The JSON API for programs: tokens for credentials, who am I, sign out, and the user list for
//! admins. Same users, roles, sessions, lockout and revocation as the HTML side.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::signin::{Delivery, FirstStep, Refused, SignIn};
use crate::auth::{check_csrf_header, Admin, AnyUser, CurrentUser};
use crate::auth::{Refresh, Started};
use crate::error::Error;
use crate::events::Who;
use crate::json::{ApiError, ApiQuery, Bounds, JsonObject};
use crate::models::{AuditKind, User};
use crate::routes::admin::action::AdminAction;
use crate::routes::services::Services;
use crate::text::format_time;
use crate::view::Pagination;

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
const REFRESH_TOKEN: Bounds = Bounds {
    max_chars: 128,
    blank_ok: false,
};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        token,
        refresh,
        me,
        logout,
        admin_users,
        admin_revoke_sessions,
        openapi
    ]
}

/// The API's description, kept true by `tests/app/openapi.rs`.
const OPENAPI: &str = include_str!("openapi.json");

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

/// `POST /api/token` with `{"username", "password"}` (username or email, plus `"otp"` when the
/// account uses two-factor), or `{"api_key"}`: a Bearer token (at most 15 minutes; a key's token
/// has the key's scope).
#[rocket::post("/api/token", data = "<body>")]
async fn token(body: Result<JsonObject, ApiError>, signin: SignIn<'_>) -> ApiResult {
    let body = body?;
    let verified = if body.has("api_key") {
        signin
            .api_key(body.text("api_key", API_KEY)?)
            .await
            .map_err(|refused| refused_answer(refused, "Invalid, expired or revoked API key."))?
    } else {
        let login = body.text("username", LOGIN)?.trim().to_string();
        let password = body.text("password", PASSWORD)?.to_string();
        if body.has("otp") {
            body.text("otp", OTP)?;
        }
        match signin.password(&login, password).await {
            Ok(FirstStep::SignedIn(verified)) => verified,
            Ok(FirstStep::SecondFactor(user)) => {
                if !body.has("otp") {
                    return Err(ApiError::new(
                        Status::Unauthorized,
                        "two_factor_required",
                        "This account uses two-factor sign-in: send the current code from the \
                         authenticator app, or a recovery code, as \"otp\".",
                    ));
                }
                signin
                    .second_factor(&user.id, body.string("otp")?)
                    .await
                    .map_err(|refused| {
                        refused_answer(
                            refused,
                            "The two-factor code is not right, or was already used.",
                        )
                    })?
            }
            Err(refused) => return Err(refused_answer(refused, "Invalid username or password.")),
        }
    };
    let started = signin
        .finish(&verified, Delivery::Bearer)
        .await
        .map_err(internal)?;
    Ok(token_answer(&started, &verified.user.id))
}

/// A token endpoint's answer: the access token, and the refresh token when the session has one
/// (RFC 6749 §5.1).
fn token_answer(started: &Started, user_id: &str) -> Json<Value> {
    let mut answer = json!({
        "access_token": started.token,
        "token_type": "Bearer",
        "expires_in": started.claims.exp - started.claims.iat,
        "user_id": user_id,
    });
    if let Some(refresh) = &started.refresh {
        answer["refresh_token"] = json!(refresh);
        answer["refresh_expires_in"] = json!(started.claims.sexp - started.claims.iat);
    }
    Json(answer)
}

/// `POST /api/token/refresh` with `{"refresh_token"}`: a new access token and a new refresh
/// token; the one sent is used up. A refresh token that was already used ends its session (someone
/// else holds a copy).
#[rocket::post("/api/token/refresh", data = "<body>")]
async fn refresh(body: Result<JsonObject, ApiError>, site: Services<'_>) -> ApiResult {
    let body = body?;
    let value = body.text("refresh_token", REFRESH_TOKEN)?;
    match site
        .sessions
        .refresh(value, &site.peer)
        .await
        .map_err(internal)?
    {
        Refresh::Rotated(started, user) => Ok(token_answer(&started, &user.id)),
        Refresh::Parallel(..) => Err(ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "This refresh token was replaced a moment ago: use the newer one.",
        )),
        Refresh::Reused => Err(ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "This refresh token was already used, so its session has been ended to protect \
                 the account. Sign in again.",
        )),
        Refresh::Stolen => Err(ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "This session was ended to protect the account. Sign in again.",
        )),
        Refresh::Invalid => Err(ApiError::new(
            Status::Unauthorized,
            "invalid_grant",
            "The refresh token is not valid, or its session has ended. Sign in again.",
        )),
    }
}

/// The answer to a sign-in step that did not let the client in; `invalid` says what was wrong
/// with the credential.
fn refused_answer(refused: Refused, invalid: &'static str) -> ApiError {
    match refused {
        Refused::Invalid => ApiError::new(Status::Unauthorized, "invalid_grant", invalid),
        Refused::TwoFactorUnavailable => ApiError::new(
            Status::Unauthorized,
            "two_factor_unavailable",
            crate::auth::two_factor::UNAVAILABLE,
        ),
        Refused::Locked(wait) => {
            ApiError::too_many(wait, "Too many failed sign-ins. Try again later.")
        }
        Refused::Throttled(wait) => ApiError::too_many(
            wait,
            "Too many attempts from your network. Try again later.",
        ),
        Refused::Failed(e) => internal(e),
    }
}

/// `GET /api/me`: the signed-in user. Tokens carry no personal data, so the email address is
/// read from the database.
#[rocket::get("/api/me")]
async fn me(user: CurrentUser, site: Services<'_>) -> ApiResult {
    let uid = user.id.clone();
    let row = site
        .db
        .run(move |conn| User::find(conn, &uid))
        .await
        .map_err(internal)?
        .filter(|row| !row.disabled)
        .ok_or_else(|| {
            ApiError::new(
                Status::Unauthorized,
                "invalid_token",
                "The access token names no account.",
            )
        })?;
    Ok(Json(json!({
        "id": user.id,
        "username": row.username,
        "email": row.email,
        "role": user.role.as_str(),
        "session_expires_at": format_rfc3339(user.session_expires_at),
    })))
}

fn format_rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format_time(t))
}

/// `POST /api/logout`: revokes the token's session on every instance (also for a user whose
/// address must be verified first).
#[rocket::post("/api/logout")]
async fn logout(user: AnyUser<'_>, _csrf: ApiCsrf, site: Services<'_>) -> ApiResult {
    let user = user.0;
    site.sessions
        .end(&user.session_id, Some(&user.id))
        .await
        .map_err(internal)?;
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::Logout, who, Some("api".into()))
        .await;
    Ok(Json(json!({ "signed_out": true })))
}

/// For `/api/*` requests that change state: passes Bearer requests (no ambient credential); a
/// cookie-authenticated request must send the page's CSRF token in `X-CSRF-Token`. A refusal is
/// answered by the catcher (JSON `{"error": "csrf"}` on a 403).
struct ApiCsrf;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiCsrf {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match check_csrf_header(req).await {
            Ok(()) => Outcome::Success(ApiCsrf),
            Err(status) => Outcome::Error((status, ())),
        }
    }
}

/// `GET /api/admin/users?q=&page=`: users, 25 a page (admins only).
#[rocket::get("/api/admin/users")]
async fn admin_users(_admin: Admin, query: ApiQuery<'_>, site: Services<'_>) -> ApiResult {
    let q = query.text("q", MAX_QUERY_CHARS)?.trim().to_string();
    let pagination = Pagination::new(Some(query.page("page", MAX_PAGE)?));
    let found = site
        .db
        .run(move |conn| User::search(conn, &q, pagination.page, pagination.per_page))
        .await
        .map_err(internal)?;
    let users: Vec<ApiUser> = found.users.iter().map(ApiUser::of).collect();
    Ok(Json(json!({
        "users": users,
        "page": pagination.page,
        "per_page": pagination.per_page,
        "total": found.total,
    })))
}

/// `POST /api/admin/users/<id>/sessions/revoke`: ends every session of a user and revokes their
/// API keys, as the panel's "End all sessions" does (admins only). A sensitive action: the token
/// must carry a proof from the last `sudo_window_secs` (`auth_time`), else 403
/// `reauthentication_required` — a new token from `POST /api/token` is that proof.
#[rocket::post("/api/admin/users/<id>/sessions/revoke")]
async fn admin_revoke_sessions(action: AdminAction<'_>, id: &str, _csrf: ApiCsrf) -> ApiResult {
    let Some(user) = action.find_user(id).await.map_err(internal)? else {
        return Err(ApiError::new(
            Status::NotFound,
            "not_found",
            "There is no user with that id.",
        ));
    };
    let (sessions, keys) = action.end_everything(&user).await.map_err(internal)?;
    Ok(Json(json!({
        "user_id": user.id,
        "sessions_ended": sessions,
        "api_keys_revoked": keys,
    })))
}

/// A user in the admin API (times in RFC 3339).
#[derive(Serialize)]
struct ApiUser<'a> {
    id: &'a str,
    username: &'a str,
    email: &'a str,
    role: &'static str,
    disabled: bool,
    created_at: String,
    last_login_at: Option<String>,
}

impl ApiUser<'_> {
    fn of(u: &User) -> ApiUser<'_> {
        ApiUser {
            id: &u.id,
            username: &u.username,
            email: &u.email,
            role: u.role().as_str(),
            disabled: u.disabled,
            created_at: format_rfc3339(u.created_at.assume_utc()),
            last_login_at: u.last_login_at.map(|t| format_rfc3339(t.assume_utc())),
        }
    }
}
