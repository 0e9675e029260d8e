//! `GET /account` and `POST /account/password`.

use latchkey::models::Role;
use rocket::http::Status;

use crate::helpers::*;

const NEW_PASSWORD: &str = "another-Lantern-orbit-91";

fn change(app: &TestApp, current: &str, new: &str, confirm: &str) -> Status {
    app.post_form(
        "/account/password",
        &[
            ("current_password", current),
            ("new_password", new),
            ("new_password_confirm", confirm),
        ],
    )
    .status()
}

#[test]
fn account_page_shows_details_and_requires_sign_in() {
    let app = spawn_app();
    assert_eq!(
        app.client.get("/account").dispatch().status(),
        Status::SeeOther
    );
    app.sign_in_as("yuri", Role::User);
    let response = app.client.get("/account").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    assert!(body.contains("yuri@example.com"));
    assert!(body.contains(r#"autocomplete="current-password""#));
}

#[test]
fn password_change_needs_the_current_password() {
    let app = spawn_app();
    app.sign_in_as("zoe", Role::User);
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", "wrong-wrong-wrong"),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That is not your current password."));
    app.logout();
    assert_eq!(
        app.login("zoe", PASSWORD).status(),
        Status::SeeOther,
        "old password still works"
    );
}

#[test]
fn new_password_follows_the_rules() {
    let app = spawn_app();
    app.sign_in_as("amy", Role::User);
    assert_eq!(
        change(&app, PASSWORD, "short", "short"),
        Status::UnprocessableEntity
    );
    assert_eq!(
        change(&app, PASSWORD, "password1234", "password1234"),
        Status::UnprocessableEntity
    );
    assert_eq!(
        change(&app, PASSWORD, NEW_PASSWORD, "different-Lantern-91"),
        Status::UnprocessableEntity
    );
    assert_eq!(
        change(&app, PASSWORD, PASSWORD, PASSWORD),
        Status::UnprocessableEntity
    );
    assert_eq!(change(&app, "", "", ""), Status::UnprocessableEntity);
    app.logout();
    assert_eq!(
        app.login("amy", PASSWORD).status(),
        Status::SeeOther,
        "nothing changed"
    );
}

#[test]
fn password_change_replaces_the_password() {
    let app = spawn_app();
    app.sign_in_as("ben", Role::User);
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account");
    drop(response);
    assert!(app
        .client
        .get("/account")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("Your password has been changed."));
    app.logout();
    assert_eq!(
        app.login("ben", PASSWORD).status(),
        Status::UnprocessableEntity
    );
    assert_eq!(app.login("ben", NEW_PASSWORD).status(), Status::SeeOther);
}

#[test]
fn password_change_when_signed_out_goes_to_sign_in() {
    let app = spawn_app();
    let response = app.post_form("/account/password", &[("current_password", PASSWORD)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login");
}
