//! API keys end when people expect: a default expiry and a maximum, and every event that should
//! leave no way in — signing out everywhere, a password change (when the box is ticked), an
//! admin ending the user's sessions, disabling them, a two-factor reset — revokes them, each
//! revocation audited with its cause. Keys are listed on the devices page.

use latchkey::models::{ApiKey, KeyScope, Role, User};
use rocket::http::Status;
use time::Duration;

use crate::helpers::*;

/// Stores a full-access key for `user` (the form has its own tests); returns its prefix.
fn key_for(app: &TestApp, user: &User, name: &str) -> String {
    let now = app.clock().db_now();
    let (row, _) = ApiKey::generate(
        &user.id,
        name,
        KeyScope::Full,
        now,
        Some(now + Duration::days(30)),
    );
    row.insert(&mut app.pool().get().unwrap()).unwrap();
    row.prefix
}

fn active_keys(app: &TestApp, user: &User) -> usize {
    let now = app.clock().db_now();
    ApiKey::for_user(&mut app.pool().get().unwrap(), &user.id)
        .unwrap()
        .into_iter()
        .filter(|k| k.status(now) == "active")
        .count()
}

fn revocation_causes(app: &TestApp) -> Vec<String> {
    audit_events(app, "api_key_revoked")
        .into_iter()
        .filter_map(|e| e.detail)
        .collect()
}

#[test]
fn a_key_made_without_an_expiry_lives_the_default_90_days() {
    let app = spawn_app();
    let user = app.sign_in_as("kit", Role::User);
    let response = app.post_form(
        "/account/api-keys",
        &[("name", "cron"), ("scope", "read"), ("expires_in_days", "")],
    );
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    let keys = ApiKey::for_user(&mut app.pool().get().unwrap(), &user.id).unwrap();
    let expires = keys[0].expires_at.expect("an expiry");
    assert_eq!(expires - keys[0].created_at, Duration::days(90));
}

#[test]
fn signing_out_everywhere_revokes_the_keys() {
    let app = spawn_app();
    let user = app.sign_in_as("kit", Role::User);
    key_for(&app, &user, "cron");
    key_for(&app, &user, "backup");
    let page = app
        .client
        .get("/account/sessions")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        page.contains("cron") && page.contains("backup"),
        "listed on the devices page"
    );
    let response = app.post_form("/account/logout-everywhere", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(active_keys(&app, &user), 0);
    let causes = revocation_causes(&app);
    assert_eq!(causes.len(), 2);
    assert!(
        causes.iter().all(|c| c.ends_with("signed out everywhere")),
        "{causes:?}"
    );
}

#[test]
fn a_password_change_revokes_the_keys_when_the_box_is_ticked() {
    let app = spawn_app();
    let user = app.sign_in_as("kit", Role::User);
    key_for(&app, &user, "cron");
    let change = |new: &str, current: &str, revoke: bool| {
        let mut fields = vec![
            ("current_password", current),
            ("new_password", new),
            ("new_password_confirm", new),
        ];
        if revoke {
            fields.push(("revoke_keys", "on"));
        }
        let status = app.post_form("/account/password", &fields).status();
        assert_eq!(status, Status::SeeOther);
    };
    let page = app.client.get("/account").dispatch().into_string().unwrap();
    assert!(
        page.contains(r#"name="revoke_keys" value="on" checked"#),
        "offered, ticked"
    );
    change("a fresh passphrase 1", PASSWORD, false);
    assert_eq!(
        active_keys(&app, &user),
        1,
        "kept when the box is not ticked"
    );
    change("a fresh passphrase 2", "a fresh passphrase 1", true);
    assert_eq!(active_keys(&app, &user), 0);
    assert!(revocation_causes(&app)[0].ends_with("after password change"));
}

#[test]
fn an_admin_ending_the_sessions_or_resetting_two_factor_revokes_the_keys() {
    let app = spawn_app();
    let user = app.create_user("kit", Role::User);
    app.enable_two_factor(&user);
    key_for(&app, &user, "cron");
    app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(&format!("/admin/users/{}/sessions/revoke", user.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(active_keys(&app, &user), 0);
    assert!(revocation_causes(&app)[0].ends_with("sessions ended by an administrator"));

    key_for(&app, &user, "backup");
    let response = app.post_form(&format!("/admin/users/{}/two-factor/reset", user.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(active_keys(&app, &user), 0);
    assert!(revocation_causes(&app)[0].ends_with("two-factor reset"));
}

#[test]
fn a_role_change_keeps_the_keys() {
    let app = spawn_app();
    let user = app.create_user("kit", Role::User);
    key_for(&app, &user, "cron");
    app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(
        &format!("/admin/users/{}/role", user.id),
        &[("role", "admin")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(active_keys(&app, &user), 1);
}
