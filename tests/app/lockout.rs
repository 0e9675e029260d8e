//! Account lockout (in the database, shared by instances) and per-client throttling.

use latchkey::models::{LoginAttempt, Role};
use rocket::http::Status;
use rocket::local::blocking::LocalResponse;
use time::Duration;

use crate::helpers::*;

const WRONG: &str = "definitely-Wrong-pass-1";

fn retry_after(response: &LocalResponse<'_>) -> u64 {
    response
        .headers()
        .get_one("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap()
}

#[test]
fn five_failures_lock_the_account_even_for_the_right_password() {
    let app = spawn_app();
    app.create_user("lock", Role::User);
    for _ in 0..4 {
        assert_eq!(
            app.login("lock", WRONG).status(),
            Status::UnprocessableEntity
        );
    }
    let fifth = app.login("lock", WRONG);
    assert_eq!(fifth.status(), Status::TooManyRequests);
    assert!(
        (55..=60).contains(&retry_after(&fifth)),
        "first lock is a minute"
    );
    assert!(fifth
        .into_string()
        .unwrap()
        .contains("Too many failed sign-ins. Try again in 1 minute."));

    let right = app.login("lock", PASSWORD);
    assert_eq!(
        right.status(),
        Status::TooManyRequests,
        "locked even with the right password"
    );
    assert!(token_from(&right).is_none());
    drop(right);

    app.clock().advance(Duration::seconds(61));
    assert_eq!(
        app.login("lock", PASSWORD).status(),
        Status::SeeOther,
        "lock over"
    );
    let key = LoginAttempt::key_for_user(&app.user("lock").unwrap().id);
    assert!(
        LoginAttempt::find(&mut app.pool().get().unwrap(), &key)
            .unwrap()
            .is_none(),
        "success resets"
    );
}

#[test]
fn lockouts_grow_longer() {
    let app = spawn_app();
    app.create_user("grow", Role::User);
    let mut waits = Vec::new();
    for _ in 0..3 {
        let mut last = None;
        for _ in 0..5 {
            last = Some(app.login("grow", WRONG));
        }
        let response = last.unwrap();
        assert_eq!(response.status(), Status::TooManyRequests);
        let wait = retry_after(&response);
        drop(response);
        waits.push(wait);
        app.clock().advance(Duration::seconds(wait as i64 + 1));
    }
    assert!((55..=60).contains(&waits[0]), "{waits:?}");
    assert!((295..=300).contains(&waits[1]), "{waits:?}");
    assert!((895..=900).contains(&waits[2]), "{waits:?}");
}

#[test]
fn unknown_usernames_get_the_same_answers() {
    let app = spawn_app();
    app.create_user("real", Role::User);
    let mut answers = Vec::new();
    for name in ["real", "imaginary"] {
        let mut statuses = Vec::new();
        let mut last_body = String::new();
        for _ in 0..6 {
            let response = app.login(name, WRONG);
            statuses.push(response.status().code);
            last_body = response.into_string().unwrap();
        }
        answers.push((statuses, last_body.replace(name, "NAME")));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, vec![422, 422, 422, 422, 429, 429]);
}

#[test]
fn failures_are_counted_across_instances() {
    let app = spawn_app();
    app.create_user("shared", Role::User);
    let other = second_instance(&app);
    for i in 0..4 {
        let client = if i % 2 == 0 { &app.client } else { &other };
        assert_eq!(
            login_with(client, "shared", WRONG).status(),
            Status::UnprocessableEntity
        );
    }
    assert_eq!(
        login_with(&other, "shared", WRONG).status(),
        Status::TooManyRequests
    );
    assert_eq!(
        login_with(&app.client, "shared", PASSWORD).status(),
        Status::TooManyRequests,
        "locked on A too"
    );
}

#[test]
fn concurrent_failures_all_count() {
    let app = spawn_app();
    let user = app.create_user("burst", Role::User);
    let key = LoginAttempt::key_for_user(&user.id);
    let policy = latchkey::models::LockoutPolicy {
        threshold: 100,
        steps: vec![Duration::minutes(1)],
    };
    let now = app.clock().db_now();
    let pool = app.pool().clone();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    LoginAttempt::record_failure(&mut pool.get().unwrap(), &key, now, &policy)
                        .unwrap();
                }
            });
        }
    });
    let row = LoginAttempt::find(&mut app.pool().get().unwrap(), &key)
        .unwrap()
        .unwrap();
    assert_eq!(row.failures, 20);
}

#[test]
fn an_admin_can_unlock() {
    let app = spawn_app();
    let user = app.create_user("stuck", Role::User);
    for _ in 0..5 {
        app.login("stuck", WRONG);
    }
    app.sign_in_as("boss", Role::Admin);
    let page = app
        .client
        .get(format!("/admin/users/{}", user.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("Unlock"));
    let response = app.post_form(&format!("/admin/users/{}/unlock", user.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    app.logout();
    assert_eq!(app.login("stuck", PASSWORD).status(), Status::SeeOther);
}

#[test]
fn too_many_sign_ins_from_one_address_get_429() {
    let app = spawn_app_with(|f| f.merge(("login_per_ip_per_minute", 3)));
    app.create_user("fast", Role::User);
    for _ in 0..3 {
        assert_eq!(
            app.login("nobody", WRONG).status(),
            Status::UnprocessableEntity
        );
    }
    let response = app.login("fast", PASSWORD);
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(retry_after(&response) >= 1);
    let body = response.into_string().unwrap();
    assert!(body.contains("Too many attempts"));
    assert!(
        body.contains("/static/css/app.css"),
        "a page, in the layout"
    );
}

#[test]
fn signup_and_password_change_are_throttled() {
    let app = spawn_app_with(|f| {
        f.merge(("signup_per_ip_per_minute", 2))
            .merge(("password_change_per_user_per_minute", 2))
    });
    for i in 0..2 {
        let response = app.signup(&format!("u{i}x"), "bad-email", PASSWORD);
        assert_eq!(response.status(), Status::UnprocessableEntity);
    }
    let response = app.signup("u9x", "u9x@example.com", PASSWORD);
    assert_eq!(response.status(), Status::TooManyRequests);
    drop(response);
    assert!(app.user("u9x").is_none());

    app.sign_in_as("pw", Role::User);
    for _ in 0..2 {
        let response = app.post_form("/account/password", &[("current_password", WRONG)]);
        assert_eq!(response.status(), Status::UnprocessableEntity);
    }
    let response = app.post_form("/account/password", &[("current_password", WRONG)]);
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response
        .into_string()
        .unwrap()
        .contains("Too many attempts"));
}

/// A wrong-password `/api/token` request on `client`.
fn token_attempt(client: &rocket::local::blocking::Client) -> Status {
    client
        .post("/api/token")
        .header(rocket::http::ContentType::JSON)
        .body(r#"{"username": "nobody", "password": "definitely-Wrong-pass-1"}"#)
        .dispatch()
        .status()
}

/// A sign-up with a bad email on `client`.
fn bad_signup(client: &rocket::local::blocking::Client, username: &str) -> Status {
    let csrf = csrf_token_of(client);
    client
        .post("/signup")
        .header(rocket::http::ContentType::Form)
        .body(form(&[
            ("username", username),
            ("email", "bad-email"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch()
        .status()
}

#[test]
fn per_address_limits_hold_across_two_instances() {
    let app = spawn_app_with(|f| {
        f.merge(("login_per_ip_per_minute", 4))
            .merge(("signup_per_ip_per_minute", 2))
    });
    let other = second_instance(&app);
    // Four sign-in attempts (forms and tokens count alike), spread over both instances.
    for client in [&app.client, &other] {
        assert_eq!(
            login_with(client, "nobody", WRONG).status(),
            Status::UnprocessableEntity
        );
        assert_eq!(token_attempt(client), Status::Unauthorized);
    }
    assert_eq!(
        login_with(&app.client, "nobody", WRONG).status(),
        Status::TooManyRequests,
        "the fifth, on A"
    );
    assert_eq!(token_attempt(&other), Status::TooManyRequests, "and on B");

    assert_eq!(
        bad_signup(&app.client, "first"),
        Status::UnprocessableEntity
    );
    assert_eq!(bad_signup(&other, "second"), Status::UnprocessableEntity);
    assert_eq!(bad_signup(&app.client, "third"), Status::TooManyRequests);
    assert_eq!(bad_signup(&other, "fourth"), Status::TooManyRequests);
}

#[test]
fn when_the_shared_limit_cannot_be_counted_sign_in_and_sign_up_fail_closed() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app();
    app.create_user("closed", Role::User);
    app.pool()
        .get()
        .unwrap()
        .batch_execute("DROP TABLE rate_counters")
        .unwrap();
    let response = app.login("closed", PASSWORD);
    assert!(
        response.status().code >= 500,
        "refused, not let through: {}",
        response.status()
    );
    assert!(token_from(&response).is_none());
    drop(response);
    let response = app.signup("opened", "opened@example.com", PASSWORD);
    assert!(response.status().code >= 500, "{}", response.status());
    drop(response);
    assert!(app.user("opened").is_none());
}
