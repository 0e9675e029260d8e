//! Error pages in the site's layout, and the 401 → sign-in redirect. Never a trace, SQL or path.

use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::response::{Flash, Redirect};
use serde_json::json;

use crate::auth::csrf::CsrfRejected;
use crate::auth::{AuthState, CsrfToken, Sessions};
use crate::view::{page, percent_encode, Page};

/// Every catcher of the site.
pub fn all() -> Vec<rocket::Catcher> {
    rocket::catchers![unauthorized, default]
}

/// Not signed in on a guarded page: back to the sign-in form, then here again.
#[rocket::catch(401)]
async fn unauthorized(req: &Request<'_>) -> Flash<Redirect> {
    let state = AuthState::of(req).await;
    if matches!(
        state,
        AuthState::Expired | AuthState::Invalid | AuthState::Revoked
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
        _ => "Please sign in to continue.",
    };
    Flash::warning(Redirect::to(target), message)
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

/// Every other error status: a page in the site's layout.
#[rocket::catch(default)]
async fn default(status: Status, req: &Request<'_>) -> Page {
    let (heading, mut message) = explain(status);
    if status == Status::Forbidden && req.local_cache(|| None::<CsrfRejected>).is_some() {
        message = "This form has expired or was sent from another site, so nothing was changed. \
                   Reload the page and try again.";
    }
    let csrf = match req.guard::<CsrfToken>().await {
        rocket::outcome::Outcome::Success(token) => token,
        _ => CsrfToken(String::new()),
    };
    page(
        "errors/error",
        heading,
        AuthState::of(req).await.user(),
        None,
        &csrf,
        json!({ "status": status.code, "heading": heading, "message": message }),
    )
}
