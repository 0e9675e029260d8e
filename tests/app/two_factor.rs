//! Two-factor sign-in: setting it up, the code step of a sign-in (app codes once each, recovery
//! codes, lockout, the signed pending cookie), the API, turning it off and an admin reset.

use latchkey::auth::two_factor::code_at;
use latchkey::models::{AuditEvent, AuditFilter, Role, TwoFactor, User};
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::blocking::LocalResponse;
use serde_json::{json, Value};

use crate::helpers::*;

/// The code the user's app shows now, by the site's clock.
fn code_now(app: &TestApp, secret: &str) -> String {
    code_at(secret, app.clock().now()).unwrap()
}

/// Moves the clock to the next 30-second step, so the app shows a new code.
fn next_step(app: &TestApp) {
    app.clock().advance(time::Duration::seconds(30));
}

fn enabled(app: &TestApp, user: &User) -> bool {
    TwoFactor::enabled(&mut app.pool().get().unwrap(), &user.id)
        .unwrap()
        .is_some()
}

fn kinds(app: &TestApp) -> Vec<String> {
    let filter = AuditFilter::default();
    AuditEvent::search(&mut app.pool().get().unwrap(), &filter, 1, 1000)
        .unwrap()
        .0
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Signs in with the password and returns the path of the code step it leads to.
fn password_step(app: &TestApp, username: &str, remember: bool) -> String {
    let mut fields = vec![("username", username), ("password", PASSWORD)];
    if remember {
        fields.push(("remember", "on"));
    }
    let response = app.post_form("/login", &fields);
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        token_from(&response).is_none(),
        "no session before the code"
    );
    location(&response)
}

#[test]
fn setting_up_needs_a_code_from_the_app_and_shows_the_recovery_codes_once() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let page = app.client.get("/account/two-factor").dispatch();
    assert_eq!(page.status(), Status::Ok);
    assert!(page
        .into_string()
        .unwrap()
        .contains("Two-factor sign-in is off"));

    let response = app.post_form("/account/two-factor/setup", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    let page = app
        .client
        .get("/account/two-factor")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(page.contains("<svg"), "a QR code to scan");
    let secret = app.two_factor_secret(&user);
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(page.contains(&grouped.join(" ")), "the key to type in");
    assert!(!enabled(&app, &user), "not on before a code");

    let wrong = app.post_form(
        "/account/two-factor/enable",
        &[("code", "000000"), ("password", PASSWORD)],
    );
    assert_eq!(wrong.status(), Status::UnprocessableEntity);
    assert!(wrong
        .into_string()
        .unwrap()
        .contains("That code is not right"));
    assert!(!enabled(&app, &user));
    // A session left open is not enough: the password is asked for too.
    let no_password = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code_now(&app, &secret)), ("password", "")],
    );
    assert_eq!(no_password.status(), Status::UnprocessableEntity);
    assert!(no_password
        .into_string()
        .unwrap()
        .contains("That is not your password."));
    assert!(!enabled(&app, &user));

    let right = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code_now(&app, &secret)), ("password", PASSWORD)],
    );
    assert_eq!(right.status(), Status::Ok);
    let body = right.into_string().unwrap();
    assert!(body.contains("only time they are shown"));
    assert_eq!(body.matches("<li><code>").count(), 10, "ten recovery codes");
    assert!(enabled(&app, &user));
    assert!(kinds(&app).contains(&"two_factor_enabled".to_string()));

    let again = app
        .client
        .get("/account/two-factor")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(again.contains("Two-factor sign-in is on"));
    assert!(
        !again.contains("<li><code>"),
        "the codes are not shown again"
    );
    assert!(!again.contains("<svg"), "nor the secret");
}

#[test]
fn signing_in_takes_the_password_then_a_code() {
    let app = spawn_app();
    let user = app.create_user("grace", Role::User);
    let (secret, _) = app.enable_two_factor(&user);

    let step = password_step(&app, "grace", false);
    assert_eq!(step, "/login/two-factor");
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::SeeOther,
        "the password alone does not sign in"
    );
    let page = app.client.get(step).dispatch();
    assert_eq!(page.status(), Status::Ok);
    assert!(page.into_string().unwrap().contains("authenticator app"));

    let wrong = app.post_form("/login/two-factor", &[("code", "123456")]);
    assert_eq!(wrong.status(), Status::UnprocessableEntity);
    assert!(token_from(&wrong).is_none());
    assert!(wrong
        .into_string()
        .unwrap()
        .contains("That code is not right"));

    let right = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(right.status(), Status::SeeOther);
    assert_eq!(location(&right), "/private");
    assert!(token_from(&right).is_some());
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    let last_login = User::find(&mut app.pool().get().unwrap(), &user.id)
        .unwrap()
        .unwrap()
        .last_login_at;
    assert!(last_login.is_some(), "stamped once both steps passed");
}

#[test]
fn the_code_step_keeps_next_and_remember_me() {
    let app = spawn_app();
    let user = app.create_user("hedy", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let response = app.post_form(
        "/login?next=/account/sessions",
        &[
            ("username", "hedy"),
            ("password", PASSWORD),
            ("remember", "on"),
        ],
    );
    assert_eq!(
        location(&response),
        "/login/two-factor?next=/account/sessions"
    );
    let response = app.post_form(
        "/login/two-factor?next=/account/sessions",
        &[("code", &code_now(&app, &secret))],
    );
    assert_eq!(location(&response), "/account/sessions");
    let cookie = session_set_cookie(&response, COOKIE).expect("session cookie");
    assert!(cookie.contains("Max-Age="), "remember me: {cookie}");
}

#[test]
fn each_code_works_once() {
    let app = spawn_app();
    let user = app.create_user("linus", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let code = code_now(&app, &secret);
    password_step(&app, "linus", false);
    let first = app.post_form("/login/two-factor", &[("code", &code)]);
    assert_eq!(first.status(), Status::SeeOther);
    app.logout();

    password_step(&app, "linus", false);
    let replay = app.post_form("/login/two-factor", &[("code", &code)]);
    assert_eq!(
        replay.status(),
        Status::UnprocessableEntity,
        "a replayed code"
    );
    next_step(&app);
    let fresh = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(fresh.status(), Status::SeeOther, "the next code works");
}

#[test]
fn wrong_codes_lock_the_account_like_wrong_passwords() {
    let app = spawn_app_with(|f| f.merge(("lockout_threshold", 3)));
    let user = app.create_user("mallory", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    password_step(&app, "mallory", false);
    for _ in 0..2 {
        let r = app.post_form("/login/two-factor", &[("code", "111111")]);
        assert_eq!(r.status(), Status::UnprocessableEntity);
    }
    let locked = app.post_form("/login/two-factor", &[("code", "222222")]);
    assert_eq!(locked.status(), Status::TooManyRequests);
    assert!(locked.headers().get_one("Retry-After").is_some());
    let right_but_locked =
        app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(right_but_locked.status(), Status::TooManyRequests);
    assert!(token_from(&right_but_locked).is_none());
    // The right password does not clear the count while a code is owed.
    let again = app.post_form("/login", &[("username", "mallory"), ("password", PASSWORD)]);
    assert_eq!(again.status(), Status::TooManyRequests);
    let events = kinds(&app);
    assert!(events.contains(&"two_factor_failed".to_string()));
    assert!(events.contains(&"login_locked".to_string()));
}

#[test]
fn an_account_disabled_between_the_steps_gets_the_wrong_code_answer() {
    let app = spawn_app();
    app.create_user("root", Role::Admin);
    let user = app.create_user("dora", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    password_step(&app, "dora", false);
    let wrong = app.post_form("/login/two-factor", &[("code", "123456")]);
    let (wrong_status, wrong_body) = (wrong.status(), wrong.into_string().unwrap());
    let now = app.clock().db_now();
    User::set_disabled(&mut app.pool().get().unwrap(), &user.id, true, now).unwrap();
    let right = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(right.status(), wrong_status);
    assert!(token_from(&right).is_none());
    let right_body = right.into_string().unwrap();
    let strip = |html: &str| match csrf_in(html) {
        Some(token) => html.replace(&token, "CSRF"),
        None => html.to_string(),
    };
    assert_eq!(strip(&right_body), strip(&wrong_body), "the same page");
    assert!(!right_body.to_lowercase().contains("disabled"));
    let events = audit_events(&app, "two_factor_failed");
    assert!(events
        .iter()
        .any(|e| e.detail.as_deref() == Some("disabled")));
}

#[test]
fn a_recovery_code_signs_in_once() {
    let app = spawn_app();
    let user = app.create_user("margaret", Role::User);
    let (_, codes) = app.enable_two_factor(&user);
    password_step(&app, "margaret", false);
    let typed = codes[3].to_uppercase().replace('-', " ");
    let response = app.post_form("/login/two-factor", &[("code", &typed)]);
    assert_eq!(
        response.status(),
        Status::SeeOther,
        "case and separators do not matter"
    );
    assert!(kinds(&app).contains(&"recovery_code_used".to_string()));
    app.logout();

    password_step(&app, "margaret", false);
    let reused = app.post_form("/login/two-factor", &[("code", &codes[3])]);
    assert_eq!(reused.status(), Status::UnprocessableEntity);
    let other = app.post_form("/login/two-factor", &[("code", &codes[4])]);
    assert_eq!(other.status(), Status::SeeOther);
}

/// Posts the code step with `pending` as the pending-sign-in cookie (sent on this request: a
/// cookie added to the client's jar by hand is not sent).
fn post_with_pending<'a>(app: &'a TestApp, pending: &str, code: &str) -> LocalResponse<'a> {
    let csrf = app.csrf_token();
    app.client
        .post("/login/two-factor")
        .header(ContentType::Form)
        .cookie(Cookie::new("latchkey_2fa", pending.to_string()))
        .body(form(&[("code", code), ("csrf_token", &csrf)]))
        .dispatch()
}

#[test]
fn the_code_step_needs_a_genuine_recent_password_step() {
    let app = spawn_app();
    let user = app.create_user("eve", Role::User);
    let (secret, _) = app.enable_two_factor(&user);

    let response = app.client.get("/login/two-factor").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login");
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(
        location(&response),
        "/login",
        "no password step, no sign-in"
    );
    assert!(token_from(&response).is_none());

    // A forged pending cookie (the user id with a made-up signature, or a longer expiry).
    for forged in [
        format!("{}.0.9999999999.AAAA", user.id),
        format!("{}.1.9999999999.{}", user.id, "x".repeat(43)),
    ] {
        let response = post_with_pending(&app, &forged, &code_now(&app, &secret));
        assert_eq!(location(&response), "/login");
        assert!(token_from(&response).is_none());
    }

    // A CSRF token is no pending-sign-in signature, even over the very same text: the pending
    // cookie's MAC key is derived for that purpose alone.
    let csrf = app
        .client
        .rocket()
        .state::<latchkey::auth::Csrf>()
        .expect("csrf managed");
    let expires = app.clock().unix() + 200;
    for binding in [
        format!("{}.0.{expires}", user.id),
        format!("2fa:{}:0:{expires}", user.id),
    ] {
        let forged = format!("{}.0.{expires}.{}", user.id, csrf.token_for(&binding));
        let response = post_with_pending(&app, &forged, &code_now(&app, &secret));
        assert_eq!(location(&response), "/login", "signed with the CSRF key");
        assert!(token_from(&response).is_none());
    }

    // A genuine one, five minutes and more later.
    password_step(&app, "eve", false);
    app.clock().advance(time::Duration::seconds(301));
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(location(&response), "/login");
    assert!(token_from(&response).is_none());
}

#[test]
fn the_api_asks_for_the_code_as_otp() {
    let app = spawn_app();
    let user = app.create_user("api_user", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let post = |body: Value| {
        let response = app
            .client
            .post("/api/token")
            .header(ContentType::JSON)
            .body(body.to_string())
            .dispatch();
        let status = response.status();
        let json: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        (status, json)
    };
    let (status, body) = post(json!({"username": "api_user", "password": PASSWORD}));
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error"], "two_factor_required");
    let (status, body) =
        post(json!({"username": "api_user", "password": PASSWORD, "otp": "000000"}));
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = post(
        json!({"username": "api_user", "password": "wrong-password-1", "otp": code_now(&app, &secret)}),
    );
    assert_eq!(
        status,
        Status::Unauthorized,
        "the code does not stand in for the password"
    );
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) =
        post(json!({"username": "api_user", "password": PASSWORD, "otp": code_now(&app, &secret)}));
    assert_eq!(status, Status::Ok, "{body}");
    assert!(body["access_token"].as_str().is_some());
    let (status, body) = post(json!({"username": "api_user", "password": PASSWORD, "otp": 123456}));
    assert_eq!(status, Status::BadRequest, "otp must be a string: {body}");
}

#[test]
fn turning_it_off_takes_the_password_and_a_code() {
    let app = spawn_app();
    let user = app.sign_in_as("barbara", Role::User);
    let (secret, _) = app.enable_two_factor(&user);

    let wrong_password = app.post_form(
        "/account/two-factor/disable",
        &[
            ("password", "not-my-password-9"),
            ("code", &code_now(&app, &secret)),
        ],
    );
    assert_eq!(wrong_password.status(), Status::UnprocessableEntity);
    assert!(enabled(&app, &user));
    next_step(&app);
    let no_code = app.post_form(
        "/account/two-factor/disable",
        &[("password", PASSWORD), ("code", "")],
    );
    assert_eq!(no_code.status(), Status::UnprocessableEntity);
    assert!(enabled(&app, &user));

    next_step(&app);
    let off = app.post_form(
        "/account/two-factor/disable",
        &[("password", PASSWORD), ("code", &code_now(&app, &secret))],
    );
    assert_eq!(off.status(), Status::SeeOther);
    assert!(!enabled(&app, &user));
    assert!(kinds(&app).contains(&"two_factor_disabled".to_string()));
    app.logout();
    let response = app.login("barbara", PASSWORD);
    assert_eq!(location(&response), "/private", "the password alone again");
}

#[test]
fn new_recovery_codes_replace_the_old_ones() {
    let app = spawn_app();
    let user = app.sign_in_as("frances", Role::User);
    let (secret, old) = app.enable_two_factor(&user);
    let response = app.post_form(
        "/account/two-factor/recovery-codes",
        &[("code", &code_now(&app, &secret))],
    );
    assert_eq!(response.status(), Status::Ok);
    let body = response.into_string().unwrap();
    assert_eq!(body.matches("<li><code>").count(), 10);
    assert!(!body.contains(&old[0]));
    let fresh = body
        .split("<li><code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap()
        .to_string();
    app.logout();
    password_step(&app, "frances", false);
    let stale = app.post_form("/login/two-factor", &[("code", &old[0])]);
    assert_eq!(stale.status(), Status::UnprocessableEntity);
    let works = app.post_form("/login/two-factor", &[("code", &fresh)]);
    assert_eq!(works.status(), Status::SeeOther);
    assert!(kinds(&app).contains(&"recovery_codes_replaced".to_string()));
}

#[test]
fn an_admin_can_turn_it_off_for_a_user_who_lost_their_phone() {
    let app = spawn_app();
    let user = app.create_user("rosalind", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    // The user is signed in (both steps) when the phone is lost.
    password_step(&app, "rosalind", false);
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    let user_token = token_from(&response).expect("signed in");
    drop(response);

    app.sign_in_as("chief", Role::Admin);
    let detail = app
        .client
        .get(format!("/admin/users/{}", user.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(detail.contains("On since"));
    let response = app.post_form(&format!("/admin/users/{}/two-factor/reset", user.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    assert!(!enabled(&app, &user));
    assert!(kinds(&app).contains(&"two_factor_disabled".to_string()));
    assert_eq!(
        time_until_refused(
            &app.client,
            "/private",
            &user_token,
            std::time::Duration::from_secs(2)
        )
        .map(|_| ()),
        Some(()),
        "the user's sessions end"
    );
    let again = app.post_form(&format!("/admin/users/{}/two-factor/reset", user.id), &[]);
    assert_eq!(
        again.status(),
        Status::SeeOther,
        "a clear message, not an error"
    );
    app.logout();
    let response = app.login("rosalind", PASSWORD);
    assert_eq!(location(&response), "/private");
}

#[test]
fn users_without_two_factor_sign_in_as_before() {
    let app = spawn_app();
    app.create_user("plain", Role::User);
    let response = app.login("plain", PASSWORD);
    assert_eq!(location(&response), "/private");
    assert!(token_from(&response).is_some());
    let response = app.client.get("/login/two-factor").dispatch();
    assert_eq!(location(&response), "/login");
}

#[test]
fn with_secure_cookies_the_pending_cookie_is_host_prefixed_and_strict() {
    let app = spawn_app_with(|f| f.merge(("cookie_secure", true)));
    let user = app.create_user("secure_sam", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let response = app.post_form(
        "/login",
        &[("username", "secure_sam"), ("password", PASSWORD)],
    );
    let pending = session_set_cookie(&response, "__Host-latchkey_2fa").expect("pending cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(pending.contains(flag), "{flag} in {pending}");
    }
    assert!(
        !pending.contains("Max-Age"),
        "ends with the browser: {pending}"
    );
    drop(response);
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(location(&response), "/private");
    let removal = session_set_cookie(&response, "__Host-latchkey_2fa").expect("removed");
    assert!(
        removal.contains("Secure"),
        "a __Host- removal must be Secure: {removal}"
    );
    assert!(
        removal.contains("Max-Age=0") || removal.contains("Expires=Thu, 01 Jan 1970"),
        "{removal}"
    );
    assert!(session_set_cookie(&response, "__Host-latchkey").is_some());
}

#[test]
fn tokens_say_two_factor_in_amr_and_keep_it_when_renewed() {
    let app = spawn_app();
    let user = app.create_user("amr_user", Role::User);
    app.create_user("pwd_only", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    password_step(&app, "amr_user", false);
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    let token = token_from(&response).unwrap();
    drop(response);
    assert_eq!(claims_of(&token)["amr"], json!(["pwd", "otp"]));

    // Past half the token's life, the next request renews it from the session row.
    app.clock().advance(time::Duration::minutes(10));
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let renewed = token_from(&response).expect("a renewed token");
    assert_ne!(renewed, token);
    assert_eq!(claims_of(&renewed)["amr"], json!(["pwd", "otp"]));
    drop(response);

    app.logout();
    let response = app.login("pwd_only", PASSWORD);
    let plain = token_from(&response).unwrap();
    assert!(
        claims_of(&plain).get("amr").is_none(),
        "a password alone: no amr"
    );
}

/// Gets a token with `grant` and answers the status of `GET /api/admin/users` with it.
fn admin_api_status(app: &TestApp, grant: Value) -> Status {
    let response = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(grant.to_string())
        .dispatch();
    let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    let token = body["access_token"].as_str().expect("a token").to_string();
    app.client
        .get("/api/admin/users")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {token}"),
        ))
        .dispatch()
        .status()
}

#[test]
fn with_admin_requires_two_factor_the_panel_needs_a_two_factor_sign_in() {
    let app = spawn_app_with(|f| f.merge(("admin_requires_two_factor", true)));
    let chief = app.create_user("chief", Role::Admin);
    app.create_user("deputy", Role::Admin);

    // An admin signed in with a password alone and no app yet: led to set one up, never a
    // dead end; every admin page and action does the same.
    let deputy = app.user("deputy").unwrap();
    app.login("deputy", PASSWORD);
    for page in [
        "/admin",
        "/admin/audit",
        &format!("/admin/users/{}", chief.id),
    ] {
        let response = app.client.get(page.to_string()).dispatch();
        assert_eq!(response.status(), Status::SeeOther, "{page}");
        assert_eq!(location(&response), "/account/two-factor", "{page}");
    }
    let response = app.post_form(&format!("/admin/users/{}/disable", chief.id), &[]);
    assert_eq!(location(&response), "/account/two-factor");
    drop(response);
    assert!(!app.user("chief").unwrap().disabled);
    let listed = admin_api_status(&app, json!({"username": "deputy", "password": PASSWORD}));
    assert_eq!(listed, Status::Forbidden, "the admin API too");

    // The app set up elsewhere, this session without a code: "Confirm it's you" with a code
    // makes it a two-factor session, and the panel opens.
    let (deputy_secret, _) = app.enable_two_factor(&deputy);
    let response = app.client.get("/admin").dispatch();
    assert_eq!(location(&response), "/confirm?next=/admin");
    drop(response);
    next_step(&app);
    let code = code_now(&app, &deputy_secret);
    let response = app.post_form("/confirm?next=/admin", &[("code", &code)]);
    assert_eq!(location(&response), "/admin");
    drop(response);
    assert_eq!(app.client.get("/admin").dispatch().status(), Status::Ok);
    app.logout();

    // With two-factor, the same panel opens, in the browser and over the API.
    let (secret, _) = app.enable_two_factor(&chief);
    password_step(&app, "chief", false);
    let response = app.post_form("/login/two-factor", &[("code", &code_now(&app, &secret))]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_eq!(app.client.get("/admin").dispatch().status(), Status::Ok);
    next_step(&app);
    let otp = code_now(&app, &secret);
    let listed = admin_api_status(
        &app,
        json!({"username": "chief", "password": PASSWORD, "otp": otp}),
    );
    assert_eq!(listed, Status::Ok);
}
