//! "Forgot your password?" over a real SMTP server: the same bytes for every name, the mailed
//! link (single use, 30 minutes, voided by a newer one and by a password change), the reset
//! keeping two-factor, ending every session and revoking API keys, the limits; and the links an
//! admin makes (the panel, `latchkey reset-link`).

use std::time::Duration as StdDuration;

use latchkey::models::{Role, User};
use rocket::http::{ContentType, Status};
use rocket::local::blocking::Client;
use serde_json::json;
use time::Duration;

use crate::helpers::*;
use crate::smtp::{MailServer, Options, Received};

const NEW_PASSWORD: &str = "fresh-Meadow-compass-58";
const WAIT: StdDuration = StdDuration::from_secs(15);

/// What a response is, byte for byte: status, headers and body.
type Answer = (Status, Vec<String>, String);

fn forgot(app: &TestApp, name: &str) -> Answer {
    let csrf = app.csrf_token();
    let response = app
        .client
        .post("/password/forgot")
        .header(ContentType::Form)
        .remote("203.0.113.9:50000".parse().unwrap())
        .body(form(&[("username", name), ("csrf_token", &csrf)]))
        .dispatch();
    let status = response.status();
    let mut headers: Vec<String> = response
        .headers()
        .iter()
        .map(|h| format!("{}: {}", h.name(), h.value()))
        .collect();
    headers.sort();
    (status, headers, response.into_string().unwrap_or_default())
}

fn spawn() -> (MailServer, TestApp) {
    let server = MailServer::start(Options::plain());
    // Only the notice these tests look for: the others (a new API key, …) would shift the
    // count of mails each test expects.
    let app = spawn_app_mailing_to(&server, |f| {
        f.merge(("mail_notices", vec!["password_changed"]))
    });
    (server, app)
}

/// The path of the reset link in the `n`-th mail (1-based) to `name`.
fn reset_link(server: &MailServer, name: &str, n: usize) -> String {
    let mail = server.wait_for(&format!("{name}@example.com"), n, WAIT);
    let mail = &mail[n - 1];
    assert_eq!(mail.subject(), "Reset your latchkey password");
    mail.link("/password/reset/")
}

fn mails_to(server: &MailServer, name: &str) -> Vec<Received> {
    let to = format!("{name}@example.com");
    server
        .messages()
        .into_iter()
        .filter(|m| m.to().iter().any(|t| t == &to))
        .collect()
}

/// Sets `password` through the link on `client` (fields as the page has them).
fn reset_on<'c>(
    client: &'c Client,
    link: &str,
    password: &str,
    code: Option<&str>,
) -> rocket::local::blocking::LocalResponse<'c> {
    let csrf = csrf_token_of(client);
    let mut fields = vec![
        ("password", password),
        ("password_confirm", password),
        ("csrf_token", csrf.as_str()),
    ];
    if let Some(code) = code {
        fields.push(("code", code));
    }
    client
        .post(link.to_string())
        .header(ContentType::Form)
        .body(form(&fields))
        .dispatch()
}

fn reset(app: &TestApp, link: &str, code: Option<&str>) -> (Status, String, String) {
    let response = reset_on(&app.client, link, NEW_PASSWORD, code);
    let status = response.status();
    let to = location(&response);
    (status, to, response.into_string().unwrap_or_default())
}

fn assert_invalid(app: &TestApp, link: &str) {
    let response = app.client.get(link.to_string()).dispatch();
    assert_eq!(response.status(), Status::BadRequest, "{link}");
    assert_eq!(
        response.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    let html = response.into_string().unwrap();
    assert!(html.contains("This link no longer works"), "{html}");
    assert!(html.contains(r#"href="/password/forgot""#));
}

fn disable(app: &TestApp, user: &User) {
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    use latchkey::db::schema::users;
    diesel::update(users::table.filter(users::id.eq(&user.id)))
        .set(users::disabled.eq(true))
        .execute(&mut *app.pool().get().unwrap())
        .unwrap();
}

fn signs_in(name: &str, password: &str, app: &TestApp) -> bool {
    let client = second_instance(app);
    let status = login_with(&client, name, password).status();
    status == Status::SeeOther
}

#[test]
fn the_sign_in_page_links_to_the_request_form_and_back() {
    let app = spawn_app();
    let login = app.client.get("/login").dispatch().into_string().unwrap();
    assert!(login.contains(r#"<a href="/password/forgot">Forgot your password?</a>"#));
    let page = app.client.get("/password/forgot").dispatch();
    assert_eq!(page.status(), Status::Ok);
    let html = page.into_string().unwrap();
    assert!(html.contains(r#"autocomplete="username""#), "{html}");
    assert!(html.contains("Username or email"));
    assert!(html.contains(r#"href="/login""#));
    let empty = app.post_form("/password/forgot", &[("username", "  ")]);
    assert_eq!(empty.status(), Status::UnprocessableEntity);
    assert!(empty
        .into_string()
        .unwrap()
        .contains("Enter your username or email."));
}

#[test]
fn unknown_disabled_and_known_names_get_the_same_bytes_and_only_the_known_one_gets_mail() {
    let (server, app) = spawn();
    let alice = app.create_user("alice", Role::User);
    let dora = app.create_user("dora", Role::User);
    disable(&app, &dora);

    let unknown = forgot(&app, "nobody-here");
    let disabled = forgot(&app, "dora");
    let known = forgot(&app, "alice");
    let by_address = forgot(&app, "ALICE@example.com");
    assert_eq!(known.0, Status::Ok);
    assert!(known.2.contains("Check your email"), "{}", known.2);
    assert!(
        !known.2.contains("alice"),
        "the answer does not echo the name"
    );
    assert_eq!(unknown, known, "unknown vs known");
    assert_eq!(disabled, known, "disabled vs known");
    assert_eq!(by_address, known, "by address vs by name");

    server.wait_for("alice@example.com", 2, WAIT);
    let link = reset_link(&server, "alice", 1);
    assert!(link.starts_with("/password/reset/"), "{link}");
    let mail = &mails_to(&server, "alice")[0];
    assert!(mail.text().contains("Hello alice,"), "{}", mail.text());
    assert!(mail.text().contains("for 30 minutes"), "{}", mail.text());
    assert!(mail.text().contains("If this wasn't you, ignore this mail"));
    assert!(
        mail.text().contains("from the address 203.0.113.9"),
        "the requesting IP"
    );
    let token = link.trim_start_matches("/password/reset/");
    assert!(mail.html().contains(token), "{}", mail.html());
    std::thread::sleep(StdDuration::from_millis(500));
    assert_eq!(server.messages().len(), 2, "no mail for dora or nobody");
    assert!(mails_to(&server, "dora").is_empty());

    let requested = audit_events(&app, "password_reset_requested");
    assert_eq!(
        requested.len(),
        3,
        "alice twice, dora once; unknown names only logged"
    );
    assert!(requested
        .iter()
        .all(|e| e.subject_id.as_deref() != Some("nobody-here")));
    assert!(requested
        .iter()
        .any(|e| e.subject_id.as_deref() == Some(alice.id.as_str())
            && e.detail.as_deref() == Some("link mailed")));
    assert!(requested
        .iter()
        .any(|e| e.subject.as_deref() == Some("dora")
            && e.detail.as_deref().unwrap().contains("disabled")));
}

#[test]
fn the_mailed_link_resets_the_password_ends_sessions_revokes_keys_and_signs_in() {
    let (server, app) = spawn();
    app.sign_in_as("alice", Role::User);
    let key = {
        let response = app.post_form(
            "/account/api-keys",
            &[
                ("name", "backup"),
                ("scope", "full"),
                ("expires_in_days", ""),
            ],
        );
        assert_eq!(response.status(), Status::Ok);
        let html = response.into_string().unwrap();
        let marker = "id=\"new-key-value\">";
        let at = html.find(marker).unwrap() + marker.len();
        html[at..at + html[at..].find('<').unwrap()].to_string()
    };
    let exchange = |client: &Client| {
        client
            .post("/api/token")
            .header(ContentType::JSON)
            .body(json!({ "api_key": key }).to_string())
            .dispatch()
            .status()
    };
    assert_eq!(exchange(&app.client), Status::Ok);
    let old_session = app.session_cookie().unwrap().value().to_string();
    app.logout();
    let elsewhere = second_instance(&app);
    let other_session = login_on(&elsewhere, "alice", None);

    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    let page = app.client.get(link.clone()).dispatch();
    assert_eq!(page.status(), Status::Ok);
    assert_eq!(
        page.headers().get_one("Referrer-Policy"),
        Some("strict-origin")
    );
    assert_eq!(page.headers().get_one("Cache-Control"), Some("no-store"));
    let html = page.into_string().unwrap();
    assert!(html.contains(r#"autocomplete="new-password""#));
    assert!(
        !html.contains(r#"name="code""#),
        "no two-factor, no code field"
    );
    assert!(html.contains(&format!(r#"action="{link}""#)));

    // A weak password changes nothing and keeps the link.
    let weak = reset_on(&app.client, &link, "password1234", None);
    assert_eq!(weak.status(), Status::UnprocessableEntity);
    drop(weak);

    let (status, to, _) = reset(&app, &link, None);
    assert_eq!(status, Status::SeeOther);
    assert_eq!(to, "/private");
    assert_eq!(app.client.get("/private").dispatch().status(), Status::Ok);
    let claims = claims_of(app.session_cookie().unwrap().value());
    assert_eq!(claims["sub"], app.user("alice").unwrap().id.as_str());

    // Every other way in is gone: old sessions (on both instances) and the API key.
    for token in [&old_session, &other_session] {
        assert!(
            time_until_refused(&elsewhere, "/private", token, StdDuration::from_secs(3)).is_some(),
            "an old session is refused"
        );
    }
    assert_eq!(exchange(&elsewhere), Status::Unauthorized);
    assert!(!signs_in("alice", PASSWORD, &app), "old password refused");
    assert!(signs_in("alice", NEW_PASSWORD, &app), "new password works");

    let notice = server.wait_for("alice@example.com", 2, WAIT);
    assert_eq!(notice[1].subject(), "Your latchkey password was reset");
    assert_eq!(audit_events(&app, "password_reset").len(), 1);
    assert_eq!(
        audit_events(&app, "password_reset")[0].detail.as_deref(),
        Some("mailed link")
    );

    // Used once: both the page and the form refuse it now.
    assert_invalid(&app, &link);
    let (status, _, html) = reset(&app, &link, None);
    assert_eq!(status, Status::BadRequest);
    assert!(html.contains("This link no longer works"));
}

#[test]
fn an_expired_link_is_refused() {
    let (server, app) = spawn();
    app.create_user("alice", Role::User);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    app.clock().advance(Duration::minutes(29));
    assert_eq!(app.client.get(link.clone()).dispatch().status(), Status::Ok);
    app.clock().advance(Duration::minutes(2));
    assert_invalid(&app, &link);
    assert_eq!(reset(&app, &link, None).0, Status::BadRequest);
    assert!(signs_in("alice", PASSWORD, &app), "nothing changed");
}

#[test]
fn a_newer_request_voids_the_older_link() {
    let (server, app) = spawn();
    app.create_user("alice", Role::User);
    forgot(&app, "alice");
    let first = reset_link(&server, "alice", 1);
    forgot(&app, "alice");
    let second = reset_link(&server, "alice", 2);
    assert_ne!(first, second);
    assert_invalid(&app, &first);
    assert_eq!(reset(&app, &second, None).0, Status::SeeOther);
}

#[test]
fn a_password_change_voids_an_outstanding_link() {
    let (server, app) = spawn();
    app.sign_in_as("alice", Role::User);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    let response = app.post_form(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_confirm", NEW_PASSWORD),
        ],
    );
    assert_eq!(response.status(), Status::SeeOther);
    drop(response);
    assert_invalid(&app, &link);
}

#[test]
fn a_disabled_accounts_link_is_refused() {
    let (server, app) = spawn();
    let alice = app.create_user("alice", Role::User);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    disable(&app, &alice);
    assert_invalid(&app, &link);
    assert_eq!(reset(&app, &link, None).0, Status::BadRequest);
}

#[test]
fn the_reset_keeps_two_factor_an_app_code_works() {
    let (server, app) = spawn();
    let alice = app.create_user("alice", Role::User);
    let (secret, _) = app.enable_two_factor(&alice);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    let html = app
        .client
        .get(link.clone())
        .dispatch()
        .into_string()
        .unwrap();
    assert!(html.contains(r#"name="code""#) && html.contains(r#"autocomplete="one-time-code""#));

    let (status, _, html) = reset(&app, &link, None);
    assert_eq!(status, Status::UnprocessableEntity, "no code, no reset");
    assert!(html.contains("Enter the 6-digit code"), "{html}");
    let (status, _, html) = reset(&app, &link, Some("000000"));
    assert_eq!(
        status,
        Status::UnprocessableEntity,
        "a wrong code, no reset"
    );
    assert!(html.contains("That code is not right"), "{html}");
    assert_eq!(
        app.client.get(link.clone()).dispatch().status(),
        Status::Ok,
        "the link still works"
    );
    assert!(signs_in("alice", PASSWORD, &app), "nothing changed");

    app.clock().advance(Duration::seconds(30));
    let code = latchkey::auth::two_factor::code_at(&secret, app.clock().now()).unwrap();
    let (status, to, _) = reset(&app, &link, Some(&code));
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/private"));
    let claims = claims_of(app.session_cookie().unwrap().value());
    assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{claims}");
}

#[test]
fn the_reset_keeps_two_factor_a_recovery_code_works_once() {
    let (server, app) = spawn();
    let alice = app.create_user("alice", Role::User);
    let (_, codes) = app.enable_two_factor(&alice);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    let (status, to, _) = reset(&app, &link, Some(&codes[0]));
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/private"));
    assert!(!audit_events(&app, "recovery_code_used").is_empty());

    app.logout();
    server.wait_for("alice@example.com", 2, WAIT);
    forgot(&app, "alice");
    let again = reset_link(&server, "alice", 3);
    let (status, _, html) = reset(&app, &again, Some(&codes[0]));
    assert_eq!(status, Status::UnprocessableEntity, "a used recovery code");
    assert!(html.contains("That code is not right"));
}

#[test]
fn wrong_codes_on_the_reset_page_are_limited() {
    let (server, app) = spawn();
    let alice = app.create_user("alice", Role::User);
    let (secret, _) = app.enable_two_factor(&alice);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    for n in 1..=4 {
        let (status, _, _) = reset(&app, &link, Some("123456"));
        assert_eq!(status, Status::UnprocessableEntity, "wrong code {n}");
    }
    // The fifth wrong code locks the reset page for this account, right codes included.
    assert_eq!(
        reset(&app, &link, Some("123456")).0,
        Status::TooManyRequests
    );
    app.clock().advance(Duration::seconds(30));
    let code = latchkey::auth::two_factor::code_at(&secret, app.clock().now()).unwrap();
    let (status, _, html) = reset(&app, &link, Some(&code));
    assert_eq!(status, Status::TooManyRequests);
    assert!(html.contains("Too many wrong codes"), "{html}");
    // After the lock, the right code works (and the link was kept all along).
    app.clock().advance(Duration::minutes(2));
    let code = latchkey::auth::two_factor::code_at(&secret, app.clock().now()).unwrap();
    assert_eq!(reset(&app, &link, Some(&code)).0, Status::SeeOther);
}

#[test]
fn requests_are_limited_per_address_and_mails_per_account() {
    let (server, app) = spawn();
    app.create_user("alice", Role::User);
    let first = forgot(&app, "alice");
    for _ in 0..3 {
        assert_eq!(forgot(&app, "alice"), first, "the same public answer");
    }
    server.wait_for("alice@example.com", 3, WAIT);
    std::thread::sleep(StdDuration::from_millis(700));
    assert_eq!(
        mails_to(&server, "alice").len(),
        3,
        "no fourth mail within the hour"
    );
    let capped = audit_events(&app, "password_reset_requested");
    assert!(capped
        .iter()
        .any(|e| e.detail.as_deref().unwrap().starts_with("no mail: 3")));

    // The fifth request from this address in a minute is fine, the sixth is not.
    assert_eq!(forgot(&app, "nobody").0, Status::Ok);
    let (status, headers, html) = forgot(&app, "alice");
    assert_eq!(status, Status::TooManyRequests);
    assert!(headers.iter().any(|h| h.starts_with("Retry-After: ")));
    assert!(html.contains("Too many attempts from your network"));

    // An hour on, alice can be mailed again.
    app.clock().advance(Duration::minutes(61));
    forgot(&app, "alice");
    server.wait_for("alice@example.com", 4, WAIT);
}

#[test]
fn forged_and_garbage_tokens_get_the_invalid_link_page() {
    let app = spawn_app();
    let long = "a".repeat(5000);
    let paths = [
        "/password/reset/".to_string(),
        "/password/reset/garbage".to_string(),
        format!("/password/reset/{long}"),
        "/password/reset/../../etc/passwd".to_string(),
        "/password/reset/%2E%2E%2F%2E%2E".to_string(),
        "/password/reset/%E2%80%AE%F0%9F%91%A9%E2%80%8D%F0%9F%92%BB".to_string(),
        "/password/reset/a%2Fb/c".to_string(),
        "/password/reset/%00".to_string(),
        "/password/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
    ];
    for path in &paths {
        assert_invalid(&app, path);
        let (status, _, html) = reset(&app, path, None);
        assert_eq!(status, Status::BadRequest, "POST {path}");
        assert!(html.contains("This link no longer works"));
    }
}

/// The link on the admin's reset-link page.
fn link_on(html: &str) -> String {
    let marker = r#"id="reset-link" type="text" value=""#;
    let at = html.find(marker).expect("the link is shown") + marker.len();
    // Tera escapes the slashes of attribute values.
    let url = html[at..at + html[at..].find('"').unwrap()].replace("&#x2F;", "/");
    let path = url.find("/password/reset/").expect("a reset link");
    url[path..].to_string()
}

#[test]
fn an_admin_makes_a_one_time_link_shown_once_that_works_for_24_hours() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let tess = app.create_user("tess", Role::User);
    let user_page = app
        .client
        .get(format!("/admin/users/{}", tess.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(user_page.contains("Create a password reset link"));

    let response = app.post_form(&format!("/admin/users/{}/reset-link", tess.id), &[]);
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
    let html = response.into_string().unwrap();
    assert!(html.contains("readonly"));
    let first = link_on(&html);
    let again = app
        .client
        .get(format!("/admin/users/{}", tess.id))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(!again.contains(&first), "shown once");
    let created = audit_events(&app, "reset_link_created");
    assert_eq!(created[0].actor.as_deref(), Some("boss"));
    assert_eq!(created[0].subject.as_deref(), Some("tess"));

    // A newer link voids it; the newer one works for 24 hours on another browser.
    let second = link_on(
        &app.post_form(&format!("/admin/users/{}/reset-link", tess.id), &[])
            .into_string()
            .unwrap(),
    );
    assert_invalid(&app, &first);
    app.clock().advance(Duration::hours(23));
    let browser = second_instance(&app);
    let response = reset_on(&browser, &second, NEW_PASSWORD, None);
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/private");
    drop(response);
    assert!(signs_in("tess", NEW_PASSWORD, &app));
    assert_eq!(
        audit_events(&app, "password_reset")[0].detail.as_deref(),
        Some("link from an administrator")
    );
}

#[test]
fn an_admin_link_expires_after_24_hours_and_needs_a_fresh_proof() {
    let app = spawn_app();
    app.sign_in_as("boss", Role::Admin);
    let tess = app.create_user("tess", Role::User);
    let link = link_on(
        &app.post_form(&format!("/admin/users/{}/reset-link", tess.id), &[])
            .into_string()
            .unwrap(),
    );
    app.clock()
        .advance(Duration::hours(24) + Duration::minutes(1));
    assert_invalid(&app, &link);

    // Sudo mode: eleven minutes after the proof, the admin confirms first.
    app.sign_in_again("boss");
    app.clock().advance(Duration::minutes(11));
    let response = app.post_form(&format!("/admin/users/{}/reset-link", tess.id), &[]);
    assert_eq!(response.status(), Status::SeeOther);
    assert!(
        location(&response).starts_with("/confirm"),
        "{}",
        location(&response)
    );
    drop(response);
    assert_eq!(audit_events(&app, "reset_link_created").len(), 1);
    // Users are not admins.
    let user_app = spawn_app();
    let victim = user_app.create_user("vic", Role::User);
    user_app.sign_in_as("mallory", Role::User);
    let response = user_app.post_form(&format!("/admin/users/{}/reset-link", victim.id), &[]);
    assert_eq!(response.status(), Status::Forbidden);
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    cli_at(app, args, Some("https://id.example.com"))
}

fn cli_at(app: &TestApp, args: &[&str], origin: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", app.db.url())
        .env("LATCHKEY_KEY_FILE", app.dir.path().join("cli-keys.json"))
        .env_remove("LATCHKEY_PUBLIC_ORIGIN")
        .env_remove("ROCKET_PORT")
        .env_remove("LATCHKEY_JWT_SECRET");
    if let Some(origin) = origin {
        command.env("LATCHKEY_PUBLIC_ORIGIN", origin);
    }
    command.output().expect("run latchkey")
}

#[test]
fn the_cli_prints_a_reset_link_that_works() {
    let app = spawn_app();
    app.create_user("tess", Role::User);
    let out = cli(&app, &["reset-link", "--username", "tess"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout.trim();
    assert!(
        url.starts_with("https://id.example.com/password/reset/"),
        "{url}"
    );
    let path = &url["https://id.example.com".len()..];
    let created = audit_events(&app, "reset_link_created");
    assert_eq!(created[0].subject.as_deref(), Some("tess"));
    let (status, to, _) = reset(&app, path, None);
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/private"));
    assert!(signs_in("tess", NEW_PASSWORD, &app));

    let unknown = cli(&app, &["reset-link", "--username", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user is called nobody"));
    assert!(unknown.stdout.is_empty());

    // Without public_origin: this machine and the configured port (Rocket.toml: 8000).
    let out = cli_at(&app, &["reset-link", "--username", "tess"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("http://localhost:8000/password/reset/")
    );
    let dora = app.create_user("dora", Role::User);
    disable(&app, &dora);
    let disabled = cli(&app, &["reset-link", "--username", "dora"]);
    assert!(!disabled.status.success());
    assert!(String::from_utf8_lossy(&disabled.stderr).contains("dora is disabled"));
}

#[test]
fn a_signed_in_visitor_gets_the_same_answer_too() {
    let (_server, app) = spawn();
    app.create_user("alice", Role::User);
    app.sign_in_as("zed", Role::User);
    // The layout shows the CSRF token to a signed-in visitor; it is the same for both names.
    assert_eq!(forgot(&app, "alice"), forgot(&app, "nobody-at-all"));
}

#[test]
fn of_two_requests_racing_with_one_link_only_one_resets() {
    let (server, app) = spawn();
    app.create_user("alice", Role::User);
    forgot(&app, "alice");
    let link = reset_link(&server, "alice", 1);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let racers: Vec<_> = [
        ("first-Harbor-lantern-42", second_instance(&app)),
        ("second-Willow-engine-87", second_instance(&app)),
    ]
    .into_iter()
    .map(|(password, client)| {
        let (barrier, link) = (barrier.clone(), link.clone());
        std::thread::spawn(move || {
            let csrf = csrf_token_of(&client);
            let body = form(&[
                ("password", password),
                ("password_confirm", password),
                ("csrf_token", &csrf),
            ]);
            barrier.wait();
            let status = client
                .post(link)
                .header(ContentType::Form)
                .body(body)
                .dispatch()
                .status();
            (password, status)
        })
    })
    .collect();
    let outcomes: Vec<(&str, Status)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, s)| *s == Status::SeeOther)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().any(|(_, s)| *s == Status::BadRequest));
    assert!(signs_in("alice", winners[0].0, &app));
    assert_eq!(audit_events(&app, "password_reset").len(), 1);
}

#[test]
fn reset_limits_outside_their_range_stop_the_start_with_a_sentence() {
    for (key, value) in [
        ("password_reset_per_account_per_hour", 0),
        ("password_reset_per_ip_per_minute", 0),
    ] {
        let figment = base_figment("unused.db").merge((key, value));
        let refused = latchkey::config::Settings::from_figment(&figment).unwrap_err();
        assert!(refused.to_string().contains(key), "{refused}");
    }
}
