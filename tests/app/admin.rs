//! The admin panel: access by role, search and pages, role changes, disable/enable, last admin.

use latchkey::models::{Role, User};
use rocket::http::Status;

use crate::helpers::*;

#[test]
fn admin_sees_the_panel() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let response = app.client.get("/admin").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    assert!(body.contains("boss@example.com"));
}

#[test]
fn a_user_gets_403_from_the_panel() {
    let app = spawn_app();
    app.sign_in_as("pleb", Role::User);
    let response = app.client.get("/admin").dispatch();
    assert_eq!(response.status(), Status::Forbidden);
    assert!(response
        .into_string()
        .unwrap()
        .contains("This page is for administrators."));
}

#[test]
fn signed_out_visitor_is_sent_to_sign_in_with_next() {
    let app = spawn_app();
    let response = app.client.get("/admin?q=a%20b&page=2").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(
        location(&response),
        "/login?next=/admin%3Fq%3Da%2520b%26page%3D2"
    );
    drop(response);
    app.create_user("boss", Role::Admin);
    let response = app.post_form(
        "/login?next=/admin%3Fq%3Da%2520b%26page%3D2",
        &[("username", "boss"), ("password", PASSWORD)],
    );
    assert_eq!(location(&response), "/admin?q=a%20b&page=2");
}

#[test]
fn admin_actions_are_refused_to_users_and_change_nothing() {
    let app = spawn_app();
    let victim = app.create_user("victim", Role::User);
    app.sign_in_as("pleb", Role::User);
    let me = app.user("pleb").unwrap();
    let response = app.post_form(
        &format!("/admin/users/{}/role", me.id),
        &[("role", "admin")],
    );
    assert_eq!(response.status(), Status::Forbidden);
    let response = app.post_form(&format!("/admin/users/{}/disable", victim.id), &[]);
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(app.user("pleb").unwrap().role, "user");
    assert!(!app.user("victim").unwrap().disabled);
}

#[test]
fn search_matches_username_or_email_and_pages_by_25() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    for i in 0..30 {
        app.create_user(&format!("member{i:02}"), Role::User);
    }
    let body = app.client.get("/admin").dispatch().into_string().unwrap();
    assert!(body.contains("31 users"));
    assert_eq!(body.matches("/role\"").count(), 25, "25 a page");
    let body = app
        .client
        .get("/admin?page=2")
        .dispatch()
        .into_string()
        .unwrap();
    assert_eq!(body.matches("/role\"").count(), 6);
    assert!(body.contains("member29"));

    let body = app
        .client
        .get("/admin?q=MEMBER1")
        .dispatch()
        .into_string()
        .unwrap();
    assert_eq!(body.matches("/role\"").count(), 10, "member10..member19");
    let body = app
        .client
        .get("/admin?q=boss%40example")
        .dispatch()
        .into_string()
        .unwrap();
    assert_eq!(body.matches("/role\"").count(), 1);
    let body = app
        .client
        .get("/admin?q=%25")
        .dispatch()
        .into_string()
        .unwrap();
    assert_eq!(body.matches("/role\"").count(), 0, "% is literal");
    let response = app.client.get("/admin?page=abc").dispatch();
    assert_eq!(
        response.status(),
        Status::Ok,
        "bad page number falls back to 1"
    );
    let response = app.client.get("/admin?page=99999999999999").dispatch();
    assert_eq!(response.status(), Status::Ok);
}

#[test]
fn role_change_takes_effect_at_next_sign_in() {
    let app = spawn_app();
    let target = app.create_user("rise", Role::User);
    app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(
        &format!("/admin/users/{}/role", target.id),
        &[("role", "admin")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/admin");
    drop(response);
    assert_eq!(app.user("rise").unwrap().role, "admin");
    assert!(app
        .client
        .get("/admin")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("rise is now an admin."));

    // A new admin signs in with a password alone: the panel leads them to set up two-factor.
    app.logout();
    app.login("rise", PASSWORD);
    let response = app.client.get("/admin").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account/two-factor");
}

#[test]
fn invalid_role_is_refused_with_a_message() {
    let app = spawn_app();
    let target = app.create_user("sam", Role::User);
    app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(
        &format!("/admin/users/{}/role", target.id),
        &[("role", "superuser")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(app.user("sam").unwrap().role, "user");
    assert!(app
        .client
        .get("/admin")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("Choose a role"));
    let response = app.post_form("/admin/users/no-such-id/role", &[("role", "admin")]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(app
        .client
        .get("/admin")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("no longer exists"));
}

#[test]
fn disable_blocks_sign_in_and_enable_restores_it() {
    let app = spawn_app();
    let target = app.create_user("tina", Role::User);
    app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(&format!("/admin/users/{}/disable", target.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(app.user("tina").unwrap().disabled);
    app.logout();
    let refused = app.login("tina", PASSWORD);
    assert_eq!(refused.status(), Status::UnprocessableEntity);
    let said = refused.into_string().unwrap();
    assert!(
        said.contains("Invalid username or password."),
        "as a wrong password"
    );

    app.sign_in_again("boss");
    let response = app.post_form(&format!("/admin/users/{}/enable", target.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(!app.user("tina").unwrap().disabled);
    app.logout();
    assert_eq!(app.login("tina", PASSWORD).status(), Status::SeeOther);
}

#[test]
fn the_last_admin_cannot_be_demoted_or_disabled() {
    let app = spawn_app();
    let boss = app.sign_in_as("boss", Role::Admin);
    let response = app.post_form(
        &format!("/admin/users/{}/role", boss.id),
        &[("role", "user")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(app.user("boss").unwrap().role, "admin");
    assert!(app
        .client
        .get("/admin")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("no active administrator"));

    // A second admin may be demoted while the first remains; then the first is the last again.
    let other = app.create_user("deputy", Role::Admin);
    let mut conn = app.pool().get().unwrap();
    let now = app.clock().db_now();
    User::set_disabled(&mut conn, &other.id, true, now).unwrap();
    assert!(matches!(
        User::set_disabled(&mut conn, &boss.id, true, now),
        Err(latchkey::error::Error::LastAdmin)
    ));
    assert!(matches!(
        User::set_role(&mut conn, &boss.id, Role::User, now),
        Err(latchkey::error::Error::LastAdmin)
    ));
    User::set_disabled(&mut conn, &other.id, false, now).unwrap();
    User::set_role(&mut conn, &boss.id, Role::User, now).unwrap();
    assert_eq!(User::count_active_admins(&mut conn).unwrap(), 1);
}

#[test]
fn an_admin_cannot_disable_themselves() {
    let app = spawn_app();
    let boss = app.sign_in_as("boss", Role::Admin);
    app.create_user("second", Role::Admin);
    let response = app.post_form(&format!("/admin/users/{}/disable", boss.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(!app.user("boss").unwrap().disabled);
}

#[test]
fn usernames_are_escaped_in_the_panel() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    // Usernames cannot hold markup, but emails may hold quotes and slashes.
    let hash = app
        .client
        .rocket()
        .state::<latchkey::auth::PasswordHasher>()
        .unwrap()
        .hash_blocking(PASSWORD)
        .unwrap();
    let new = latchkey::models::NewUser::new(
        "quote",
        "a'b/c{d}@example.com",
        hash,
        Role::User,
        app.clock().db_now(),
    );
    User::create(&mut app.pool().get().unwrap(), &new)
        .unwrap()
        .unwrap();
    let body = app.client.get("/admin").dispatch().into_string().unwrap();
    assert!(
        body.contains("a&#x27;b&#x2F;c{d}@example.com"),
        "escaped email shown"
    );
}

/// Runs SQL on the site's database (both backends understand these statements).
fn execute(app: &TestApp, sql: &str) {
    use diesel::connection::SimpleConnection;
    app.pool().get().unwrap().batch_execute(sql).unwrap();
}

fn audit_count(app: &TestApp, kind: &str) -> usize {
    let filter = latchkey::models::AuditFilter {
        kind: Some(kind.to_string()),
        ..Default::default()
    };
    latchkey::models::AuditEvent::search(&mut app.pool().get().unwrap(), &filter, 1, 1000)
        .unwrap()
        .0
        .len()
}

#[test]
fn a_role_change_whose_session_revocation_fails_changes_nothing_and_answers_503() {
    let app = spawn_app_without_admin_two_factor();
    let deputy = app.create_user("deputy", Role::Admin);
    let deputy_client = second_instance(&app);
    let deputy_token = login_on(&deputy_client, "deputy", None);
    app.sign_in_as("boss", Role::Admin);

    // The sessions table goes away mid-flight: the role is written first, then the revocation fails.
    execute(&app, "ALTER TABLE sessions RENAME TO sessions_away");
    let response = app.post_form(
        &format!("/admin/users/{}/role", deputy.id),
        &[("role", "user")],
    );
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response
        .into_string()
        .unwrap()
        .contains("temporarily unavailable"));
    execute(&app, "ALTER TABLE sessions_away RENAME TO sessions");

    assert_eq!(
        app.user("deputy").unwrap().role(),
        Role::Admin,
        "role rolled back"
    );
    assert_eq!(audit_count(&app, "role_changed"), 0, "no audit row for it");
    // Nothing was half-done: the deputy's session and panel are as they were.
    let panel = get_as(&deputy_client, "/admin", &deputy_token);
    assert_eq!(panel.status(), Status::Ok);

    // The same change, with the database whole, goes through and ends the session.
    let response = app.post_form(
        &format!("/admin/users/{}/role", deputy.id),
        &[("role", "user")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(app.user("deputy").unwrap().role(), Role::User);
    assert_eq!(audit_count(&app, "role_changed"), 1);
}

#[test]
fn disabling_a_user_whose_session_revocation_fails_changes_nothing() {
    let app = spawn_app();
    let victim = app.create_user("victim", Role::User);
    app.sign_in_as("boss", Role::Admin);
    execute(&app, "ALTER TABLE sessions RENAME TO sessions_away");
    let response = app.post_form(&format!("/admin/users/{}/disable", victim.id), &[]);
    assert_eq!(response.status(), Status::ServiceUnavailable);
    execute(&app, "ALTER TABLE sessions_away RENAME TO sessions");
    assert!(!app.user("victim").unwrap().disabled, "disable rolled back");
    assert_eq!(audit_count(&app, "user_disabled"), 0);
}
