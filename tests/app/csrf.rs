//! CSRF: every POST form needs the session-bound token and a same-origin request; a refusal is a
//! 403 page that says to reload, and nothing changes.

use latchkey::models::{Role, Session};
use rocket::http::{ContentType, Header, Status};

use crate::helpers::*;

const RELOAD: &str = "Reload the page and try again.";

/// Every POST route of the site, with the fields its form sends.
fn post_routes(user_id: &str, sid: &str) -> Vec<(String, Vec<(&'static str, String)>)> {
    vec![
        (
            "/signup".into(),
            vec![
                ("username", "newbie".into()),
                ("email", "newbie@example.com".into()),
                ("password", PASSWORD.into()),
                ("password_confirm", PASSWORD.into()),
            ],
        ),
        (
            "/login".into(),
            vec![("username", "boss".into()), ("password", PASSWORD.into())],
        ),
        ("/logout".into(), vec![]),
        (
            "/account/password".into(),
            vec![
                ("current_password", PASSWORD.into()),
                ("new_password", "other-Lantern-orbit-31".into()),
                ("new_password_confirm", "other-Lantern-orbit-31".into()),
            ],
        ),
        (format!("/account/sessions/{sid}/revoke"), vec![]),
        ("/account/sessions/revoke-others".into(), vec![]),
        ("/account/logout-everywhere".into(), vec![]),
        (
            format!("/admin/users/{user_id}/role"),
            vec![("role", "admin".into())],
        ),
        (format!("/admin/users/{user_id}/disable"), vec![]),
        (format!("/admin/users/{user_id}/enable"), vec![]),
        (format!("/admin/users/{user_id}/unlock"), vec![]),
        (format!("/admin/users/{user_id}/sessions/revoke"), vec![]),
        (
            format!("/admin/users/{user_id}/sessions/{sid}/revoke"),
            vec![],
        ),
    ]
}

/// A signed-in admin with a second user who has a live session; returns (target user id, sid).
fn setup(app: &TestApp) -> (String, String) {
    let target = app.create_user("target", Role::User);
    let session = Session::new(
        &target.id,
        app.clock().db_now(),
        time::Duration::hours(1),
        false,
        "x",
        "",
    );
    session.insert(&mut app.pool().get().unwrap()).unwrap();
    app.sign_in_as("boss", Role::Admin);
    (target.id, session.id)
}

/// Nothing the forms could change has changed.
fn assert_unchanged(app: &TestApp, target_id: &str, sid: &str) {
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::Ok,
        "still signed in"
    );
    let target = app.user("target").unwrap();
    assert_eq!(target.id, target_id);
    assert_eq!(target.role, "user");
    assert!(!target.disabled);
    assert!(app.user("newbie").is_none());
    let row = Session::find(&mut app.pool().get().unwrap(), sid)
        .unwrap()
        .unwrap();
    assert!(row.revoked_at.is_none());
    app.logout();
    assert_eq!(
        app.login("boss", PASSWORD).status(),
        Status::SeeOther,
        "password unchanged"
    );
}

fn assert_refused_page(response: rocket::local::blocking::LocalResponse<'_>, what: &str) {
    assert_eq!(response.status(), Status::Forbidden, "{what}");
    let body = response.into_string().unwrap();
    assert!(body.contains(RELOAD), "{what}: the page says to reload");
}

#[test]
fn every_form_without_a_token_is_refused_and_changes_nothing() {
    let app = spawn_app();
    let (target, sid) = setup(&app);
    for (uri, fields) in post_routes(&target, &sid) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_refused_page(app.post_raw(&uri, &fields), &uri);
    }
    assert_unchanged(&app, &target, &sid);
}

#[test]
fn every_form_with_a_wrong_token_is_refused_and_changes_nothing() {
    let app = spawn_app();
    let (target, sid) = setup(&app);
    // A token that is well-formed but made for another session.
    let other = second_instance(&app);
    let foreign = csrf_token_of(&other);
    for (uri, fields) in post_routes(&target, &sid) {
        for bad in [foreign.as_str(), "not-a-token", ""] {
            let mut fields: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("csrf_token", bad));
            assert_refused_page(app.post_raw(&uri, &fields), &uri);
        }
    }
    assert_unchanged(&app, &target, &sid);
}

#[test]
fn every_form_posted_from_another_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app();
    let (target, sid) = setup(&app);
    for (uri, fields) in post_routes(&target, &sid) {
        for (name, value) in [
            ("Origin", "http://evil.example"),
            ("Origin", "null"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
        ] {
            let token = app.csrf_token();
            let mut fields: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("csrf_token", &token));
            let response = app
                .client
                .post(uri.clone())
                .header(ContentType::Form)
                .header(Header::new("Host", "latchkey.test"))
                .header(Header::new(name, value))
                .body(form(&fields))
                .dispatch();
            assert_refused_page(response, &format!("{uri} with {name}: {value}"));
        }
    }
    assert_unchanged(&app, &target, &sid);
}

#[test]
fn same_origin_headers_are_accepted() {
    let app = spawn_app();
    app.create_user("boss", Role::Admin);
    let token = app.csrf_token();
    let response = app
        .client
        .post("/login")
        .header(ContentType::Form)
        .header(Header::new("Host", "latchkey.test:8000"))
        .header(Header::new("Origin", "http://latchkey.test:8000"))
        .header(Header::new("Sec-Fetch-Site", "same-origin"))
        .body(form(&[
            ("username", "boss"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
}

#[test]
fn a_configured_public_origin_is_the_only_one_accepted() {
    let app = spawn_app_with(|f| f.merge(("public_origin", "https://login.example.com")));
    app.create_user("boss", Role::Admin);
    for (origin, expected) in [
        ("https://evil.example", Status::Forbidden),
        ("https://login.example.com", Status::SeeOther),
    ] {
        let token = app.csrf_token();
        let response = app
            .client
            .post("/login")
            .header(ContentType::Form)
            .header(Header::new("Origin", origin))
            .body(form(&[
                ("username", "boss"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ]))
            .dispatch();
        assert_eq!(response.status(), expected, "{origin}");
    }
}

#[test]
fn the_login_form_token_is_bound_to_the_pre_session_cookie() {
    let app = spawn_app();
    app.create_user("boss", Role::Admin);
    let page = app.client.get("/login").dispatch();
    let cookie = page
        .cookies()
        .get("latchkey_csrf")
        .expect("pre-session cookie")
        .clone();
    assert!(cookie.http_only().unwrap_or(false));
    let token = csrf_in(&page.into_string().unwrap()).unwrap();
    // Another browser (without that cookie) cannot use the token.
    let other = second_instance(&app);
    let response = other
        .post("/login")
        .header(ContentType::Form)
        .body(form(&[
            ("username", "boss"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::Forbidden);
    assert!(token_from(&response).is_none());
}

#[test]
fn every_post_form_on_every_page_carries_the_token() {
    let app = spawn_app();
    let (target, _) = setup(&app);
    for page in [
        "/",
        "/private",
        "/account",
        "/account/sessions",
        "/admin",
        &format!("/admin/users/{target}"),
        "/admin/audit",
        "/login",
        "/signup",
        "/missing",
    ] {
        let body = app
            .client
            .get(page.to_string())
            .dispatch()
            .into_string()
            .unwrap();
        let forms = body.matches("method=\"post\"").count();
        assert!(forms > 0, "{page} has a form");
        assert_eq!(body.matches("name=\"csrf_token\"").count(), forms, "{page}");
    }
}
