//! `POST /signup`: each rule, duplicates (also concurrent), and bad input changing nothing.

use rocket::http::{ContentType, Status};

use crate::helpers::*;

#[test]
fn signup_creates_the_account_signs_in_and_goes_to_private() {
    let app = spawn_app();
    let response = app.signup("alice", "Alice@Example.com", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    assert!(session_set_cookie(&response, COOKIE).is_some());
    drop(response);

    let user = app.user("alice").expect("stored");
    assert_eq!(user.email, "Alice@Example.com");
    assert_eq!(user.role, "user");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(!user.password_hash.contains(PASSWORD));

    let private = app.client.get("/private").dispatch();
    assert_eq!(private.status(), Status::Ok);
    let body = private.into_string().unwrap();
    assert!(body.contains("alice"));
    assert!(body.contains("Welcome, alice"), "flash shown once");
}

#[test]
fn signup_form_has_labelled_fields_with_autocomplete() {
    let app = spawn_app();
    let body = app.client.get("/signup").dispatch().into_string().unwrap();
    for needle in [
        r#"name="username""#,
        r#"name="email""#,
        r#"name="password""#,
        r#"name="password_confirm""#,
        r#"autocomplete="new-password""#,
        r#"autocomplete="email""#,
        r#"for="username""#,
    ] {
        assert!(body.contains(needle), "{needle}");
    }
}

/// Posts a signup, expects the form again with 422, `message` beside `field`, and nothing stored.
fn assert_refused(fields: &[(&str, &str)], message: &str) {
    let app = spawn_app();
    let response = app.post_form("/signup", fields);
    assert_eq!(response.status(), Status::UnprocessableEntity, "{fields:?}");
    assert!(response.headers().get_one("Set-Cookie").is_none() || app.session_cookie().is_none());
    let body = response.into_string().unwrap();
    assert!(
        body.contains(message),
        "expected {message:?} for {fields:?}"
    );
    assert!(body.contains("field-error"));
    for (name, value) in fields {
        if name.starts_with("password") && !value.is_empty() {
            assert!(
                !body.contains(&format!("value=\"{value}\"")),
                "password echoed back"
            );
        }
    }
    assert_eq!(app.user_count(), 0, "nothing stored for {fields:?}");
    assert!(app.session_cookie().is_none());
}

fn fields<'a>(
    username: &'a str,
    email: &'a str,
    password: &'a str,
    confirm: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("username", username),
        ("email", email),
        ("password", password),
        ("password_confirm", confirm),
    ]
}

#[test]
fn username_rules_are_enforced() {
    assert_refused(
        &fields("", "a@example.com", PASSWORD, PASSWORD),
        "Enter a username.",
    );
    assert_refused(
        &fields("ab", "a@example.com", PASSWORD, PASSWORD),
        "3 to 32 characters",
    );
    let long = "a".repeat(33);
    assert_refused(
        &fields(&long, "a@example.com", PASSWORD, PASSWORD),
        "3 to 32 characters",
    );
    assert_refused(
        &fields("bob smith", "a@example.com", PASSWORD, PASSWORD),
        "Use only letters",
    );
    assert_refused(
        &fields("b\u{f6}b", "a@example.com", PASSWORD, PASSWORD),
        "Use only letters",
    );
    assert_refused(
        &fields("bob\u{202e}x", "a@example.com", PASSWORD, PASSWORD),
        "Use only letters",
    );
}

#[test]
fn email_rules_are_enforced() {
    assert_refused(
        &fields("bob", "", PASSWORD, PASSWORD),
        "Enter your email address.",
    );
    for bad in [
        "bob",
        "bob@",
        "bob@localhost",
        "bob@@example.com",
        "bob @example.com",
    ] {
        assert_refused(&fields("bob", bad, PASSWORD, PASSWORD), "name@example.com");
    }
}

#[test]
fn password_rules_are_enforced() {
    assert_refused(
        &fields("bob", "bob@example.com", "", ""),
        "Enter a password.",
    );
    assert_refused(
        &fields("bob", "bob@example.com", "Sh0rt-pw", "Sh0rt-pw"),
        "at least 12 characters",
    );
    let long = "Very-long-passphrase ".repeat(7);
    assert_refused(
        &fields("bob", "bob@example.com", &long, &long),
        "at most 128 characters",
    );
    assert_refused(
        &fields("bob", "bob@example.com", "password1234", "password1234"),
        "too easy to guess",
    );
    assert_refused(
        &fields(
            "bobbyjones",
            "bob@example.com",
            "bobbyjones1234",
            "bobbyjones1234",
        ),
        "too easy to guess",
    );
    assert_refused(
        &fields(
            "bob",
            "bob@example.com",
            PASSWORD,
            "something-else-entirely",
        ),
        "do not match",
    );
}

#[test]
fn any_unicode_password_of_the_right_length_is_accepted() {
    let app = spawn_app();
    let password = "ключ-🔑-clé-鍵-schlüssel";
    let response = app.signup("uni", "uni@example.com", password);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    app.logout();
    assert_eq!(app.login("uni", password).status(), Status::SeeOther);
}

#[test]
fn missing_fields_each_get_a_message_and_values_are_kept() {
    let app = spawn_app();
    let response = app.post_form("/signup", &[("username", "keepme")]);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body = response.into_string().unwrap();
    assert!(body.contains("Enter your email address."));
    assert!(body.contains("Enter a password."));
    assert!(body.contains(r#"value="keepme""#), "entered username kept");
    assert_eq!(app.user_count(), 0);
}

#[test]
fn a_body_that_is_not_a_form_changes_nothing() {
    let app = spawn_app();
    let response = app
        .client
        .post("/signup")
        .header(ContentType::JSON)
        .body(r#"{"username":"x"}"#)
        .dispatch();
    assert!(response.status().code >= 400 && response.status().code < 500);
    assert_eq!(app.user_count(), 0);
}

#[test]
fn oversized_body_is_refused_with_413() {
    let app = spawn_app();
    let huge = "a".repeat(100 * 1024);
    let response = app.post_form(
        "/signup",
        &[("username", &huge), ("email", "a@example.com")],
    );
    assert_eq!(response.status(), Status::PayloadTooLarge);
    let body = response.into_string().unwrap();
    assert!(body.contains("too large"));
    assert_eq!(app.user_count(), 0);
}

#[test]
fn taken_username_and_email_are_refused_regardless_of_case() {
    let app = spawn_app();
    app.create_user("carol", latchkey::models::Role::User);
    app.client.cookies().remove(COOKIE);
    let response = app.signup("CAROL", "other@example.com", PASSWORD);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response.into_string().unwrap().contains("already taken"));
    let response = app.signup("carol2", "Carol@EXAMPLE.com", PASSWORD);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("already registered"));
    assert_eq!(app.user_count(), 1);
}

#[test]
fn markup_in_input_is_escaped_when_shown_again() {
    let app = spawn_app();
    let response = app.post_form(
        "/signup",
        &[
            ("username", "<script>alert(1)</script>"),
            ("email", "\"><img src=x onerror=alert(1)>"),
        ],
    );
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let body = response.into_string().unwrap();
    assert!(!body.contains("<script>alert(1)"));
    assert!(!body.contains("<img src=x"));
    assert!(body.contains("&lt;script&gt;"));
}

#[test]
fn concurrent_duplicate_signups_leave_exactly_one_account() {
    use rocket::local::asynchronous::Client;

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    let figment = base_figment(db.url());
    rocket::async_test(async move {
        let client = Client::untracked(latchkey::rocket(figment)).await.unwrap();
        let page = client.get("/signup").dispatch().await;
        let cookie = page
            .cookies()
            .get("latchkey_csrf")
            .unwrap()
            .clone()
            .into_owned();
        let token = csrf_in(&page.into_string().await.unwrap()).unwrap();
        let attempts = (0..8).map(|i| {
            let (client, cookie, token) = (&client, cookie.clone(), token.clone());
            async move {
                let body = form(&[
                    ("username", if i % 2 == 0 { "racer" } else { "RACER" }),
                    ("email", &format!("racer{i}@example.com")),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                    ("csrf_token", &token),
                ]);
                let response = client
                    .post("/signup")
                    .header(ContentType::Form)
                    .cookie(cookie)
                    .body(body)
                    .dispatch()
                    .await;
                let status = response.status();
                let text = response.into_string().await.unwrap_or_default();
                (status, text)
            }
        });
        let results = futures::future::join_all(attempts).await;
        let created = results
            .iter()
            .filter(|(s, _)| *s == Status::SeeOther)
            .count();
        assert_eq!(created, 1, "exactly one signup wins");
        for (status, text) in results.iter().filter(|(s, _)| *s != Status::SeeOther) {
            assert_eq!(*status, Status::UnprocessableEntity);
            assert!(text.contains("already taken"));
        }
        let db = client.rocket().state::<latchkey::db::Db>().unwrap();
        let count: i64 = {
            use diesel::{QueryDsl, RunQueryDsl};
            latchkey::db::schema::users::table
                .count()
                .get_result(&mut *db.get().unwrap())
                .unwrap()
        };
        assert_eq!(count, 1);
    });
}
