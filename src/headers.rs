//! Hardened responses: the policies of Rocket's Shield (no sniffing, no framing, same-origin
//! referrers, a Permissions-Policy, HSTS when cookies are secure), set by one fairing from values
//! worked out once, plus a strict Content-Security-Policy and
//! `Cache-Control: no-store` on every page (so the back button after sign-out shows nothing
//! private). Static files stay cacheable, and so does a public answer whose route sets its own
//! `Cache-Control` (the JWKS).

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use std::sync::OnceLock;

use rocket::shield::{Feature, Frame, Hsts, NoSniff, Permission, Policy, Referrer, Shield};
use rocket::{Request, Response};

/// The policy: everything from this origin only; no inline script or style; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The Shield's policies with latchkey's choices; HSTS only when the site is served over TLS.
fn shield_headers(secure: bool) -> Vec<Header<'static>> {
    let permissions = Permission::default()
        .block(Feature::Camera)
        .block(Feature::Microphone)
        .block(Feature::Geolocation)
        .block(Feature::Payment)
        .block(Feature::Usb);
    let mut headers = vec![
        NoSniff::Enable.header(),
        Frame::Deny.header(),
        Referrer::SameOrigin.header(),
        permissions.header(),
    ];
    if secure {
        headers.push(Hsts::IncludeSubDomains(rocket::time::Duration::days(365)).header());
    }
    headers
}

/// Every page's headers, worked out once per setting of `secure`: the Shield's, then the CSP.
fn fixed_headers(secure: bool) -> &'static [(String, String)] {
    static PLAIN: OnceLock<Vec<(String, String)>> = OnceLock::new();
    static SECURE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let slot = if secure { &SECURE } else { &PLAIN };
    slot.get_or_init(|| {
        let mut headers: Vec<(String, String)> = shield_headers(secure)
            .into_iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        headers.push((
            "Content-Security-Policy".into(),
            CONTENT_SECURITY_POLICY.into(),
        ));
        headers
    })
}

/// Paths whose URL carries a secret (single-use links: address verification and change, password
/// reset, invitations): their pages send `Referrer-Policy: strict-origin`, so whatever they lead
/// to, here or elsewhere, learns the origin and never the token. Not `no-referrer`: with it,
/// browsers post the page's own form with `Origin: null`, which the CSRF check rightly refuses.
const SECRET_URL_PREFIXES: &[&str] = &["/email/", "/password/reset/", "/invite/"];

/// An empty Shield: attached so that Rocket adds no headers of its own; [`SecurityHeaders`] sets
/// the Shield's policies itself (once, from `&'static` values, rather than per request).
pub fn shield() -> Shield {
    Shield::new()
}

/// Adds the Shield's policies (no sniffing, no framing, same-origin referrers, a
/// Permissions-Policy, HSTS when secure), the CSP, `Cache-Control` and (when configured)
/// `X-Instance` to every response.
pub struct SecurityHeaders {
    /// The policies and the CSP.
    fixed: &'static [(String, String)],
    /// The instance's name, if it should say it.
    instance: Option<String>,
}

impl SecurityHeaders {
    /// The headers for a site served over TLS (`secure`) or not, naming `instance` if given.
    pub fn new(secure: bool, instance: Option<String>) -> SecurityHeaders {
        SecurityHeaders {
            fixed: fixed_headers(secure),
            instance,
        }
    }
}

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        // They replace whatever might be there.
        for (name, value) in self.fixed {
            res.set_header(Header::new(name.as_str(), value.as_str()));
        }
        let path = req.uri().path();
        if SECRET_URL_PREFIXES.iter().any(|p| path.starts_with(p)) {
            res.set_header(Header::new("Referrer-Policy", "strict-origin"));
        }
        if let Some(name) = &self.instance {
            res.set_header(Header::new("X-Instance", name.clone()));
        }
        if req.uri().path().starts_with("/static/") {
            res.set_header(Header::new("Cache-Control", "public, max-age=3600"));
        } else if !res.headers().contains("Cache-Control") {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_when_secure() {
        let names = |secure| -> Vec<&str> {
            fixed_headers(secure)
                .iter()
                .map(|(n, _)| n.as_str())
                .collect()
        };
        assert!(names(true).contains(&"Strict-Transport-Security"));
        assert!(!names(false).contains(&"Strict-Transport-Security"));
        for secure in [false, true] {
            for name in [
                "X-Content-Type-Options",
                "X-Frame-Options",
                "Referrer-Policy",
                "Permissions-Policy",
                "Content-Security-Policy",
            ] {
                assert!(names(secure).contains(&name), "{name} (secure: {secure})");
            }
        }
    }
}
