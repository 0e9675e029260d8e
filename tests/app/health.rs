//! `/healthz` and `/readyz`, and pages when the database is gone.

use rocket::http::{ContentType, Status};

use crate::helpers::*;

#[test]
fn healthz_is_json_and_needs_no_sign_in() {
    let app = spawn_app();
    let response = app.client.get("/healthz").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    assert_eq!(response.into_string().unwrap(), r#"{"status":"ok"}"#);
}

#[test]
fn readyz_is_200_when_the_database_answers() {
    let app = spawn_app();
    let response = app.client.get("/readyz").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().unwrap().contains("ready"));
}

/// Makes the test's database unusable underneath the running site.
fn break_database(app: &TestApp) {
    match &app.db {
        TestDb::Postgres { server, name, .. } => {
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::PgConnection::establish(server).unwrap();
            diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut conn)
                .unwrap();
        }
        TestDb::Sqlite { url } => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{url}{suffix}"));
            }
        }
    }
}

#[test]
fn readyz_is_503_and_pages_fail_cleanly_when_the_database_is_gone() {
    let app = spawn_app_with(|f| f.merge(("database_timeout_secs", 1)));
    app.create_user("before", latchkey::models::Role::User);
    break_database(&app);

    let response = app.client.get("/readyz").dispatch();
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.into_string().unwrap().contains("unavailable"));

    assert_eq!(
        app.client.get("/healthz").dispatch().status(),
        Status::Ok,
        "liveness needs no database"
    );

    let response = app.login("before", PASSWORD);
    assert_eq!(response.status(), Status::ServiceUnavailable);
    let body = response.into_string().unwrap();
    assert!(body.contains("temporarily unavailable"));
    assert!(
        body.contains("/static/css/app.css"),
        "error page in the layout"
    );
    assert!(!body.to_lowercase().contains("sql"), "no SQL in the page");
    assert!(!body.contains("latchkey.db"), "no paths in the page");
}
