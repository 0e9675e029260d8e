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

/// Takes the database away and gives it back, as a restart or outage would.
struct Outage<'a> {
    app: &'a TestApp,
}

impl<'a> Outage<'a> {
    fn start(app: &'a TestApp) -> Outage<'a> {
        match &app.db {
            TestDb::Postgres { server, name, .. } => {
                use diesel::{Connection, RunQueryDsl};
                let mut conn = diesel::PgConnection::establish(server).unwrap();
                diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                    .execute(&mut conn)
                    .unwrap();
                diesel::sql_query(format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .execute(&mut conn)
                .unwrap();
            }
            TestDb::Sqlite { url } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ =
                        std::fs::rename(format!("{url}{suffix}"), format!("{url}{suffix}.away"));
                }
            }
        }
        Outage { app }
    }

    fn end(self) {
        match &self.app.db {
            TestDb::Postgres { server, name, .. } => {
                use diesel::{Connection, RunQueryDsl};
                let mut conn = diesel::PgConnection::establish(server).unwrap();
                diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .execute(&mut conn)
                    .unwrap();
            }
            TestDb::Sqlite { url } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ =
                        std::fs::rename(format!("{url}{suffix}.away"), format!("{url}{suffix}"));
                }
            }
        }
    }
}

#[test]
fn pages_answer_503_during_an_outage_and_recover_without_a_restart() {
    let app = spawn_app_with(|f| f.merge(("database_timeout_secs", 1)));
    app.create_user("steady", latchkey::models::Role::User);
    assert_eq!(app.login("steady", PASSWORD).status(), Status::SeeOther);
    app.logout();

    let outage = Outage::start(&app);
    let started = std::time::Instant::now();
    let response = app.login("steady", PASSWORD);
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response
        .into_string()
        .unwrap()
        .contains("temporarily unavailable"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "no long hang"
    );
    assert_eq!(
        app.client.get("/readyz").dispatch().status(),
        Status::ServiceUnavailable
    );

    outage.end();
    // The circuit closes once the background probe connects again (every 250 ms).
    let back = std::time::Instant::now();
    while app.client.get("/readyz").dispatch().status() != Status::Ok {
        assert!(
            back.elapsed() < std::time::Duration::from_secs(5),
            "ready again without a restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        app.login("steady", PASSWORD).status(),
        Status::SeeOther,
        "works again"
    );
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
}
