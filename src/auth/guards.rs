//! Request guards: `CurrentUser` from the session cookie, and `Admin` built on it.
//!
//! The hot path is in memory: verify the access token, look the session up in the revocation list,
//! the username up in a per-instance map. The database is touched only to renew: when the access
//! token is missing, expired (past `exp` plus the leeway: never accepted, never renewed from
//! itself) or has less than half its life left, the session's refresh cookie is exchanged for a
//! new access token and a new refresh value (see [`Sessions::refresh`]). A failed guard fails with
//! 401/403/503; the catchers in `catchers.rs` turn 401 into a redirect to the sign-in page with
//! the right message.
//!
//! Tokens are read from the session cookie and (on `/api/*`) the `Authorization: Bearer` header
//! only: never from the query string or other headers, which leak into logs, history and
//! `Referer` (RFC 6750 §2.3).

use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use time::OffsetDateTime;

use super::cookie::CookieKind;
use super::sessions::{Refresh, Sessions};
use super::{Claims, TokenError};
use crate::config::Settings;
use crate::events;
use crate::models::Role;
use crate::peer::Peer;

/// The signed-in person, as the verified token describes them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// User id (`sub`).
    pub id: String,
    /// Username (not in the token: looked up by `sub`).
    pub username: String,
    /// Role at the time the token was issued (a role change revokes the user's sessions).
    pub role: Role,
    /// When the session ends at the latest.
    pub session_expires_at: OffsetDateTime,
    /// The session (`sid`).
    pub session_id: String,
    /// Where the token came from.
    pub via: Via,
    /// A token from a read-only API key: GET requests only.
    pub read_only: bool,
    /// The session's sign-in passed two-factor or a passkey (`amr` has `otp` or `hwk`).
    pub two_factor: bool,
    /// When the owner last proved who they are (Unix seconds); `None` for API-key tokens.
    pub auth_time: Option<i64>,
    /// The site requires a verified address and this user has not verified theirs: only
    /// [`AnyUser`] lets them through (the "Confirm your address" page, sign-out).
    pub email_unverified: bool,
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The session cookie (browsers; ambient, so state changes need a CSRF token).
    Cookie,
    /// `Authorization: Bearer` on `/api/*` (programs; not ambient, so no CSRF token).
    Bearer,
}

impl CurrentUser {
    /// The user a verified token describes.
    pub fn from_claims(claims: &Claims, username: String, via: Via) -> CurrentUser {
        let at = |t| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        CurrentUser {
            id: claims.sub.clone(),
            username,
            role: claims.role,
            session_expires_at: at(claims.sexp),
            session_id: claims.sid.clone(),
            via,
            read_only: claims.scp.as_deref() == Some("read"),
            two_factor: claims.amr.iter().any(|m| m == "otp" || m == "hwk"),
            auth_time: claims.auth_time,
            email_unverified: claims.email_unverified,
        }
    }
}

/// What the request's credentials amount to; worked out once per request and cached.
#[derive(Debug, Clone)]
pub enum AuthState {
    /// No credential was sent.
    SignedOut,
    /// A valid token of a live session.
    SignedIn(CurrentUser),
    /// The session is over (expired, idle too long); the token was genuine.
    Expired,
    /// The session was ended (sign-out elsewhere, password change, admin action).
    Revoked,
    /// A refresh value that had already been replaced came back: someone else holds a copy, so
    /// the session was ended to protect the account.
    Stolen,
    /// A token that failed verification.
    Invalid,
    /// The token needed renewing and the database could not be reached.
    Unavailable,
}

impl AuthState {
    /// The request's state, verifying the cookie the first time it is asked for.
    pub async fn of<'r>(req: &'r Request<'_>) -> &'r AuthState {
        req.local_cache_async(AuthState::compute(req)).await
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&CurrentUser> {
        match self {
            AuthState::SignedIn(user) => Some(user),
            _ => None,
        }
    }

    async fn compute(req: &Request<'_>) -> AuthState {
        let Some(sessions) = req.rocket().state::<Sessions>() else {
            return AuthState::SignedOut;
        };
        let revocations = sessions.revocations();
        if revocations.is_stale() {
            let now = sessions.clock().now().unix_timestamp();
            if let Err(e) = revocations.refresh(sessions.db(), now).await {
                log::warn!("revocation list not refreshed: {e}");
            }
        }
        // On /api/* a Bearer header wins over the cookies; pages only read the cookies.
        let bearer = req
            .uri()
            .path()
            .starts_with("/api/")
            .then(|| req.headers().get_one("Authorization"))
            .flatten()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        match bearer {
            Some(token) => AuthState::bearer(req, sessions, token).await,
            None => AuthState::browser(req, sessions).await,
        }
    }

    /// A program's Bearer token: valid, unexpired and not revoked, or refused (a client renews
    /// with its refresh token itself).
    async fn bearer(req: &Request<'_>, sessions: &Sessions, token: &str) -> AuthState {
        let now = sessions.clock().now().unix_timestamp();
        let claims = match sessions.tokens().verify(token, now) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return AuthState::Expired,
            Err(TokenError::Invalid(reason)) => {
                events::token_rejected(&reason, req.client_ip());
                return AuthState::Invalid;
            }
        };
        if sessions.revocations().is_revoked(&claims.sid) {
            return AuthState::Revoked;
        }
        // Too long without a refresh to vouch for the token: 503 at once (database outage).
        if !sessions.revocations().usable() {
            return AuthState::Unavailable;
        }
        AuthState::signed_in(req, sessions, &claims, Via::Bearer).await
    }

    /// A browser's cookies: the access token while it is fresh; otherwise (missing, expired,
    /// unreadable, or past half its life) the refresh cookie renews it.
    async fn browser(req: &Request<'_>, sessions: &Sessions) -> AuthState {
        let jar = req.cookies();
        let access = jar.get(sessions.cookies().name(CookieKind::Session));
        let refresh = jar.get(sessions.cookies().name(CookieKind::Refresh));
        if access.is_none() && refresh.is_none() {
            return AuthState::SignedOut;
        }
        let now = sessions.clock().now();
        // What the access token alone amounts to, when the refresh cookie cannot help.
        let mut without_refresh = AuthState::Expired;
        let mut still_valid = None;
        if let Some(cookie) = access {
            match sessions
                .tokens()
                .verify(cookie.value(), now.unix_timestamp())
            {
                Ok(claims) => {
                    let revocations = sessions.revocations();
                    if revocations.is_revoked(&claims.sid) {
                        sessions.clear_cookie(jar);
                        return match revocations.was_stolen(&claims.sid) {
                            true => AuthState::Stolen,
                            false => AuthState::Revoked,
                        };
                    }
                    // Too long without a refresh to vouch for the token: 503 at once.
                    if !revocations.usable() {
                        return AuthState::Unavailable;
                    }
                    if refresh.is_none() || !sessions.wants_renewal(&claims, now) {
                        return AuthState::signed_in(req, sessions, &claims, Via::Cookie).await;
                    }
                    still_valid = Some(claims);
                }
                Err(TokenError::Expired) => {}
                Err(TokenError::Invalid(reason)) => {
                    events::token_rejected(&reason, req.client_ip());
                    without_refresh = AuthState::Invalid;
                }
            }
        }
        let Some(refresh) = refresh else {
            sessions.clear_cookie(jar);
            return without_refresh;
        };
        match sessions.refresh(refresh.value(), &Peer::of(req)).await {
            Ok(Refresh::Rotated(started, user) | Refresh::Parallel(started, user)) => {
                sessions.set_cookie(jar, &started);
                AuthState::SignedIn(CurrentUser::from_claims(
                    &started.claims,
                    user.username,
                    Via::Cookie,
                ))
            }
            Ok(Refresh::Reused | Refresh::Stolen) => {
                sessions.clear_cookie(jar);
                AuthState::Stolen
            }
            Ok(Refresh::Invalid) => {
                sessions.clear_cookie(jar);
                match still_valid {
                    // The access token is genuine but its session is over (ended elsewhere and
                    // not yet on this instance's list, idle too long, user disabled).
                    Some(_) => AuthState::Revoked,
                    None => AuthState::Expired,
                }
            }
            // A still-valid token keeps working while the database is away; an expired one cannot.
            Err(e) => match still_valid {
                Some(claims) => {
                    log::warn!("token renewal postponed: {e}");
                    AuthState::signed_in(req, sessions, &claims, Via::Cookie).await
                }
                None => {
                    log::warn!("token renewal failed: {e}");
                    AuthState::Unavailable
                }
            },
        }
    }

    /// Signed in as the verified token says, once its `sub` names an enabled user (from this
    /// instance's memory, or the database on a miss).
    async fn signed_in(
        req: &Request<'_>,
        sessions: &Sessions,
        claims: &Claims,
        via: Via,
    ) -> AuthState {
        match sessions.username(&claims.sub).await {
            Ok(Some(username)) => {
                AuthState::SignedIn(CurrentUser::from_claims(claims, username, via))
            }
            Ok(None) => {
                events::token_rejected("token names no enabled user", req.client_ip());
                if via == Via::Cookie {
                    sessions.clear_cookie(req.cookies());
                }
                AuthState::Invalid
            }
            Err(e) => {
                log::warn!("user not looked up: {e}");
                AuthState::Unavailable
            }
        }
    }
}

/// Why a guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not signed in (or the token was expired, revoked or invalid).
    NotSignedIn,
    /// Signed in without the required role.
    MissingRole,
    /// The session could not be checked because the database is unreachable.
    Unavailable,
    /// Signed in, but the action needs a fresh proof (sudo mode).
    Reauthenticate,
    /// Signed in, but the site requires a verified address first.
    EmailUnverified,
}

/// Set in the request cache when a guard refuses a user whose address must be verified first,
/// so the catcher sends people to "Confirm your address" and programs `email_unverified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailUnverified;

/// A signed-in user, verified address or not: for the few pages an unverified user may use
/// when the site requires verification ("Confirm your address", resending its link, sign-out).
/// Everything else takes [`CurrentUser`], which turns them away.
pub struct AnyUser<'r>(pub &'r CurrentUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AnyUser<'r> {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match AuthState::of(req).await {
            AuthState::SignedIn(user)
                if user.read_only && req.method() != rocket::http::Method::Get =>
            {
                Outcome::Error((Status::Forbidden, AuthFailure::MissingRole))
            }
            AuthState::SignedIn(user) => Outcome::Success(AnyUser(user)),
            AuthState::Unavailable => {
                Outcome::Error((Status::ServiceUnavailable, AuthFailure::Unavailable))
            }
            _ => Outcome::Error((Status::Unauthorized, AuthFailure::NotSignedIn)),
        }
    }
}

/// The signed-in user, borrowed from the request's cached [`AuthState`] (no copy: the busiest
/// pages take this).
#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r CurrentUser {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match AuthState::of(req).await {
            // A read-only token may only read.
            AuthState::SignedIn(user)
                if user.read_only && req.method() != rocket::http::Method::Get =>
            {
                Outcome::Error((Status::Forbidden, AuthFailure::MissingRole))
            }
            AuthState::SignedIn(user) if user.email_unverified => {
                req.local_cache(|| Some(EmailUnverified));
                Outcome::Error((Status::Forbidden, AuthFailure::EmailUnverified))
            }
            AuthState::SignedIn(user) => Outcome::Success(user),
            AuthState::Unavailable => {
                Outcome::Error((Status::ServiceUnavailable, AuthFailure::Unavailable))
            }
            _ => Outcome::Error((Status::Unauthorized, AuthFailure::NotSignedIn)),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        req.guard::<&'r CurrentUser>().await.map(Clone::clone)
    }
}

/// A signed-in user whose role is `admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

/// Set in the request cache when [`Admin`] refuses a signed-in user, so the 403 page can say
/// why: the page is for administrators, or (with `admin_requires_two_factor`) for
/// administrators signed in with two-factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequired {
    /// The user is not an administrator.
    Role,
    /// An administrator whose session did not pass two-factor sign-in.
    TwoFactor,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let user = try_outcome!(req.guard::<CurrentUser>().await);
        let needs_two_factor = req
            .rocket()
            .state::<Settings>()
            .is_some_and(|s| s.admin_requires_two_factor);
        if user.role != Role::Admin {
            req.local_cache(|| Some(AdminRequired::Role));
            Outcome::Error((Status::Forbidden, AuthFailure::MissingRole))
        } else if needs_two_factor && !user.two_factor {
            req.local_cache(|| Some(AdminRequired::TwoFactor));
            Outcome::Error((Status::Forbidden, AuthFailure::MissingRole))
        } else {
            Outcome::Success(Admin(user))
        }
    }
}
