//! Changing the address (`/account/email`): sudo mode; a link to the new address; a taken
//! address answers like a free one and mails nobody; the old address gets a notice whose undo
//! link puts it back, ends every session and revokes every API key. Real SMTP server.

use std::time::Duration;

use latchkey::models::Role;
use rocket::http::Status;
use rocket::local::blocking::LocalResponse;

use crate::helpers::*;
use crate::smtp::{MailServer, Options};

const WAIT: Duration = Duration::from_secs(15);

fn ask<'a>(app: &'a TestApp, email: &str) -> LocalResponse<'a> {
    app.post_form("/account/email", &[("email", email)])
}

/// The confirmation link (path) of the `nth` mail to the new address `to`.
fn change_link(server: &MailServer, to: &str, nth: usize) -> String {
    let mails = server.wait_for(to, nth + 1, WAIT);
    assert_eq!(mails[nth].subject(), "Confirm your new latchkey address");
    mails[nth].link("/email/change/")
}

/// The undo link (path) of the notice to the old address `to`, the `count`th mail to it.
fn undo_link(server: &MailServer, to: &str, count: usize) -> String {
    let mails = server.wait_for(to, count, WAIT);
    let notice = mails
        .iter()
        .find(|m| m.subject() == "Your latchkey address was changed")
        .expect("the notice arrived");
    notice.link("/email/undo/")
}

fn flash_cookie(response: &LocalResponse<'_>) -> Option<String> {
    session_set_cookie(response, "_flash")
}

#[test]
fn changing_the_address_needs_a_recent_proof() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);
    assert_eq!(
        app.get("/account/email").status(),
        Status::Ok,
        "fresh sign-in"
    );
    app.clock().advance(time::Duration::seconds(601));
    let response = app.get("/account/email");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/confirm?next=/account/email");
    let response = ask(&app, "ann.new@example.org");
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        location(&response).starts_with("/confirm"),
        "{}",
        location(&response)
    );
    assert!(app.user("ann").unwrap().email == "ann@example.com");
}

#[test]
fn a_new_address_is_confirmed_by_its_link_and_the_old_one_is_told_with_an_undo_link() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);

    let response = ask(&app, "ann@example.com");
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That is already your address"));
    let response = ask(&app, "not an address");
    assert_eq!(response.status(), Status::UnprocessableEntity);

    let response = ask(&app, "Ann.New@Example.org");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account");
    assert_eq!(app.user("ann").unwrap().email, "ann@example.com", "not yet");
    let link = change_link(&server, "Ann.New@Example.org", 0);

    let response = app.get(&link);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account");
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    let page = app.get("/account").into_string().unwrap();
    assert!(
        page.contains("Your address is now Ann.New@Example.org."),
        "{page}"
    );
    let user = app.user("ann").unwrap();
    assert_eq!(user.email, "Ann.New@Example.org");
    assert_eq!(user.email_key, "ann.new@example.org");
    assert!(user.email_verified_at.is_some());
    let events = audit_events(&app, "email_changed");
    assert_eq!(events.len(), 1);
    let detail = events[0].detail.clone().unwrap_or_default();
    assert_eq!(detail, "new address at example.org");

    let notice = &server.wait_for("ann@example.com", 1, WAIT)[0];
    assert_eq!(notice.subject(), "Your latchkey address was changed");
    assert!(notice.text().contains("example.org"), "{}", notice.text());
    assert!(
        !notice.text().contains("Ann.New"),
        "the new address stays private"
    );
    assert!(notice.link("/email/undo/").starts_with("/email/undo/"));

    assert_eq!(app.get(&link).status(), Status::BadRequest, "used once");
}

#[test]
fn a_taken_address_answers_the_same_and_mails_nobody() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.create_user("bob", Role::User);
    app.sign_in_as("ann", Role::User);

    let taken = ask(&app, "bob@example.com");
    let (taken_status, taken_to, taken_flash) =
        (taken.status(), location(&taken), flash_cookie(&taken));
    let taken_body = taken.into_bytes();
    let free = ask(&app, "free@example.net");
    assert_eq!(free.status(), taken_status);
    assert_eq!(location(&free), taken_to);
    assert_eq!(flash_cookie(&free), taken_flash);
    assert!(taken_flash.is_some());
    assert_eq!(free.into_bytes(), taken_body);

    change_link(&server, "free@example.net", 0);
    assert!(
        server
            .messages()
            .iter()
            .all(|m| !m.to().iter().any(|t| t.contains("bob@"))),
        "nothing to the taken address"
    );
    assert_eq!(app.user("ann").unwrap().email, "ann@example.com");

    // Three an hour.
    assert_eq!(ask(&app, "third@example.net").status(), Status::SeeOther);
    let response = ask(&app, "fourth@example.net");
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response
        .into_string()
        .unwrap()
        .contains("several address changes in the last hour"));
}

#[test]
fn an_address_taken_before_the_link_is_followed_is_refused_with_a_clear_page() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);
    ask(&app, "late@example.com");
    let link = change_link(&server, "late@example.com", 0);
    app.create_user("late", Role::User); // late@example.com
    let response = app.get(&link);
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That address is not available"));
    assert_eq!(app.user("ann").unwrap().email, "ann@example.com");
}

#[test]
fn the_undo_link_restores_the_address_ends_every_session_and_revokes_keys_once() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);
    let response = app.post_form(
        "/account/api-keys",
        &[
            ("name", "script"),
            ("scope", "full"),
            ("expires_in_days", ""),
        ],
    );
    assert_eq!(response.status(), Status::Ok);
    let html = response.into_string().unwrap();
    let marker = "id=\"new-key-value\">";
    let at = html.find(marker).expect("the new key is shown") + marker.len();
    let key = html[at..at + html[at..].find('<').unwrap()].to_string();

    // The attacker's change, then a second one from the mailbox they hold.
    ask(&app, "thief@evil.test");
    app.get(&change_link(&server, "thief@evil.test", 0));
    ask(&app, "thief2@evil.test");
    app.get(&change_link(&server, "thief2@evil.test", 0));
    assert_eq!(app.user("ann").unwrap().email, "thief2@evil.test");
    let undo = undo_link(&server, "ann@example.com", 1);
    let thiefs_undo = undo_link(&server, "thief@evil.test", 2);
    ask(&app, "thief3@evil.test");
    let pending_change = change_link(&server, "thief3@evil.test", 0);
    let old_cookie = app.session_cookie().unwrap().value().to_string();

    // The owner follows the undo link on another device: a page with one button, and opening it
    // changes nothing (a mail scanner fetching the link undoes nothing).
    let phone = second_instance(&app);
    let response = phone.get(undo.clone()).dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    let page = response.into_string().unwrap();
    assert!(page.contains("Put my address back"), "{page}");
    assert!(page.contains("ann@example.com"), "{page}");
    assert_eq!(app.user("ann").unwrap().email, "thief2@evil.test");
    assert!(audit_events(&app, "email_change_undone").is_empty());
    let token = csrf_token_of(&phone);
    let response = phone
        .post(undo.clone())
        .header(rocket::http::ContentType::Form)
        .body(form(&[("csrf_token", &token)]))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    let page = response.into_string().unwrap();
    assert!(page.contains("Your address is back"), "{page}");
    assert!(page.contains("ann@example.com"), "{page}");
    assert!(page.contains("href=\"/password/forgot\""), "{page}");
    let user = app.user("ann").unwrap();
    assert_eq!(user.email, "ann@example.com");
    assert!(user.email_verified_at.is_some());
    assert_eq!(audit_events(&app, "email_change_undone").len(), 1);

    // Every session ended, every key revoked, every link still out void. (The revocation was
    // made on the phone's instance; this one reads it from the database within a second.)
    std::thread::sleep(Duration::from_millis(1200));
    app.set_token(&old_cookie);
    let response = app.get("/private");
    assert_eq!(response.status(), Status::SeeOther);
    assert!(location(&response).starts_with("/login"));
    let exchanged = app
        .client
        .post("/api/token")
        .header(rocket::http::ContentType::JSON)
        .body(serde_json::json!({ "api_key": key }).to_string())
        .dispatch();
    assert_eq!(exchanged.status(), Status::Unauthorized);
    assert_eq!(
        phone.get(undo).dispatch().status(),
        Status::BadRequest,
        "once"
    );
    assert_eq!(
        phone.get(thiefs_undo).dispatch().status(),
        Status::BadRequest,
        "the thief's own undo cannot take the account back"
    );
    assert_eq!(
        phone.get(pending_change).dispatch().status(),
        Status::BadRequest,
        "nor a change asked for before"
    );
    assert_eq!(app.user("ann").unwrap().email, "ann@example.com");
}

#[test]
fn undo_refuses_an_old_address_someone_else_took_meanwhile() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);
    ask(&app, "ann2@example.com");
    app.get(&change_link(&server, "ann2@example.com", 0));
    let undo = undo_link(&server, "ann@example.com", 1);
    // Someone signs up with the freed address.
    {
        let hasher = app
            .client
            .rocket()
            .state::<latchkey::auth::PasswordHasher>()
            .unwrap();
        let hash = hasher.hash_blocking(PASSWORD).unwrap();
        let new = latchkey::models::NewUser::new(
            "squatter",
            "ANN@example.com",
            hash,
            Role::User,
            app.clock().db_now(),
        );
        latchkey::models::User::create(&mut app.pool().get().unwrap(), &new)
            .unwrap()
            .unwrap();
    }
    let response = app.post_form(&undo, &[]);
    assert_eq!(response.status(), Status::BadRequest);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That address is not available"));
    assert_eq!(app.user("ann").unwrap().email, "ann2@example.com");
}

#[test]
fn change_links_expire_and_garbage_is_refused() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ann", Role::User);
    ask(&app, "later@example.com");
    let link = change_link(&server, "later@example.com", 0);
    let raw = link.trim_start_matches("/email/change/");
    assert_eq!(
        app.get(&format!("/email/undo/{raw}")).status(),
        Status::BadRequest,
        "not an undo link"
    );
    assert_eq!(
        app.get(&format!("/email/verify/{raw}")).status(),
        Status::BadRequest,
        "not a verification link"
    );
    app.clock()
        .advance(time::Duration::hours(24) + time::Duration::seconds(1));
    assert_eq!(app.get(&link).status(), Status::BadRequest, "expired");
    assert_eq!(app.user("ann").unwrap().email, "ann@example.com");
}
