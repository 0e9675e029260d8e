//! Request guards: `CurrentUser` from the session cookie, and `Admin` built on it.
//!
//! The hot path is in memory: verify the token, look the session up in the revocation list. The
//! database is touched only to renew a token with less than half its life left (or expired) from
//! its session row. A failed guard fails with 401/403/503; the catchers in `catchers.rs` turn 401
//! into a redirect to the sign-in page with the right message.

use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use time::OffsetDateTime;

use super::cookie::CookieKind;
use super::sessions::Sessions;
use super::{Claims, TokenError};
use crate::config::Settings;
use crate::events;
use crate::models::Role;

/// The signed-in person, as the verified token describes them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// User id (`sub`).
    pub id: String,
    /// Username (`name`).
    pub username: String,
    /// Email address (`email`).
    pub email: String,
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
    /// The session's sign-in passed two-factor (`amr` has `otp`).
    pub two_factor: bool,
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
    pub fn from_claims(claims: &Claims, via: Via) -> CurrentUser {
        let at = |t| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        CurrentUser {
            id: claims.sub.clone(),
            username: claims.name.clone(),
            email: claims.email.clone(),
            role: claims.role,
            session_expires_at: at(claims.sexp),
            session_id: claims.sid.clone(),
            via,
            read_only: claims.scp.as_deref() == Some("read"),
            two_factor: claims.amr.iter().any(|m| m == "otp"),
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
        // On /api/* a Bearer header wins over the cookie; pages only read the cookie.
        let bearer = req
            .uri()
            .path()
            .starts_with("/api/")
            .then(|| req.headers().get_one("Authorization"))
            .flatten()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        // Borrowed, not copied: the token is only read.
        let (token, via) = match bearer {
            Some(token) => (token, Via::Bearer),
            None => match req
                .cookies()
                .get(sessions.cookies().name(CookieKind::Session))
            {
                Some(cookie) => (cookie.value(), Via::Cookie),
                None => return AuthState::SignedOut,
            },
        };
        let clear_cookie = || {
            if via == Via::Cookie {
                sessions.clear_cookie(req.cookies());
            }
        };
        let now = sessions.clock().now();
        let revocations = sessions.revocations();
        if revocations.is_stale() {
            if let Err(e) = revocations
                .refresh(sessions.db(), now.unix_timestamp())
                .await
            {
                log::warn!("revocation list not refreshed: {e}");
            }
        }
        let (claims, expired) = match sessions.tokens().verify(token, now.unix_timestamp()) {
            Ok(claims) => (claims, false),
            Err(TokenError::Expired(claims)) => (*claims, true),
            Err(TokenError::Invalid(reason)) => {
                clear_cookie();
                events::token_rejected(&reason, req.client_ip());
                return AuthState::Invalid;
            }
        };
        if revocations.is_revoked(&claims.sid) {
            clear_cookie();
            return AuthState::Revoked;
        }
        // A Bearer client asks for a new token itself; only cookies are renewed silently.
        if via == Via::Bearer {
            return match expired {
                true => AuthState::Expired,
                false => AuthState::SignedIn(CurrentUser::from_claims(&claims, via)),
            };
        }
        if !expired && !sessions.wants_renewal(&claims, now) {
            return AuthState::SignedIn(CurrentUser::from_claims(&claims, via));
        }
        match sessions.renew(req.cookies(), &claims).await {
            Ok(Some(renewed)) => AuthState::SignedIn(CurrentUser::from_claims(&renewed, via)),
            Ok(None) => {
                clear_cookie();
                AuthState::Expired
            }
            // A still-valid token keeps working while the database is away; an expired one cannot.
            Err(e) if !expired => {
                log::warn!("token renewal postponed: {e}");
                AuthState::SignedIn(CurrentUser::from_claims(&claims, via))
            }
            Err(e) => {
                log::warn!("token renewal failed: {e}");
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
