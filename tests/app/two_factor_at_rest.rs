//! Two-factor secrets at rest: encrypted in the column, plain rows encrypted at start-up, moved to
//! the active key when keys are reloaded, and a row that does not decrypt answered clearly.

use base64::Engine;
use diesel::prelude::*;
use latchkey::auth::two_factor::{code_at, new_recovery_codes, new_secret};
use latchkey::auth::KeyFile;
use latchkey::db::schema::two_factor;
use latchkey::models::{Role, TwoFactor, User};
use rocket::http::{ContentType, Status};
use rocket::local::blocking::Client;
use serde_json::{json, Value};

use crate::helpers::*;

/// The column as a database dump has it.
fn stored(app: &TestApp, user: &User) -> String {
    two_factor::table
        .find(&user.id)
        .select(two_factor::secret)
        .first(&mut *app.pool().get().unwrap())
        .unwrap()
}

fn store(app: &TestApp, user: &User, value: &str) {
    diesel::update(two_factor::table.find(&user.id))
        .set(two_factor::secret.eq(value))
        .execute(&mut *app.pool().get().unwrap())
        .unwrap();
}

/// The `kid` a stored value names.
fn kid_in(value: &str) -> String {
    value.split('.').nth(1).unwrap().to_string()
}

/// Signs `username` in on `client` with the password and the app's current code; the status of
/// the code step.
fn sign_in_with_code(client: &Client, app: &TestApp, username: &str, secret: &str) -> Status {
    let csrf = csrf_token_of(client);
    let password = client
        .post("/login")
        .header(ContentType::Form)
        .body(form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    assert_eq!(location(&password), "/login/two-factor");
    drop(password);
    let code = code_at(secret, app.clock().now()).unwrap();
    let csrf = csrf_token_of(client);
    let response = client
        .post("/login/two-factor")
        .header(ContentType::Form)
        .body(form(&[("code", &code), ("csrf_token", &csrf)]))
        .dispatch();
    let status = response.status();
    if status == Status::SeeOther {
        assert!(token_from(&response).is_some(), "signed in");
    }
    status
}

#[test]
fn the_column_holds_no_readable_secret_and_sign_in_still_works() {
    let app = spawn_app();
    let user = app.sign_in_as("sealed", Role::User);
    assert_eq!(
        location(&app.post_form("/account/two-factor/setup", &[])),
        "/account/two-factor"
    );
    // The key as the page shows it for typing in.
    let page = app.get("/account/two-factor").into_string().unwrap();
    let (_, shown) = page.split_once(r#"<code class="secret">"#).unwrap();
    let secret = shown.split('<').next().unwrap().replace(' ', "");
    assert_eq!(secret.len(), 32, "the key shown to type in: {secret}");
    let code = code_at(&secret, app.clock().now()).unwrap();
    let on = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code), ("password", PASSWORD)],
    );
    assert_eq!(on.status(), Status::Ok);
    drop(on);

    let column = stored(&app, &user);
    assert!(column.starts_with("v1."), "{column}");
    assert_eq!(kid_in(&column), app.tokens().keyring().active().kid);
    assert!(!column.contains(&secret), "no base32 secret");
    let payload = column.rsplit('.').next().unwrap();
    let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let raw = totp_rs::Secret::try_from_base32(&secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    let text = String::from_utf8_lossy(&blob);
    assert!(
        !text.contains(&secret),
        "the payload is not the secret encoded"
    );
    assert!(
        !blob.windows(raw.len()).any(|w| w == raw.as_slice()),
        "nor its bytes"
    );
    assert_eq!(blob.len(), 24 + secret.len() + 16, "nonce, ciphertext, tag");

    app.logout();
    app.clock().advance(time::Duration::seconds(30));
    assert_eq!(
        sign_in_with_code(&app.client, &app, "sealed", &secret),
        Status::SeeOther
    );
}

#[test]
fn plain_secrets_are_encrypted_at_start_up_and_still_work() {
    let app = spawn_app();
    let user = app.create_user("legacy", Role::User);
    let secret = new_secret();
    let now = app.clock().db_now();
    let mut conn = app.pool().get().unwrap();
    // As an older latchkey stored it.
    TwoFactor::begin_setup(&mut conn, &user.id, &secret, now).unwrap();
    assert!(TwoFactor::enable(&mut conn, &user.id, 0, &new_recovery_codes(), now).unwrap());
    drop(conn);
    assert_eq!(stored(&app, &user), secret);

    let restarted = second_instance(&app);
    let column = stored(&app, &user);
    assert!(column.starts_with("v1."), "encrypted at start-up: {column}");
    assert!(!column.contains(&secret));
    let again = second_instance(&app);
    assert_eq!(stored(&app, &user), column, "idempotent: left as it is");
    drop(again);
    // An instance that read the plain value before this one encrypted it changes nothing.
    let late = TwoFactor::replace_secret(
        &mut app.pool().get().unwrap(),
        &user.id,
        &secret,
        "v1.late.x",
    );
    assert!(!late.unwrap(), "only if the row still holds what was read");
    assert_eq!(stored(&app, &user), column);
    assert_eq!(
        sign_in_with_code(&restarted, &app, "legacy", &secret),
        Status::SeeOther
    );
}

#[test]
fn reloaded_keys_reencrypt_secrets_so_pruning_old_keys_strands_none() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    let first = KeyFile::rotate(&key_file, 86_400).unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    let user = app.create_user("rotor", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    assert_eq!(kid_in(&stored(&app, &user)), first.new_kid);

    let second = KeyFile::rotate(&key_file, 86_400).unwrap();
    // (The file watcher may have reloaded it already.)
    latchkey::reload_keys(app.client.rocket()).unwrap();
    assert_eq!(app.tokens().keyring().active().kid, second.new_kid);
    assert_eq!(
        kid_in(&stored(&app, &user)),
        second.new_kid,
        "moved to the new key on reload"
    );
    assert_eq!(
        sign_in_with_code(&app.client, &app, "rotor", &secret),
        Status::SeeOther
    );
    app.logout();

    // The grace period ends: the old key leaves the file and the ring.
    let mut file = KeyFile::read(&key_file).unwrap();
    file.keys.retain(|k| k.kid == file.active);
    std::fs::write(&key_file, serde_json::to_string(&file).unwrap()).unwrap();
    latchkey::reload_keys(app.client.rocket()).unwrap();
    assert_eq!(app.tokens().keyring().kids(), vec![second.new_kid.as_str()]);
    app.clock().advance(time::Duration::seconds(30));
    assert_eq!(
        sign_in_with_code(&app.client, &app, "rotor", &secret),
        Status::SeeOther,
        "still readable after the old key is gone"
    );
}

#[test]
fn a_secret_that_does_not_decrypt_gets_a_clear_answer_and_an_audit_event() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    let bob = app.create_user("bob", Role::User);
    let (alice_secret, _) = app.enable_two_factor(&alice);
    let (bob_secret, bob_codes) = app.enable_two_factor(&bob);
    let alice_column = stored(&app, &alice);

    // Tampered: one character of the ciphertext changed.
    let mut tampered = alice_column.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    store(&app, &alice, &String::from_utf8(tampered).unwrap());
    let status = sign_in_with_code(&app.client, &app, "alice", &alice_secret);
    assert_eq!(status, Status::UnprocessableEntity, "never a 500");
    let page = app
        .post_form("/login/two-factor", &[("code", "123456")])
        .into_string()
        .unwrap();
    assert!(
        page.contains("Two-factor sign-in with your authenticator app is unavailable"),
        "{page}"
    );
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::SeeOther
    );

    // Moved: alice's value in bob's row does not decrypt for bob (the user id is bound in).
    store(&app, &bob, &alice_column);
    let api = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(
            json!({"username": "bob", "password": PASSWORD,
                   "otp": code_at(&bob_secret, app.clock().now()).unwrap()})
            .to_string(),
        )
        .dispatch();
    assert_eq!(api.status(), Status::Unauthorized, "never a 500");
    let body: Value = serde_json::from_str(&api.into_string().unwrap()).unwrap();
    assert_eq!(body["error"], "two_factor_unavailable", "{body}");

    // A key no longer on the ring.
    let unknown = format!("v1.gone-key.{}", alice_column.rsplit('.').next().unwrap());
    store(&app, &alice, &unknown);
    app.clock().advance(time::Duration::seconds(30));
    assert_eq!(
        sign_in_with_code(&app.client, &app, "alice", &alice_secret),
        Status::UnprocessableEntity
    );

    // Recovery codes do not need the secret.
    let recovered = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(json!({"username": "bob", "password": PASSWORD, "otp": bob_codes[0]}).to_string())
        .dispatch();
    assert_eq!(recovered.status(), Status::Ok);
    drop(recovered);

    let events = audit_events(&app, "two_factor_failed");
    let unreadable = |id: &str| {
        events.iter().any(|e| {
            e.subject_id.as_deref() == Some(id) && e.detail.as_deref() == Some("secret_unreadable")
        })
    };
    assert!(unreadable(&alice.id) && unreadable(&bob.id), "audited");
}

#[test]
fn the_settings_page_answers_an_unreadable_secret_with_a_message() {
    let app = spawn_app();
    let user = app.sign_in_as("keeper", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    store(&app, &user, "v1.gone-key.AAAA");
    let code = code_at(&secret, app.clock().now()).unwrap();
    for (uri, fields) in [
        (
            "/account/two-factor/recovery-codes",
            vec![("code", code.as_str())],
        ),
        (
            "/account/two-factor/disable",
            vec![("code", code.as_str()), ("password", PASSWORD)],
        ),
    ] {
        let response = app.post_form(uri, &fields);
        assert_eq!(
            response.status(),
            Status::UnprocessableEntity,
            "{uri}: never a 500"
        );
        let page = response.into_string().unwrap();
        assert!(page.contains("is unavailable for"), "{uri}");
    }
}

#[test]
fn instances_starting_together_both_start_and_encrypt_each_row_once() {
    let app = spawn_app();
    let now = app.clock().db_now();
    let users: Vec<(User, String)> = (0..6)
        .map(|i| {
            let user = app.create_user(&format!("crowd{i}"), Role::User);
            let secret = new_secret();
            let mut conn = app.pool().get().unwrap();
            TwoFactor::begin_setup(&mut conn, &user.id, &secret, now).unwrap();
            (user, secret)
        })
        .collect();
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let figment = app.figment.clone();
            std::thread::spawn(move || Client::tracked(latchkey::rocket(figment)).is_ok())
        })
        .collect();
    for start in starts {
        assert!(start.join().unwrap(), "each instance started");
    }
    for (user, secret) in &users {
        let column = stored(&app, user);
        assert!(column.starts_with("v1."), "{column}");
        assert_eq!(&app.two_factor_secret(user), secret);
    }
}
