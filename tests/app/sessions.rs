//! Session rows, silent renewal, idle and absolute timeouts, and revocation that reaches every
//! instance within a second.

use std::time::Duration as StdDuration;

use latchkey::models::{Role, Session};
use rocket::http::Status;
use time::Duration;

use crate::helpers::*;

const WITHIN: StdDuration = StdDuration::from_secs(1);

fn session_row(app: &TestApp, sid: &str) -> Session {
    Session::find(&mut app.pool().get().unwrap(), sid)
        .unwrap()
        .expect("session row")
}

fn private_status(app: &TestApp) -> Status {
    app.client.get("/private").dispatch().status()
}

#[test]
fn sign_in_creates_a_session_row_the_token_names() {
    let app = spawn_app();
    let user = app.create_user("sara", Role::User);
    let csrf = app.csrf_token();
    let response = app
        .client
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .header(rocket::http::Header::new(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ))
        .body(form(&[
            ("username", "sara"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let row = session_row(&app, &app.session_id());
    assert_eq!(row.user_id, user.id);
    assert!(!row.remember);
    assert!(row.revoked_at.is_none());
    assert!(row.user_agent.contains("Firefox"));
    assert_eq!(row.expires_at - row.created_at, Duration::hours(12));
}

#[test]
fn a_token_past_half_its_life_is_renewed_silently() {
    let app = spawn_app();
    app.sign_in_as("rene", Role::User);
    let before = app.session_cookie().unwrap().value().to_string();
    let sid = app.session_id();
    app.clock().advance(Duration::minutes(8));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let renewed = token_from(&response).expect("a renewed cookie");
    drop(response);
    assert_ne!(renewed, before);
    assert_eq!(sid_of(&renewed), sid, "same session");
    let row = session_row(&app, &sid);
    assert!(
        row.last_seen_at > row.created_at,
        "activity recorded at renewal"
    );
    // A fresh token is not renewed again.
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(token_from(&response).is_none());
}

#[test]
fn an_expired_token_of_a_live_session_is_renewed() {
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    app.clock().advance(Duration::minutes(20));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(token_from(&response).is_some());
}

#[test]
fn idle_timeout_ends_a_session_without_remember_me() {
    let app = spawn_app();
    app.sign_in_as("idle", Role::User);
    app.clock().advance(Duration::minutes(31));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        session_set_cookie(&response, COOKIE).is_some(),
        "cookie removed"
    );
    drop(response);
    let body = app.client.get("/login").dispatch().into_string().unwrap();
    assert!(body.contains("Your session has expired. Please sign in again."));
}

#[test]
fn activity_keeps_a_session_alive_until_its_absolute_end() {
    let app = spawn_app();
    app.sign_in_as("busy", Role::User);
    // Active every 10 minutes for 11 h 50 min: never idle, renewed each time.
    for _ in 0..71 {
        app.clock().advance(Duration::minutes(10));
        assert_eq!(private_status(&app), Status::Ok);
    }
    app.clock().advance(Duration::minutes(11));
    assert_eq!(
        private_status(&app),
        Status::SeeOther,
        "12 hours is the limit"
    );
}

#[test]
fn remember_me_survives_idle_time_but_not_thirty_days() {
    let app = spawn_app();
    app.create_user("mem", Role::User);
    let response = app.post_form(
        "/login",
        &[
            ("username", "mem"),
            ("password", PASSWORD),
            ("remember", "on"),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(session_row(&app, &app.session_id()).remember);
    app.clock().advance(Duration::days(3));
    assert_eq!(
        private_status(&app),
        Status::Ok,
        "three idle days are fine with remember-me"
    );
    app.clock().advance(Duration::days(28));
    assert_eq!(
        private_status(&app),
        Status::SeeOther,
        "past 30 days it is over"
    );
}

#[test]
fn a_token_reused_after_logout_is_refused() {
    let app = spawn_app();
    app.sign_in_as("reuse", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    let sid = app.session_id();
    assert_eq!(app.logout().status(), Status::SeeOther);
    assert!(session_row(&app, &sid).revoked_at.is_some());
    let response = get_as(&app.client, "/private", &token);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let body = app.client.get("/login").dispatch().into_string().unwrap();
    assert!(body.contains("Your session has ended. Please sign in again."));
}

#[test]
fn a_session_revoked_in_the_database_is_not_renewed() {
    let app = spawn_app();
    app.sign_in_as("gone", Role::User);
    let sid = app.session_id();
    Session::revoke(&mut app.pool().get().unwrap(), &sid, None).unwrap();
    app.clock().advance(Duration::minutes(8));
    assert_eq!(private_status(&app), Status::SeeOther);
}

#[test]
fn sign_in_on_one_instance_works_on_another() {
    let app = spawn_app();
    app.sign_in_as("roam", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    let other = second_instance(&app);
    let response = get_as(&other, "/private", &token);
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().unwrap().contains("roam"));
}

#[test]
fn logout_on_one_instance_is_refused_on_the_other_within_a_second() {
    let app = spawn_app();
    app.sign_in_as("twin", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    assert_eq!(private_status(&app), Status::Ok);
    let other = second_instance(&app);
    assert_eq!(
        post_as(&other, "/logout", &token, &[]).status(),
        Status::SeeOther
    );
    let took = time_until_refused(&app.client, "/private", &token, WITHIN);
    assert!(
        took.is_some(),
        "instance A still accepted the token after 1 s"
    );
}

#[test]
fn password_change_on_one_instance_ends_other_sessions_everywhere_within_a_second() {
    let app = spawn_app();
    app.sign_in_as("pwd", Role::User);
    let old_device = app.session_cookie().unwrap().value().to_string();
    assert_eq!(private_status(&app), Status::Ok);

    let other = second_instance(&app);
    let this_device = login_on(&other, "pwd", None);
    let new_password = "renewed-Lantern-orbit-55";
    let response = post_as(
        &other,
        "/account/password",
        &this_device,
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("new_password_confirm", new_password),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(time_until_refused(&app.client, "/private", &old_device, WITHIN).is_some());
    assert_eq!(
        get_as(&other, "/private", &this_device).status(),
        Status::Ok,
        "the changing session stays"
    );
}

#[test]
fn a_demoted_admin_loses_the_panel_on_every_instance_within_a_second() {
    let app = spawn_app_without_admin_two_factor();
    let deputy = app.sign_in_as("deputy", Role::Admin);
    let deputy_token = app.session_cookie().unwrap().value().to_string();
    assert_eq!(
        get_as(&app.client, "/admin", &deputy_token).status(),
        Status::Ok
    );

    app.create_user("chief", Role::Admin);
    let other = second_instance(&app);
    let chief = login_on(&other, "chief", None);
    let response = post_as(
        &other,
        &format!("/admin/users/{}/role", deputy.id),
        &chief,
        &[("role", "user")],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(time_until_refused(&app.client, "/admin", &deputy_token, WITHIN).is_some());
    assert_eq!(app.user("deputy").unwrap().role, "user");
}

#[test]
fn a_disabled_user_is_signed_out_everywhere() {
    let app = spawn_app_without_admin_two_factor();
    let victim = app.sign_in_as("vic", Role::User);
    let vic_token = app.session_cookie().unwrap().value().to_string();
    app.create_user("boss", Role::Admin);
    let other = second_instance(&app);
    let boss = login_on(&other, "boss", None);
    let response = post_as(
        &other,
        &format!("/admin/users/{}/disable", victim.id),
        &boss,
        &[],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(time_until_refused(&app.client, "/private", &vic_token, WITHIN).is_some());
}

#[test]
fn devices_page_lists_sessions_and_revokes_them() {
    let app = spawn_app();
    app.create_user("dev", Role::User);
    let other = second_instance(&app);
    let phone = login_on(&other, "dev", Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile Safari/604.1"));
    app.login("dev", PASSWORD);

    let body = app
        .client
        .get("/account/sessions")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains("Safari on iPhone"), "browser named");
    assert!(body.contains("This device"));
    assert_eq!(
        body.matches("/revoke\"").count(),
        2,
        "a revoke button per session"
    );

    let phone_sid = sid_of(&phone);
    let response = app.post_form(&format!("/account/sessions/{phone_sid}/revoke"), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(time_until_refused(&other, "/private", &phone, WITHIN).is_some());
    assert_eq!(private_status(&app), Status::Ok);

    // Someone else's session id is not yours to end.
    let intruder = app.create_user("intruder", Role::User);
    let mut conn = app.pool().get().unwrap();
    let foreign = Session::new(
        &intruder.id,
        app.clock().db_now(),
        Duration::hours(1),
        false,
        "x",
        "",
    );
    foreign.insert(&mut conn).unwrap();
    drop(conn);
    app.post_form(&format!("/account/sessions/{}/revoke", foreign.id), &[]);
    assert!(session_row(&app, &foreign.id).revoked_at.is_none());

    let response = app.post_form("/account/logout-everywhere", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(private_status(&app), Status::SeeOther);
}

#[test]
fn admin_sees_and_revokes_a_users_sessions() {
    let app = spawn_app();
    let member = app.create_user("member", Role::User);
    let other = second_instance(&app);
    let member_token = login_on(&other, "member", None);
    app.sign_in_as("boss", Role::Admin);
    let page = app
        .client
        .get(format!("/admin/users/{}", member.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains(&format!(
        "/admin/users/{}/sessions/{}/revoke",
        member.id,
        sid_of(&member_token)
    )));
    let response = app.post_form(&format!("/admin/users/{}/sessions/revoke", member.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(time_until_refused(&other, "/private", &member_token, WITHIN).is_some());
}
