//! Error pages in the site's layout, and the 401 → sign-in redirect. Never a trace, SQL or path.

use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::response::status::Custom;
use rocket::response::{Flash, Redirect};
use serde_json::json;

use crate::allow::{allow_header, methods_if_not_allowed};
use crate::auth::next::referer_path;
use crate::auth::{AdminRequired, CsrfRejected, EmailUnverified, SudoRequired};
use crate::auth::{AuthState, CsrfToken, Sessions};
use crate::db::Db;
use crate::json::ApiError;
use crate::models::TwoFactor;
use crate::text::percent_encode;
use crate::view::{page, Page};

/// Every catcher of the site.
pub fn all() -> Vec<rocket::Catcher> {
    rocket::catchers![unauthorized, default]
}

/// What a catcher answers: a page for people, JSON for programs (`/api/*`).
// Built once per error response and consumed at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(rocket::Responder)]
pub enum Caught {
    /// An error page in the site's layout.
    Page(Page),
    /// Off to the sign-in form.
    SignIn(Flash<Redirect>),
    /// A JSON error.
    Api(ApiError),
    /// An error page with its own status and a header (`Allow` on a 405).
    PageWith(Custom<Page>, Header<'static>),
    /// Off to "Confirm it's you", then back.
    Confirm(Redirect),
}

/// An admin whose session did not pass two-factor, on the panel: never a dead end. Without
/// two-factor yet, off to set it up (enabling it makes this session a two-factor one); with it,
/// "Confirm it's you" with a code, which does the same. `None` when the database cannot say.
async fn two_factor_first(req: &Request<'_>) -> Option<Caught> {
    let user_id = AuthState::of(req).await.user()?.id.clone();
    let db = req.rocket().state::<Db>()?;
    let enrolled = db
        .run(move |conn| Ok(TwoFactor::enabled(conn, &user_id)?.is_some()))
        .await
        .ok()?;
    if enrolled {
        return Some(confirm_first(req));
    }
    Some(Caught::SignIn(Flash::warning(
        Redirect::to("/account/two-factor"),
        "The admin panel needs two-factor sign-in. Set it up here first; then the panel opens.",
    )))
}

/// Sudo mode refused: "Confirm it's you", then back to this page (a GET) or to the page the
/// form was on (a POST: its `Referer`, else the account page).
fn confirm_first(req: &Request<'_>) -> Caught {
    let back = if req.method() == Method::Get {
        let uri = req.uri();
        match uri.query() {
            Some(q) => format!("{}?{}", uri.path(), q),
            None => uri.path().to_string(),
        }
    } else {
        referer_path(req).unwrap_or_else(|| "/account".to_string())
    };
    Caught::Confirm(Redirect::to(format!(
        "/confirm?next={}",
        percent_encode(&back, b"/")
    )))
}

fn is_api(req: &Request<'_>) -> bool {
    let path = req.uri().path();
    // `/.well-known/` (the JWKS) is for programs too.
    path.starts_with("/api/") || path.starts_with("/.well-known/")
}

/// Not signed in: programs get RFC 6750 JSON; people go to the sign-in form, then back here.
#[rocket::catch(401)]
async fn unauthorized(req: &Request<'_>) -> Caught {
    let state = AuthState::of(req).await;
    if is_api(req) {
        return Caught::Api(ApiError::unauthorized(state));
    }
    if matches!(
        state,
        AuthState::Expired | AuthState::Invalid | AuthState::Revoked | AuthState::Stolen
    ) {
        // The catcher starts with a fresh cookie delta, so the guard's removal must be repeated.
        if let Some(sessions) = req.rocket().state::<Sessions>() {
            sessions.clear_cookie(req.cookies());
        }
    }
    let target = if req.method() == Method::Get {
        let uri = req.uri();
        let here = match uri.query() {
            Some(q) => format!("{}?{}", uri.path(), q),
            None => uri.path().to_string(),
        };
        format!("/login?next={}", percent_encode(&here, b"/"))
    } else {
        "/login".to_string()
    };
    let message = match state {
        AuthState::Expired => "Your session has expired. Please sign in again.",
        AuthState::Revoked => "Your session has ended. Please sign in again.",
        AuthState::Stolen => {
            "Your session was ended to protect your account. Please sign in again."
        }
        _ => "Please sign in to continue.",
    };
    Caught::SignIn(Flash::warning(Redirect::to(target), message))
}

/// The JSON answer for an error status on `/api/*`.
fn api_error(status: Status, req: &Request<'_>) -> ApiError {
    let (_, message) = explain(status);
    match status.code {
        403 if req.local_cache(|| None::<CsrfRejected>).is_some() => ApiError::new(
            status,
            "csrf",
            "Send the page's CSRF token in the X-CSRF-Token header, or use a Bearer token.",
        ),
        403 if req.local_cache(|| None::<EmailUnverified>).is_some() => ApiError::new(
            status,
            "email_unverified",
            "Confirm your email address first: follow the link we mailed you, or sign in on \
             the site to have it sent again.",
        ),
        403 if req.local_cache(|| None::<SudoRequired>).is_some() => ApiError::new(
            status,
            "reauthentication_required",
            "This needs a recent proof of who you are: get a new token with POST /api/token \
             (grant_type password, with your two-factor code if it is on) and try again.",
        ),
        403 => ApiError::insufficient_scope(),
        400 | 422 => ApiError::bad_request("The request could not be read."),
        404 => ApiError::new(status, "not_found", "There is no such endpoint."),
        405 => ApiError::new(
            status,
            "method_not_allowed",
            "This endpoint does not accept that method; the Allow header lists the ones it does.",
        ),
        413 => ApiError::new(status, "payload_too_large", message),
        429 => ApiError::new(status, "too_many_requests", message),
        503 => ApiError::new(status, "unavailable", message),
        500..=599 => ApiError::new(status, "server_error", message),
        _ => ApiError::new(status, "error", message),
    }
}

/// What each error status says to a person.
fn explain(status: Status) -> (&'static str, &'static str) {
    match status.code {
        400 => (
            "Bad request",
            "The request could not be understood. Please go back and try again.",
        ),
        403 => ("Access denied", "You do not have access to this page."),
        404 => (
            "Page not found",
            "There is no page at this address. Check the link, or go back to the home page.",
        ),
        405 => (
            "Not allowed",
            "This page cannot be used that way. Go back and try again.",
        ),
        413 => (
            "Too much data",
            "What you sent is too large. Please shorten it and try again.",
        ),
        415 => (
            "Unsupported form",
            "The form could not be read. Please reload the page and submit it again.",
        ),
        422 => (
            "Form not understood",
            "The form could not be read. Please reload the page and submit it again.",
        ),
        429 => (
            "Too many requests",
            "Too many attempts. Please wait a little and try again.",
        ),
        503 => (
            "Temporarily unavailable",
            "The service is temporarily unavailable. Please try again in a moment.",
        ),
        500..=599 => (
            "Something went wrong",
            "Something went wrong on our side. Please try again in a moment.",
        ),
        _ => (
            "Request failed",
            "The request could not be completed. Please go back and try again.",
        ),
    }
}

/// Every other error status: a page in the site's layout. A 404 for a path that exists with
/// other methods becomes a 405 that lists them in `Allow`.
#[rocket::catch(default)]
async fn default(status: Status, req: &Request<'_>) -> Caught {
    let allowed = methods_if_not_allowed(status, req).map(|m| allow_header(&m));
    let status = if allowed.is_some() {
        Status::MethodNotAllowed
    } else {
        status
    };
    let unverified =
        status == Status::Forbidden && req.local_cache(|| None::<EmailUnverified>).is_some();
    if unverified && !is_api(req) {
        // Every page of an account whose address must be verified first leads here.
        return Caught::Confirm(Redirect::to(crate::routes::email::CONFIRM_PAGE));
    }
    let sudo = status == Status::Forbidden && req.local_cache(|| None::<SudoRequired>).is_some();
    if sudo && !is_api(req) {
        return confirm_first(req);
    }
    let needs_two_factor = status == Status::Forbidden
        && req.local_cache(|| None::<AdminRequired>) == &Some(AdminRequired::TwoFactor);
    if needs_two_factor && !is_api(req) {
        if let Some(caught) = two_factor_first(req).await {
            return caught;
        }
    }
    if is_api(req) {
        let error = api_error(status, req);
        return Caught::Api(match allowed {
            Some(allow) => error.header("Allow", allow),
            None => error,
        });
    }
    let (heading, mut message) = explain(status);
    if status == Status::Forbidden && req.local_cache(|| None::<CsrfRejected>).is_some() {
        message = "This form has expired or was sent from another site, so nothing was changed. \
                   Reload the page and try again.";
    } else if status == Status::Forbidden {
        match req.local_cache(|| None::<AdminRequired>) {
            Some(AdminRequired::Role) => {
                message = "This page is for administrators. If you need it, ask an \
                           administrator for access.";
            }
            Some(AdminRequired::TwoFactor) => {
                message = "The admin panel asks for two-factor sign-in. Turn it on under \
                           Account, then sign out and sign in again with a code.";
            }
            None => {}
        }
    }
    let csrf = match req.guard::<CsrfToken>().await {
        rocket::outcome::Outcome::Success(token) => token,
        _ => CsrfToken(String::new()),
    };
    let page = page(
        "errors/error",
        heading,
        AuthState::of(req).await.user(),
        None,
        &csrf,
        json!({ "status": status.code, "heading": heading, "message": message }),
    );
    match allowed {
        Some(allow) => Caught::PageWith(Custom(status, page), Header::new("Allow", allow)),
        None => Caught::Page(page),
    }
}
