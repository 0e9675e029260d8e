//! `POST /login`, `POST /logout`, the cookie's attributes and `?next=` safety.

use latchkey::models::Role;
use rocket::http::Status;

use crate::helpers::*;

#[test]
fn login_with_username_sets_the_cookie_and_opens_private() {
    let app = spawn_app();
    app.create_user("dave", Role::User);
    let response = app.login("dave", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    drop(response);
    assert!(app.user("dave").unwrap().last_login_at.is_some());
    let private = app.client.get("/private").dispatch();
    assert_eq!(private.status(), Status::Ok);
    let body = private.into_string().unwrap();
    assert!(body.contains("dave") && body.contains("user"));
}

#[test]
fn login_with_email_in_any_case_works() {
    let app = spawn_app();
    app.create_user("erin", Role::User);
    let response = app.login("ERIN@example.COM", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
}

#[test]
fn login_with_username_in_another_case_works() {
    let app = spawn_app();
    app.create_user("Frank", Role::User);
    assert_eq!(app.login("fRANK", PASSWORD).status(), Status::SeeOther);
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app();
    app.create_user("gina", Role::User);
    let wrong = app.login("gina", "not-the-right-password");
    let wrong_status = wrong.status();
    assert!(session_set_cookie(&wrong, COOKIE).is_none());
    let wrong_body = wrong.into_string().unwrap();
    let unknown = app.login("nobody-here", "not-the-right-password");
    let unknown_status = unknown.status();
    let unknown_body = unknown.into_string().unwrap();

    assert_eq!(wrong_status, Status::UnprocessableEntity);
    assert_eq!(unknown_status, wrong_status);
    assert!(wrong_body.contains("Invalid username or password."));
    assert!(unknown_body.contains("Invalid username or password."));
    assert!(wrong_body.contains(r#"value="gina""#), "username kept");
    assert!(
        !wrong_body.contains("not-the-right-password"),
        "password never echoed"
    );
    assert!(app.session_cookie().is_none());
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::SeeOther
    );
}

#[test]
fn empty_fields_get_messages_beside_them() {
    let app = spawn_app();
    let response = app.post_form("/login", &[]);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body = response.into_string().unwrap();
    assert!(body.contains("Enter your username or email."));
    assert!(body.contains("Enter your password."));
}

#[test]
fn overlong_password_is_refused_without_error() {
    let app = spawn_app();
    app.create_user("hank", Role::User);
    let long = "x".repeat(10_000);
    let response = app.login("hank", &long);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("Invalid username or password."));
}

/// The login page's answer with the per-request CSRF token taken out (it differs on every page).
fn answer_of(response: rocket::local::blocking::LocalResponse<'_>) -> (Status, bool, String) {
    let status = response.status();
    let cookie = session_set_cookie(&response, COOKIE).is_some();
    let body = response.into_string().unwrap();
    let body = match csrf_in(&body) {
        Some(token) => body.replace(&token, "CSRF"),
        None => body,
    };
    (status, cookie, body)
}

/// An admin (so a user can be disabled), "ivy" disabled and "jed" enabled; returns ivy.
fn disabled_ivy_and_jed(app: &TestApp) -> latchkey::models::User {
    app.create_user("root", Role::Admin);
    let ivy = app.create_user("ivy", Role::User);
    app.create_user("jed", Role::User);
    let now = app.clock().db_now();
    latchkey::models::User::set_disabled(&mut app.pool().get().unwrap(), &ivy.id, true, now)
        .unwrap();
    ivy
}

#[test]
fn a_disabled_account_answers_like_a_wrong_password_and_the_audit_trail_says_why() {
    let app = spawn_app_with(|f| f.merge(("lockout_threshold", 3)));
    let ivy = disabled_ivy_and_jed(&app);

    let disabled = answer_of(app.login("ivy", PASSWORD));
    let wrong = answer_of(app.login("jed", "wrong-password-here"));
    assert_eq!(disabled.0, Status::UnprocessableEntity);
    assert_eq!(disabled.0, wrong.0, "same status");
    assert!(!disabled.1, "no session");
    assert!(disabled.2.contains("Invalid username or password."));
    assert!(!disabled.2.to_lowercase().contains("disabled"), "no hint");
    assert_eq!(
        disabled.2.replace("ivy", "NAME"),
        wrong.2.replace("jed", "NAME"),
        "the same page, but for the name typed"
    );

    // It counts towards the lockout exactly as a wrong password does.
    app.login("ivy", PASSWORD);
    app.login("jed", "wrong-password-here");
    let disabled_third = answer_of(app.login("ivy", PASSWORD));
    let wrong_third = answer_of(app.login("jed", "wrong-password-here"));
    assert_eq!(disabled_third.0, Status::TooManyRequests);
    assert_eq!(disabled_third.0, wrong_third.0);
    assert_eq!(
        disabled_third.2.replace("ivy", "NAME"),
        wrong_third.2.replace("jed", "NAME")
    );

    let events = audit_events(&app, "login_failed");
    assert!(
        events
            .iter()
            .any(|e| e.subject_id.as_deref() == Some(ivy.id.as_str())
                && e.detail.as_deref() == Some("disabled")),
        "the reason is in the audit trail"
    );
}

#[test]
fn a_disabled_account_takes_as_long_to_refuse_as_a_wrong_password() {
    // OWASP's argon2 cost, so that skipping the hash check would show.
    let app = spawn_app_with(|f| {
        f.merge(("argon2_memory_kib", 19456))
            .merge(("argon2_iterations", 2))
            .merge(("lockout_threshold", 100))
    });
    disabled_ivy_and_jed(&app);
    // Alternating, and the fastest of each: load on the machine only adds time, to both.
    let timed = |username: &str, password: &str| {
        let start = std::time::Instant::now();
        assert_eq!(
            app.login(username, password).status(),
            Status::UnprocessableEntity
        );
        start.elapsed()
    };
    let (mut disabled, mut wrong) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..7 {
        disabled = disabled.min(timed("ivy", PASSWORD));
        wrong = wrong.min(timed("jed", "wrong-password-here"));
    }
    assert!(
        disabled * 2 > wrong && wrong * 2 > disabled,
        "disabled {disabled:?} vs wrong password {wrong:?}"
    );
}

#[test]
fn session_cookie_is_httponly_lax_root_path_and_ends_with_the_browser() {
    let app = spawn_app();
    app.create_user("jack", Role::User);
    let response = app.login("jack", PASSWORD);
    let cookie = session_set_cookie(&response, COOKIE).expect("cookie set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    assert!(!cookie.contains("Expires"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "debug default is plain http: {cookie}"
    );
}

#[test]
fn remember_me_gives_the_cookie_a_max_age() {
    let app = spawn_app();
    app.create_user("kate", Role::User);
    let response = app.post_form(
        "/login",
        &[
            ("username", "kate"),
            ("password", PASSWORD),
            ("remember", "on"),
        ],
    );
    let cookie = session_set_cookie(&response, COOKIE).expect("cookie set");
    let max_age: i64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (30 * 86400 - 5..=30 * 86400).contains(&max_age),
        "30 days: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"));
}

#[test]
fn secure_cookies_use_the_host_prefix() {
    let app = spawn_app_with(|f| f.merge(("cookie_secure", true)));
    app.create_user("liam", Role::User);
    let response = app.login("liam", PASSWORD);
    let cookie = session_set_cookie(&response, "__Host-latchkey").expect("prefixed cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Path=/"));
    assert!(!cookie.contains("Domain"));
}

#[test]
fn logout_clears_the_cookie_and_private_asks_to_sign_in() {
    let app = spawn_app();
    app.sign_in_as("mia", Role::User);
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    let response = app.logout();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/");
    let removal = session_set_cookie(&response, COOKIE).expect("cookie removed");
    assert!(
        removal.contains("Max-Age=0") || removal.contains("Expires=Thu, 01 Jan 1970"),
        "{removal}"
    );
    drop(response);
    let private = app.client.get("/private").dispatch();
    assert_eq!(private.status(), Status::SeeOther);
    assert_eq!(location(&private), "/login?next=/private");
}

#[test]
fn logout_only_answers_post() {
    let app = spawn_app();
    app.sign_in_as("noah", Role::User);
    let response = app.client.get("/logout").dispatch();
    assert_eq!(response.status(), Status::MethodNotAllowed);
    assert_eq!(response.headers().get_one("Allow"), Some("POST"));
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
}

#[test]
fn local_next_is_followed_after_sign_in() {
    let app = spawn_app();
    app.create_user("olga", Role::User);
    let response = app.post_form(
        "/login?next=%2Faccount",
        &[("username", "olga"), ("password", PASSWORD)],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account");
}

#[test]
fn foreign_next_is_ignored() {
    let app = spawn_app();
    app.create_user("pete", Role::User);
    for next in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%2F%252F%252Fevil.example",
        "%2F%09%2Fevil.example",
        "javascript%3Aalert(1)",
        "evil.example",
    ] {
        let response = app.post_form(
            &format!("/login?next={next}"),
            &[("username", "pete"), ("password", PASSWORD)],
        );
        assert_eq!(response.status(), Status::SeeOther, "{next}");
        assert_eq!(location(&response), "/private", "{next}");
    }
}

#[test]
fn login_form_keeps_a_safe_next_and_drops_a_foreign_one() {
    let app = spawn_app();
    let body = app
        .client
        .get("/login?next=%2Fadmin")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        body.contains("/login?next=%2Fadmin"),
        "form posts back with next"
    );
    let body = app
        .client
        .get("/login?next=%2F%2Fevil.example")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(!body.contains("evil.example"));
    assert!(body.contains(r#"autocomplete="current-password""#));
    assert!(body.contains(r#"autocomplete="username""#));
}
