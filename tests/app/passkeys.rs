//! Passkeys end to end through the site's own endpoints, with webauthn-authenticator-rs's
//! software authenticator (`SoftPasskey`) in the browser's place: register, sign in with no name
//! typed, use as the second factor, rename and remove; and each way an answer must be refused.
//!
//! The software authenticator keeps no discoverable credentials: it answers only when the
//! request names its credential, and sends no user handle. The tests fill in both, as a browser
//! with a discoverable passkey would (neither is covered by the signature).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use latchkey::db::schema::passkeys;
use latchkey::models::{Role, User};
use rocket::http::{ContentType, Status};
use rocket::local::blocking::Client;
use serde_json::Value;
use webauthn_authenticator_rs::prelude::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::helpers::{
    audit_events, claims_of, csrf_token_of, form, location, second_instance, spawn_app, TestApp,
    COOKIE, PASSWORD,
};

/// Where the tests' site is, as its relying party sees it (no public_origin: localhost, any
/// port).
fn origin() -> Url {
    Url::parse("http://localhost:8000").unwrap()
}

/// A software authenticator that verifies its user (as a passkey must).
fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// POSTs a form with the client's CSRF token; the JSON answer (status, body).
fn options(client: &Client, uri: &str) -> (Status, Value) {
    let csrf = csrf_token_of(client);
    let response = client
        .post(uri.to_string())
        .header(ContentType::Form)
        .body(form(&[("csrf_token", &csrf)]))
        .dispatch();
    let status = response.status();
    let body = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// POSTs the page's form with the browser's answer; the redirect target and the flash page.
fn answer(client: &Client, uri: &str, fields: &[(&str, &str)]) -> (Status, String, String) {
    let csrf = csrf_token_of(client);
    let mut fields = fields.to_vec();
    fields.push(("csrf_token", &csrf));
    let response = client
        .post(uri.to_string())
        .header(ContentType::Form)
        .body(form(&fields))
        .dispatch();
    let (status, to) = (response.status(), location(&response));
    let page = if to.is_empty() {
        response.into_string().unwrap_or_default()
    } else {
        client
            .get(to.clone())
            .dispatch()
            .into_string()
            .unwrap_or_default()
    };
    (status, to, page)
}

/// Adds a passkey named `name` to the signed-in account of `client` through the account page.
fn register(client: &Client, key: &mut SoftPasskey, name: &str) -> (Status, String, String) {
    let (status, mut opts) = options(client, "/account/passkeys/options");
    assert_eq!(status, Status::Ok, "{opts}");
    let ceremony = opts["ceremony"].as_str().unwrap().to_string();
    // The site asks for a discoverable credential; the software authenticator cannot make one.
    opts["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged".into();
    opts["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
    let request: CreationChallengeResponse = serde_json::from_value(opts).unwrap();
    let credential = key
        .do_registration(origin(), request)
        .expect("registration");
    let credential = serde_json::to_string(&credential).unwrap();
    answer(
        client,
        "/account/passkeys",
        &[
            ("name", name),
            ("ceremony", &ceremony),
            ("credential", &credential),
        ],
    )
}

/// The stored credential id (base64url) of the account's only passkey.
fn credential_id(app: &TestApp, user: &User) -> String {
    passkeys::table
        .filter(passkeys::user_id.eq(&user.id))
        .select(passkeys::credential_id)
        .first(&mut *app.pool().get().unwrap())
        .unwrap()
}

/// Begins a passkey sign-in on `client`: the ceremony and the request as the authenticator
/// sees it, naming `credential` as a browser would find its discoverable credential.
fn begin_sign_in(
    client: &Client,
    uri: &str,
    credential: &str,
) -> (String, RequestChallengeResponse) {
    let (status, mut opts) = options(client, uri);
    assert_eq!(status, Status::Ok, "{opts}");
    let ceremony = opts["ceremony"].as_str().unwrap().to_string();
    opts["publicKey"]["allowCredentials"] =
        serde_json::json!([{ "type": "public-key", "id": credential }]);
    (ceremony, serde_json::from_value(opts).unwrap())
}

/// The authenticator's answer as the browser posts it, with `user` as the user handle.
fn assertion(
    key: &mut SoftPasskey,
    at: Url,
    request: RequestChallengeResponse,
    user: &User,
) -> String {
    let answer = key.do_authentication(at, request).expect("assertion");
    let mut answer = serde_json::to_value(&answer).unwrap();
    let handle = uuid::Uuid::parse_str(&user.id).unwrap();
    answer["response"]["userHandle"] = URL_SAFE_NO_PAD.encode(handle.as_bytes()).into();
    answer.to_string()
}

/// Posts the sign-in form with the browser's answer to ceremony `ceremony`.
fn finish_sign_in(client: &Client, ceremony: &str, answer_json: &str) -> (Status, String, String) {
    answer(
        client,
        "/login/passkey",
        &[("ceremony", ceremony), ("credential", answer_json)],
    )
}

/// A whole passkey sign-in on `client`: (status, redirect, the page it leads to).
fn sign_in(
    client: &Client,
    key: &mut SoftPasskey,
    credential: &str,
    user: &User,
) -> (Status, String, String) {
    let (ceremony, request) = begin_sign_in(client, "/login/passkey/options", credential);
    let answer_json = assertion(key, origin(), request, user);
    finish_sign_in(client, &ceremony, &answer_json)
}

/// A site with `ada` signed in and one passkey registered; her authenticator and its
/// credential id.
fn ada_with_a_passkey() -> (TestApp, User, SoftPasskey, String) {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let mut key = authenticator();
    let (status, to, page) = register(&app.client, &mut key, "Laptop");
    assert_eq!(
        (status, to.as_str()),
        (Status::SeeOther, "/account/passkeys"),
        "{page}"
    );
    let credential = credential_id(&app, &user);
    app.logout();
    (app, user, key, credential)
}

fn signed_in_token(client: &Client) -> Option<String> {
    client.cookies().get(COOKIE).map(|c| c.value().to_string())
}

#[test]
fn a_registered_passkey_signs_in_with_no_name_typed_and_counts_as_multi_factor() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    assert!(signed_in_token(&app.client).is_none());
    let (status, to, page) = sign_in(&app.client, &mut key, &credential, &user);
    assert_eq!(
        (status, to.as_str()),
        (Status::SeeOther, "/private"),
        "{page}"
    );
    assert!(page.contains("Signed in as ada"), "{page}");
    let claims = claims_of(&signed_in_token(&app.client).expect("session cookie"));
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user"]));
    assert!(
        claims["auth_time"].is_number(),
        "a passkey is a fresh proof"
    );
    let added = audit_events(&app, "passkey_added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].detail.as_deref(), Some("Laptop"));
    let ok = audit_events(&app, "login_ok");
    assert!(
        ok[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("passkey \"Laptop\""),
        "{ok:?}"
    );
    let last_used: Option<time::PrimitiveDateTime> = passkeys::table
        .select(passkeys::last_used_at)
        .first(&mut *app.pool().get().unwrap())
        .unwrap();
    assert!(last_used.is_some());
    // The data download names it, without the key material.
    let data = app.get("/account/data").into_string().unwrap();
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["passkeys"][0]["name"], "Laptop");
    assert!(data["passkeys"][0].get("passkey").is_none());
    assert!(!data.to_string().contains(&credential));
}

#[test]
fn the_page_lists_renames_and_removes_and_a_removed_passkey_is_refused_at_once() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    app.sign_in_again("ada");
    let id: String = passkeys::table
        .select(passkeys::id)
        .first(&mut *app.pool().get().unwrap())
        .unwrap();
    let renamed = app.post_form(
        &format!("/account/passkeys/{id}/rename"),
        &[("name", "  Work <b>laptop</b> ")],
    );
    assert_eq!(renamed.status(), Status::SeeOther);
    let page = app.get("/account/passkeys").into_string().unwrap();
    assert!(
        page.contains("Work &lt;b&gt;laptop&lt;&#x2F;b&gt;")
            || page.contains("Work &lt;b&gt;laptop&lt;/b&gt;"),
        "{page}"
    );
    let empty = app.post_form(
        &format!("/account/passkeys/{id}/rename"),
        &[("name", "   ")],
    );
    assert_eq!(empty.status(), Status::SeeOther);
    let removed = app.post_form(&format!("/account/passkeys/{id}/remove"), &[]);
    assert_eq!(removed.status(), Status::SeeOther);
    assert_eq!(audit_events(&app, "passkey_removed").len(), 1);
    app.logout();
    // The authenticator still holds the key; the site no longer knows it.
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    let (status, to, page) = finish_sign_in(&app.client, &ceremony, &answer_json);
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/login"));
    assert!(page.contains("not registered here"), "{page}");
    assert!(signed_in_token(&app.client).is_none());
}

#[test]
fn another_accounts_passkey_cannot_be_renamed_or_removed() {
    let (app, _ada, _key, _credential) = ada_with_a_passkey();
    let id: String = passkeys::table
        .select(passkeys::id)
        .first(&mut *app.pool().get().unwrap())
        .unwrap();
    app.sign_in_as("eve", Role::User);
    app.post_form(
        &format!("/account/passkeys/{id}/rename"),
        &[("name", "mine")],
    );
    app.post_form(&format!("/account/passkeys/{id}/remove"), &[]);
    let name: String = passkeys::table
        .select(passkeys::name)
        .first(&mut *app.pool().get().unwrap())
        .unwrap();
    assert_eq!(name, "Laptop");
}

#[test]
fn adding_a_passkey_needs_a_recent_sign_in() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::User);
    app.clock().advance(time::Duration::minutes(11));
    let (status, body) = options(&app.client, "/account/passkeys/options");
    assert_eq!(status, Status::Forbidden);
    assert_eq!(body["confirm"], "/confirm?next=/account/passkeys");
    let page = app.get("/account/passkeys").into_string().unwrap();
    assert!(page.contains("Confirm it"), "{page}");
    assert!(!page.contains("data-passkey=\"create\""));
}

#[test]
fn a_replayed_challenge_is_refused() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    let fields = [
        ("ceremony", ceremony.as_str()),
        ("credential", answer_json.as_str()),
    ];
    let (_, to, _) = answer(&app.client, "/login/passkey", &fields);
    assert_eq!(to, "/private");
    app.logout();
    let (status, to, page) = answer(&app.client, "/login/passkey", &fields);
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/login"));
    assert!(page.contains("expired or was already used"), "{page}");
    assert!(signed_in_token(&app.client).is_none());
}

#[test]
fn an_expired_challenge_is_refused() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    app.clock()
        .advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    let (_, to, page) = finish_sign_in(&app.client, &ceremony, &answer_json);
    assert_eq!(to, "/login");
    assert!(page.contains("expired or was already used"), "{page}");
}

#[test]
fn an_answer_made_for_another_origin_is_refused() {
    // The site says where it is: only that origin (port included) may answer.
    let app =
        crate::helpers::spawn_app_with(|f| f.merge(("public_origin", "http://localhost:8000")));
    let user = app.sign_in_as("ada", Role::User);
    let mut key = authenticator();
    let (_, to, page) = register(&app.client, &mut key, "Laptop");
    assert_eq!(to, "/account/passkeys", "{page}");
    let credential = credential_id(&app, &user);
    app.logout();
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    // Same relying party (localhost), another origin: a page on another port asked for it.
    let elsewhere = Url::parse("http://localhost:8001").unwrap();
    let answer_json = assertion(&mut key, elsewhere, request, &user);
    let (_, to, page) = finish_sign_in(&app.client, &ceremony, &answer_json);
    assert_eq!(to, "/login");
    assert!(page.contains("could not be verified"), "{page}");
    let failed = audit_events(&app, "login_failed");
    assert!(
        failed[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("not verified"),
        "{failed:?}"
    );
    assert_eq!(failed[0].subject.as_deref(), Some("ada"));
    assert!(signed_in_token(&app.client).is_none());
}

#[test]
fn an_unknown_credential_and_a_user_handle_of_another_account_are_refused() {
    let (app, _ada, mut key, credential) = ada_with_a_passkey();
    let eve = app.create_user("eve", Role::User);
    // Ada's credential presented as Eve's.
    let (status, to, page) = sign_in(&app.client, &mut key, &credential, &eve);
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/login"));
    assert!(page.contains("not registered here"), "{page}");
    // A genuine passkey, registered on another site with the same origin: unknown here.
    let elsewhere = spawn_app();
    let bob = elsewhere.sign_in_as("bob", Role::User);
    let mut bobs_key = authenticator();
    register(&elsewhere.client, &mut bobs_key, "Bob's key");
    let bobs_credential = credential_id(&elsewhere, &bob);
    let (_, to, page) = sign_in(&app.client, &mut bobs_key, &bobs_credential, &bob);
    assert_eq!(to, "/login");
    assert!(page.contains("not registered here"), "{page}");
    assert!(signed_in_token(&app.client).is_none());
    let failed = audit_events(&app, "login_failed");
    assert!(
        failed
            .iter()
            .any(|e| e.detail.as_deref() == Some("passkey: credential not registered")),
        "{failed:?}"
    );
}

#[test]
fn a_signature_counter_that_goes_back_is_refused_and_audited() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let (_, to, _) = sign_in(&app.client, &mut key, &credential, &user);
    assert_eq!(to, "/private");
    app.logout();
    // The site saw counter 1; as if a clone of the authenticator had been used up to 1000.
    let mut conn = app.pool().get().unwrap();
    let stored: String = passkeys::table
        .select(passkeys::passkey)
        .first(&mut *conn)
        .unwrap();
    let mut stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored["cred"]["counter"], 1,
        "the counter seen at sign-in is stored"
    );
    stored["cred"]["counter"] = 1000.into();
    diesel::update(passkeys::table)
        .set(passkeys::passkey.eq(stored.to_string()))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    let (_, to, page) = sign_in(&app.client, &mut key, &credential, &user);
    assert_eq!(to, "/login");
    assert!(page.contains("may have been copied"), "{page}");
    let events = audit_events(&app, "passkey_counter_regressed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject.as_deref(), Some("ada"));
}

#[test]
fn a_passkey_is_the_second_factor_after_the_password_beside_the_app() {
    let app = spawn_app();
    let user = app.sign_in_as("ada", Role::User);
    let mut key = authenticator();
    register(&app.client, &mut key, "Phone");
    let credential = credential_id(&app, &user);
    app.enable_two_factor(&user);
    app.logout();
    let response = app.post_form("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(location(&response), "/login/two-factor");
    let page = app.get("/login/two-factor").into_string().unwrap();
    assert!(page.contains("Use a passkey instead"), "{page}");
    let (ceremony, request) = begin_sign_in(
        &app.client,
        "/login/two-factor/passkey/options",
        &credential,
    );
    let answer_json = assertion(&mut key, origin(), request, &user);
    let (status, to, page) = answer(
        &app.client,
        "/login/two-factor/passkey",
        &[("ceremony", &ceremony), ("credential", &answer_json)],
    );
    assert_eq!(
        (status, to.as_str()),
        (Status::SeeOther, "/private"),
        "{page}"
    );
    let claims = claims_of(&signed_in_token(&app.client).unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user"]));
    let ok = audit_events(&app, "login_ok");
    assert!(
        ok[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("password and passkey"),
        "{ok:?}"
    );
}

#[test]
fn the_second_factor_step_needs_the_password_step_first() {
    let (app, _user, _key, _credential) = ada_with_a_passkey();
    let (status, body) = options(&app.client, "/login/two-factor/passkey/options");
    assert_eq!(status, Status::Unauthorized);
    assert!(
        body["error"].as_str().unwrap().contains("sign in again"),
        "{body}"
    );
}

#[test]
fn a_lockout_aimed_at_the_account_does_not_stop_its_owners_passkey() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let attacker = second_instance(&app);
    for _ in 0..12 {
        let csrf = csrf_token_of(&attacker);
        attacker
            .post("/login")
            .header(ContentType::Form)
            .body(form(&[
                ("username", "ada"),
                ("password", "wrong-guess-1"),
                ("csrf_token", &csrf),
            ]))
            .dispatch();
    }
    assert!(
        !audit_events(&app, "login_locked").is_empty(),
        "the guesses locked the account"
    );
    let (_, to, page) = sign_in(&app.client, &mut key, &credential, &user);
    assert_eq!(to, "/private", "{page}");
}

#[test]
fn a_disabled_account_cannot_sign_in_with_its_passkey() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    diesel::update(latchkey::db::schema::users::table.find(&user.id))
        .set(latchkey::db::schema::users::disabled.eq(true))
        .execute(&mut *app.pool().get().unwrap())
        .unwrap();
    let (_, to, page) = sign_in(&app.client, &mut key, &credential, &user);
    assert_eq!(to, "/login");
    assert!(page.contains("could not be verified"), "{page}");
    assert!(signed_in_token(&app.client).is_none());
}

#[test]
fn malformed_answers_get_a_sentence_and_change_nothing() {
    let (app, _user, _key, _credential) = ada_with_a_passkey();
    for credential in ["", "{", "null", "\u{202e}", &"x".repeat(15_000)] {
        let (ceremony, _) = begin_sign_in(&app.client, "/login/passkey/options", "AAAA");
        let (status, to, page) = answer(
            &app.client,
            "/login/passkey",
            &[("ceremony", &ceremony), ("credential", credential)],
        );
        assert_eq!(
            (status, to.as_str()),
            (Status::SeeOther, "/login"),
            "{credential:.20}"
        );
        assert!(page.contains("could not be verified"), "{page}");
    }
    let (_, to, page) = answer(&app.client, "/login/passkey", &[("ceremony", "nope")]);
    assert_eq!(to, "/login");
    assert!(page.contains("expired or was already used"), "{page}");
    let huge = "x".repeat(20_000);
    let (status, _, page) = answer(&app.client, "/login/passkey", &[("credential", &huge)]);
    assert_eq!(status, Status::PayloadTooLarge);
    assert!(
        page.contains("too large") || page.contains("too long"),
        "{page}"
    );
    assert!(signed_in_token(&app.client).is_none());
}

#[test]
fn registered_on_one_instance_signs_in_on_another() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let other = second_instance(&app);
    let (ceremony, request) = begin_sign_in(&other, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    // Begun on the other instance, finished on the first: the ceremony is in the database.
    let (_, to, page) = finish_sign_in(&app.client, &ceremony, &answer_json);
    assert_eq!(to, "/private", "{page}");
    assert!(signed_in_token(&app.client).is_some());
}

#[test]
fn a_site_with_passkeys_off_offers_none() {
    let app = crate::helpers::spawn_app_with(|f| f.merge(("passkeys", false)));
    let page = app.get("/login").into_string().unwrap();
    assert!(!page.contains("passkey"), "{page}");
    let (status, _) = options(&app.client, "/login/passkey/options");
    assert_eq!(status, Status::NotFound);
    app.sign_in_as("ada", Role::User);
    assert_eq!(app.get("/account/passkeys").status(), Status::NotFound);
}

#[test]
fn a_public_origin_that_cannot_be_a_relying_party_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::TestDb::new(&dir);
    let figment =
        crate::helpers::base_figment(db.url()).merge(("public_origin", "http://127.0.0.1:8000"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ignited = runtime.block_on(latchkey::rocket(figment).ignite());
    let error = ignited.expect_err("an IP address cannot be a passkey's relying party");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
        "{error}"
    );
}

/// The kinds of the mails queued for `user`.
fn mail_kinds(app: &TestApp, user: &User) -> Vec<String> {
    let mut conn = app.pool().get().unwrap();
    latchkey::models::OutboxMail::for_user(&mut conn, &user.id)
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect()
}

#[test]
fn the_owner_is_mailed_and_an_admin_removes_a_passkey_from_the_user_page() {
    let (app, ada, mut key, credential) = ada_with_a_passkey();
    assert_eq!(mail_kinds(&app, &ada), vec!["passkey_changed"]);
    app.sign_in_as("root", Role::Admin);
    let page = app
        .get(&format!("/admin/users/{}", ada.id))
        .into_string()
        .unwrap();
    assert!(page.contains("Laptop"), "{page}");
    let id: String = passkeys::table
        .select(passkeys::id)
        .first(&mut *app.pool().get().unwrap())
        .unwrap();
    let removed = app.post_form(
        &format!("/admin/users/{}/passkeys/{id}/remove", ada.id),
        &[],
    );
    assert_eq!(removed.status(), Status::SeeOther);
    drop(removed);
    let left: i64 = passkeys::table
        .count()
        .get_result(&mut *app.pool().get().unwrap())
        .unwrap();
    assert_eq!(left, 0);
    let events = audit_events(&app, "passkey_removed");
    assert_eq!(events[0].actor.as_deref(), Some("root"));
    assert_eq!(events[0].subject.as_deref(), Some("ada"));
    assert_eq!(
        mail_kinds(&app, &ada),
        vec!["passkey_changed", "passkey_changed"]
    );
    app.logout();
    let (_, to, page) = sign_in(&app.client, &mut key, &credential, &ada);
    assert_eq!(to, "/login");
    assert!(page.contains("not registered here"), "{page}");
}

#[test]
fn confirm_its_you_takes_a_passkey() {
    let app = spawn_app();
    let ada = app.sign_in_as("ada", Role::User);
    let mut key = authenticator();
    register(&app.client, &mut key, "Laptop");
    let credential = credential_id(&app, &ada);
    app.clock().advance(time::Duration::minutes(11));
    let (status, _) = options(&app.client, "/account/passkeys/options");
    assert_eq!(status, Status::Forbidden, "the sign-in is no longer fresh");
    let page = app
        .get("/confirm?next=/account/passkeys")
        .into_string()
        .unwrap();
    assert!(page.contains("Confirm with a passkey"), "{page}");
    let (ceremony, request) = begin_sign_in(&app.client, "/confirm/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &ada);
    let (status, to, page) = answer(
        &app.client,
        "/confirm/passkey?next=/account/passkeys",
        &[("ceremony", &ceremony), ("credential", &answer_json)],
    );
    assert_eq!(
        (status, to.as_str()),
        (Status::SeeOther, "/account/passkeys"),
        "{page}"
    );
    let (status, _) = options(&app.client, "/account/passkeys/options");
    assert_eq!(status, Status::Ok, "fresh again");
    let proofs = audit_events(&app, "sudo_proof");
    assert_eq!(proofs[0].detail.as_deref(), Some("passkey"));
    // A sign-in ceremony does not confirm, nor does a confirmation ceremony sign in.
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &ada);
    let (_, to, _) = answer(
        &app.client,
        "/confirm/passkey",
        &[("ceremony", &ceremony), ("credential", &answer_json)],
    );
    assert_eq!(to, "/confirm");
    assert_eq!(audit_events(&app, "sudo_failed").len(), 1);
}

#[test]
fn a_ceremony_begun_for_one_purpose_finishes_no_other_and_only_once() {
    use latchkey::models::{passkey_ceremony, CeremonyPurpose};
    let app = spawn_app();
    let ada = app.create_user("ada", Role::User);
    let now = app.clock().db_now();
    let mut conn = app.pool().get().unwrap();
    let begin = |conn: &mut _, purpose| {
        passkey_ceremony::begin(conn, purpose, Some(&ada.id), "{}".into(), now).unwrap()
    };
    // A second-factor ceremony (the same kind of state) offered as a confirmation.
    let id = begin(&mut conn, CeremonyPurpose::SecondFactor);
    assert!(
        passkey_ceremony::take(&mut conn, &id, CeremonyPurpose::Confirm, now)
            .unwrap()
            .is_none()
    );
    assert!(
        passkey_ceremony::take(&mut conn, &id, CeremonyPurpose::SecondFactor, now)
            .unwrap()
            .is_none(),
        "a refused attempt used it up"
    );
    let id = begin(&mut conn, CeremonyPurpose::Confirm);
    let taken = passkey_ceremony::take(&mut conn, &id, CeremonyPurpose::Confirm, now).unwrap();
    assert_eq!(taken.unwrap().user_id.as_deref(), Some(ada.id.as_str()));
}

#[test]
fn a_passkey_sign_in_lands_where_next_says_and_never_off_site() {
    let (app, user, mut key, credential) = ada_with_a_passkey();
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    let fields = [
        ("ceremony", ceremony.as_str()),
        ("credential", answer_json.as_str()),
    ];
    let (_, to, _) = answer(
        &app.client,
        "/login/passkey?next=/account/passkeys",
        &fields,
    );
    assert_eq!(to, "/account/passkeys");
    app.logout();
    let (ceremony, request) = begin_sign_in(&app.client, "/login/passkey/options", &credential);
    let answer_json = assertion(&mut key, origin(), request, &user);
    let fields = [
        ("ceremony", ceremony.as_str()),
        ("credential", answer_json.as_str()),
    ];
    let (_, to, _) = answer(&app.client, "/login/passkey?next=//evil.example", &fields);
    assert_eq!(to, "/private");
}
