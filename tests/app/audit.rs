//! The audit trail: a row for each security event, an admin page with filters, CSV export, and
//! a table the database keeps append-only.

use diesel::RunQueryDsl;
use latchkey::models::Role;
use rocket::http::{ContentType, Status};

use crate::helpers::*;

#[test]
fn each_security_event_writes_an_audit_row() {
    let app = spawn_app();
    let response = app.signup("alma", "alma@example.com", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let alma = app.user("alma").unwrap();
    app.logout();
    app.login("alma", "Wrong-password-here-1");
    app.login("alma", PASSWORD);
    let new_password = "fresh-Lantern-orbit-72";
    app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("new_password_confirm", new_password),
        ],
    );
    app.post_form("/account/sessions/revoke-others", &[]);
    app.logout();
    // This browser is alma's trusted device: its first five failures end its trust, and the
    // next five, like any stranger's, lock the account; the last one finds it locked.
    for _ in 0..11 {
        app.login("alma", "Wrong-password-here-1");
    }
    app.sign_in_as("boss", Role::Admin);
    let admin_id = app.user("boss").unwrap().id;
    app.post_form(&format!("/admin/users/{}/unlock", alma.id), &[]);
    app.post_form(
        &format!("/admin/users/{}/role", alma.id),
        &[("role", "admin")],
    );
    app.post_form(&format!("/admin/users/{}/disable", alma.id), &[]);
    app.post_form(&format!("/admin/users/{}/enable", alma.id), &[]);
    app.post_raw("/logout", &[]);

    for kind in [
        "signup",
        "logout",
        "login_failed",
        "login_ok",
        "password_changed",
        "sessions_revoked",
        "login_locked",
        "user_unlocked",
        "role_changed",
        "user_disabled",
        "user_enabled",
        "csrf_rejected",
        "device_trust_granted",
        "device_trust_revoked",
    ] {
        assert!(!audit_events(&app, kind).is_empty(), "no {kind} event");
    }
    let role = &audit_events(&app, "role_changed")[0];
    assert_eq!(role.actor.as_deref(), Some("boss"));
    assert_eq!(role.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(role.subject.as_deref(), Some("alma"));
    assert_eq!(role.detail.as_deref(), Some("admin"));
    let failed = audit_events(&app, "login_failed");
    assert!(failed
        .iter()
        .any(|e| e.detail.as_deref() == Some("bad_password")));
    assert!(failed.iter().any(|e| e.detail.as_deref() == Some("locked")));
    let locked = &audit_events(&app, "login_locked")[0];
    assert_eq!(locked.subject_id.as_deref(), Some(alma.id.as_str()));
}

#[test]
fn unknown_names_are_recorded_as_typed() {
    let app = spawn_app();
    app.login("Nobody-Here", "Wrong-password-here-1");
    let failed = audit_events(&app, "login_failed");
    assert_eq!(failed[0].subject.as_deref(), Some("Nobody-Here"));
    assert_eq!(failed[0].subject_id, None);
    assert_eq!(failed[0].detail.as_deref(), Some("unknown_user"));
}

#[test]
fn the_audit_page_filters_and_pages() {
    let app = spawn_app();
    app.create_user("filt", Role::User);
    for _ in 0..3 {
        app.login("filt", "Wrong-password-here-1");
    }
    app.sign_in_as("boss", Role::Admin);
    let all = app.client.get("/admin/audit").dispatch();
    assert_eq!(all.status(), Status::Ok);
    let body = all.into_string().unwrap();
    assert!(body.contains("login_failed") && body.contains("login_ok"));

    let body = app
        .client
        .get("/admin/audit?user=FILT&kind=login_failed")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains("3 events"), "three failures for filt");
    let body = app
        .client
        .get("/admin/audit?kind=login_ok")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains("1 event"));
    let today = time::OffsetDateTime::now_utc().date();
    let tomorrow = today.next_day().unwrap();
    let body = app
        .client
        .get(format!("/admin/audit?from={tomorrow}"))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains("No events match"));
    let body = app
        .client
        .get(format!(
            "/admin/audit?from={today}&to={today}&kind=login_failed"
        ))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(body.contains("3 events"));
    let response = app
        .client
        .get("/admin/audit?from=not-a-date&page=zero&kind=nonsense")
        .dispatch();
    assert_eq!(
        response.status(),
        Status::Ok,
        "bad filters are ignored, not errors"
    );

    app.logout();
    app.sign_in_as("pleb", Role::User);
    assert_eq!(
        app.client.get("/admin/audit").dispatch().status(),
        Status::Forbidden
    );
    assert_eq!(
        app.client.get("/admin/audit.csv").dispatch().status(),
        Status::Forbidden
    );
}

#[test]
fn the_audit_log_downloads_as_csv_with_formulas_defused() {
    let app = spawn_app();
    app.login("=cmd|' /C calc'!A0", "Wrong-password-here-1");
    app.sign_in_as("boss", Role::Admin);
    let response = app
        .client
        .get("/admin/audit.csv?kind=login_failed")
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.content_type(),
        Some(ContentType::new("text", "csv"))
    );
    assert!(response
        .headers()
        .get_one("Content-Disposition")
        .unwrap()
        .contains("attachment"));
    let csv = response.into_string().unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,kind,actor,subject,ip,user_agent,detail")
    );
    let row = lines.next().expect("one event");
    assert!(row.contains(r#""'=cmd|' /C calc'!A0""#), "{row}");
    assert!(row.contains("\"login_failed\""));
    assert_eq!(lines.next(), None, "filtered to one kind");
}

#[test]
fn the_database_refuses_to_change_or_delete_audit_rows() {
    let app = spawn_app();
    app.login("someone", "Wrong-password-here-1");
    let mut conn = app.pool().get().unwrap();
    assert!(diesel::sql_query("UPDATE audit_events SET kind = 'x'")
        .execute(&mut *conn)
        .is_err());
    assert!(diesel::sql_query("DELETE FROM audit_events")
        .execute(&mut *conn)
        .is_err());
    drop(conn);
    assert_eq!(audit_events(&app, "login_failed").len(), 1);
}
