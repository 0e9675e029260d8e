//! What an access token says, and what it must say: no personal data, `typ` set and checked,
//! `crit` refused, its life capped, and a `sub` that names an enabled user.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use latchkey::models::Role;
use rocket::http::{Cookie, Header, Status};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

/// Signs `payload` under `header` with the test secret (HS256), whatever the header says.
fn sign(header: &Value, payload: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

fn header(app: &TestApp) -> Value {
    json!({
        "alg": "HS256",
        "typ": "at+jwt",
        "kid": app.tokens().keyring().active().kid,
    })
}

/// `/api/me` with `token` as Bearer, and `/private` with it as the cookie (on a client with no
/// refresh cookie).
fn statuses(app: &TestApp, token: &str) -> (Status, Status) {
    let api = app
        .client
        .get("/api/me")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .status();
    let other = second_instance(app);
    let page = get_as(&other, "/private", token).status();
    (api, page)
}

const REFUSED: (Status, Status) = (Status::Unauthorized, Status::SeeOther);

#[test]
fn tokens_carry_no_personal_data_and_say_what_they_are() {
    let app = spawn_app();
    app.sign_in_as("quill", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    let payload = claims_of(&token);
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "aud",
            "auth_time",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "role",
            "sexp",
            "sid",
            "sub"
        ]
        .into_iter()
        .collect(),
        "{payload}"
    );
    assert!(
        !payload.to_string().contains("quill"),
        "no username: {payload}"
    );
    assert!(
        !payload.to_string().contains("example"),
        "no email: {payload}"
    );
    let head: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(head["typ"], "at+jwt");
    // Pages and /api/me still know who it is (from the database, not the token).
    let me: Value = serde_json::from_str(
        &app.client
            .get("/api/me")
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(me["username"], "quill");
    assert!(me["email"].as_str().unwrap().contains('@'));
    assert!(app
        .client
        .get("/private")
        .dispatch()
        .into_string()
        .unwrap()
        .contains("quill"));
}

#[test]
fn a_token_without_the_access_type_is_refused() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let payload = serde_json::to_value(app.claims_for(&user)).unwrap();
    assert_eq!(statuses(&app, &sign(&header(&app), &payload)).0, Status::Ok);
    for typ in [
        json!(null),
        json!("JWT"),
        json!("refresh"),
        json!("at+JWT "),
    ] {
        let mut head = header(&app);
        if typ.is_null() {
            head.as_object_mut().unwrap().remove("typ");
        } else {
            head["typ"] = typ.clone();
        }
        assert_eq!(statuses(&app, &sign(&head, &payload)), REFUSED, "typ {typ}");
    }
}

#[test]
fn a_token_with_critical_extensions_is_refused() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let payload = serde_json::to_value(app.claims_for(&user)).unwrap();
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let mut head = header(&app);
        head["crit"] = crit.clone();
        head["b64"] = json!(true);
        assert_eq!(
            statuses(&app, &sign(&head, &payload)),
            REFUSED,
            "crit {crit}"
        );
    }
}

#[test]
fn a_token_that_lives_longer_than_the_token_ttl_is_refused() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let mut payload = serde_json::to_value(app.claims_for(&user)).unwrap();
    let iat = payload["iat"].as_i64().unwrap();
    payload["exp"] = json!(iat + 900);
    assert_eq!(statuses(&app, &sign(&header(&app), &payload)).0, Status::Ok);
    payload["exp"] = json!(iat + 901);
    assert_eq!(statuses(&app, &sign(&header(&app), &payload)), REFUSED);
    payload["exp"] = json!(iat + 365 * 24 * 3600);
    assert_eq!(statuses(&app, &sign(&header(&app), &payload)), REFUSED);
}

#[test]
fn a_token_whose_sub_names_no_enabled_user_is_refused() {
    let app = spawn_app();
    app.create_user("boss", Role::Admin);
    let user = app.sign_in_as("ada", Role::User);
    let mut payload = serde_json::to_value(app.claims_for(&user)).unwrap();
    for sub in ["1 OR 1=1", "", "00000000-0000-0000-0000-000000000000"] {
        payload["sub"] = json!(sub);
        let (api, page) = statuses(&app, &sign(&header(&app), &payload));
        assert_eq!((api, page), REFUSED, "sub {sub:?}");
    }
    // A disabled user's id is refused too, by an instance that has not seen the user before.
    latchkey::models::User::set_disabled(
        &mut app.pool().get().unwrap(),
        &user.id,
        true,
        app.clock().db_now(),
    )
    .unwrap();
    payload["sub"] = json!(user.id);
    let fresh = second_instance(&app);
    let response = fresh
        .get("/api/me")
        .header(Header::new(
            "Authorization",
            format!("Bearer {}", sign(&header(&app), &payload)),
        ))
        .dispatch();
    assert_eq!(response.status(), Status::Unauthorized);
}

#[test]
fn refresh_values_and_pending_sign_ins_cannot_stand_in_for_access_tokens() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let refresh = app
        .client
        .cookies()
        .get("latchkey_refresh")
        .unwrap()
        .value()
        .to_string();
    // A refresh value as the access token, by cookie and by Bearer.
    assert_eq!(statuses(&app, &refresh), REFUSED);
    // An access token as the refresh cookie.
    let access = app.session_cookie().unwrap().value().to_string();
    let other = second_instance(&app);
    let response = other
        .get("/private")
        .cookie(Cookie::new("latchkey_refresh", access.clone()))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    // A pending two-factor cookie as either.
    app.enable_two_factor(&user);
    let pending_client = second_instance(&app);
    let csrf = csrf_token_of(&pending_client);
    let response = pending_client
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .body(form(&[
            ("username", "ada"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let pending = pending_client
        .cookies()
        .get("latchkey_2fa")
        .expect("a pending sign-in")
        .value()
        .to_string();
    assert_eq!(statuses(&app, &pending), REFUSED);
    let response = other
        .get("/private")
        .cookie(Cookie::new("latchkey_refresh", pending))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
}
