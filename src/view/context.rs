//! What every page needs from its request — the signed-in user (if any), the flash message and
//! the CSRF token for its forms — as one request guard, so handlers only add their own data.

use std::convert::Infallible;

use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use serde_json::Value;

use super::{page, Page};
use crate::auth::{AuthState, CsrfToken, CurrentUser};

/// The base of a page: user, flash, CSRF token.
pub struct PageContext<'r> {
    user: Option<&'r CurrentUser>,
    flash: Option<FlashMessage<'r>>,
    csrf: CsrfToken,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for PageContext<'r> {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        let user = AuthState::of(req).await.user();
        let flash = match req.guard::<Option<FlashMessage<'r>>>().await {
            Outcome::Success(flash) => flash,
            _ => None,
        };
        let csrf = match req.guard::<CsrfToken>().await {
            Outcome::Success(token) => token,
            _ => CsrfToken(String::new()),
        };
        Outcome::Success(PageContext { user, flash, csrf })
    }
}

impl PageContext<'_> {
    /// Renders `template` in the site layout with this request's base and `extra` (a JSON
    /// object, or `Value::Null` for none).
    pub fn page(self, template: &'static str, title: &str, extra: Value) -> Page {
        page(template, title, self.user, self.flash, &self.csrf, extra)
    }
}
