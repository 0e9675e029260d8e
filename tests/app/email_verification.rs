//! Email verification (`email_verification`): with `optional` (the default) sign-up mails a link
//! instead of signing in, and answers a registered address exactly like a new one (its owner is
//! told by mail); with `required` an unverified user sees only "Confirm your address" until the
//! link is followed. Mail goes to a real SMTP server (tests/common/smtp.rs).

use std::time::Duration;

use latchkey::config::{EmailVerification, Settings};
use latchkey::models::Role;
use rocket::http::{Header, Status};
use rocket::local::blocking::LocalResponse;

use crate::helpers::*;
use crate::smtp::{MailServer, Options};

const WAIT: Duration = Duration::from_secs(15);

fn spawn(server: &MailServer, mode: &'static str) -> TestApp {
    spawn_app_mailing_to(server, move |f| f.merge(("email_verification", mode)))
}

/// The verification link (path) of the `nth` mail (0-based) to `to`, once `nth + 1` arrived.
fn verify_link(server: &MailServer, to: &str, nth: usize) -> String {
    let mails = server.wait_for(to, nth + 1, WAIT);
    let mail = &mails[nth];
    assert_eq!(mail.subject(), "Confirm your latchkey address");
    mail.link("/email/verify/")
}

fn verified(app: &TestApp, username: &str) -> bool {
    app.user(username).unwrap().email_verified_at.is_some()
}

fn bearer<'c>(app: &'c TestApp, uri: &str, token: &str) -> LocalResponse<'c> {
    app.client
        .get(uri.to_string())
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
}

#[test]
fn the_built_in_default_is_optional() {
    assert_eq!(
        Settings::default().email_verification,
        EmailVerification::Optional
    );
}

#[test]
fn optional_sign_up_mails_a_link_instead_of_signing_in_and_the_link_verifies_once() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "optional");
    let response = app.signup("vera", "Vera@Example.com", PASSWORD);
    assert_eq!(response.status(), Status::Ok);
    assert!(
        session_set_cookie(&response, COOKIE).is_none(),
        "not signed in"
    );
    let html = response.into_string().unwrap();
    assert!(html.contains("Check your email"), "{html}");
    assert!(!verified(&app, "vera"));
    assert_eq!(audit_events(&app, "signup").len(), 1);
    assert_eq!(app.get("/private").status(), Status::SeeOther, "signed out");

    let link = verify_link(&server, "Vera@Example.com", 0);
    let response = app.get(&link);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/login");
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    let page = app.get("/login").into_string().unwrap();
    assert!(
        page.contains("Your address is confirmed. Sign in."),
        "{page}"
    );
    assert!(verified(&app, "vera"));
    assert_eq!(audit_events(&app, "email_verified").len(), 1);

    let again = app.get(&link);
    assert_eq!(again.status(), Status::BadRequest);
    let page = again.into_string().unwrap();
    assert!(page.contains("This link does not work"), "{page}");
    assert!(
        page.contains("href=\"/login\""),
        "a way to a new link: {page}"
    );

    // Optional: signing in works, verified or not, and the account page says which.
    app.login("vera", PASSWORD);
    let page = app.get("/account").into_string().unwrap();
    assert!(page.contains(">verified</span>"), "{page}");
}

#[test]
fn the_account_page_offers_a_new_link_while_the_address_is_unverified() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "optional");
    app.signup("otto", "otto@example.com", PASSWORD);
    let first = verify_link(&server, "otto@example.com", 0);
    app.login("otto", PASSWORD);
    let page = app.get("/account").into_string().unwrap();
    assert!(page.contains("not verified"), "{page}");
    assert!(page.contains("action=\"/account/verify-email\""), "{page}");
    assert!(page.contains("Send the link again"), "{page}");

    let response = app.post_form("/account/verify-email", &[]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account");
    let second = verify_link(&server, "otto@example.com", 1);
    assert_eq!(app.get(&first).status(), Status::BadRequest, "voided");
    let response = app.get(&second);
    assert_eq!(
        location(&response),
        "/account",
        "signed in: back to the account"
    );
    assert!(verified(&app, "otto"));
}

#[test]
fn sign_up_with_a_registered_address_answers_the_same_bytes_and_tells_the_owner() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "optional");
    app.create_user("owner", Role::User);
    let users = app.user_count();

    let fresh = app.signup("newcomer", "newcomer@example.com", PASSWORD);
    let (fresh_status, fresh_type) = (fresh.status(), fresh.content_type());
    let fresh_body = fresh.into_bytes().unwrap();
    let taken = app.signup("intruder", "OWNER@example.com", PASSWORD);
    let (taken_status, taken_type) = (taken.status(), taken.content_type());
    let taken_body = taken.into_bytes().unwrap();
    assert_eq!(fresh_status, Status::Ok);
    assert_eq!(taken_status, fresh_status);
    assert_eq!(taken_type, fresh_type);
    assert!(taken_body == fresh_body, "the two answers differ");

    assert_eq!(app.user_count(), users + 1, "only the newcomer was made");
    assert!(app.user("intruder").is_none());
    let mails = server.wait_for("owner@example.com", 1, WAIT);
    assert_eq!(
        mails[0].subject(),
        "Someone tried to sign up with your address"
    );
    assert!(
        mails[0].text().contains("Hello owner,"),
        "{}",
        mails[0].text()
    );
    assert_eq!(mails[0].link("/password/forgot"), "/password/forgot");
    assert_eq!(mails[0].link("/login"), "/login");
    verify_link(&server, "newcomer@example.com", 0);
    assert_eq!(
        server.wait_for("owner@example.com", 1, WAIT).len(),
        1,
        "no link to the owner"
    );

    // A taken username is still said: usernames are public.
    let response = app.signup("owner", "someone-else@example.com", PASSWORD);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    let page = response.into_string().unwrap();
    assert!(page.contains("That username is already taken"), "{page}");
}

#[test]
fn with_verification_off_sign_up_signs_in_and_a_taken_address_is_said() {
    let app = spawn_app_with(|f| f.merge(("email_verification", "off")));
    let response = app.signup("olga", "olga@example.com", PASSWORD);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    app.logout();
    let response = app.signup("olga2", "olga@example.com", PASSWORD);
    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That email address is already registered"));
}

#[test]
fn required_mode_holds_an_unverified_user_on_the_confirm_page_until_the_link_is_followed() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "required");
    let response = app.signup("rita", "rita@example.com", PASSWORD);
    assert_eq!(response.status(), Status::Ok);
    let response = app.login("rita", PASSWORD);
    assert_eq!(
        response.status(),
        Status::SeeOther,
        "an unverified user can sign in"
    );
    let token = app.session_cookie().expect("signed in").value().to_string();
    assert_eq!(claims_of(&token)["email_unverified"], true);

    for page in [
        "/private",
        "/account",
        "/account/sessions",
        "/admin",
        "/confirm",
    ] {
        let response = app.get(page);
        assert_eq!(response.status(), Status::SeeOther, "{page}");
        assert_eq!(location(&response), "/account/verify-email", "{page}");
    }
    let response = app.post_form("/account/logout-everywhere", &[]);
    assert_eq!(location(&response), "/account/verify-email");
    let page = app.get("/account/verify-email");
    assert_eq!(page.status(), Status::Ok);
    let page = page.into_string().unwrap();
    assert!(page.contains("Confirm your address"), "{page}");
    assert!(page.contains("rita@example.com"), "{page}");
    assert!(page.contains("Send the link again"), "{page}");
    assert!(page.contains("action=\"/logout\""), "{page}");

    let response = bearer(&app, "/api/me", &token);
    assert_eq!(response.status(), Status::Forbidden);
    let json: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(json["error"], "email_unverified");

    // Sign-up's link and two more an hour; older ones are void.
    let first = verify_link(&server, "rita@example.com", 0);
    for _ in 0..2 {
        let response = app.post_form("/account/verify-email", &[]);
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response), "/account/verify-email");
    }
    let response = app.post_form("/account/verify-email", &[]);
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response
        .into_string()
        .unwrap()
        .contains("We already sent several links in the last hour"));
    let last = verify_link(&server, "rita@example.com", 2);
    assert_eq!(app.get(&first).status(), Status::BadRequest);

    let response = app.get(&last);
    assert_eq!(location(&response), "/account");
    assert!(verified(&app, "rita"));
    let token = app.session_cookie().unwrap().value().to_string();
    assert!(
        claims_of(&token).get("email_unverified").is_none(),
        "this browser's token was reissued"
    );
    assert_eq!(app.get("/private").status(), Status::Ok);
    assert_eq!(app.get("/account").status(), Status::Ok);
    assert_eq!(bearer(&app, "/api/me", &token).status(), Status::Ok);
}

#[test]
fn required_mode_lets_an_unverified_api_client_sign_out() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "required");
    app.signup("api", "api@example.com", PASSWORD);
    let response = app
        .client
        .post("/api/token")
        .header(rocket::http::ContentType::JSON)
        .body(r#"{"username":"api","password":"PASSWORD"}"#.replace("PASSWORD", PASSWORD))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    let json: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    let token = json["access_token"].as_str().unwrap().to_string();
    assert_eq!(bearer(&app, "/api/me", &token).status(), Status::Forbidden);
    let response = app
        .client
        .post("/api/logout")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        bearer(&app, "/api/me", &token).status(),
        Status::Unauthorized
    );
}

#[test]
fn required_mode_lets_an_unverified_user_sign_out() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "required");
    app.signup("sam", "sam@example.com", PASSWORD);
    app.login("sam", PASSWORD);
    let sid = app.session_id();
    let response = app.logout();
    assert_eq!(location(&response), "/");
    assert_eq!(audit_events(&app, "logout").len(), 1);
    assert!(app.sessions().revocations().is_revoked(&sid));
}

#[test]
fn required_mode_releases_another_browser_when_it_next_looks() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "required");
    app.signup("ivy", "ivy@example.com", PASSWORD);
    app.login("ivy", PASSWORD);
    let link = verify_link(&server, "ivy@example.com", 0);
    // Followed in a browser that is not signed in (the phone's mail app).
    let phone = second_instance(&app);
    let response = phone.get(link).dispatch();
    assert_eq!(location(&response), "/login");
    // The first browser's token still says "unverified"; the confirm page notices and lets go.
    assert_eq!(location(&app.get("/private")), "/account/verify-email");
    let response = app.get("/account/verify-email");
    assert_eq!(location(&response), "/account");
    assert_eq!(app.get("/private").status(), Status::Ok);
}

#[test]
fn verification_links_expire_and_work_only_for_their_own_purpose() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "optional");
    app.signup("eve", "eve@example.com", PASSWORD);
    let link = verify_link(&server, "eve@example.com", 0);
    let raw = link.trim_start_matches("/email/verify/");
    for other in ["/email/change/", "/email/undo/"] {
        let response = app.get(&format!("{other}{raw}"));
        assert_eq!(response.status(), Status::BadRequest, "{other}");
    }
    app.clock()
        .advance(time::Duration::hours(48) + time::Duration::seconds(1));
    assert_eq!(app.get(&link).status(), Status::BadRequest, "expired");
    assert!(!verified(&app, "eve"));
}

#[test]
fn garbage_verification_tokens_never_fail_the_site() {
    let app = spawn_app_with(|f| f.merge(("email_verification", "optional")));
    let long = "a".repeat(500);
    for token in [
        "x",
        "%00",
        "..%2F..%2Fetc",
        long.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "%F0%9F%94%91",
    ] {
        for route in ["/email/verify/", "/email/change/", "/email/undo/"] {
            let response = app.get(&format!("{route}{token}"));
            assert!(
                response.status().code < 500,
                "{route}{token}: {}",
                response.status()
            );
        }
    }
}

#[test]
fn required_mode_releases_another_browser_at_its_next_renewal() {
    let server = MailServer::start(Options::plain());
    let app = spawn(&server, "required");
    app.signup("una", "una@example.com", PASSWORD);
    app.login("una", PASSWORD);
    let link = verify_link(&server, "una@example.com", 0);
    let phone = second_instance(&app);
    assert_eq!(location(&phone.get(link).dispatch()), "/login");
    assert_eq!(location(&app.get("/private")), "/account/verify-email");
    // Past half the token's life the session renews, and the new token reads the user row.
    app.clock().advance(time::Duration::minutes(8));
    assert_eq!(app.get("/private").status(), Status::Ok);
    let token = app.session_cookie().unwrap().value().to_string();
    assert!(claims_of(&token).get("email_unverified").is_none());
}
