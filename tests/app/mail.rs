//! Mail through the outbox to a real SMTP server (tests/common/smtp.rs): notices arrive with
//! their links; mail waits, sealed, while the server is down and is sent exactly once when it
//! comes back, with two instances sending; with no server configured mail becomes `.eml` files.

use std::time::{Duration, Instant};

use latchkey::models::{MailState, OutboxMail, Role};
use rocket::http::Status;

use crate::helpers::*;
use crate::smtp::{free_port, MailServer, Options};

const NEW_PASSWORD: &str = "another-Lantern-orbit-91";

fn change_password(app: &TestApp) {
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
}

/// Only the password-changed notice on: these tests count mails, and signing in from a new
/// browser (every test client is one) sends a notice of its own.
fn only_the_password_notice(f: rocket::figment::Figment) -> rocket::figment::Figment {
    f.merge(("mail_notices", vec!["password_changed"]))
}

/// Every outbox row, newest first.
pub fn outbox(app: &TestApp) -> Vec<OutboxMail> {
    OutboxMail::recent(&mut app.pool().get().unwrap(), 1000, 0).unwrap()
}

/// Waits until `check` holds for the outbox (the sender works in the background).
fn wait_for_outbox(app: &TestApp, what: &str, check: impl Fn(&[OutboxMail]) -> bool) {
    let start = Instant::now();
    while !check(&outbox(app)) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "outbox never {what}: {:#?}",
            outbox(app)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_password_change_is_announced_by_mail_over_starttls() {
    let server = MailServer::start(Options::starttls().with_login("latchkey", "mail pass@1"));
    let app = spawn_app_mailing_to(&server, only_the_password_notice);
    app.sign_in_as("zoe", Role::User);
    change_password(&app);

    let mail = server.wait_for("zoe@example.com", 1, Duration::from_secs(15));
    assert_eq!(mail.len(), 1);
    let mail = &mail[0];
    assert_eq!(mail.subject(), "Your latchkey password was changed");
    assert!(mail.text().contains("Hello zoe,"), "{}", mail.text());
    assert!(mail.text().contains("was changed on"), "{}", mail.text());
    assert_eq!(mail.link("/password/forgot"), "/password/forgot");
    assert!(mail.html().contains("Hello zoe,"), "{}", mail.html());
    assert!(
        mail.header("Message-ID")
            .is_some_and(|id| id.contains("@localhost>")),
        "{:?}",
        mail.header("Message-ID")
    );
    wait_for_outbox(&app, "marked sent", |rows| {
        rows.iter().all(|m| m.state() == MailState::Sent)
    });
    let rows = outbox(&app);
    assert_eq!(rows[0].body, "", "a sent mail keeps no body");
    assert_eq!(rows[0].attempts, 1);
}

#[test]
fn mail_queued_while_the_server_is_down_is_sealed_and_sent_once_when_it_is_back() {
    let port = free_port();
    let down = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(|f| {
        only_the_password_notice(f.merge(("smtp_url", down)).merge(("mail_retry_secs", 1)))
    });
    let other = second_instance(&app);
    app.sign_in_as("zoe", Role::User);
    change_password(&app);

    wait_for_outbox(&app, "tried and failed", |rows| {
        rows.len() == 1 && rows[0].attempts >= 1 && rows[0].last_error.is_some()
    });
    let waiting = &outbox(&app)[0];
    assert_eq!(waiting.state(), MailState::Queued);
    assert!(
        waiting.body.starts_with("v1."),
        "body sealed: {}",
        waiting.body
    );
    assert!(
        !waiting.body.contains("zoe") && !waiting.body.contains("forgot"),
        "no plain text of the mail in the database"
    );

    let server = MailServer::start_on(port, Options::plain());
    let mail = server.wait_for("zoe@example.com", 1, Duration::from_secs(15));
    assert_eq!(mail[0].subject(), "Your latchkey password was changed");
    wait_for_outbox(&app, "marked sent", |rows| {
        rows[0].state() == MailState::Sent
    });
    // Both instances keep looking at the outbox; give them time to send it again if they would.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(server.messages().len(), 1, "sent exactly once");
    drop(other);
}

#[test]
fn without_a_mail_server_mail_is_written_as_eml_files() {
    let app = spawn_app_with(only_the_password_notice);
    app.sign_in_as("zoe", Role::User);
    change_password(&app);
    wait_for_outbox(&app, "marked sent", |rows| {
        rows.len() == 1 && rows[0].state() == MailState::Sent
    });
    let id = &outbox(&app)[0].id;
    let file = app.dir.path().join("mail").join(format!("{id}.eml"));
    let eml = std::fs::read_to_string(&file).expect("the .eml file");
    assert!(
        eml.contains("Subject: Your latchkey password was changed"),
        "{eml}"
    );
    assert!(eml.contains("To: zoe@example.com"), "{eml}");
}
