//! The keyring: rotation keeps old tokens valid for the grace period; weak keys refuse to start.

use latchkey::auth::{check_strength, KeyFile};
use latchkey::models::Role;
use rocket::error::ErrorKind;
use rocket::http::{Cookie, Status};
use rocket::local::blocking::Client;

use crate::helpers::*;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[test]
fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    let first = KeyFile::rotate(&key_file, 86_400).unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    app.sign_in_as("kim", Role::User);
    let old_token = app.session_cookie().unwrap().value().to_string();
    assert_eq!(kid_of(&old_token), first.new_kid);

    let second = KeyFile::rotate(&key_file, 86_400).unwrap();
    assert_eq!(second.kept, vec![first.new_kid.clone()]);
    let restarted = second_instance(&app);
    let response = restarted
        .get("/private")
        .cookie(Cookie::new(COOKIE, old_token.clone()))
        .dispatch();
    assert_eq!(response.status(), Status::Ok, "old token verifies");
    drop(response);

    let csrf = csrf_token_of(&restarted);
    let response = restarted
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .body(form(&[
            ("username", "kim"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let new_token = restarted.cookies().get(COOKIE).unwrap().value().to_string();
    assert_eq!(
        kid_of(&new_token),
        second.new_kid,
        "new tokens use the new key"
    );
}

#[test]
fn keys_past_their_grace_period_are_dropped() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    KeyFile::rotate(&key_file, 0).unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    app.sign_in_as("lou", Role::User);
    let old_token = app.session_cookie().unwrap().value().to_string();

    let rotation = KeyFile::rotate(&key_file, 0).unwrap();
    assert_eq!(rotation.dropped.len(), 1);
    let restarted = second_instance(&app);
    let response = restarted
        .get("/private")
        .cookie(Cookie::new(COOKIE, old_token))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
}

#[test]
fn debug_build_creates_a_private_key_file_when_there_is_none() {
    let keys_dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    let path = keys_dir.path().join("keys.json");
    assert!(path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    app.sign_in_as("max", Role::User);
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
}

#[test]
fn weak_or_broken_keys_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    for secret in ["short", "changeme", &"a".repeat(64)] {
        let figment = base_figment(db.url()).merge(("jwt_secret", secret));
        assert_start_fails(figment, secret);
    }
    assert!(check_strength(b"0123456789abcdefghijklmnopqrstuv").is_ok());

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    let figment = base_figment(db.url())
        .merge(("jwt_secret", ""))
        .merge(("key_file", broken.display().to_string()));
    assert_start_fails(figment, "a broken key file");
}

fn assert_start_fails(figment: rocket::figment::Figment, what: &str) {
    match Client::tracked(latchkey::rocket(figment)) {
        Ok(_) => panic!("{what} accepted"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::FailedFairings(f) if f.iter().any(|i| i.name == "latchkey")),
            "{what}: {e}"
        ),
    }
}

#[test]
fn tokens_from_another_deployment_are_refused() {
    let app = spawn_app();
    let other = spawn_app_with(|f| {
        f.merge((
            "jwt_secret",
            "a-completely-different-secret-0123456789abcdef",
        ))
    });
    other.sign_in_as("nia", Role::User);
    let foreign = other.session_cookie().unwrap().value().to_string();
    app.set_token(&foreign);
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::SeeOther
    );
}

#[test]
fn without_a_key_a_release_configuration_refuses_to_start() {
    let keys_dir = tempfile::tempdir().unwrap();
    let mut settings = latchkey::config::Settings {
        jwt_secret: None,
        key_file: keys_dir.path().join("missing.json"),
        create_key_file: Some(false),
        ..Default::default()
    };
    let err = latchkey::auth::Keyring::load(&settings)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no signing key"), "{err}");
    assert!(
        err.contains("latchkey keys rotate") && err.contains("LATCHKEY_JWT_SECRET"),
        "{err}"
    );
    assert!(!settings.key_file.exists(), "nothing created");
    settings.create_key_file = None;
    assert_eq!(
        settings.create_key_file(),
        cfg!(debug_assertions),
        "debug creates, release refuses"
    );
}

#[test]
fn weak_keys_are_refused_with_instructions() {
    let settings = latchkey::config::Settings {
        jwt_secret: Some("too-short".into()),
        ..Default::default()
    };
    let err = latchkey::auth::Keyring::load(&settings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too weak") && err.contains("at least 32"),
        "{err}"
    );
    assert!(
        err.contains("openssl rand") && err.contains("latchkey keys rotate"),
        "{err}"
    );
}

#[test]
fn a_running_instance_reloads_a_rotated_key_file_without_failing_a_request() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    let first = KeyFile::rotate(&key_file, 86_400).unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    app.sign_in_as("rolling", Role::User);
    let old_token = app.session_cookie().unwrap().value().to_string();
    let old_csrf = app.csrf_token();
    assert_eq!(kid_of(&old_token), first.new_kid);

    let second = KeyFile::rotate(&key_file, 86_400).unwrap();
    assert!(
        latchkey::reload_keys(app.client.rocket()).unwrap(),
        "keys changed"
    );
    assert!(
        !latchkey::reload_keys(app.client.rocket()).unwrap(),
        "nothing new the second time"
    );
    assert_eq!(app.tokens().keyring().active().kid, second.new_kid);

    // Old tokens and forms keep working during the grace period; new tokens use the new kid.
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    let response = app.post_raw(
        "/account/sessions/revoke-others",
        &[("csrf_token", old_csrf.as_str())],
    );
    assert_eq!(
        response.status(),
        Status::SeeOther,
        "a form rendered before the reload"
    );
    drop(response);
    app.logout();
    app.login("rolling", PASSWORD);
    let new_token = app.session_cookie().unwrap().value().to_string();
    assert_eq!(kid_of(&new_token), second.new_kid);
}

#[test]
fn the_key_file_is_watched_and_a_dropped_key_stops_working() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    KeyFile::rotate(&key_file, 0).unwrap();
    let app = spawn_app_with(with_key_file(keys_dir.path()));
    app.sign_in_as("watched", Role::User);
    let old_token = app.session_cookie().unwrap().value().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a distinct modification time
    let rotation = KeyFile::rotate(&key_file, 0).unwrap();
    assert_eq!(rotation.dropped.len(), 1);
    // The watcher runs while the client is serving requests; give it a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.tokens().keyring().active().kid != rotation.new_kid {
        assert!(
            std::time::Instant::now() < deadline,
            "key file change not picked up"
        );
        app.client.get("/healthz").dispatch();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The access token signed with the dropped key is refused on its own…
    let other = second_instance(&app);
    let response = get_as(&other, "/private", &old_token);
    assert_eq!(response.status(), Status::SeeOther, "{}", old_token.len());
    drop(response);
    // …while the browser that holds the session's refresh cookie carries on, with a token signed
    // by the new key.
    let response = app.client.get("/private").dispatch();
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    let renewed = app.session_cookie().unwrap().value().to_string();
    assert_eq!(kid_of(&renewed), rotation.new_kid);
}

#[test]
fn x_instance_names_the_instance_when_configured() {
    let plain = spawn_app();
    assert!(plain
        .client
        .get("/healthz")
        .dispatch()
        .headers()
        .get_one("X-Instance")
        .is_none());
    let named = spawn_app_with(|f| f.merge(("instance_name", "a1")));
    for uri in ["/healthz", "/", "/missing"] {
        assert_eq!(
            named
                .client
                .get(uri)
                .dispatch()
                .headers()
                .get_one("X-Instance"),
            Some("a1"),
            "{uri}"
        );
    }
}
