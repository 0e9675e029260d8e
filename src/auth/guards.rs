//! Request guards: `CurrentUser` from the session cookie (no database access), and `Admin` built on it.
//!
//! A failed guard fails with 401 or 403; the catchers in `catchers.rs` turn 401 into a redirect to
//! the sign-in page (with the right message) and 403 into the "no access" page.

use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};
use time::OffsetDateTime;

use super::cookie::SessionCookie;
use super::{TokenError, Tokens};
use crate::events;
use crate::models::Role;

/// The signed-in person, as the verified token describes them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// User id (`sub`).
    pub id: String,
    /// Username (`name`).
    pub username: String,
    /// Role at the time the token was issued.
    pub role: Role,
    /// When the token stops being accepted.
    pub expires_at: OffsetDateTime,
    /// The token's `jti`.
    pub token_id: String,
}

/// What the request's credentials amount to; worked out once per request and cached.
#[derive(Debug, Clone)]
pub enum AuthState {
    /// No credential was sent.
    SignedOut,
    /// A valid token.
    SignedIn(CurrentUser),
    /// A genuine token past its expiry.
    Expired,
    /// A token that failed verification for any other reason.
    Invalid,
}

impl AuthState {
    /// The request's state, verifying the cookie the first time it is asked for.
    pub fn of<'r>(req: &'r Request<'_>) -> &'r AuthState {
        req.local_cache(|| AuthState::from_request_parts(req))
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&CurrentUser> {
        match self {
            AuthState::SignedIn(user) => Some(user),
            _ => None,
        }
    }

    fn from_request_parts(req: &Request<'_>) -> AuthState {
        let (Some(tokens), Some(cookie)) = (
            req.rocket().state::<Tokens>(),
            req.rocket().state::<SessionCookie>(),
        ) else {
            return AuthState::SignedOut;
        };
        // Built so a Bearer header can be read here as well, by a later change.
        let Some(token) = req
            .cookies()
            .get(cookie.name())
            .map(|c| c.value().to_string())
        else {
            return AuthState::SignedOut;
        };
        match tokens.verify(&token) {
            Ok(claims) => AuthState::SignedIn(CurrentUser {
                id: claims.sub,
                username: claims.name,
                role: claims.role,
                expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                token_id: claims.jti,
            }),
            Err(TokenError::Expired) => {
                req.cookies().remove(cookie.removal());
                AuthState::Expired
            }
            Err(TokenError::Invalid(reason)) => {
                req.cookies().remove(cookie.removal());
                events::token_rejected(&reason, req.client_ip());
                AuthState::Invalid
            }
        }
    }
}

/// Why a guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not signed in (or the token was expired or invalid).
    NotSignedIn,
    /// Signed in without the required role.
    MissingRole,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match AuthState::of(req) {
            AuthState::SignedIn(user) => Outcome::Success(user.clone()),
            _ => Outcome::Error((Status::Unauthorized, AuthFailure::NotSignedIn)),
        }
    }
}

/// A signed-in user whose role is `admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let user = try_outcome!(req.guard::<CurrentUser>().await);
        if user.role == Role::Admin {
            Outcome::Success(Admin(user))
        } else {
            Outcome::Error((Status::Forbidden, AuthFailure::MissingRole))
        }
    }
}
