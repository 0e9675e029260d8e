//! Security notices by mail (issue 12 item 5): two-factor turned on and off, new recovery codes,
//! a new API key, a sign-in from a browser not seen before. Each goes to the account's address
//! and is not sent when the operator leaves it out of `mail_notices`.

use std::time::{Duration, Instant};

use latchkey::auth::two_factor::code_at;
use latchkey::models::{OutboxMail, Role, User};
use rocket::http::{ContentType, Status};

use crate::helpers::*;

/// Every notice on, as the built-in default has it (the shared test settings leave out the
/// new-browser one).
fn every_notice(f: rocket::figment::Figment) -> rocket::figment::Figment {
    f.merge((
        "mail_notices",
        vec![
            "password_changed",
            "two_factor_changed",
            "recovery_codes",
            "api_key_created",
            "email_changed",
            "new_device",
            "passkeys_changed",
        ],
    ))
}
use crate::smtp::{MailServer, Options, Received};

/// Waits for a mail to `to` with `subject`.
fn wait_subject(server: &MailServer, to: &str, subject: &str) -> Received {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = server
            .messages()
            .into_iter()
            .find(|m| m.to().iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject() == subject);
        if let Some(mail) = found {
            return mail;
        }
        let seen: Vec<String> = server.messages().iter().map(|m| m.subject()).collect();
        assert!(
            Instant::now() < deadline,
            "no {subject:?} to {to}; got {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kinds of the mails queued for `user`, oldest first.
fn kinds_for(app: &TestApp, user: &User) -> Vec<String> {
    let mut conn = app.pool().get().unwrap();
    let mut kinds: Vec<String> = OutboxMail::for_user(&mut conn, &user.id)
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    kinds.reverse();
    kinds
}

fn code_now(app: &TestApp, secret: &str) -> String {
    app.clock().advance(time::Duration::seconds(30));
    code_at(secret, app.clock().now()).unwrap()
}

/// Turns two-factor on through the pages; returns the secret.
fn turn_on(app: &TestApp, user: &User) -> String {
    let response = app.post_form("/account/two-factor/setup", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let secret = app.two_factor_secret(user);
    let response = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code_now(app, &secret)), ("password", PASSWORD)],
    );
    assert_eq!(response.status(), Status::Ok);
    secret
}

fn create_key(app: &TestApp, name: &str) -> String {
    let response = app.post_form(
        "/account/api-keys",
        &[("name", name), ("scope", "read"), ("expires_in_days", "30")],
    );
    assert_eq!(response.status(), Status::Ok);
    let html = response.into_string().unwrap();
    let marker = "id=\"new-key-value\">";
    let at = html.find(marker).expect("the new key is shown") + marker.len();
    html[at..at + html[at..].find('<').unwrap()].to_string()
}

#[test]
fn two_factor_on_new_recovery_codes_and_two_factor_off_are_each_announced() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, every_notice);
    let user = app.sign_in_as("zoe", Role::User);
    let secret = turn_on(&app, &user);
    let on = wait_subject(
        &server,
        "zoe@example.com",
        "Two-factor sign-in was turned on",
    );
    assert!(on.text().contains("Hello zoe,"), "{}", on.text());
    assert!(on.text().contains("was turned on on"), "{}", on.text());

    let response = app.post_form(
        "/account/two-factor/recovery-codes",
        &[("code", &code_now(&app, &secret))],
    );
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    let codes = wait_subject(&server, "zoe@example.com", "New recovery codes were made");
    assert!(codes.text().contains("The old codes no longer work"));

    let response = app.post_form(
        "/account/two-factor/disable",
        &[("password", PASSWORD), ("code", &code_now(&app, &secret))],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let off = wait_subject(
        &server,
        "zoe@example.com",
        "Two-factor sign-in was turned off",
    );
    assert!(
        off.text().contains("needs only your password"),
        "{}",
        off.text()
    );
}

#[test]
fn an_admin_resetting_two_factor_is_announced_to_the_user() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, every_notice);
    let user = app.create_user("yan", Role::User);
    app.enable_two_factor(&user);
    app.sign_in_as("ada", Role::Admin);
    let response = app.post_form(&format!("/admin/users/{}/two-factor/reset", user.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    wait_subject(
        &server,
        "yan@example.com",
        "Two-factor sign-in was turned off",
    );
}

#[test]
fn a_new_api_key_is_announced_with_its_name_and_expiry_never_the_key() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, every_notice);
    app.sign_in_as("kai", Role::User);
    let key = create_key(&app, "deploy bot");
    let mail = wait_subject(&server, "kai@example.com", "A new API key was created");
    assert!(mail.text().contains("\"deploy bot\""), "{}", mail.text());
    assert!(mail.text().contains("It expires on"), "{}", mail.text());
    assert!(
        !mail.text().contains(&key) && !mail.html().contains(&key),
        "never the key"
    );
    let prefix: String = key.chars().take(12).collect();
    assert!(!mail.text().contains(&prefix), "not even its start");
}

#[test]
fn a_sign_in_from_a_new_browser_is_announced_once_per_browser() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, every_notice);
    // Signing up is not a sign-in from a new browser.
    let response = app.signup("lea", "lea@example.com", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    app.logout();
    let lea = app.user("lea").unwrap();
    assert!(
        kinds_for(&app, &lea).iter().all(|k| k != "new_device"),
        "none at sign-up"
    );

    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    login_on(&app.client, "lea", Some(firefox));
    let mail = wait_subject(&server, "lea@example.com", "A sign-in from a new browser");
    assert!(mail.text().contains("Firefox on Linux"), "{}", mail.text());
    assert!(mail.text().contains(firefox), "{}", mail.text());
    assert!(mail.text().contains("Address:"), "{}", mail.text());
    assert!(
        mail.text().contains("sign out everywhere"),
        "{}",
        mail.text()
    );
    assert!(mail
        .link("/account/sessions")
        .starts_with("/account/sessions"));

    // The same browser again (it holds its device cookie): no notice.
    app.logout();
    login_on(&app.client, "lea", Some(firefox));
    app.logout();
    assert_eq!(
        kinds_for(&app, &lea)
            .iter()
            .filter(|k| *k == "new_device")
            .count(),
        1,
        "the browser is known now"
    );
    // Another browser: a notice.
    let other = second_instance(&app);
    login_on(&other, "lea", Some("curl/8.5.0"));
    assert_eq!(
        kinds_for(&app, &lea)
            .iter()
            .filter(|k| *k == "new_device")
            .count(),
        2
    );
    // A program trading an API key for a token has no browser: no notice.
    let response = app.login("lea", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    let key = create_key(&app, "script");
    let before = kinds_for(&app, &lea).len();
    let response = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(format!(r#"{{"api_key":"{key}"}}"#))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    assert_eq!(
        kinds_for(&app, &lea).len(),
        before,
        "no notice for an API key grant"
    );
}

#[test]
fn notices_the_operator_turned_off_are_not_sent() {
    let app = spawn_app_with(|f| f.merge(("mail_notices", Vec::<String>::new())));
    let user = app.sign_in_as("max", Role::User);
    let other = second_instance(&app);
    login_on(&other, "max", Some("curl/8.5.0"));
    create_key(&app, "quiet");
    let secret = turn_on(&app, &user);
    let response = app.post_form(
        "/account/two-factor/recovery-codes",
        &[("code", &code_now(&app, &secret))],
    );
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    assert_eq!(
        kinds_for(&app, &user),
        Vec::<String>::new(),
        "nothing queued"
    );

    // Only the new-browser notice off: the others still go.
    let app = spawn_app_with(|f| {
        f.merge((
            "mail_notices",
            vec![
                "password_changed",
                "two_factor_changed",
                "recovery_codes",
                "api_key_created",
                "email_changed",
            ],
        ))
    });
    let user = app.sign_in_as("max", Role::User);
    login_on(&second_instance(&app), "max", None);
    create_key(&app, "loud");
    turn_on(&app, &user);
    assert_eq!(
        kinds_for(&app, &user),
        vec!["api_key_created", "two_factor_changed"]
    );
}

#[test]
fn every_notice_is_on_by_default() {
    assert_eq!(
        latchkey::config::Settings::default().mail_notices,
        latchkey::config::Notice::ALL.to_vec()
    );
}
