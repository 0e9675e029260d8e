//! Every kind of bad token is treated as "not signed in": redirect, cookie removed, never a 500.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::models::Role;
use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn kid(app: &TestApp) -> String {
    app.tokens().keyring().active().kid.clone()
}

/// Signs any JSON payload with the app's secret, the given algorithm and kid.
fn sign_raw(
    payload: &serde_json::Value,
    alg: Algorithm,
    kid: Option<String>,
    secret: &[u8],
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid;
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, payload, &EncodingKey::from_secret(secret)).unwrap()
}

fn valid_payload(app: &TestApp) -> serde_json::Value {
    let user = app.create_user("tess", Role::User);
    serde_json::to_value(app.claims_for(&user)).unwrap()
}

/// With `token` as the cookie, `/private` must redirect to sign-in with `message` and remove the cookie.
fn assert_refused(app: &TestApp, token: &str, message: &str) {
    app.set_token(token);
    let response = app.get("/private");
    assert_eq!(response.status(), Status::SeeOther, "token {token:.40}…");
    assert_eq!(location(&response), "/login?next=/private");
    let removal = session_set_cookie(&response, COOKIE).expect("cookie removed");
    assert!(
        removal.contains("Max-Age=0") || removal.contains("1970"),
        "{removal}"
    );
    drop(response);
    let login = app
        .client
        .get("/login?next=/private")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(login.contains(message), "flash {message:?}");
}

const SIGN_IN: &str = "Please sign in to continue.";

#[test]
fn a_valid_token_opens_the_private_page() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    app.set_token(&sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    ));
    let response = app.get("/private");
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().unwrap().contains("tess"));
}

#[test]
fn no_cookie_redirects_with_sign_in_message() {
    let app = spawn_app();
    let response = app.get("/private");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login?next=/private");
    drop(response);
    let login = app
        .client
        .get("/login?next=/private")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(login.contains(SIGN_IN));
}

#[test]
fn expired_token_redirects_to_login_with_message() {
    let app = spawn_app();
    let mut payload = valid_payload(&app);
    payload["iat"] = json!(now() - 960);
    payload["nbf"] = json!(now() - 960);
    payload["exp"] = json!(now() - 60);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    assert_refused(
        &app,
        &token,
        "Your session has expired. Please sign in again.",
    );
}

#[test]
fn leeway_on_nbf_is_only_a_few_seconds() {
    let app = spawn_app();
    let mut payload = valid_payload(&app);
    payload["nbf"] = json!(now() + 2);
    app.set_token(&sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    ));
    assert_eq!(
        app.get("/private").status(),
        Status::Ok,
        "2 s early is within leeway"
    );
    payload["nbf"] = json!(now() + 30);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    assert_refused(&app, &token, SIGN_IN);
}

#[test]
fn an_expired_token_of_an_unknown_session_is_not_renewed() {
    let app = spawn_app();
    let mut payload = valid_payload(&app);
    payload["exp"] = json!(now() - 10); // past the 5 s leeway
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    assert_refused(
        &app,
        &token,
        "Your session has expired. Please sign in again.",
    );
}

#[test]
fn bad_signature_is_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        b"another-secret-of-enough-length-000000000000",
    );
    assert_refused(&app, &token, SIGN_IN);
}

#[test]
fn tampered_claims_are_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = payload.clone();
    forged["role"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let forged_token = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    app.set_token(&forged_token);
    assert_eq!(app.get("/admin").status(), Status::SeeOther);
    assert_refused(&app, &forged_token, SIGN_IN);
}

#[test]
fn alg_none_is_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid(&app)}).to_string());
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    assert_refused(&app, &format!("{header}.{body}."), SIGN_IN);
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "None", "typ": "JWT"}).to_string());
    assert_refused(&app, &format!("{header}.{body}."), SIGN_IN);
}

#[test]
fn other_algorithms_are_refused_even_with_the_right_secret() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign_raw(&payload, alg, Some(kid(&app)), SECRET.as_bytes());
        assert_refused(&app, &token, SIGN_IN);
    }
    // An RS256 header over an HMAC signature (algorithm confusion).
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid(&app)}).to_string());
    assert_refused(
        &app,
        &format!("{header}.{}.{}", parts[1], parts[2]),
        SIGN_IN,
    );
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some("k-unknown".into()),
        SECRET.as_bytes(),
    );
    assert_refused(&app, &token, SIGN_IN);
    let token = sign_raw(&payload, Algorithm::HS256, None, SECRET.as_bytes());
    assert_refused(&app, &token, SIGN_IN);
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let mut wrong_iss = payload.clone();
    wrong_iss["iss"] = json!("someone-else");
    assert_refused(
        &app,
        &sign_raw(
            &wrong_iss,
            Algorithm::HS256,
            Some(kid(&app)),
            SECRET.as_bytes(),
        ),
        SIGN_IN,
    );
    let mut wrong_aud = payload.clone();
    wrong_aud["aud"] = json!("another-app");
    assert_refused(
        &app,
        &sign_raw(
            &wrong_aud,
            Algorithm::HS256,
            Some(kid(&app)),
            SECRET.as_bytes(),
        ),
        SIGN_IN,
    );
}

#[test]
fn missing_required_claims_are_refused() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    for claim in ["exp", "nbf", "iss", "aud", "sub"] {
        let mut without = payload.clone();
        without.as_object_mut().unwrap().remove(claim);
        let token = sign_raw(
            &without,
            Algorithm::HS256,
            Some(kid(&app)),
            SECRET.as_bytes(),
        );
        assert_refused(&app, &token, SIGN_IN);
    }
}

#[test]
fn not_yet_valid_token_is_refused() {
    let app = spawn_app();
    let mut payload = valid_payload(&app);
    payload["nbf"] = json!(now() + 3600);
    payload["exp"] = json!(now() + 7200);
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    assert_refused(&app, &token, SIGN_IN);
}

#[test]
fn malformed_tokens_are_refused() {
    let app = spawn_app();
    for token in [
        "not-a-token",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.x",
        "ünïcode.tøken.x",
    ] {
        assert_refused(&app, token, SIGN_IN);
    }
}

#[test]
fn oversized_token_is_refused() {
    let app = spawn_app();
    let mut payload = valid_payload(&app);
    payload["name"] = json!("x".repeat(5000));
    let token = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    assert!(token.len() > 4096);
    assert_refused(&app, &token, SIGN_IN);
}

#[test]
fn public_pages_drop_a_bad_cookie_and_show_signed_out() {
    let app = spawn_app();
    app.set_token("garbage.token.here");
    let response = app.get("/");
    assert_eq!(response.status(), Status::Ok);
    assert!(
        session_set_cookie(&response, COOKIE).is_some(),
        "cookie removed"
    );
    assert!(response.into_string().unwrap().contains("Sign in"));
}

#[test]
fn issued_tokens_carry_every_required_claim_and_kid() {
    let app = spawn_app();
    app.sign_in_as("uma", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some(kid(&app).as_str()));
    let payload: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for claim in ["iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti"] {
        assert!(payload.get(claim).is_some(), "{claim} present");
    }
    assert_eq!(payload["role"], "user");
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(
        payload["sexp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        12 * 3600
    );
    assert_eq!(payload["sid"].as_str().unwrap().len(), 32);
    assert!(!token.contains(PASSWORD));
}

#[test]
fn every_invalid_kind_over_the_bearer_header_is_401_invalid_token() {
    let app = spawn_app();
    let payload = valid_payload(&app);
    let good = sign_raw(
        &payload,
        Algorithm::HS256,
        Some(kid(&app)),
        SECRET.as_bytes(),
    );
    let parts: Vec<&str> = good.split('.').collect();
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut p = payload.clone();
        change(&mut p);
        sign_raw(&p, Algorithm::HS256, Some(kid(&app)), SECRET.as_bytes())
    };
    let none_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid(&app)}).to_string());
    let mut tampered = payload.clone();
    tampered["role"] = json!("admin");
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            sign_raw(
                &payload,
                Algorithm::HS256,
                Some(kid(&app)),
                b"another-secret-of-enough-length-000000000000",
            ),
        ),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "other algorithm",
            sign_raw(
                &payload,
                Algorithm::HS512,
                Some(kid(&app)),
                SECRET.as_bytes(),
            ),
        ),
        (
            "unknown kid",
            sign_raw(
                &payload,
                Algorithm::HS256,
                Some("k-unknown".into()),
                SECRET.as_bytes(),
            ),
        ),
        (
            "no kid",
            sign_raw(&payload, Algorithm::HS256, None, SECRET.as_bytes()),
        ),
        ("wrong iss", with(&|p| p["iss"] = json!("someone-else"))),
        ("wrong aud", with(&|p| p["aud"] = json!("another-app"))),
        (
            "missing exp",
            with(&|p| {
                p.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("future nbf", with(&|p| p["nbf"] = json!(now() + 3600))),
        (
            "tampered",
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(tampered.to_string()),
                parts[2]
            ),
        ),
        ("malformed", "not.a.jwt".to_string()),
        ("oversized", with(&|p| p["name"] = json!("x".repeat(5000)))),
    ];
    for (what, token) in cases {
        let response = app
            .client
            .get("/api/me")
            .header(rocket::http::Header::new(
                "Authorization",
                format!("Bearer {token}"),
            ))
            .dispatch();
        assert_eq!(response.status(), Status::Unauthorized, "{what}");
        let challenge = response
            .headers()
            .get_one("WWW-Authenticate")
            .unwrap_or_default()
            .to_string();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        let body: serde_json::Value =
            serde_json::from_str(&response.into_string().unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_token", "{what}");
    }
    let response = app
        .client
        .get("/api/me")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {good}"),
        ))
        .dispatch();
    assert_eq!(response.status(), Status::Ok, "the untouched token works");
}
