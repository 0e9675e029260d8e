//! Hard expiry and the rotating refresh credential: an expired access token is never accepted nor
//! renewed from itself; the refresh cookie renews and rotates; a replaced refresh value that comes
//! back after the grace ends the session (theft detection), on any instance.

use latchkey::auth::Sessions;
use latchkey::models::{AuditEvent, AuditFilter, Role};
use rocket::http::{Cookie, Header, Status};
use rocket::local::blocking::{Client, LocalResponse};
use serde_json::json;
use time::Duration;

use crate::helpers::*;

const REFRESH: &str = "latchkey_refresh";
const STOLEN: &str = "Your session was ended to protect your account. Please sign in again.";
const EXPIRED: &str = "Your session has expired. Please sign in again.";

/// Past the access token's life (900 s) and the leeway (5 s).
fn past_token_life() -> Duration {
    Duration::seconds(1000)
}

/// Past the refresh grace (10 s).
fn past_grace() -> Duration {
    Duration::seconds(11)
}

fn refresh_of(client: &Client) -> String {
    client
        .cookies()
        .get(REFRESH)
        .expect("a refresh cookie")
        .value()
        .to_string()
}

fn access_of(client: &Client) -> String {
    client
        .cookies()
        .get(COOKIE)
        .expect("an access cookie")
        .value()
        .to_string()
}

/// GETs `uri` on `client` sending exactly these cookies.
fn get_with<'c>(client: &'c Client, uri: &str, cookies: &[(&str, &str)]) -> LocalResponse<'c> {
    let mut request = client.get(uri.to_string());
    for (name, value) in cookies {
        request = request.cookie(Cookie::new(name.to_string(), value.to_string()));
    }
    request.dispatch()
}

/// The flash message the sign-in page shows `client` now.
fn flash_on(client: &Client) -> String {
    client
        .get("/login")
        .dispatch()
        .into_string()
        .unwrap_or_default()
}

fn clock_of(client: &Client) -> &latchkey::clock::Clock {
    client.rocket().state::<Sessions>().unwrap().clock()
}

fn audit_kinds(app: &TestApp) -> Vec<String> {
    AuditEvent::search(
        &mut app.pool().get().unwrap(),
        &AuditFilter::default(),
        1,
        1000,
    )
    .unwrap()
    .0
    .into_iter()
    .map(|e| e.kind)
    .collect()
}

#[test]
fn an_expired_access_token_is_refused_by_cookie_and_bearer_however_little_past() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let sid = app.session_id();
    let now = app.clock().unix();
    for (what, exp) in [("an hour", now - 3600), ("120 s", now - 120), ("exp 0", 0)] {
        let mut claims = app.claims_for(&user);
        claims.sid = sid.clone();
        claims.exp = exp;
        claims.iat = (exp - 900).max(0);
        claims.nbf = claims.iat;
        let token = app.tokens().sign(&claims).unwrap();
        // The session is alive, but with no refresh cookie nothing may renew the token.
        let other = second_instance(&app);
        let response = get_as(&other, "/private", &token);
        assert_eq!(response.status(), Status::SeeOther, "{what}: cookie");
        drop(response);
        assert!(flash_on(&other).contains(EXPIRED), "{what}: message");
        let response = app
            .client
            .get("/api/me")
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch();
        assert_eq!(response.status(), Status::Unauthorized, "{what}: Bearer");
    }
}

#[test]
fn the_leeway_is_a_few_seconds_at_most() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::User);
    let token = access_of(&app.client);
    let other = second_instance(&app);
    // exp = iat + 900; 903 s later the 5 s leeway still covers it, 910 s later it does not.
    clock_of(&other).advance(Duration::seconds(903));
    assert_eq!(get_as(&other, "/private", &token).status(), Status::Ok);
    clock_of(&other).advance(Duration::seconds(7));
    assert_eq!(
        get_as(&other, "/private", &token).status(),
        Status::SeeOther
    );
}

#[test]
fn tokens_in_the_query_string_or_other_headers_are_ignored() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::User);
    let token = access_of(&app.client);
    let other = second_instance(&app);
    let response = other.get(format!("/private?token={token}")).dispatch();
    assert_eq!(response.status(), Status::SeeOther, "?token= on a page");
    drop(response);
    for uri in [
        format!("/api/me?token={token}"),
        format!("/api/me?access_token={token}"),
    ] {
        let response = other.get(uri.clone()).dispatch();
        assert_eq!(response.status(), Status::Unauthorized, "{uri:.20}");
    }
    for header in ["x-access-token", "X-Auth-Token", "Token"] {
        let response = other
            .get("/api/me")
            .header(Header::new(header, token.clone()))
            .dispatch();
        assert_eq!(response.status(), Status::Unauthorized, "{header}");
    }
    // The same token where it belongs works.
    let response = other
        .get("/api/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
}

#[test]
fn renewal_rotates_the_refresh_value() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::User);
    let (access1, refresh1) = (access_of(&app.client), refresh_of(&app.client));
    assert!(refresh1.starts_with("lkr_"));
    app.clock().advance(past_token_life());
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let set = set_cookies(&response);
    drop(response);
    assert!(set.iter().any(|c| c.starts_with("latchkey=")), "{set:?}");
    assert!(
        set.iter().any(|c| c.starts_with("latchkey_refresh=")),
        "{set:?}"
    );
    let (access2, refresh2) = (access_of(&app.client), refresh_of(&app.client));
    assert_ne!(access1, access2);
    assert_ne!(refresh1, refresh2, "the refresh value rotates");
    assert_eq!(sid_of(&access1), sid_of(&access2), "the same session");
    assert!(claims_of(&access2)["exp"].as_i64().unwrap() > app.clock().unix());
    // A fresh access token needs no renewal: the refresh value stays.
    let response = app.client.get("/private").dispatch();
    assert!(session_set_cookie(&response, REFRESH).is_none());
}

#[test]
fn a_replaced_refresh_value_after_the_grace_ends_the_session_on_another_instance() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let old = refresh_of(&app.client);
    app.clock().advance(past_token_life());
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    let sid = app.session_id();

    // A copy of the old refresh cookie, replayed later from another browser on another instance.
    let thief = second_instance(&app);
    clock_of(&thief).advance(past_token_life() + past_grace());
    let response = get_with(&thief, "/private", &[(REFRESH, &old)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login?next=/private");
    drop(response);
    assert!(flash_on(&thief).contains(STOLEN));
    assert!(audit_kinds(&app).contains(&"refresh_reuse".to_string()));
    let row = latchkey::models::Session::find(&mut app.pool().get().unwrap(), &sid)
        .unwrap()
        .unwrap();
    assert!(row.revoked_at.is_some() && row.stolen, "the session ended");

    // The owner's browser, still holding a valid access token, is signed out with the reason
    // once the first instance has read the revocation (within a second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert!(flash_on(&app.client).contains(STOLEN));
    // Its refresh value (the newest) is dead too, and so is the thief's.
    let response = get_with(&thief, "/private", &[(REFRESH, &old)]);
    assert_eq!(response.status(), Status::SeeOther);
    let _ = user;
}

#[test]
fn parallel_renewals_within_the_grace_keep_the_session() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::User);
    let (access, refresh) = (access_of(&app.client), refresh_of(&app.client));
    app.clock().advance(past_token_life());
    // Two tabs send the same expired access token and refresh value at once.
    let tab = second_instance(&app);
    clock_of(&tab).advance(past_token_life());
    let first = get_with(
        &app.client,
        "/private",
        &[(COOKIE, &access), (REFRESH, &refresh)],
    );
    assert_eq!(first.status(), Status::Ok);
    let newer = session_set_cookie(&first, REFRESH).expect("rotated");
    drop(first);
    let second = get_with(&tab, "/private", &[(COOKIE, &access), (REFRESH, &refresh)]);
    assert_eq!(second.status(), Status::Ok, "within the grace");
    assert!(
        session_set_cookie(&second, REFRESH).is_none(),
        "the late tab does not replace the newer refresh value"
    );
    drop(second);
    assert!(!audit_kinds(&app).contains(&"refresh_reuse".to_string()));
    // The newer value carries on later.
    let newer = newer
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("latchkey_refresh=")
        .to_string();
    app.clock().advance(past_token_life());
    let response = get_with(&app.client, "/private", &[(REFRESH, &newer)]);
    assert_eq!(response.status(), Status::Ok);
}

#[test]
fn a_session_past_its_idle_or_absolute_limit_is_not_renewed() {
    let app = spawn_app();
    app.sign_in_as("idle", Role::User);
    app.clock().advance(Duration::minutes(31));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::SeeOther, "idle timeout binds");
    drop(response);
    assert!(flash_on(&app.client).contains(EXPIRED));

    let app = spawn_app();
    app.sign_in_as("long", Role::User);
    // 49 steps of 15 minutes: the last token lives to the session's end, 12 hours in.
    for _ in 0..50 {
        app.clock().advance(Duration::minutes(15));
        let response = app.client.get("/private").dispatch();
        if response.status() != Status::Ok {
            assert_eq!(response.status(), Status::SeeOther);
            return;
        }
    }
    panic!("a 12-hour session renewed past its absolute end");
}

#[test]
fn a_disabled_user_is_not_renewed() {
    let app = spawn_app();
    app.create_user("boss", Role::Admin);
    let user = app.sign_in_as("ada", Role::User);
    let refresh = refresh_of(&app.client);
    latchkey::models::User::set_disabled(
        &mut app.pool().get().unwrap(),
        &user.id,
        true,
        app.clock().db_now(),
    )
    .unwrap();
    app.clock().advance(past_token_life());
    let other = second_instance(&app);
    clock_of(&other).advance(past_token_life());
    let response = get_with(&other, "/private", &[(REFRESH, &refresh)]);
    assert_eq!(response.status(), Status::SeeOther);
}

#[test]
fn the_refresh_cookie_is_http_only_lax_and_host_prefixed_when_secure() {
    let app = spawn_app_with(|f| f.merge(("cookie_secure", true)));
    app.create_user("ada", Role::User);
    let response = app.login("ada", PASSWORD);
    let cookie = session_set_cookie(&response, "__Host-latchkey_refresh").expect("set");
    for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
    assert!(
        !cookie.contains("Max-Age"),
        "ends with the browser: {cookie}"
    );
}

/// `POST /api/token` with a password.
fn api_token(app: &TestApp, username: &str) -> serde_json::Value {
    let response = app
        .client
        .post("/api/token")
        .header(rocket::http::ContentType::JSON)
        .body(json!({"username": username, "password": PASSWORD}).to_string())
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

fn api_refresh(client: &Client, refresh: &str) -> (Status, serde_json::Value) {
    let response = client
        .post("/api/token/refresh")
        .header(rocket::http::ContentType::JSON)
        .body(json!({ "refresh_token": refresh }).to_string())
        .dispatch();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

fn me_status(client: &Client, access: &str) -> Status {
    client
        .get("/api/me")
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .dispatch()
        .status()
}

#[test]
fn api_refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let app = spawn_app();
    app.create_user("prog", Role::User);
    let first = api_token(&app, "prog");
    let refresh1 = first["refresh_token"].as_str().unwrap().to_string();
    assert!(first["refresh_expires_in"].as_i64().unwrap() > 900);
    let (status, second) = api_refresh(&app.client, &refresh1);
    assert_eq!(status, Status::Ok, "{second}");
    let refresh2 = second["refresh_token"].as_str().unwrap().to_string();
    let access2 = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2);
    assert_eq!(me_status(&app.client, &access2), Status::Ok);

    // Within the grace the replaced one is refused without ending anything.
    let (status, body) = api_refresh(&app.client, &refresh1);
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(me_status(&app.client, &access2), Status::Ok);

    // After it, the replaced one ends the whole family: the newest refresh token and the
    // access token made with it.
    app.clock().advance(past_grace());
    let (status, body) = api_refresh(&app.client, &refresh1);
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(me_status(&app.client, &access2), Status::Unauthorized);
    let (status, _) = api_refresh(&app.client, &refresh2);
    assert_eq!(status, Status::Unauthorized);
    assert!(audit_kinds(&app).contains(&"refresh_reuse".to_string()));
}

#[test]
fn api_refresh_refuses_what_is_not_a_current_refresh_token() {
    let app = spawn_app();
    app.create_user("prog", Role::User);
    let token = api_token(&app, "prog");
    let access = token["access_token"].as_str().unwrap();
    let refresh = token["refresh_token"].as_str().unwrap();
    // An access token is longer than any refresh token: refused as malformed.
    let (status, body) = api_refresh(&app.client, access);
    assert_eq!(status, Status::BadRequest);
    assert_eq!(body["error"], "invalid_request");
    for (what, value) in [
        ("a made-up value", format!("lkr_{}", "A".repeat(43))),
        (
            "a truncated value",
            refresh[..refresh.len() - 1].to_string(),
        ),
        ("odd Unicode", "lkr_\u{202e}\u{0}é".to_string()),
    ] {
        let (status, body) = api_refresh(&app.client, &value);
        assert_eq!(status, Status::Unauthorized, "{what}");
        assert_eq!(body["error"], "invalid_grant", "{what}");
    }
    for body in [
        json!({}),
        json!({"refresh_token": 7}),
        json!({"refresh_token": "x".repeat(200)}),
    ] {
        let response = app
            .client
            .post("/api/token/refresh")
            .header(rocket::http::ContentType::JSON)
            .body(body.to_string())
            .dispatch();
        assert_eq!(response.status(), Status::BadRequest, "{body:.40}");
    }
    // A refresh value is not an access token either.
    assert_eq!(me_status(&app.client, refresh), Status::Unauthorized);
    // Nothing was ended by the attempts.
    let (status, _) = api_refresh(&app.client, refresh);
    assert_eq!(status, Status::Ok);
}
