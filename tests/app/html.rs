//! Every page of the site, rendered in each state people see it in: signed out, signed in, with
//! two-factor sign-in on, as an admin, with form errors, and the error pages. Each must be a whole
//! document in the site's layout with the expected status. With `LATCHKEY_HTML_DIR` set, each
//! page is also saved there as `<name>.html`, for the Nu Html Checker (`tests/html/run.sh`).

use latchkey::auth::two_factor::code_at;
use latchkey::models::Role;
use rocket::http::{ContentType, Method, Status};
use rocket::local::blocking::LocalResponse;

use crate::helpers::*;

/// The pages collected so far.
#[derive(Default)]
struct Pages(Vec<(String, String)>);

impl Pages {
    fn keep(&mut self, name: &str, expected: Status, response: LocalResponse<'_>) -> String {
        assert_eq!(response.status(), expected, "{name}");
        assert_eq!(response.content_type(), Some(ContentType::HTML), "{name}");
        let html = response.into_string().unwrap();
        assert!(
            html.starts_with("<!DOCTYPE html>"),
            "{name}: a whole document"
        );
        assert!(
            html.contains("/static/css/app.css"),
            "{name}: the site layout"
        );
        assert!(
            !self.0.iter().any(|(n, _)| n == name),
            "{name}: one page per name"
        );
        self.0.push((name.to_string(), html.clone()));
        html
    }

    fn get(&mut self, app: &TestApp, name: &str, uri: &str) -> String {
        self.keep(name, Status::Ok, app.client.get(uri.to_string()).dispatch())
    }

    fn save(self) {
        let Some(dir) = std::env::var_os("LATCHKEY_HTML_DIR") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, html) in self.0 {
            std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
        }
    }
}

#[test]
fn every_page_renders_in_the_layout() {
    let app = spawn_app();
    let mut pages = Pages::default();

    // Signed out.
    pages.get(&app, "home-signed-out", "/");
    pages.get(&app, "signup", "/signup");
    pages.get(&app, "login", "/login?next=/account");
    let bad_signup = app.post_form(
        "/signup",
        &[
            ("username", "x"),
            ("email", "not-an-email"),
            ("password", "short"),
            ("password_confirm", "other"),
        ],
    );
    pages.keep("signup-errors", Status::UnprocessableEntity, bad_signup);
    app.create_user("carol", Role::User);
    let wrong = app.login("carol", "not-the-password");
    pages.keep("login-error", Status::UnprocessableEntity, wrong);
    pages.keep(
        "not-found",
        Status::NotFound,
        app.client.get("/no/such/page").dispatch(),
    );
    pages.keep(
        "method-not-allowed",
        Status::MethodNotAllowed,
        app.client.req(Method::Put, "/login").dispatch(),
    );
    pages.keep(
        "csrf-refused",
        Status::Forbidden,
        app.post_raw("/login", &[("username", "carol"), ("password", "x")]),
    );
    for _ in 0..5 {
        app.login("carol", "not-the-password");
    }
    pages.keep(
        "login-locked",
        Status::TooManyRequests,
        app.login("carol", "not-the-password"),
    );

    // Signed in: the account pages, and two-factor sign-in from set-up to use.
    let user = app.sign_in_as("ada", Role::User);
    pages.get(&app, "home-signed-in", "/");
    pages.get(&app, "private", "/private");
    pages.get(&app, "account", "/account");
    let bad_password = app.post_form(
        "/account/password",
        &[
            ("current_password", "wrong"),
            ("new_password", "short"),
            ("new_password_confirm", "other"),
        ],
    );
    pages.keep(
        "account-password-errors",
        Status::UnprocessableEntity,
        bad_password,
    );
    pages.get(&app, "sessions", "/account/sessions");
    pages.get(&app, "confirm-password", "/confirm?next=/account/api-keys");
    let wrong_proof = app.post_form(
        "/confirm?next=/account/api-keys",
        &[("password", "not-the-password")],
    );
    pages.keep("confirm-errors", Status::UnprocessableEntity, wrong_proof);
    pages.keep(
        "forbidden-admin",
        Status::Forbidden,
        app.client.get("/admin").dispatch(),
    );
    pages.get(&app, "api-keys-none", "/account/api-keys");
    let bad_key = app.post_form(
        "/account/api-keys",
        &[("name", ""), ("scope", "root"), ("expires_in_days", "9999")],
    );
    pages.keep("api-keys-errors", Status::UnprocessableEntity, bad_key);
    let new_key = app.post_form(
        "/account/api-keys",
        &[
            ("name", "backup"),
            ("scope", "read"),
            ("expires_in_days", "30"),
        ],
    );
    pages.keep("api-key-new", Status::Ok, new_key);
    app.post_form(
        "/account/api-keys",
        &[
            ("name", "deploy"),
            ("scope", "full"),
            ("expires_in_days", ""),
        ],
    );
    pages.get(&app, "api-keys-list", "/account/api-keys");
    pages.get(&app, "passkeys-none", "/account/passkeys");
    let unnamed = app.post_form("/account/passkeys", &[("name", " ")]);
    pages.keep("passkeys-errors", Status::UnprocessableEntity, unnamed);

    pages.get(&app, "two-factor-off", "/account/two-factor");
    let setup = app.post_form("/account/two-factor/setup", &[]);
    assert_eq!(setup.status(), Status::SeeOther);
    pages.get(&app, "two-factor-setup", "/account/two-factor");
    let wrong_code = app.post_form(
        "/account/two-factor/enable",
        &[("code", "000000"), ("password", PASSWORD)],
    );
    pages.keep(
        "two-factor-setup-error",
        Status::UnprocessableEntity,
        wrong_code,
    );
    let secret = app.two_factor_secret(&user);
    let code = code_at(&secret, app.clock().now()).unwrap();
    let enabled = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code), ("password", PASSWORD)],
    );
    pages.keep("two-factor-recovery-codes", Status::Ok, enabled);
    pages.get(&app, "two-factor-on", "/account/two-factor");

    // The code step of a sign-in.
    app.logout();
    let step = app.post_form("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(step.status(), Status::SeeOther);
    let step = location(&step);
    pages.get(&app, "login-two-factor", &step);
    let wrong_code = app.post_form(&step, &[("code", "000000")]);
    pages.keep(
        "login-two-factor-error",
        Status::UnprocessableEntity,
        wrong_code,
    );

    // An admin.
    app.logout();
    let boss = app.sign_in_as("boss", Role::Admin);
    pages.get(&app, "admin-users", "/admin");
    pages.get(&app, "admin-users-search-empty", "/admin?q=nobody-at-all");
    pages.get(&app, "admin-user", &format!("/admin/users/{}", user.id));
    pages.get(
        &app,
        "admin-user-self",
        &format!("/admin/users/{}", boss.id),
    );
    pages.get(&app, "admin-audit", "/admin/audit");
    pages.get(&app, "admin-security", "/admin/security");
    pages.get(&app, "confirm-code", "/confirm?next=/admin");
    pages.get(
        &app,
        "admin-audit-filtered",
        "/admin/audit?kind=login_failed&page=1",
    );
    pages.keep(
        "admin-user-not-found",
        Status::NotFound,
        app.client.get("/admin/users/no-such-user").dispatch(),
    );

    pages.get(&app, "admin-invitations-empty", "/admin/invitations");
    let made = app.post_form(
        "/admin/invitations",
        &[("email", "invited@example.com"), ("role", "user")],
    );
    let made = pages.keep("admin-invitation-made", Status::Ok, made);
    let refused = app.post_form(
        "/admin/invitations",
        &[("email", "ada@example.com"), ("role", "user")],
    );
    pages.keep("admin-invitation-refused", Status::Conflict, refused);
    pages.get(&app, "admin-invitations", "/admin/invitations");
    pages.get(&app, "admin-mail", "/admin/mail");

    // An invitation's pages, signed out.
    let link = {
        let made = made.replace("&#x2F;", "/");
        let at = made.find("/invite/").expect("the link");
        made[at..at + made[at..].find('"').unwrap()].to_string()
    };
    app.logout();
    pages.get(&app, "invite", &link);
    let weak = app.post_form(
        &link,
        &[
            ("username", "x"),
            ("password", "short"),
            ("password_confirm", ""),
        ],
    );
    pages.keep("invite-errors", Status::UnprocessableEntity, weak);
    pages.keep(
        "invite-gone",
        Status::Gone,
        app.client.get("/invite/no-such-invitation").dispatch(),
    );
    let invite_only = spawn_app_with(|f| f.merge(("signup_mode", "invite_only")));
    pages.get(&invite_only, "signup-invite-only", "/signup");
    pages.get(&invite_only, "home-invite-only", "/");
    pages.get(&invite_only, "login-invite-only", "/login");

    assert!(pages.0.len() >= 30, "{} pages", pages.0.len());
    pages.save();
}

/// The pages of addresses (verification, change, undo), for the same checker.
#[test]
fn the_address_pages_render_in_the_layout() {
    use crate::smtp::{MailServer, Options};
    let wait = std::time::Duration::from_secs(15);
    let server = MailServer::start(Options::plain());
    let app = spawn_app_mailing_to(&server, |f| f.merge(("email_verification", "required")));
    let mut pages = Pages::default();

    let signup = app.signup("vic", "vic@example.com", PASSWORD);
    pages.keep("email-check-your-email", Status::Ok, signup);
    pages.keep(
        "email-link-refused",
        Status::BadRequest,
        app.client.get("/email/verify/not-a-token").dispatch(),
    );
    app.login("vic", PASSWORD);
    pages.get(&app, "email-confirm-your-address", "/account/verify-email");
    let link = server.wait_for("vic@example.com", 1, wait)[0].link("/email/verify/");
    app.get(&link);
    pages.get(&app, "account-verified", "/account");
    pages.get(&app, "email-change", "/account/email");
    let bad = app.post_form("/account/email", &[("email", "vic@example.com")]);
    pages.keep("email-change-errors", Status::UnprocessableEntity, bad);
    app.post_form("/account/email", &[("email", "vic.new@example.org")]);
    let link = server.wait_for("vic.new@example.org", 1, wait)[0].link("/email/change/");
    app.get(&link);
    let notice = server.wait_for("vic@example.com", 2, wait);
    let undo = notice
        .iter()
        .find(|m| m.subject() == "Your latchkey address was changed")
        .expect("the notice")
        .link("/email/undo/");
    pages.get(&app, "email-undo", &undo);
    let done = app.post_form(&undo, &[]);
    pages.keep("email-undone", Status::Ok, done);
    pages.save();
}
