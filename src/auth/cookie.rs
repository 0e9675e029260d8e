//! The session cookie: HttpOnly, SameSite=Lax, Path=/, and `Secure` + `__Host-` when configured.

use rocket::http::{Cookie, SameSite};
use rocket::time::Duration;

/// How the session cookie is named and flagged on this site.
#[derive(Debug, Clone, Copy)]
pub struct SessionCookie {
    secure: bool,
}

impl SessionCookie {
    /// `secure` turns on the `Secure` flag and the `__Host-` prefix (which requires it).
    pub fn new(secure: bool) -> SessionCookie {
        SessionCookie { secure }
    }

    /// Whether cookies carry `Secure` and the `__Host-` prefix on this site.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The cookie's name on this site.
    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey"
        } else {
            "latchkey"
        }
    }

    /// A cookie carrying `token`; `max_age` only for "remember me" (otherwise it ends with the browser).
    pub fn with_token(&self, token: String, max_age: Option<Duration>) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.name(), token))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax);
        if let Some(age) = max_age {
            cookie = cookie.max_age(age);
        }
        cookie.build()
    }

    /// The cookie to pass to `CookieJar::remove`; same name, path and flags as the one set.
    pub fn removal(&self) -> Cookie<'static> {
        self.with_token(String::new(), None)
    }
}
