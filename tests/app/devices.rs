//! Device cookies (OWASP's scheme): a stranger locks an account out, but a browser that signed
//! in to it before is judged by its own failures and signs in at once, on any instance.

use base64::Engine;
use latchkey::auth::two_factor::code_at;
use latchkey::models::{Role, TrustedDevice, User};
use rocket::http::{Cookie, Status};
use rocket::local::blocking::{Client, LocalResponse};

use crate::helpers::*;

const WRONG: &str = "definitely-Wrong-pass-1";
const DEVICE: &str = "latchkey_device";

/// The device cookie `client` holds, if any.
fn device_cookie(client: &Client) -> Option<Cookie<'static>> {
    client.cookies().get(DEVICE).map(|c| c.clone().into_owned())
}

/// Five wrong passwords for `username` from a fresh client (a stranger with no cookies), the
/// last one answered with the lockout; returns the stranger.
fn stranger_locks_out(app: &TestApp, username: &str) -> Client {
    let stranger = second_instance(app);
    for _ in 0..4 {
        assert_eq!(
            login_with(&stranger, username, WRONG).status(),
            Status::UnprocessableEntity
        );
    }
    assert_eq!(
        login_with(&stranger, username, WRONG).status(),
        Status::TooManyRequests,
        "the stranger locked {username} out"
    );
    stranger
}

/// `user` signs in on `client` and signs out again; returns the device cookie it was given.
fn signed_in_before(client: &Client, user: &User) -> Cookie<'static> {
    let response = login_with(client, &user.username, PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    let device = session_set_cookie(&response, DEVICE).expect("a device cookie is set at sign-in");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=31536000"] {
        assert!(device.contains(flag), "{flag} in {device}");
    }
    drop(response);
    let csrf = csrf_token_of(client);
    let out = client
        .post("/logout")
        .header(rocket::http::ContentType::Form)
        .body(form(&[("csrf_token", &csrf)]))
        .dispatch();
    assert_eq!(out.status(), Status::SeeOther);
    drop(out);
    device_cookie(client).expect("signing out keeps the device cookie")
}

/// Status, whether a Retry-After of about a minute came, and the page with what may differ
/// between two runs a second apart (the CSRF token, the wait in words, the typed name) masked.
fn answer(response: LocalResponse<'_>, name: &str) -> (u16, bool, String) {
    const LOCKED: &str = "Too many failed sign-ins. Try again in ";
    let status = response.status().code;
    let retry = response
        .headers()
        .get_one("Retry-After")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|secs| (55..=60).contains(&secs));
    let mut body = response.into_string().unwrap_or_default();
    if let Some(csrf) = csrf_in(&body) {
        body = body.replace(&csrf, "CSRF");
    }
    if let Some(at) = body.find(LOCKED) {
        let end = at + body[at..].find("</p>").unwrap();
        body.replace_range(at + LOCKED.len()..end, "WAIT");
    }
    (status, retry, body.replace(name, "NAME"))
}

#[test]
fn a_stranger_locks_alice_out_but_her_own_browser_signs_in_at_once_on_any_instance() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    let device = signed_in_before(&app.client, &alice);
    assert_eq!(audit_events(&app, "device_trust_granted").len(), 1);

    let stranger = stranger_locks_out(&app, "alice");
    assert_eq!(
        login_with(&stranger, "alice", PASSWORD).status(),
        Status::TooManyRequests,
        "locked for the stranger even with the right password"
    );

    let own = login_with(&app.client, "alice", PASSWORD);
    assert_eq!(own.status(), Status::SeeOther, "alice's browser signs in");
    assert!(token_from(&own).is_some());
    drop(own);

    // Another instance, and the same cookie copied into a fresh client there.
    let other = second_instance(&app);
    let there = login_carrying(&other, "alice", PASSWORD, Some(device));
    assert_eq!(
        there.status(),
        Status::SeeOther,
        "the second instance agrees"
    );
    drop(there);
    assert_eq!(
        login_with(&stranger, "alice", PASSWORD).status(),
        Status::TooManyRequests,
        "alice signing in does not unlock the account for strangers"
    );
    assert_eq!(
        audit_events(&app, "device_trust_granted").len(),
        1,
        "a trusted browser keeps its cookie; no new grant"
    );
}

#[test]
fn a_forged_tampered_or_other_accounts_device_cookie_gives_no_exemption() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    let bob = app.create_user("bob", Role::User);
    let alices = signed_in_before(&second_instance(&app), &alice);
    let bobs = signed_in_before(&app.client, &bob);
    stranger_locks_out(&app, "alice");

    let value = alices.value().to_string();
    let (entry, tag) = value.rsplit_once('.').unwrap();
    let (_, nonce) = entry.split_once('.').unwrap();
    let flipped = {
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .unwrap();
        bytes[0] ^= 1;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let bob_entry_as_alice = {
        let (_, rest) = bobs.value().split_once('.').unwrap();
        format!("{}.{rest}", alice.id)
    };
    let fake_nonce = format!("{}.{}.{tag}", alice.id, "A".repeat(nonce.len()));
    for (what, cookie) in [
        ("bob's cookie", bobs.value().to_string()),
        ("bob's entry relabelled", bob_entry_as_alice),
        ("a flipped tag", format!("{entry}.{flipped}")),
        ("a made-up nonce", fake_nonce),
        ("no tag", entry.to_string()),
    ] {
        let client = second_instance(&app);
        let response = login_carrying(
            &client,
            "alice",
            PASSWORD,
            Some(Cookie::new(DEVICE, cookie)),
        );
        assert_eq!(
            response.status(),
            Status::TooManyRequests,
            "{what} gives no exemption"
        );
    }
    // Bob's own browser, with bob's genuine cookie, is no help for alice either.
    assert_eq!(
        login_with(&app.client, "alice", PASSWORD).status(),
        Status::TooManyRequests
    );
    // The genuine one still works.
    let client = second_instance(&app);
    assert_eq!(
        login_carrying(&client, "alice", PASSWORD, Some(alices)).status(),
        Status::SeeOther
    );
}

#[test]
fn a_device_that_fails_its_own_limit_loses_its_trust() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    let device = signed_in_before(&app.client, &alice);
    stranger_locks_out(&app, "alice");

    // The account is locked, but this browser is judged by its own counter: four wrong
    // passwords are plain failures, and the fifth ends its trust.
    for _ in 0..5 {
        assert_eq!(
            login_with(&app.client, "alice", WRONG).status(),
            Status::UnprocessableEntity
        );
    }
    assert_eq!(
        login_with(&app.client, "alice", PASSWORD).status(),
        Status::TooManyRequests,
        "no longer trusted: the account's lockout applies"
    );
    let value = device.value().to_string();
    let nonce = value.split('.').nth(1).unwrap();
    let row = TrustedDevice::find(&mut app.pool().get().unwrap(), nonce)
        .unwrap()
        .unwrap();
    assert!(row.revoked_at.is_some());
    let revoked = audit_events(&app, "device_trust_revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].subject_id.as_deref(), Some(alice.id.as_str()));
}

#[test]
fn a_trusted_device_is_not_held_back_by_its_addresses_limit() {
    let app = spawn_app_with(|f| f.merge(("login_per_ip_per_minute", 3)));
    let alice = app.create_user("alice", Role::User);
    signed_in_before(&app.client, &alice);
    // Others behind the same address (all local clients share one) use up its allowance.
    let neighbour = second_instance(&app);
    for _ in 0..3 {
        login_with(&neighbour, "nobody", WRONG);
    }
    assert_eq!(
        login_with(&neighbour, "alice", PASSWORD).status(),
        Status::TooManyRequests
    );
    assert_eq!(
        login_with(&app.client, "alice", PASSWORD).status(),
        Status::SeeOther
    );
}

#[test]
fn the_lockout_answer_is_the_same_for_a_known_and_an_unknown_account() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    signed_in_before(&app.client, &alice);
    let mut answers = Vec::new();
    for name in ["alice", "imaginary"] {
        let stranger = second_instance(&app);
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(answer(login_with(&stranger, name, WRONG), name));
        }
        assert!(
            device_cookie(&stranger).is_none(),
            "failures give no device cookie"
        );
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    let statuses: Vec<(u16, bool)> = answers[0].iter().map(|a| (a.0, a.1)).collect();
    assert_eq!(
        statuses,
        vec![
            (422, false),
            (422, false),
            (422, false),
            (422, false),
            (429, true),
            (429, true)
        ]
    );
    assert!(answers[0][5]
        .2
        .contains("Too many failed sign-ins. Try again in WAIT"));
}

#[test]
fn with_secure_cookies_the_device_cookie_is_secure_prefixed_and_sent_to_the_sign_in_pages_only() {
    let app = spawn_app_with(|f| f.merge(("cookie_secure", true)));
    app.create_user("sam", Role::User);
    let response = app.login("sam", PASSWORD);
    let device = session_set_cookie(&response, "__Secure-latchkey_device").expect("device cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/login"] {
        assert!(device.contains(flag), "{flag} in {device}");
    }
}

#[test]
fn with_two_factor_the_cookie_comes_after_the_code_and_passes_the_code_step_of_a_locked_account() {
    let app = spawn_app();
    let alice = app.create_user("alice", Role::User);
    let (secret, _) = app.enable_two_factor(&alice);
    let code_now = || code_at(&secret, app.clock().now()).unwrap();
    let response = app.login("alice", PASSWORD);
    assert_eq!(location(&response), "/login/two-factor");
    assert!(
        session_set_cookie(&response, DEVICE).is_none(),
        "not for the password alone"
    );
    drop(response);
    let response = app.post_form("/login/two-factor", &[("code", &code_now())]);
    assert_eq!(location(&response), "/private");
    assert!(session_set_cookie(&response, DEVICE).is_some());
    drop(response);
    app.logout();

    stranger_locks_out(&app, "alice");
    app.clock().advance(time::Duration::seconds(30));
    let response = app.login("alice", PASSWORD);
    assert_eq!(location(&response), "/login/two-factor");
    drop(response);
    let wrong = app.post_form("/login/two-factor", &[("code", "000000")]);
    assert_eq!(
        wrong.status(),
        Status::UnprocessableEntity,
        "a wrong code counts against the device, not the locked account"
    );
    drop(wrong);
    let response = app.post_form("/login/two-factor", &[("code", &code_now())]);
    assert_eq!(location(&response), "/private");
}

#[test]
fn a_device_cookie_survives_a_key_rotation_within_its_grace() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    latchkey::auth::KeyFile::rotate(&key_file, 86_400).unwrap();
    let app = spawn_app_with(|f| {
        f.merge(("jwt_secret", ""))
            .merge(("key_file", key_file.display().to_string()))
    });
    let alice = app.create_user("alice", Role::User);
    signed_in_before(&app.client, &alice);

    latchkey::auth::KeyFile::rotate(&key_file, 86_400).unwrap();
    assert!(latchkey::reload_keys(app.client.rocket()).unwrap());
    stranger_locks_out(&app, "alice");
    assert_eq!(
        login_with(&app.client, "alice", PASSWORD).status(),
        Status::SeeOther,
        "the cookie signed with the retired key still vouches for the browser"
    );
}

#[test]
fn one_browser_is_trusted_for_its_five_latest_accounts() {
    let app = spawn_app();
    let users: Vec<User> = (0..6)
        .map(|i| app.create_user(&format!("member{i}"), Role::User))
        .collect();
    for user in &users {
        signed_in_before(&app.client, user);
    }
    let cookie = device_cookie(&app.client).unwrap();
    assert_eq!(cookie.value().split('~').count(), 5, "bounded");
    for (user, expected) in [
        (&users[5], Status::SeeOther),
        (&users[1], Status::SeeOther),
        (&users[0], Status::TooManyRequests),
    ] {
        stranger_locks_out(&app, &user.username);
        let response = login_with(&app.client, &user.username, PASSWORD);
        assert_eq!(response.status(), expected, "{}", user.username);
        drop(response);
        app.logout();
    }
}

#[test]
fn a_trusted_sign_in_re_signs_the_cookie_so_trust_outlives_the_old_key() {
    use latchkey::auth::KeyFile;
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("keys.json");
    KeyFile::rotate(&key_file, 86_400).unwrap();
    let app = spawn_app_with(|f| {
        f.merge(("jwt_secret", ""))
            .merge(("key_file", key_file.display().to_string()))
    });
    let alice = app.create_user("alice", Role::User);
    let first = signed_in_before(&app.client, &alice);

    KeyFile::rotate(&key_file, 86_400).unwrap();
    assert!(latchkey::reload_keys(app.client.rocket()).unwrap());
    let again = signed_in_before(&app.client, &alice);
    assert_ne!(first.value(), again.value(), "re-signed with the new key");
    assert_eq!(
        first.value().split('.').nth(1),
        again.value().split('.').nth(1),
        "the same device"
    );

    // A rotation with a grace of 1 s, a little later, drops the first key.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let rotation = KeyFile::rotate(&key_file, 1).unwrap();
    assert_eq!(rotation.dropped.len(), 1, "the first key is gone");
    assert!(latchkey::reload_keys(app.client.rocket()).unwrap());
    stranger_locks_out(&app, "alice");
    assert_eq!(
        login_with(&app.client, "alice", PASSWORD).status(),
        Status::SeeOther
    );
    let client = second_instance(&app);
    assert_eq!(
        login_carrying(&client, "alice", PASSWORD, Some(first)).status(),
        Status::TooManyRequests,
        "the copy signed with the dropped key vouches for nothing"
    );
}
