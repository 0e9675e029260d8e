//! The site's cookies, named and flagged in one place: HttpOnly, Path=/, and `Secure` + the
//! `__Host-` prefix when the site is served over TLS (`cookie_secure`). The device cookie is the
//! exception: it is only needed by the sign-in pages, so it has Path=/login (and, being not at
//! `/`, the `__Secure-` prefix): browsers send it nowhere else, so no other request carries or
//! parses it.

use rocket::http::{Cookie, SameSite};
use rocket::time::Duration;

/// Each cookie the site sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieKind {
    /// The access token (SameSite=Lax, so links from other sites arrive signed in).
    Session,
    /// The session's opaque refresh value, rotated at every renewal (SameSite=Lax).
    Refresh,
    /// The random value signed-out forms' CSRF tokens are bound to (SameSite=Lax).
    PreSession,
    /// A sign-in between its password and its second factor (SameSite=Strict, five minutes).
    PendingSignIn,
    /// The browser's signed proof of past sign-ins (SameSite=Strict, long-lived; survives
    /// sign-out): see `auth::signin::device`.
    Device,
}

impl CookieKind {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            CookieKind::Session => ("latchkey", "__Host-latchkey"),
            CookieKind::Refresh => ("latchkey_refresh", "__Host-latchkey_refresh"),
            CookieKind::PreSession => ("latchkey_csrf", "__Host-latchkey_csrf"),
            CookieKind::PendingSignIn => ("latchkey_2fa", "__Host-latchkey_2fa"),
            CookieKind::Device => ("latchkey_device", "__Secure-latchkey_device"),
        }
    }

    /// Where the browser sends it: the sign-in pages for the device cookie, everywhere else.
    fn path(self) -> &'static str {
        match self {
            CookieKind::Device => "/login",
            _ => "/",
        }
    }

    fn same_site(self) -> SameSite {
        match self {
            CookieKind::PendingSignIn | CookieKind::Device => SameSite::Strict,
            CookieKind::Session | CookieKind::Refresh | CookieKind::PreSession => SameSite::Lax,
        }
    }
}

/// How this site names and flags its cookies.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// `secure` turns on the `Secure` flag and the `__Host-` prefix (which requires it; the
    /// device cookie, not at `/`, gets `__Secure-`).
    pub fn new(secure: bool) -> Cookies {
        Cookies { secure }
    }

    /// The name of a cookie on this site.
    pub fn name(&self, kind: CookieKind) -> &'static str {
        let (plain, host) = kind.names();
        if self.secure {
            host
        } else {
            plain
        }
    }

    /// A cookie of `kind` carrying `value`, ending with the browser unless `max_age` is given.
    pub fn make(
        &self,
        kind: CookieKind,
        value: String,
        max_age: Option<Duration>,
    ) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.name(kind), value))
            .path(kind.path())
            .http_only(true)
            .secure(self.secure)
            .same_site(kind.same_site());
        if let Some(age) = max_age {
            cookie = cookie.max_age(age);
        }
        cookie.build()
    }

    /// The cookie to pass to `CookieJar::remove`: same name, path and flags as the one set (a
    /// `__Host-` cookie is only replaced by a `Secure` one).
    pub fn removal(&self, kind: CookieKind) -> Cookie<'static> {
        self.make(kind, String::new(), None)
    }
}
