//! The outbox on the admin panel (`/admin/mail`): counts by state, the newest mails with kind,
//! recipient, subject, state, attempts and last error — never a body — 25 a page, admins only.

use std::time::{Duration, Instant};

use latchkey::mail::{Letter, Mailer};
use latchkey::models::{MailState, OutboxMail, Role};
use rocket::http::Status;

use crate::helpers::*;
use crate::invitations::{invite, link_on_page};
use crate::smtp::free_port;

fn outbox(app: &TestApp) -> Vec<OutboxMail> {
    OutboxMail::recent(&mut app.pool().get().unwrap(), 1000, 0).unwrap()
}

fn wait_until(app: &TestApp, what: &str, check: impl Fn(&[OutboxMail]) -> bool) {
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

fn count_on(html: &str, state: &str) -> i64 {
    let marker = format!("id=\"count-{state}\">");
    let at = html.find(&marker).expect("the count is shown") + marker.len();
    html[at..at + html[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

fn down(app_port: u16) -> String {
    format!("smtp://127.0.0.1:{app_port}")
}

#[test]
fn a_mail_the_server_never_took_shows_as_failed_with_its_error_and_no_body() {
    let app = spawn_app_with(|f| {
        f.merge(("smtp_url", down(free_port())))
            .merge(("mail_max_attempts", 1))
            .merge(("mail_retry_secs", 1))
    });
    app.sign_in_as("ada", Role::Admin);
    let link = link_on_page(
        &invite(&app, "nina@example.com", "user")
            .into_string()
            .unwrap(),
    );
    let token = link.trim_start_matches("/invite/").to_string();
    wait_until(&app, "all failed", |rows| {
        !rows.is_empty() && rows.iter().all(|m| m.state() == MailState::Failed)
    });
    let rows = outbox(&app);
    let response = app.client.get("/admin/mail").dispatch();
    assert_eq!(response.status(), Status::Ok);
    let html = response.into_string().unwrap();
    assert_eq!(count_on(&html, "failed"), rows.len() as i64);
    assert_eq!(count_on(&html, "sent"), 0);
    assert_eq!(count_on(&html, "queued"), 0);
    assert!(html.contains("nina@example.com"));
    assert!(html.contains("You are invited to latchkey"));
    assert!(html.contains(">invitation<"), "the kind");
    assert!(html.contains("badge-failed"));
    let error = rows[0].last_error.clone().expect("the error is kept");
    let start: String = error.chars().take(12).collect();
    assert!(html.contains(&start), "the last error: {error}");
    assert!(
        html.contains("cannot be sent again"),
        "why there is no resend"
    );
    assert!(!html.contains(&token), "never the mail's link");
    assert!(!html.contains("Accept the invitation"), "never the body");
}

#[test]
fn a_mail_waiting_for_its_retry_shows_as_queued_and_its_sealed_body_stays_hidden() {
    let app = spawn_app_with(|f| {
        f.merge(("smtp_url", down(free_port())))
            .merge(("mail_max_attempts", 5))
            .merge(("mail_retry_secs", 3600))
    });
    app.sign_in_as("ada", Role::Admin);
    invite(&app, "otto@example.com", "admin");
    wait_until(&app, "tried once", |rows| {
        rows.iter()
            .any(|m| m.recipient == "otto@example.com" && m.attempts == 1)
    });
    let mail = outbox(&app)
        .into_iter()
        .find(|m| m.recipient == "otto@example.com")
        .unwrap();
    assert_eq!(mail.state(), MailState::Queued);
    assert!(!mail.body.is_empty(), "still sealed in the outbox");
    let html = app
        .client
        .get("/admin/mail")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(count_on(&html, "queued") >= 1);
    assert!(html.contains("otto@example.com"));
    assert!(html.contains("next try"));
    let piece: String = mail.body.chars().skip(10).take(24).collect();
    assert!(!html.contains(&piece), "never the sealed body");
}

#[test]
fn the_outbox_is_paged_and_for_admins_only() {
    let app = spawn_app();
    app.sign_in_as("uma", Role::User);
    assert_eq!(
        app.client.get("/admin/mail").dispatch().status(),
        Status::Forbidden
    );
    app.logout();

    app.sign_in_as("ada", Role::Admin);
    {
        let mailer = app.client.rocket().state::<Mailer>().unwrap();
        let now = app.clock().db_now();
        let mut conn = app.pool().get().unwrap();
        for i in 0..30 {
            let to = format!("p{i}@example.com");
            let letter =
                Letter::invitation(mailer, &to, "http://x/invite/t", "ada", Role::User, now);
            let mail = mailer.compose(&letter, now).unwrap();
            OutboxMail::queue(&mut conn, &mail).unwrap();
        }
    }
    let total = outbox(&app).len();
    let rows = |page: &str| {
        let html = app.client.get(page).dispatch().into_string().unwrap();
        html.matches("data-label=\"Kind\"").count()
    };
    assert_eq!(rows("/admin/mail"), 25);
    assert_eq!(rows("/admin/mail?page=2"), total - 25);
    let html = app.client.get("/admin").dispatch().into_string().unwrap();
    assert!(
        html.contains(r#"href="/admin/mail""#),
        "linked from the panel"
    );
    assert!(
        html.contains(r#"href="/admin/invitations""#),
        "linked from the panel"
    );
}
