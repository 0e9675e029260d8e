//! Hardened responses on every kind of page.

use latchkey::models::Role;
use rocket::http::Status;

use crate::helpers::*;

fn check_headers(response: &rocket::local::blocking::LocalResponse<'_>, what: &str) {
    let h = response.headers();
    let csp = h
        .get_one("Content-Security-Policy")
        .unwrap_or_else(|| panic!("{what}: CSP"));
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{what}");
    assert_eq!(h.get_one("X-Frame-Options"), Some("DENY"), "{what}");
    assert_eq!(
        h.get_one("X-Content-Type-Options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(h.get_one("Referrer-Policy"), Some("same-origin"), "{what}");
    assert!(
        h.get_one("Permissions-Policy")
            .is_some_and(|p| p.contains("camera=()")),
        "{what}"
    );
}

#[test]
fn every_page_kind_carries_the_security_headers() {
    let app = spawn_app();
    let anonymous = [
        ("/", 200),
        ("/login", 200),
        ("/signup", 200),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/missing", 404),
        ("/private", 303),
        ("/static/css/app.css", 200),
    ];
    for (uri, status) in anonymous {
        let response = app.client.get(uri).dispatch();
        assert_eq!(response.status().code, status, "{uri}");
        check_headers(&response, uri);
    }
    app.sign_in_as("head", Role::User);
    for (uri, status) in [
        ("/private", 200),
        ("/account", 200),
        ("/account/sessions", 200),
        ("/admin", 403),
    ] {
        let response = app.client.get(uri).dispatch();
        assert_eq!(response.status().code, status, "{uri}");
        check_headers(&response, uri);
    }
    let refused = app.post_raw("/account/password", &[]);
    assert_eq!(refused.status(), Status::Forbidden);
    check_headers(&refused, "CSRF refusal");
}

#[test]
fn pages_are_not_stored_but_static_files_are_cacheable() {
    let app = spawn_app();
    app.sign_in_as("cache", Role::Admin);
    for uri in ["/", "/private", "/account", "/admin", "/login", "/missing"] {
        let response = app.client.get(uri).dispatch();
        assert_eq!(
            response.headers().get_one("Cache-Control"),
            Some("no-store"),
            "{uri}"
        );
    }
    let css = app.client.get("/static/css/app.css").dispatch();
    assert!(css
        .headers()
        .get_one("Cache-Control")
        .unwrap()
        .contains("max-age"));
}

#[test]
fn hsts_only_with_secure_cookies() {
    let plain = spawn_app();
    assert!(plain
        .client
        .get("/")
        .dispatch()
        .headers()
        .get_one("Strict-Transport-Security")
        .is_none());
    let secure = spawn_app_with(|f| f.merge(("cookie_secure", true)));
    let response = secure.client.get("/").dispatch();
    let hsts = response
        .headers()
        .get_one("Strict-Transport-Security")
        .expect("HSTS");
    assert!(hsts.contains("max-age=31536000"));
}
