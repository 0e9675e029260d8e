//! Sudo mode: sensitive actions need a proof (password, or the two-factor code) within
//! `sudo_window_secs`; otherwise "Confirm it's you", then back. Renewals carry the proof's time
//! and never refresh it; the API says `reauthentication_required`.

use latchkey::auth::two_factor::code_at;
use latchkey::models::{ApiKey, KeyScope, Role, Session, TwoFactor};
use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::LocalResponse;
use time::Duration;

use crate::helpers::*;

/// Eleven minutes: past the 10-minute window, within the idle timeout (renewals keep the
/// session going).
fn eleven_minutes(app: &TestApp) {
    for _ in 0..11 {
        app.clock().advance(Duration::minutes(1));
        assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    }
}

/// POSTs a form from `page` (with its `Referer`), as a browser does.
fn post_from<'a>(
    app: &'a TestApp,
    page: &str,
    uri: &str,
    pairs: &[(&str, &str)],
) -> LocalResponse<'a> {
    let token = app.csrf_token();
    let mut fields = pairs.to_vec();
    fields.push(("csrf_token", &token));
    app.client
        .post(uri.to_string())
        .header(ContentType::Form)
        .header(Header::new("Host", "localhost"))
        .header(Header::new("Referer", format!("http://localhost{page}")))
        .body(form(&fields))
        .dispatch()
}

fn role_of(app: &TestApp, username: &str) -> Role {
    app.user(username).unwrap().role()
}

fn auth_time_of_cookie(app: &TestApp) -> i64 {
    let token = app.session_cookie().unwrap().value().to_string();
    claims_of(&token)["auth_time"].as_i64().expect("auth_time")
}

#[test]
fn an_admin_change_after_the_window_asks_to_confirm_then_applies() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let signed_in_at = auth_time_of_cookie(&app);
    let target = app.create_user("tess", Role::User);
    let page = format!("/admin/users/{}", target.id);
    let role_form = format!("/admin/users/{}/role", target.id);
    eleven_minutes(&app);
    // Renewals carried the sign-in's proof time, never a new one.
    assert_eq!(auth_time_of_cookie(&app), signed_in_at);

    let response = post_from(&app, &page, &role_form, &[("role", "admin")]);
    assert_eq!(response.status(), Status::SeeOther);
    let confirm = location(&response);
    assert_eq!(confirm, format!("/confirm?next={page}"));
    drop(response);
    assert_eq!(role_of(&app, "tess"), Role::User, "nothing changed");

    let response = app.client.get(confirm.clone()).dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    assert!(body.contains("Confirm it&#x27;s you") || body.contains("Confirm it's you"));
    // Admins use two-factor: the proof is the app's current code.
    assert!(body.contains(r#"autocomplete="one-time-code""#));

    let response = app.post_form(&confirm, &[("code", "000000")]);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That code is not right"));
    assert_eq!(audit_events(&app, "sudo_failed").len(), 1);

    let code = app.code_for("boss");
    let response = app.post_form(&confirm, &[("code", &code)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), page);
    drop(response);
    assert_eq!(audit_events(&app, "sudo_proof").len(), 1);
    assert!(auth_time_of_cookie(&app) > signed_in_at);

    let response = post_from(&app, &page, &role_form, &[("role", "admin")]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_ne!(location(&response), format!("/confirm?next={page}"));
    drop(response);
    assert_eq!(role_of(&app, "tess"), Role::Admin);
}

#[test]
fn a_fresh_sign_in_needs_no_confirmation_and_every_admin_action_needs_one_later() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let target = app.create_user("tess", Role::User);
    let page = format!("/admin/users/{}", target.id);
    let response = post_from(&app, &page, &format!("{page}/disable"), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), page);
    drop(response);
    assert!(app.user("tess").unwrap().disabled);
    // Something for each action to change (disabling ended the sessions and keys there were).
    app.enable_two_factor(&target);
    let now = app.clock().db_now();
    let session = Session::new(&target.id, now, Duration::hours(12), false, "x", "");
    session.insert(&mut app.pool().get().unwrap()).unwrap();
    let (key, _) = ApiKey::generate(&target.id, "cron", KeyScope::Full, now, None);
    key.insert(&mut app.pool().get().unwrap()).unwrap();

    eleven_minutes(&app);
    let actions = [
        "enable".to_string(),
        "unlock".to_string(),
        "two-factor/reset".to_string(),
        format!("sessions/{}/revoke", session.id),
        format!("api-keys/{}/revoke", key.id),
        "sessions/revoke".to_string(),
        "role".to_string(),
    ];
    let act = |action: &str| {
        let response = post_from(
            &app,
            &page,
            &format!("{page}/{action}"),
            &[("role", "admin")],
        );
        assert_eq!(response.status(), Status::SeeOther, "{action}");
        location(&response)
    };
    for action in &actions {
        assert_eq!(act(action), format!("/confirm?next={page}"), "{action}");
    }
    assert!(app.user("tess").unwrap().disabled, "still disabled");
    assert_eq!(role_of(&app, "tess"), Role::User);
    let mut conn = app.pool().get().unwrap();
    assert!(Session::find(&mut conn, &session.id)
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(ApiKey::for_user(&mut conn, &target.id).unwrap()[0]
        .revoked_at
        .is_none());
    drop(conn);

    // After "Confirm it's you", each goes through.
    let code = app.code_for("boss");
    let response = app.post_form(&format!("/confirm?next={page}"), &[("code", &code)]);
    assert_eq!(location(&response), page);
    drop(response);
    for action in &actions {
        assert_eq!(act(action), page, "{action}");
    }
    assert!(!app.user("tess").unwrap().disabled);
    assert_eq!(role_of(&app, "tess"), Role::Admin);
    let mut conn = app.pool().get().unwrap();
    assert!(Session::find(&mut conn, &session.id)
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(ApiKey::for_user(&mut conn, &target.id).unwrap()[0]
        .revoked_at
        .is_some());
    assert!(TwoFactor::find(&mut conn, &target.id).unwrap().is_none());
}

#[test]
fn a_two_factor_user_confirms_with_a_code_before_making_an_api_key() {
    let app = spawn_app();
    let user = app.create_user("otto", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let response = app.post_form("/login", &[("username", "otto"), ("password", PASSWORD)]);
    let step = location(&response);
    drop(response);
    let code = code_at(&secret, app.clock().now()).unwrap();
    let response = app.post_form(&step, &[("code", &code)]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    eleven_minutes(&app);

    let make = [
        ("name", "laptop"),
        ("scope", "read"),
        ("expires_in_days", "30"),
    ];
    let response = post_from(&app, "/account/api-keys", "/account/api-keys", &make);
    assert_eq!(response.status(), Status::SeeOther);
    let confirm = location(&response);
    assert_eq!(confirm, "/confirm?next=/account/api-keys");
    drop(response);
    let keys = || {
        ApiKey::for_user(&mut app.pool().get().unwrap(), &user.id)
            .unwrap()
            .len()
    };
    assert_eq!(keys(), 0);

    let body = app
        .client
        .get(confirm.clone())
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        body.contains(r#"autocomplete="one-time-code""#),
        "asks for the code"
    );
    // With two-factor on, the password alone is not the proof.
    let response = app.post_form(&confirm, &[("password", PASSWORD)]);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    drop(response);
    app.clock().advance(Duration::seconds(30));
    let code = code_at(&secret, app.clock().now()).unwrap();
    let response = app.post_form(&confirm, &[("code", &code)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account/api-keys");
    drop(response);

    // Sudo mode, and with two-factor on the key takes the current code as well.
    let response = post_from(&app, "/account/api-keys", "/account/api-keys", &make);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That code is not right"));
    assert_eq!(keys(), 0);
    app.clock().advance(Duration::seconds(30));
    let code = code_at(&secret, app.clock().now()).unwrap();
    let mut with_code = make.to_vec();
    with_code.push(("code", &code));
    let response = post_from(&app, "/account/api-keys", "/account/api-keys", &with_code);
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    assert_eq!(keys(), 1);
}

#[test]
fn a_user_without_two_factor_confirms_with_the_password_before_making_an_api_key() {
    let app = spawn_app();
    let user = app.sign_in_as("kit", Role::User);
    eleven_minutes(&app);
    let make = [("name", "cron"), ("scope", "read"), ("expires_in_days", "")];
    let response = post_from(&app, "/account/api-keys", "/account/api-keys", &make);
    let confirm = location(&response);
    assert_eq!(confirm, "/confirm?next=/account/api-keys");
    drop(response);
    let body = app
        .client
        .get(confirm.clone())
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains(r#"autocomplete="current-password""#));
    let response = app.post_form(&confirm, &[("password", "not-the-password")]);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That is not your password."));
    assert_eq!(audit_events(&app, "sudo_failed").len(), 1);
    let response = app.post_form(&confirm, &[("password", PASSWORD)]);
    assert_eq!(location(&response), "/account/api-keys");
    drop(response);
    assert_eq!(audit_events(&app, "sudo_proof").len(), 1);
    let response = post_from(&app, "/account/api-keys", "/account/api-keys", &make);
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    let keys = ApiKey::for_user(&mut app.pool().get().unwrap(), &user.id).unwrap();
    assert_eq!(keys.len(), 1);
}

#[test]
fn next_never_leaves_the_site() {
    let app = spawn_app();
    app.sign_in_as("kit", Role::User);
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let uri = format!(
            "/confirm?next={}",
            latchkey::text::percent_encode(next, b"")
        );
        let response = app.post_form(&uri, &[("password", PASSWORD)]);
        assert_eq!(response.status(), Status::SeeOther, "{next}");
        assert_eq!(location(&response), "/account", "{next}");
    }
}

#[test]
fn a_token_whose_auth_time_is_after_it_was_issued_is_refused() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let mut claims = app.claims_for(&user);
    claims.sid = app.session_id();
    claims.auth_time = Some(claims.iat + 60);
    let me = |claims: &latchkey::auth::Claims| {
        let token = app.tokens().sign(claims).unwrap();
        app.client
            .get("/api/me")
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch()
            .status()
    };
    assert_eq!(me(&claims), Status::Unauthorized);
    claims.auth_time = Some(claims.iat);
    assert_eq!(me(&claims), Status::Ok);
}

/// A Bearer token for `username` from the password grant (with their app's code when enrolled).
fn api_token(app: &TestApp, username: &str, otp: Option<&str>) -> String {
    let mut grant = serde_json::json!({ "username": username, "password": PASSWORD });
    if let Some(otp) = otp {
        grant["otp"] = otp.into();
    }
    let response = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(grant.to_string())
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    let answer: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

/// `POST /api/admin/users/<id>/sessions/revoke` with `token`: the status and the JSON answer.
fn end_sessions_by_api(app: &TestApp, id: &str, token: &str) -> (Status, serde_json::Value) {
    let response = app
        .client
        .post(format!("/api/admin/users/{id}/sessions/revoke"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    let status = response.status();
    let body = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or_default())
}

#[test]
fn the_api_asks_for_a_fresh_token_before_an_admin_ends_someones_sessions() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let target = app.create_user("tess", Role::User);
    let tess = api_token(&app, "tess", None);
    let code = app.code_for("boss");
    let fresh = api_token(&app, "boss", Some(&code));

    // Eleven minutes on, the token still lives (15 minutes) but its proof is too old.
    app.clock().advance(Duration::minutes(11));
    let (status, answer) = end_sessions_by_api(&app, &target.id, &fresh);
    assert_eq!(status, Status::Forbidden);
    assert_eq!(answer["error"], "reauthentication_required", "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("POST /api/token"));
    let me = |token: &str| {
        app.client
            .get("/api/me")
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch()
            .status()
    };
    assert_eq!(me(&tess), Status::Ok, "nothing changed");

    // The documented way back: a new token from the password grant.
    let code = app.code_for("boss");
    let renewed = api_token(&app, "boss", Some(&code));
    let (status, answer) = end_sessions_by_api(&app, &target.id, &renewed);
    assert_eq!(status, Status::Ok, "{answer}");
    assert_eq!(answer["sessions_ended"], 1);
    assert_eq!(me(&tess), Status::Unauthorized);

    let (status, answer) = end_sessions_by_api(&app, "no-such-user", &renewed);
    assert_eq!(
        (status, answer["error"].clone()),
        (Status::NotFound, "not_found".into())
    );
    let (status, answer) = end_sessions_by_api(&app, &target.id, &api_token(&app, "tess", None));
    assert_eq!(status, Status::Forbidden);
    assert_eq!(answer["error"], "insufficient_scope");
}
