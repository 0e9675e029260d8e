//! Home, private page and error pages.

use latchkey::models::Role;
use rocket::http::Status;

use crate::helpers::*;

#[test]
fn home_shows_signed_out_state_and_links() {
    let app = spawn_app();
    let response = app.client.get("/").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    for link in ["href=\"/login\"", "href=\"/signup\"", "href=\"/private\""] {
        assert!(body.contains(link), "{link}");
    }
    assert!(body.contains("not signed in"));
}

#[test]
fn home_shows_who_is_signed_in() {
    let app = spawn_app();
    app.sign_in_as("vera", Role::Admin);
    let body = app.client.get("/").dispatch().into_string().unwrap();
    assert!(body.contains("vera"));
    assert!(
        body.contains("href=\"/admin\""),
        "admins see the admin link"
    );
    assert!(body.contains("action=\"/logout\""));
}

#[test]
fn private_shows_username_role_and_expiry() {
    let app = spawn_app();
    app.sign_in_as("walt", Role::User);
    let body = app.client.get("/private").dispatch().into_string().unwrap();
    assert!(body.contains("walt"));
    assert!(body.contains("user"));
    assert!(body.contains("UTC"), "expiry time shown");
    assert!(
        body.contains("720 minutes"),
        "time left in the 12-hour session shown"
    );
}

#[test]
fn unknown_page_is_a_404_in_the_site_layout() {
    let app = spawn_app();
    let response = app.client.get("/no/such/page").dispatch();
    assert_eq!(response.status(), Status::NotFound);
    let body = response.into_string().unwrap();
    assert!(body.contains("Page not found"));
    assert!(body.contains("/static/css/app.css"), "site layout");
    assert!(!body.contains("Rocket"));
}

#[test]
fn wrong_method_gets_a_page_not_a_trace() {
    let app = spawn_app();
    let response = app.client.put("/login").dispatch();
    assert!(response.status().code >= 400 && response.status().code < 500);
    let body = response.into_string().unwrap();
    assert!(body.contains("/static/css/app.css"));
}

#[test]
fn stylesheet_is_served() {
    let app = spawn_app();
    let response = app.client.get("/static/css/app.css").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.content_type(),
        Some(rocket::http::ContentType::CSS)
    );
}

#[test]
fn pages_carry_no_inline_script() {
    let app = spawn_app();
    app.sign_in_as("xena", Role::Admin);
    for page in [
        "/",
        "/private",
        "/account",
        "/account/passkeys",
        "/admin",
        "/login",
        "/signup",
        "/missing",
    ] {
        let body = app.client.get(page).dispatch().into_string().unwrap();
        // Scripts only as files from the site (static/passkeys.js), never inline.
        for (at, _) in body.match_indices("<script") {
            let tag = &body[at..];
            assert!(
                tag.starts_with("<script src=\"/static/passkeys.js\" defer></script>"),
                "{page}: {}",
                &tag[..tag.len().min(80)]
            );
        }
        assert!(!body.contains(" style=\""), "{page}");
        assert!(!body.contains("onclick"), "{page}");
    }
}
