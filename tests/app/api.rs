//! The JSON API: tokens, Bearer errors per RFC 6750, revocation, roles, CSRF for cookie clients,
//! and lockout shared with the HTML sign-in.

use latchkey::models::{Role, User};
use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::{Client, LocalResponse};
use serde_json::{json, Value};

use crate::helpers::*;

fn post_json<'c>(client: &'c Client, uri: &str, body: &str) -> LocalResponse<'c> {
    client
        .post(uri.to_string())
        .header(ContentType::JSON)
        .body(body)
        .dispatch()
}

fn get_bearer<'c>(client: &'c Client, uri: &str, token: &str) -> LocalResponse<'c> {
    client
        .get(uri.to_string())
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
}

fn body(response: LocalResponse<'_>) -> Value {
    assert_eq!(
        response.content_type(),
        Some(ContentType::JSON),
        "JSON, never HTML"
    );
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

/// Gets a token for `username` with the test password.
fn api_token(client: &Client, username: &str) -> String {
    let response = post_json(
        client,
        "/api/token",
        &json!({"username": username, "password": PASSWORD}).to_string(),
    );
    assert_eq!(response.status(), Status::Ok);
    body(response)["access_token"].as_str().unwrap().to_string()
}

fn assert_error(response: LocalResponse<'_>, status: Status, error: &str) -> Value {
    assert_eq!(response.status(), status);
    let json = body(response);
    assert_eq!(json["error"], error, "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    json
}

#[test]
fn a_disabled_account_gets_the_wrong_password_answer() {
    let app = spawn_app();
    app.create_user("root", Role::Admin);
    let ivy = app.create_user("ivy", Role::User);
    app.create_user("jed", Role::User);
    let now = app.clock().db_now();
    User::set_disabled(&mut app.pool().get().unwrap(), &ivy.id, true, now).unwrap();
    let grant = |username: &str, password: &str| {
        let response = post_json(
            &app.client,
            "/api/token",
            &json!({"username": username, "password": password}).to_string(),
        );
        (response.status(), body(response))
    };
    let disabled = grant("ivy", PASSWORD);
    let wrong = grant("jed", "wrong-password-here");
    assert_eq!(disabled.0, Status::Unauthorized);
    assert_eq!(disabled, wrong, "same status, same body");
    assert_eq!(disabled.1["message"], "Invalid username or password.");
}

#[test]
fn credentials_give_a_bearer_token_that_opens_me() {
    let app = spawn_app();
    let user = app.create_user("api", Role::User);
    let response = post_json(
        &app.client,
        "/api/token",
        r#"{"username": "API@example.com", "password": "correct-Horse-battery-77"}"#,
    );
    assert_eq!(response.status(), Status::Ok);
    let token = body(response);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 900);
    assert_eq!(token["user_id"], user.id.as_str());
    let access = token["access_token"].as_str().unwrap();

    let me = body(get_bearer(&app.client, "/api/me", access));
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["username"], "api");
    assert_eq!(me["email"], "api@example.com");
    assert_eq!(me["role"], "user");
    assert!(me["session_expires_at"].as_str().unwrap().contains('T'));
}

#[test]
fn bad_credentials_are_401_json_alike_for_unknown_users() {
    let app = spawn_app();
    app.create_user("api", Role::User);
    let wrong = assert_error(
        post_json(
            &app.client,
            "/api/token",
            r#"{"username":"api","password":"Wrong-password-123"}"#,
        ),
        Status::Unauthorized,
        "invalid_grant",
    );
    let unknown = assert_error(
        post_json(
            &app.client,
            "/api/token",
            r#"{"username":"ghost","password":"Wrong-password-123"}"#,
        ),
        Status::Unauthorized,
        "invalid_grant",
    );
    assert_eq!(wrong, unknown);
}

#[test]
fn malformed_bodies_are_400_saying_what_is_wrong() {
    let app = spawn_app();
    let cases = [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (r#"{"password": "x"}"#, "Missing field \"username\""),
        (r#"{"username": "x"}"#, "Missing field \"password\""),
        (
            r#"{"username": 5, "password": "x"}"#,
            "\"username\" must be a string",
        ),
        (
            r#"{"username": "  ", "password": "x"}"#,
            "must not be empty",
        ),
    ];
    for (raw, message) in cases {
        let json = assert_error(
            post_json(&app.client, "/api/token", raw),
            Status::BadRequest,
            "invalid_request",
        );
        assert!(
            json["message"].as_str().unwrap().contains(message),
            "{raw}: {json}"
        );
    }
    let huge = format!(
        r#"{{"username": "{}", "password": "x"}}"#,
        "a".repeat(100_000)
    );
    assert_error(
        post_json(&app.client, "/api/token", &huge),
        Status::PayloadTooLarge,
        "payload_too_large",
    );
}

#[test]
fn missing_and_bad_tokens_get_rfc6750_challenges() {
    let app = spawn_app();
    let response = app.client.get("/api/me").dispatch();
    assert_eq!(
        response.headers().get_one("WWW-Authenticate"),
        Some("Bearer realm=\"latchkey\"")
    );
    assert_error(response, Status::Unauthorized, "unauthorized");

    for token in ["garbage", "a.b.c", &"x".repeat(5000)] {
        let response = get_bearer(&app.client, "/api/me", token);
        let challenge = response
            .headers()
            .get_one("WWW-Authenticate")
            .unwrap()
            .to_string();
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains("error_description="),
            "{challenge}"
        );
        assert_error(response, Status::Unauthorized, "invalid_token");
    }
    // Expired: a real session, its token past exp (no silent renewal for Bearer clients).
    app.create_user("late", Role::User);
    let token = api_token(&app.client, "late");
    app.clock().advance(time::Duration::minutes(20));
    let response = get_bearer(&app.client, "/api/me", &token);
    assert!(response
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .contains("expired"));
    assert_error(response, Status::Unauthorized, "invalid_token");
}

#[test]
fn api_logout_revokes_the_token_on_every_instance() {
    let app = spawn_app();
    app.create_user("bye", Role::User);
    let token = api_token(&app.client, "bye");
    assert_eq!(
        get_bearer(&app.client, "/api/me", &token).status(),
        Status::Ok
    );
    let other = second_instance(&app);
    let response = other
        .post("/api/logout")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    assert_eq!(
        response.status(),
        Status::Ok,
        "Bearer requests need no CSRF token"
    );
    drop(response);
    let start = std::time::Instant::now();
    loop {
        let sent = start.elapsed();
        let response = get_bearer(&app.client, "/api/me", &token);
        if response.status() == Status::Unauthorized {
            assert!(response
                .headers()
                .get_one("WWW-Authenticate")
                .unwrap()
                .contains("revoked"));
            break;
        }
        assert!(
            sent < std::time::Duration::from_secs(1),
            "still accepted after 1 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn api_sessions_show_on_the_devices_page_and_can_be_revoked_there() {
    let app = spawn_app();
    app.create_user("dev", Role::User);
    let response = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .header(Header::new("User-Agent", "curl/8.5.0"))
        .body(json!({"username": "dev", "password": PASSWORD}).to_string())
        .dispatch();
    let token = body(response)["access_token"].as_str().unwrap().to_string();
    app.login("dev", PASSWORD);
    let page = app
        .client
        .get("/account/sessions")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("curl"));
    let response = app.post_form(&format!("/account/sessions/{}/revoke", sid_of(&token)), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(
        get_bearer(&app.client, "/api/me", &token).status(),
        Status::Unauthorized
    );
}

#[test]
fn admin_list_needs_the_admin_role() {
    let app = spawn_app_without_admin_two_factor();
    app.create_user("boss", Role::Admin);
    app.create_user("pleb", Role::User);
    let admin = api_token(&app.client, "boss");
    let list = body(get_bearer(&app.client, "/api/admin/users?q=pleb", &admin));
    assert_eq!(list["total"], 1);
    assert_eq!(list["users"][0]["username"], "pleb");
    assert_eq!(list["per_page"], 25);

    let user = api_token(&app.client, "pleb");
    let response = get_bearer(&app.client, "/api/admin/users", &user);
    assert!(response
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    assert_error(response, Status::Forbidden, "insufficient_scope");
}

#[test]
fn the_bearer_header_wins_over_the_cookie() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    app.create_user("pleb", Role::User);
    let user = api_token(&app.client, "pleb");
    assert_eq!(
        app.client.get("/api/admin/users").dispatch().status(),
        Status::Ok,
        "cookie alone: admin"
    );
    assert_eq!(
        get_bearer(&app.client, "/api/admin/users", &user).status(),
        Status::Forbidden
    );
}

#[test]
fn cookie_clients_need_the_csrf_header_to_change_state() {
    let app = spawn_app();
    app.sign_in_as("cook", Role::User);
    assert_eq!(
        app.client.get("/api/me").dispatch().status(),
        Status::Ok,
        "reads need no token"
    );
    assert_error(
        app.client.post("/api/logout").dispatch(),
        Status::Forbidden,
        "csrf",
    );
    let response = app
        .client
        .post("/api/logout")
        .header(Header::new("X-CSRF-Token", "forged"))
        .dispatch();
    assert_error(response, Status::Forbidden, "csrf");
    assert_eq!(
        app.client.get("/api/me").dispatch().status(),
        Status::Ok,
        "still signed in"
    );
    let token = app.csrf_token();
    let response = app
        .client
        .post("/api/logout")
        .header(Header::new("X-CSRF-Token", token))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    assert_eq!(
        app.client.get("/api/me").dispatch().status(),
        Status::Unauthorized
    );
}

#[test]
fn lockout_and_throttling_are_shared_with_the_html_sign_in() {
    let app = spawn_app();
    app.create_user("lock", Role::User);
    let wrong = json!({"username": "lock", "password": "Wrong-password-123"}).to_string();
    for _ in 0..2 {
        assert_eq!(
            app.login("lock", "Wrong-password-123").status(),
            Status::UnprocessableEntity
        );
    }
    for _ in 0..2 {
        assert_eq!(
            post_json(&app.client, "/api/token", &wrong).status(),
            Status::Unauthorized
        );
    }
    let response = post_json(&app.client, "/api/token", &wrong);
    assert!(response.headers().get_one("Retry-After").is_some());
    assert_error(response, Status::TooManyRequests, "too_many_requests");
    assert_eq!(
        app.login("lock", PASSWORD).status(),
        Status::TooManyRequests,
        "locked for the form too"
    );

    let throttled = spawn_app_with(|f| f.merge(("login_per_ip_per_minute", 2)));
    for _ in 0..2 {
        assert_eq!(
            post_json(&throttled.client, "/api/token", &wrong).status(),
            Status::Unauthorized
        );
    }
    let response = post_json(&throttled.client, "/api/token", &wrong);
    assert!(response.headers().get_one("Retry-After").is_some());
    assert_error(response, Status::TooManyRequests, "too_many_requests");
}

#[test]
fn unknown_endpoints_and_methods_answer_json() {
    let app = spawn_app();
    assert_error(
        app.client.get("/api/nope").dispatch(),
        Status::NotFound,
        "not_found",
    );
    let response = app.client.get("/api/token").dispatch();
    assert!(response.status().code >= 400);
    body(response);
}

/// Creates a key through the account page; returns the secret shown once.
fn create_key(app: &TestApp, name: &str, scope: &str, days: &str) -> String {
    let response = app.post_form(
        "/account/api-keys",
        &[("name", name), ("scope", scope), ("expires_in_days", days)],
    );
    assert_eq!(response.status(), Status::Ok);
    let html = response.into_string().unwrap();
    let marker = "id=\"new-key-value\">";
    let at = html.find(marker).expect("the new key is shown") + marker.len();
    html[at..at + html[at..].find('<').unwrap()].to_string()
}

fn exchange<'c>(client: &'c Client, key: &str) -> LocalResponse<'c> {
    post_json(client, "/api/token", &json!({ "api_key": key }).to_string())
}

#[test]
fn an_api_key_is_shown_once_stored_hashed_and_exchanged_for_a_token() {
    let app = spawn_app();
    app.sign_in_as("svc", Role::User);
    let key = create_key(&app, "backup script", "full", "");
    assert!(key.starts_with("lk_") && key.len() > 40);
    let page = app
        .client
        .get("/account/api-keys")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("backup script") && page.contains(&key[..10]));
    assert!(!page.contains(&key), "shown only once");
    {
        use diesel::{QueryDsl, RunQueryDsl};
        let hashes: Vec<String> = latchkey::db::schema::api_keys::table
            .select(latchkey::db::schema::api_keys::key_hash)
            .load(&mut *app.pool().get().unwrap())
            .unwrap();
        assert_eq!(hashes.len(), 1);
        assert!(!hashes[0].contains(&key[3..]), "only a hash is stored");
    }
    let response = exchange(&app.client, &key);
    assert_eq!(response.status(), Status::Ok);
    let token = body(response);
    assert!(token["expires_in"].as_i64().unwrap() <= 900);
    assert!(
        token.get("refresh_token").is_none() && token.get("refresh_expires_in").is_none(),
        "a key's token has no refresh token: {token}"
    );
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        body(get_bearer(&app.client, "/api/me", access))["username"],
        "svc"
    );
    let keys = latchkey::models::ApiKey::for_user(
        &mut app.pool().get().unwrap(),
        &app.user("svc").unwrap().id,
    )
    .unwrap();
    assert!(keys[0].last_used_at.is_some(), "last use recorded");
}

#[test]
fn a_read_only_key_cannot_change_anything() {
    let app = spawn_app();
    app.sign_in_as("reader", Role::User);
    let key = create_key(&app, "dashboard", "read", "30");
    let access = body(exchange(&app.client, &key))["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        get_bearer(&app.client, "/api/me", &access).status(),
        Status::Ok
    );
    let response = app
        .client
        .post("/api/logout")
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .dispatch();
    assert_error(response, Status::Forbidden, "insufficient_scope");

    let full = create_key(&app, "deployer", "full", "");
    let access = body(exchange(&app.client, &full))["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .client
        .post("/api/logout")
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
}

#[test]
fn revoked_expired_and_unknown_keys_are_refused() {
    let app = spawn_app();
    app.sign_in_as("keys", Role::User);
    let revoked = create_key(&app, "old", "full", "");
    let expiring = create_key(&app, "short", "full", "1");
    let id = {
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        use latchkey::db::schema::api_keys::dsl;
        dsl::api_keys
            .filter(dsl::name.eq("old"))
            .select(dsl::id)
            .first::<String>(&mut *app.pool().get().unwrap())
            .unwrap()
    };
    let response = app.post_form(&format!("/account/api-keys/{id}/revoke"), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_error(
        exchange(&app.client, &revoked),
        Status::Unauthorized,
        "invalid_grant",
    );
    assert_eq!(exchange(&app.client, &expiring).status(), Status::Ok);
    app.clock().advance(time::Duration::days(2));
    assert_error(
        exchange(&app.client, &expiring),
        Status::Unauthorized,
        "invalid_grant",
    );
    assert_error(
        exchange(&app.client, "lk_not-a-real-key"),
        Status::Unauthorized,
        "invalid_grant",
    );
}

#[test]
fn key_form_input_is_validated() {
    let app = spawn_app();
    app.sign_in_as("val", Role::User);
    for (name, scope, days, message) in [
        ("", "read", "", "Give the key a name"),
        ("x", "admin", "", "Choose read only or full access"),
        ("x", "read", "0", "Enter a whole number of days"),
        ("x", "read", "abc", "Enter a whole number of days"),
        ("x", "read", "366", "Keys live at most 365 days"),
    ] {
        let response = app.post_form(
            "/account/api-keys",
            &[("name", name), ("scope", scope), ("expires_in_days", days)],
        );
        assert_eq!(response.status(), Status::UnprocessableEntity);
        assert!(
            response.into_string().unwrap().contains(message),
            "{message}"
        );
    }
    let page = app
        .client
        .get("/account/api-keys")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("You have no API keys yet."));
}

#[test]
fn admins_see_and_revoke_a_users_keys_and_disabling_revokes_them_for_good() {
    let app = spawn_app();
    let owner = app.sign_in_as("owner", Role::User);
    let key = create_key(&app, "cron", "full", "");
    let backup = create_key(&app, "backup", "read", "");
    app.logout();
    app.sign_in_as("boss", Role::Admin);
    let page = app
        .client
        .get(format!("/admin/users/{}", owner.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("cron") && page.contains(&key[..10]));
    let key_id = page
        .split(&format!("/admin/users/{}/api-keys/", owner.id))
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let response = app.post_form(
        &format!("/admin/users/{}/api-keys/{key_id}/revoke", owner.id),
        &[],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    // The page lists the newest key first: the admin revoked "backup".
    let revoked_now = exchange(&app.client, &backup).status();
    let cron_still = exchange(&app.client, &key).status();
    assert_eq!(
        (revoked_now, cron_still),
        (Status::Unauthorized, Status::Ok)
    );

    let response = app.post_form(&format!("/admin/users/{}/disable", owner.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_error(
        exchange(&app.client, &key),
        Status::Unauthorized,
        "invalid_grant",
    );
    // Re-enabling does not bring the keys back: a disabled account keeps no way in.
    app.post_form(&format!("/admin/users/{}/enable", owner.id), &[]);
    assert_eq!(exchange(&app.client, &key).status(), Status::Unauthorized);
    let causes: Vec<String> = audit_events(&app, "api_key_revoked")
        .into_iter()
        .filter_map(|e| e.detail)
        .collect();
    assert!(
        causes.iter().any(|d| d.contains("cron, account disabled")),
        "{causes:?}"
    );
}
