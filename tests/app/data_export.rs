//! "Download your data" (`GET /account/data`): a JSON file of everything kept about the person —
//! profile, sessions, API key metadata, trusted devices, mail and the audit rows about them — and
//! none of the secrets; sign-in and a recent proof (sudo mode) needed; audited.

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use latchkey::db::schema::{api_keys, recovery_codes, trusted_devices, two_factor, users};
use latchkey::models::Role;
use rocket::http::{ContentType, Status};
use serde_json::Value;
use time::Duration;

use crate::helpers::*;

/// Creates an API key through the account page; returns the key shown once.
pub fn create_key(app: &TestApp, name: &str) -> String {
    let response = app.post_form(
        "/account/api-keys",
        &[("name", name), ("scope", "full"), ("expires_in_days", "")],
    );
    assert_eq!(response.status(), Status::Ok);
    let html = response.into_string().unwrap();
    let marker = "id=\"new-key-value\">";
    let at = html.find(marker).expect("the new key is shown") + marker.len();
    html[at..at + html[at..].find('<').unwrap()].to_string()
}

/// Eleven minutes of renewals: past the sudo window, still signed in.
pub fn past_the_sudo_window(app: &TestApp) {
    for _ in 0..11 {
        app.clock().advance(Duration::minutes(1));
        assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    }
}

fn download(app: &TestApp) -> (String, Value) {
    let response = app.client.get("/account/data").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    assert_eq!(
        response.headers().get_one("Content-Disposition"),
        Some("attachment; filename=\"latchkey-ella.json\"")
    );
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    let body = response.into_string().unwrap();
    let json = serde_json::from_str(&body).expect("valid JSON");
    (body, json)
}

#[test]
fn the_export_holds_the_account_and_none_of_its_secrets() {
    let app = spawn_app();
    let user = app.sign_in_as("ella", Role::User);
    let key = create_key(&app, "nightly backup");
    // A second session, and a mail (the password-changed notice).
    login_on(
        &second_instance(&app),
        "ella",
        Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
    );
    let (secret, codes) = app.enable_two_factor(&user);
    let new_password = "another-Lantern-orbit-91";
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("new_password_confirm", new_password),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);

    let (body, json) = download(&app);
    assert_eq!(json["format"], "latchkey-account-export");
    assert_eq!(json["version"], 1);
    assert!(json["generated_at"].as_str().unwrap().ends_with('Z'));
    let profile = &json["profile"];
    assert_eq!(profile["id"], user.id.as_str());
    assert_eq!(profile["username"], "ella");
    assert_eq!(profile["email"], "ella@example.com");
    assert_eq!(profile["role"], "user");
    assert_eq!(profile["email_verified"], false);
    assert_eq!(profile["two_factor"], true);
    assert!(profile["created_at"].is_string());
    assert!(profile["last_sign_in_at"].is_string());

    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(
        sessions
            .iter()
            .any(|s| s["browser"] == "Firefox on Linux" && s["revoked_at"].is_string()),
        "the other session, ended by the password change: {sessions:?}"
    );
    for s in sessions {
        for field in ["created_at", "last_seen_at", "expires_at", "ip"] {
            assert!(s.get(field).is_some(), "{field} in {s}");
        }
    }
    let keys = json["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "nightly backup");
    assert_eq!(keys[0]["prefix"], &key[..10]);
    assert_eq!(keys[0]["scope"], "full");
    assert!(keys[0]["expires_at"].is_string() && keys[0].get("last_used_at").is_some());
    assert!(keys[0].get("revoked_at").is_some());
    let devices = json["trusted_devices"].as_array().unwrap();
    assert!(!devices.is_empty(), "the browsers she signed in with");
    for d in devices {
        assert!(
            d["created_at"].is_string() && d["expires_at"].is_string(),
            "{d}"
        );
        assert!(
            d.get("nonce").is_none(),
            "a device's cookie value is a secret: {d}"
        );
    }
    let mail = json["mail"].as_array().unwrap();
    assert!(
        mail.iter().any(|m| m["kind"] == "password_changed"
            && m["subject"] == "Your latchkey password was changed"
            && m["created_at"].is_string()
            && m.get("sent_at").is_some()),
        "{mail:?}"
    );
    let kinds: Vec<&str> = json["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["login_ok", "api_key_created", "password_changed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // None of the secrets, in any form.
    let mut conn = app.pool().get().unwrap();
    let password_hash: String = users::table
        .filter(users::id.eq(&user.id))
        .select(users::password_hash)
        .first(&mut conn)
        .unwrap();
    let sealed_secret: String = two_factor::table
        .filter(two_factor::user_id.eq(&user.id))
        .select(two_factor::secret)
        .first(&mut conn)
        .unwrap();
    let code_hashes: Vec<String> = recovery_codes::table
        .filter(recovery_codes::user_id.eq(&user.id))
        .select(recovery_codes::code_hash)
        .load(&mut conn)
        .unwrap();
    let key_hash: String = api_keys::table
        .filter(api_keys::user_id.eq(&user.id))
        .select(api_keys::key_hash)
        .first(&mut conn)
        .unwrap();
    let nonces: Vec<String> = trusted_devices::table
        .filter(trusted_devices::user_id.eq(&user.id))
        .select(trusted_devices::nonce)
        .load(&mut conn)
        .unwrap();
    assert!(!code_hashes.is_empty() && !nonces.is_empty());
    let mut secrets = vec![password_hash, sealed_secret, secret, key_hash, key];
    secrets.extend(code_hashes);
    secrets.extend(codes);
    secrets.extend(nonces);
    for s in &secrets {
        assert!(!body.contains(s.as_str()), "a secret in the export: {s}");
    }
    for word in [
        "password_hash",
        "key_hash",
        "code_hash",
        "\"secret\"",
        "$argon2",
    ] {
        assert!(!body.contains(word), "{word} in the export");
    }
    assert_eq!(audit_events(&app, "data_exported").len(), 1);
}

#[test]
fn the_export_needs_sign_in() {
    let app = spawn_app();
    let response = app.client.get("/account/data").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        location(&response).starts_with("/login"),
        "{}",
        location(&response)
    );
    assert!(audit_events(&app, "data_exported").is_empty());
}

#[test]
fn the_export_after_the_sudo_window_asks_to_confirm_first() {
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    past_the_sudo_window(&app);
    let response = app.client.get("/account/data").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    let confirm = location(&response);
    assert_eq!(confirm, "/confirm?next=/account/data");
    drop(response);
    assert!(
        audit_events(&app, "data_exported").is_empty(),
        "nothing exported"
    );

    let response = app.post_form(&confirm, &[("password", PASSWORD)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account/data");
    drop(response);
    let (_, json) = download(&app);
    assert_eq!(json["profile"]["username"], "ella");
}

#[test]
fn the_account_page_links_to_the_download() {
    let app = spawn_app();
    app.sign_in_as("ella", Role::User);
    let page = app.client.get("/account").dispatch().into_string().unwrap();
    assert!(page.contains(r#"href="/account/data""#), "{page}");
    assert!(page.contains(r#"href="/account/delete""#), "{page}");
}
