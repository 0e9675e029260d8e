//! Invitations (issue 12 item 6): an admin invites an address with a role; the mailed link (also
//! shown once to the admin) opens the sign-up form with the address fixed, and makes a verified
//! account with that role, signed in. Links work once, for 7 days, until withdrawn or replaced.
//! `signup_mode = invite_only` refuses every other sign-up. The CLI invites too.

use std::process::{Command, Stdio};
use std::time::Duration;

use latchkey::models::{OutboxMail, Role};
use rocket::http::{ContentType, Status};
use rocket::local::blocking::{Client, LocalResponse};

use crate::helpers::*;
use crate::smtp::{MailServer, Options};

const NEW_PASSWORD: &str = "quiet-Harbour-lantern-58";

/// Invites `email` as `role` from the admin signed in on `app`.
pub fn invite<'a>(app: &'a TestApp, email: &str, role: &str) -> LocalResponse<'a> {
    app.post_form("/admin/invitations", &[("email", email), ("role", role)])
}

/// The invitation link (path) an answer page shows once.
pub fn link_on_page(html: &str) -> String {
    let html = html.replace("&#x2F;", "/");
    let at = html.find("/invite/").expect("the page shows the link");
    let rest = &html[at..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// POSTs a form on another browser (`client`), with the CSRF token its pages give it.
pub fn post_on<'c>(client: &'c Client, uri: &str, pairs: &[(&str, &str)]) -> LocalResponse<'c> {
    let token = csrf_token_of(client);
    let mut fields = pairs.to_vec();
    fields.push(("csrf_token", &token));
    client
        .post(uri.to_string())
        .header(ContentType::Form)
        .body(form(&fields))
        .dispatch()
}

/// Accepts the invitation at `link` on `client` as `username`.
fn accept<'c>(client: &'c Client, link: &str, username: &str) -> LocalResponse<'c> {
    post_on(
        client,
        link,
        &[
            ("username", username),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
}

fn tokens(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use latchkey::db::schema::account_tokens;
    account_tokens::table
        .count()
        .get_result(&mut *app.pool().get().unwrap())
        .unwrap()
}

#[test]
fn an_invitation_is_mailed_and_its_link_makes_a_verified_signed_in_account_with_the_role() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.sign_in_as("ada", Role::Admin);
    let response = invite(&app, "nina@example.com", "admin");
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    let page = response.into_string().unwrap();
    assert!(page.contains("readonly"), "the link in a read-only field");
    let shown = link_on_page(&page);

    let mail = server.wait_for("nina@example.com", 1, Duration::from_secs(15));
    let mail = &mail[0];
    assert_eq!(mail.subject(), "You are invited to latchkey");
    assert!(mail.text().contains("ada invited you"), "{}", mail.text());
    assert!(
        mail.text().contains("as an administrator"),
        "{}",
        mail.text()
    );
    assert!(mail.text().contains("(UTC)"), "the expiry: {}", mail.text());
    let link = mail.link("/invite/");
    assert_eq!(link, shown, "the mail and the page give the same link");

    // Someone else's browser follows the link.
    let browser = second_instance(&app);
    let page = browser.get(link.clone()).dispatch();
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(
        page.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    assert_eq!(page.headers().get_one("Cache-Control"), Some("no-store"));
    let html = page.into_string().unwrap();
    assert!(html.contains("nina@example.com"));
    assert!(
        !html.contains(r#"name="email""#),
        "the address is not a field"
    );
    assert!(html.contains(r#"autocomplete="new-password""#));

    // A posted address is ignored: the account gets the invited one.
    let mut fields = vec![
        ("username", "nina"),
        ("email", "mallory@example.com"),
        ("password", NEW_PASSWORD),
        ("password_confirm", NEW_PASSWORD),
    ];
    let token = csrf_token_of(&browser);
    fields.push(("csrf_token", &token));
    let response = browser
        .post(link.clone())
        .header(ContentType::Form)
        .body(form(&fields))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    drop(response);
    let private = browser.get("/private").dispatch();
    assert_eq!(private.status(), Status::Ok);
    assert!(private.into_string().unwrap().contains("nina"));

    let nina = app.user("nina").expect("the account exists");
    assert_eq!(nina.email, "nina@example.com");
    assert_eq!(nina.role(), Role::Admin);
    assert!(nina.email_verified_at.is_some(), "the address is verified");
    assert!(app.user("mallory@example.com").is_none());
    assert_eq!(audit_events(&app, "invitation_created").len(), 1);
    let accepted = audit_events(&app, "invitation_accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].actor.as_deref(), Some("nina"));

    // The link works once.
    let users = app.user_count();
    let other = second_instance(&app);
    let again = accept(&other, &link, "nina2");
    assert_eq!(again.status(), Status::Gone);
    assert!(again
        .into_string()
        .unwrap()
        .contains("This invitation is not valid"));
    assert_eq!(browser.get(link).dispatch().status(), Status::Gone);
    assert_eq!(app.user_count(), users);
}

#[test]
fn withdrawn_replaced_and_expired_invitations_open_nothing() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::Admin);
    let first = link_on_page(
        &invite(&app, "olga@example.com", "user")
            .into_string()
            .unwrap(),
    );
    let second = link_on_page(
        &invite(&app, "OLGA@example.com", "user")
            .into_string()
            .unwrap(),
    );
    let browser = second_instance(&app);
    assert_eq!(
        browser.get(first.clone()).dispatch().status(),
        Status::Gone,
        "replaced"
    );
    assert_eq!(browser.get(second.clone()).dispatch().status(), Status::Ok);

    let list = app
        .client
        .get("/admin/invitations")
        .dispatch()
        .into_string()
        .unwrap();
    assert_eq!(
        list.matches(r#"name="invitation""#).count(),
        1,
        "one open invitation"
    );
    assert!(list.contains("olga@example.com") || list.contains("OLGA@example.com"));
    assert!(list.contains("ada"), "by whom");
    let id = {
        let at = list.find(r#"name="invitation" value=""#).unwrap()
            + r#"name="invitation" value=""#.len();
        list[at..at + list[at..].find('"').unwrap()].to_string()
    };
    let response = app.post_form("/admin/invitations/withdraw", &[("invitation", &id)]);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/admin/invitations");
    drop(response);
    assert_eq!(
        browser.get(second.clone()).dispatch().status(),
        Status::Gone,
        "withdrawn"
    );
    assert_eq!(accept(&browser, &second, "olga").status(), Status::Gone);
    assert!(app.user("olga").is_none());
    assert_eq!(audit_events(&app, "invitation_withdrawn").len(), 1);
    let again = app.post_form("/admin/invitations/withdraw", &[("invitation", &id)]);
    assert_eq!(
        again.status(),
        Status::SeeOther,
        "a second withdrawal is a sentence, not an error"
    );

    let third = link_on_page(
        &invite(&app, "pia@example.com", "user")
            .into_string()
            .unwrap(),
    );
    // The site's clock moves on (the second instance keeps its own clock: ask this one).
    app.logout();
    assert_eq!(
        app.client.get(third.clone()).dispatch().status(),
        Status::Ok
    );
    app.clock()
        .advance(time::Duration::days(7) + time::Duration::minutes(1));
    assert_eq!(
        app.client.get(third.clone()).dispatch().status(),
        Status::Gone,
        "expired"
    );
    assert_eq!(accept(&app.client, &third, "pia").status(), Status::Gone);
    assert!(app.user("pia").is_none());
    let garbage = browser.get("/invite/not-a-token").dispatch();
    assert_eq!(garbage.status(), Status::Gone);
}

#[test]
fn an_address_with_an_account_is_not_invited_and_a_taken_username_keeps_the_invitation() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::Admin);
    app.create_user("bob", Role::User);
    let (before_tokens, before_mail) = (tokens(&app), outbox_count(&app));
    let response = invite(&app, "Bob@Example.com", "user");
    assert_eq!(response.status(), Status::Conflict);
    assert!(response
        .into_string()
        .unwrap()
        .contains("That address already has an account"));
    assert_eq!(tokens(&app), before_tokens, "no invitation");
    assert_eq!(outbox_count(&app), before_mail, "no mail");
    let bad = invite(&app, "not-an-address", "user");
    assert_eq!(bad.status(), Status::UnprocessableEntity);
    let bad = invite(&app, "carl@example.com", "owner");
    assert_eq!(bad.status(), Status::UnprocessableEntity);
    assert!(bad.into_string().unwrap().contains("Choose the role"));
    assert_eq!(tokens(&app), before_tokens);

    let link = link_on_page(
        &invite(&app, "carl@example.com", "user")
            .into_string()
            .unwrap(),
    );
    let browser = second_instance(&app);
    let taken = accept(&browser, &link, "BOB");
    assert_eq!(taken.status(), Status::UnprocessableEntity);
    assert!(taken
        .into_string()
        .unwrap()
        .contains("That username is already taken"));
    let weak = post_on(
        &browser,
        &link,
        &[
            ("username", "carl"),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    );
    assert_eq!(weak.status(), Status::UnprocessableEntity);
    assert!(app.user("carl").is_none());
    let ok = accept(&browser, &link, "carl");
    assert_eq!(ok.status(), Status::SeeOther, "the invitation was kept");
    assert_eq!(app.user("carl").unwrap().role(), Role::User);
}

fn outbox_count(app: &TestApp) -> usize {
    OutboxMail::recent(&mut app.pool().get().unwrap(), 1000, 0)
        .unwrap()
        .len()
}

#[test]
fn only_admins_with_a_fresh_proof_invite() {
    let app = spawn_app();
    app.sign_in_as("uma", Role::User);
    assert_eq!(
        app.client.get("/admin/invitations").dispatch().status(),
        Status::Forbidden
    );
    assert_eq!(
        invite(&app, "x@example.com", "admin").status(),
        Status::Forbidden
    );
    app.logout();
    let anonymous = app.client.get("/admin/invitations").dispatch();
    assert_eq!(anonymous.status(), Status::SeeOther, "to sign-in");
    drop(anonymous);

    app.sign_in_as("ada", Role::Admin);
    for _ in 0..11 {
        app.clock().advance(time::Duration::minutes(1));
        assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    }
    let before = tokens(&app);
    let stale = invite(&app, "x@example.com", "admin");
    assert_eq!(stale.status(), Status::SeeOther);
    assert!(
        location(&stale).starts_with("/confirm"),
        "{}",
        location(&stale)
    );
    drop(stale);
    assert_eq!(tokens(&app), before, "nothing made without a fresh proof");
    assert!(audit_events(&app, "invitation_created").is_empty());
}

#[test]
fn invite_only_refuses_sign_up_without_an_invitation_and_accepts_with_one() {
    let open = spawn_app();
    for page in ["/", "/login"] {
        let html = open.client.get(page).dispatch().into_string().unwrap();
        assert!(
            html.contains(r#"href="/signup""#),
            "open mode advertises sign-up on {page}"
        );
    }

    let app = spawn_app_with(|f| f.merge(("signup_mode", "invite_only")));
    let page = app.client.get("/signup").dispatch();
    assert_eq!(page.status(), Status::Ok);
    let html = page.into_string().unwrap();
    assert!(html.contains("Sign-up is by invitation only"));
    assert!(!html.contains(r#"name="password""#), "no form");
    for page in ["/", "/login"] {
        let html = app.client.get(page).dispatch().into_string().unwrap();
        assert!(
            !html.contains(r#"href="/signup""#),
            "no sign-up link on {page}"
        );
    }
    let users = app.user_count();
    let response = app.signup("eve", "eve@example.com", PASSWORD);
    assert_eq!(response.status(), Status::Forbidden);
    assert!(response
        .into_string()
        .unwrap()
        .contains("Sign-up is by invitation only"));
    assert_eq!(app.user_count(), users, "nothing created");
    assert!(app.user("eve").is_none());

    app.sign_in_as("ada", Role::Admin);
    let link = link_on_page(
        &invite(&app, "eve@example.com", "user")
            .into_string()
            .unwrap(),
    );
    let browser = second_instance(&app);
    let response = accept(&browser, &link, "eve");
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    assert!(app.user("eve").is_some());
}

/// Runs the built `latchkey` binary against `app`'s database and keys.
fn latchkey(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", app.db.url())
        .env("LATCHKEY_JWT_SECRET", SECRET)
        .env("LATCHKEY_PUBLIC_ORIGIN", "https://id.example.com")
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run latchkey")
}

#[test]
fn latchkey_invite_prints_the_link_and_a_running_instance_mails_it() {
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f);
    app.create_user("bob", Role::User);

    let out = latchkey(
        &app,
        &["invite", "--email", "quinn@example.com", "--role", "admin"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = stdout
        .split_whitespace()
        .find(|w| w.starts_with("https://id.example.com/invite/"))
        .expect("the link is printed")
        .to_string();
    let mail = server.wait_for("quinn@example.com", 1, Duration::from_secs(20));
    assert_eq!(mail[0].subject(), "You are invited to latchkey");
    assert!(mail[0].text().contains(&printed), "{}", mail[0].text());
    assert_eq!(audit_events(&app, "invitation_created").len(), 1);

    let link = printed
        .trim_start_matches("https://id.example.com")
        .to_string();
    let browser = second_instance(&app);
    assert_eq!(accept(&browser, &link, "quinn").status(), Status::SeeOther);
    assert_eq!(app.user("quinn").unwrap().role(), Role::Admin);

    for (args, says) in [
        (
            vec!["invite", "--email", "bob@example.com"],
            "already has an account",
        ),
        (vec!["invite", "--email", "nonsense"], "email"),
        (
            vec!["invite", "--email", "r@example.com", "--role", "owner"],
            "use user or admin",
        ),
    ] {
        let out = latchkey(&app, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn the_invitation_form_refuses_origin_null_even_from_the_same_site() {
    let app = spawn_app();
    app.sign_in_as("ada", Role::Admin);
    let link = link_on_page(
        &invite(&app, "rita@example.com", "user")
            .into_string()
            .unwrap(),
    );
    app.logout();
    let post = |site: Option<&str>, name: &str| {
        let token = app.csrf_token();
        let fields = [
            ("username", name),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
            ("csrf_token", token.as_str()),
        ];
        let mut request = app
            .client
            .post(link.clone())
            .header(ContentType::Form)
            .header(rocket::http::Header::new("Origin", "null"))
            .body(form(&fields));
        if let Some(site) = site {
            request = request.header(rocket::http::Header::new(
                "Sec-Fetch-Site",
                site.to_string(),
            ));
        }
        request.dispatch().status()
    };
    assert_eq!(
        post(None, "rita"),
        Status::Forbidden,
        "null alone is not this site"
    );
    assert_eq!(post(Some("cross-site"), "rita"), Status::Forbidden);
    // The page sends `Referrer-Policy: strict-origin`, so a browser posts its form with its real
    // origin: `Origin: null` is never this site's, whatever else the request says.
    assert_eq!(post(Some("same-origin"), "rita"), Status::Forbidden);
    assert!(app.user("rita").is_none());
}
