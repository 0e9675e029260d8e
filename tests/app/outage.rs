//! A database outage never hangs a request: real outages, timed per request.
//!
//! On PostgreSQL the site reaches the server through a forwarder the test cuts (connections and
//! listener gone, so connecting is refused) or stalls (connections open, nothing answers). On
//! SQLite the outage is the database file (and its WAL) moved away, which is what makes a SQLite
//! database unreachable; a stalled network has no SQLite equivalent (readers in WAL mode are never
//! blocked by a lock), so that test runs on PostgreSQL only.

use std::time::{Duration, Instant};

use latchkey::models::Role;
use rocket::http::{ContentType, Status};

use crate::forwarder::Forwarder;
use crate::helpers::*;

/// What "at once" means during an outage, per request.
const FAST: Duration = Duration::from_millis(250);

/// How the test takes the database away.
enum Cut {
    /// PostgreSQL behind a forwarder.
    Postgres(Forwarder),
    /// A SQLite file, moved away and back.
    Sqlite(String),
}

impl Cut {
    fn start(&self) {
        match self {
            Cut::Postgres(forwarder) => forwarder.cut(),
            Cut::Sqlite(url) => move_files(url, "", ".away"),
        }
    }

    fn end(&self) {
        match self {
            Cut::Postgres(forwarder) => forwarder.restore(),
            Cut::Sqlite(url) => move_files(url, ".away", ""),
        }
    }
}

/// Renames the SQLite file and its WAL files from one suffix to another.
fn move_files(url: &str, from: &str, to: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::rename(format!("{url}{suffix}{from}"), format!("{url}{suffix}{to}"));
    }
}

/// `host:port` of a PostgreSQL URL.
fn authority_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

/// The same URL, through 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}{tail}")
}

/// A site whose database the test can take away.
fn spawn_cuttable(
    adjust: impl FnOnce(rocket::figment::Figment) -> rocket::figment::Figment,
) -> (TestApp, Cut) {
    let forwarder = postgres_base_url().map(|base| Forwarder::start(&authority_of(&base)));
    let port = forwarder.as_ref().map(Forwarder::port);
    let app = spawn_app_with(|f| {
        let f = adjust(f);
        match port {
            Some(port) => {
                let url: String = f.extract_inner("database_url").unwrap();
                f.merge(("database_url", via_port(&url, port)))
            }
            None => f,
        }
    });
    let cut = match forwarder {
        Some(forwarder) => Cut::Postgres(forwarder),
        None => Cut::Sqlite(app.db.url().to_string()),
    };
    (app, cut)
}

/// Runs `f` and says how long it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

/// Polls `uri` until it answers 200; how long that took, or `None` after `limit`.
fn time_until_ok(app: &TestApp, uri: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if app.get(uri).status() == Status::Ok {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn readyz_sign_in_and_api_token_answer_503_at_once_during_an_outage_and_recover() {
    // The default pool timeout (3 s): nothing may wait for it.
    let (app, cut) = spawn_cuttable(|f| f);
    app.create_user("steady", Role::User);
    let csrf = app.csrf_token();

    cut.start();
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        let (response, took) = timed(|| app.client.get("/readyz").dispatch());
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(response.into_string().unwrap().contains("unavailable"));
        assert!(took < FAST, "/readyz took {took:?} (round {round})");
        slowest = slowest.max(took);

        let (response, took) = timed(|| {
            app.post_raw(
                "/login",
                &[
                    ("username", "steady"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
        });
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(response
            .into_string()
            .unwrap()
            .contains("temporarily unavailable"));
        assert!(took < FAST, "sign-in took {took:?} (round {round})");
        slowest = slowest.max(took);

        let (response, took) = timed(|| {
            app.client
                .post("/api/token")
                .header(ContentType::JSON)
                .body(format!(
                    r#"{{"username":"steady","password":"{PASSWORD}"}}"#
                ))
                .dispatch()
        });
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(response.into_string().unwrap().contains("unavailable"));
        assert!(took < FAST, "/api/token took {took:?} (round {round})");
        slowest = slowest.max(took);
    }
    eprintln!("slowest 503 (readyz, sign-in, api/token) during the outage: {slowest:?}");

    cut.end();
    let recovered = time_until_ok(&app, "/readyz", Duration::from_secs(5));
    assert!(recovered.is_some(), "ready again without a restart");
    eprintln!("ready again {recovered:?} after the database came back");
    assert_eq!(app.login("steady", PASSWORD).status(), Status::SeeOther);
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
}

#[test]
fn a_valid_token_answers_from_memory_until_the_revocation_list_is_too_old_then_503() {
    let max_age = Duration::from_secs(2);
    let (app, cut) = spawn_cuttable(|f| f.merge(("revocation_max_age_secs", max_age.as_secs())));
    app.sign_in_as("reader", Role::User);
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);

    let cut_at = Instant::now();
    cut.start();
    // The list was refreshed at most a refresh interval (0.5 s) before the cut, so it is
    // usable for at least 1.5 s more: answers from memory, at once.
    let mut from_memory = 0;
    let mut slowest = Duration::ZERO;
    while cut_at.elapsed() < Duration::from_millis(1000) {
        let (status, took) = timed(|| app.client.get("/private").dispatch().status());
        assert_eq!(status, Status::Ok, "{:?} after the cut", cut_at.elapsed());
        assert!(took < FAST, "/private took {took:?} from memory");
        slowest = slowest.max(took);
        from_memory += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(from_memory >= 5);

    // Past the bound: 503 with a sentence, at once, every time.
    std::thread::sleep(
        (cut_at + max_age + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    );
    for _ in 0..5 {
        let (response, took) = timed(|| app.client.get("/private").dispatch());
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(response
            .into_string()
            .unwrap()
            .contains("temporarily unavailable"));
        assert!(took < FAST, "/private took {took:?} past the bound");
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{from_memory} answers from memory, then 503s; slowest {slowest:?}");
    assert!(
        app.session_cookie().is_some(),
        "the outage does not sign anyone out"
    );

    cut.end();
    let recovered = time_until_ok(&app, "/private", Duration::from_secs(5));
    assert!(
        recovered.is_some(),
        "the page works again without a restart"
    );
    eprintln!("/private 200 again {recovered:?} after the database came back");
}

#[test]
fn an_expired_token_is_not_renewed_but_answers_503_at_once_during_an_outage() {
    let (app, cut) = spawn_cuttable(|f| f);
    app.sign_in_as("renewer", Role::User);
    // Past the token's life and the leeway, within the idle timeout: renewal needs the database.
    app.clock().advance(time::Duration::seconds(960));

    cut.start();
    for _ in 0..3 {
        let (response, took) = timed(|| app.client.get("/private").dispatch());
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(took < FAST, "renewal took {took:?}");
    }

    cut.end();
    assert!(
        time_until_ok(&app, "/private", Duration::from_secs(5)).is_some(),
        "renewed once the database is back"
    );
}

#[test]
fn an_api_refresh_answers_503_at_once_during_an_outage_and_the_token_still_works_after() {
    let (app, cut) = spawn_cuttable(|f| f);
    app.create_user("prog", Role::User);
    let response = app
        .client
        .post("/api/token")
        .header(rocket::http::ContentType::JSON)
        .body(serde_json::json!({"username": "prog", "password": PASSWORD}).to_string())
        .dispatch();
    let token: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    let refresh = token["refresh_token"].as_str().unwrap().to_string();
    let body = serde_json::json!({ "refresh_token": refresh }).to_string();

    cut.start();
    for _ in 0..3 {
        let (response, took) = timed(|| {
            app.client
                .post("/api/token/refresh")
                .header(rocket::http::ContentType::JSON)
                .body(body.clone())
                .dispatch()
        });
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(took < FAST, "refresh took {took:?}");
    }
    cut.end();
    // Nothing was used up by the refused attempts: the same refresh token works once back.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = app
            .client
            .post("/api/token/refresh")
            .header(rocket::http::ContentType::JSON)
            .body(body.clone())
            .dispatch();
        if response.status() == Status::Ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            response.status()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pages_that_need_the_database_answer_503_at_once_during_an_outage() {
    let (app, cut) = spawn_cuttable(|f| f);
    app.sign_in_as("boss", Role::Admin);

    cut.start();
    for uri in [
        "/account",
        "/account/sessions",
        "/admin",
        "/account",
        "/admin",
    ] {
        let (response, took) = timed(|| app.client.get(uri).dispatch());
        assert_eq!(response.status(), Status::ServiceUnavailable, "{uri}");
        let body = response.into_string().unwrap();
        assert!(body.contains("temporarily unavailable"), "{uri}: {body}");
        assert!(took < FAST, "{uri} took {took:?}");
    }
    cut.end();
    assert!(time_until_ok(&app, "/account", Duration::from_secs(5)).is_some());
}

#[test]
fn requests_do_not_queue_behind_a_refresh_stuck_on_a_silent_network() {
    let (app, cut) = spawn_cuttable(|f| f.merge(("database_timeout_secs", 1)));
    let Cut::Postgres(forwarder) = &cut else {
        eprintln!("PostgreSQL only: a SQLite read cannot be made to hang (see the module doc)");
        return;
    };
    app.sign_in_as("patient", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    // Concurrent requests need the asynchronous client: an instance of its own on the same
    // database, through the same forwarder.
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (slow, answered) = runtime.block_on(async {
        let client =
            rocket::local::asynchronous::Client::tracked(latchkey::rocket(app.figment.clone()))
                .await
                .expect("site starts");
        let private = || async {
            let start = Instant::now();
            let status = client
                .get("/private")
                .cookie(rocket::http::Cookie::new(COOKIE, token.clone()))
                .dispatch()
                .await
                .status();
            (status, start.elapsed())
        };
        assert_eq!(private().await.0, Status::Ok);

        forwarder.stall();
        forwarder.unstall_after(Duration::from_secs(8));
        let (mut slow, mut answered) = (Vec::new(), 0);
        let stalled_at = Instant::now();
        while stalled_at.elapsed() < Duration::from_millis(2500) {
            let wave = futures::future::join_all((0..8).map(|_| private())).await;
            for (status, took) in wave {
                assert_eq!(status, Status::Ok, "valid token, list fresh enough");
                answered += 1;
                if took >= FAST {
                    slow.push(took);
                }
            }
            rocket::tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (slow, answered)
    });
    forwarder.restore();
    eprintln!("stalled network: {answered} answers, those over {FAST:?}: {slow:?}");
    // The refresh under way may hold the one request that started it, for the pool timeout
    // (1 s); nobody waits behind it.
    assert!(
        slow.len() <= 1,
        "requests waited behind the refresh: {slow:?}"
    );
    assert!(
        slow.iter().all(|t| *t < Duration::from_millis(2000)),
        "a request waited {slow:?}"
    );
    assert!(time_until_ok(&app, "/readyz", Duration::from_secs(5)).is_some());
}

#[test]
fn a_revocation_max_age_outside_2_to_3600_seconds_is_refused_with_a_sentence() {
    use latchkey::config::Settings;
    let with = |secs: u64| {
        Settings::from_figment(&base_figment("unused.db").merge(("revocation_max_age_secs", secs)))
    };
    for bad in [0, 1, 3601] {
        let err = with(bad).expect_err("refused").to_string();
        assert!(
            err.contains("revocation_max_age_secs must be between 2 and 3600"),
            "{bad}: {err}"
        );
    }
    assert_eq!(with(2).unwrap().revocation_max_age_secs, 2);
    assert_eq!(Settings::default().revocation_max_age_secs, 30);
}
