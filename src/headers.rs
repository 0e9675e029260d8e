//! Hardened responses: Rocket's Shield (no sniffing, no framing, same-origin referrers, a
//! Permissions-Policy, HSTS when cookies are secure) plus a strict Content-Security-Policy and
//! `Cache-Control: no-store` on every page (so the back button after sign-out shows nothing
//! private). Static files stay cacheable, and so does a public answer whose route sets its own
//! `Cache-Control` (the JWKS).

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::shield::{Feature, Frame, Hsts, NoSniff, Permission, Referrer, Shield};
use rocket::{Request, Response};

/// The policy: everything from this origin only; no inline script or style; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The Shield with latchkey's choices; HSTS only when the site is served over TLS.
pub fn shield(secure: bool) -> Shield {
    let permissions = Permission::default()
        .block(Feature::Camera)
        .block(Feature::Microphone)
        .block(Feature::Geolocation)
        .block(Feature::Payment)
        .block(Feature::Usb);
    let shield = Shield::new()
        .enable(NoSniff::Enable)
        .enable(Frame::Deny)
        .enable(Referrer::SameOrigin)
        .enable(permissions);
    if secure {
        shield.enable(Hsts::IncludeSubDomains(rocket::time::Duration::days(365)))
    } else {
        shield
    }
}

/// Adds the CSP, `Cache-Control` and (when configured) `X-Instance` to every response.
pub struct SecurityHeaders {
    /// The instance's name, if it should say it.
    pub instance: Option<String>,
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
        res.set_header(Header::new(
            "Content-Security-Policy",
            CONTENT_SECURITY_POLICY,
        ));
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
