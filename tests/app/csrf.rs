//! CSRF: every POST form needs the session-bound token and a same-origin request; a refusal is a
//! 403 page that says to reload, and nothing changes.

use latchkey::config::Settings;
use latchkey::models::{
    AccountToken, ApiKey, KeyScope, LoginAttempt, Role, Session, TokenFor, TokenPurpose, TwoFactor,
};
use rocket::http::{ContentType, Header, Method, Status};

use crate::helpers::*;

const RELOAD: &str = "Reload the page and try again.";

/// What the forms could change: a signed-in admin ("boss") with a second session and an API key,
/// and a target user with a live session, an API key, two-factor sign-in and a lockout.
struct Targets {
    user_id: String,
    session_id: String,
    key_id: String,
    own_session_id: String,
    own_key_id: String,
    /// A passkey of the target's, and one of the signed-in admin's own.
    passkey_id: String,
    own_passkey_id: String,
    /// A reset link of the target's (an admin's), for the reset form.
    reset_link: String,
    /// An open invitation, for the invitation form.
    invitation: String,
    /// The target's undo link for an address change, for the undo button.
    undo_link: String,
}

fn setup(app: &TestApp) -> Targets {
    let target = app.create_user("target", Role::User);
    let boss = app.create_user("boss", Role::Admin);
    let now = app.clock().db_now();
    let mut conn = app.pool().get().unwrap();
    let session = |user_id: &str| {
        let s = Session::new(user_id, now, time::Duration::hours(1), false, "x", "");
        s.insert(&mut app.pool().get().unwrap()).unwrap();
        s.id
    };
    let key = |user_id: &str| {
        let (k, _) = ApiKey::generate(user_id, "script", KeyScope::Full, now, None);
        k.insert(&mut app.pool().get().unwrap()).unwrap();
        k.id
    };
    let passkey = |user_id: &str| {
        let credential: [u8; 16] = rand::random();
        let p = latchkey::models::Passkey::new(user_id, &credential, "key", "{}".into(), now);
        assert!(p
            .insert_within_limit(&mut app.pool().get().unwrap())
            .unwrap());
        p.id
    };
    let policy = Settings::default().lockout_policy();
    let lock = LoginAttempt::key_for_user(&target.id);
    for _ in 0..policy.threshold {
        LoginAttempt::record_failure(&mut conn, &lock, now, &policy).unwrap();
    }
    drop(conn);
    app.enable_two_factor(&target);
    let about = TokenFor {
        user_id: Some(target.id.clone()),
        ..TokenFor::default()
    };
    let link = AccountToken::issue(
        TokenPurpose::AdminReset,
        about,
        now,
        time::Duration::hours(24),
    );
    AccountToken::insert(&mut app.pool().get().unwrap(), &link).unwrap();
    let invitation =
        latchkey::models::Invitation::issue("newbie@example.com", Role::User, None, now);
    latchkey::models::AccountToken::insert(&mut app.pool().get().unwrap(), &invitation).unwrap();
    let undo = AccountToken::issue(
        TokenPurpose::EmailUndo,
        TokenFor {
            user_id: Some(target.id.clone()),
            email: Some("target.before@example.com".into()),
            ..TokenFor::default()
        },
        now,
        time::Duration::days(7),
    );
    AccountToken::insert(&mut app.pool().get().unwrap(), &undo).unwrap();
    let targets = Targets {
        undo_link: undo.raw,
        reset_link: link.raw,
        invitation: invitation.raw,
        session_id: session(&target.id),
        key_id: key(&target.id),
        own_session_id: session(&boss.id),
        own_key_id: key(&boss.id),
        passkey_id: passkey(&target.id),
        own_passkey_id: passkey(&boss.id),
        user_id: target.id,
    };
    assert_eq!(app.login("boss", PASSWORD).status(), Status::SeeOther);
    targets
}

/// The value for a dynamic segment `<name>` of a route under `/{area}/…`.
fn segment_value<'t>(t: &'t Targets, route: &str, area: &str, name: &str) -> &'t str {
    match (area, name) {
        ("admin", "id") => &t.user_id,
        ("admin", "sid") => &t.session_id,
        ("admin", "key_id") => &t.key_id,
        ("account", "sid") => &t.own_session_id,
        ("account", "id") if route.starts_with("/account/api-keys/") => &t.own_key_id,
        ("account", "id") if route.starts_with("/account/passkeys/") => &t.own_passkey_id,
        ("admin", "passkey_id") => &t.passkey_id,
        ("password", "token..") => &t.reset_link,
        ("invite", "token") => &t.invitation,
        ("email", "token") if route.starts_with("/email/undo/") => &t.undo_link,
        _ => panic!(
            "{route}: no test value for <{name}>. Add one to `segment_value` in tests/app/csrf.rs \
             (something this form would change) so its CSRF check is tested"
        ),
    }
}

/// The fields a form sends, for the forms that have any; the rest are posted empty.
fn fields_of(route: &str) -> Vec<(&'static str, &'static str)> {
    match route {
        "/signup" | "/invite/<token>" => vec![
            ("username", "newbie"),
            ("email", "newbie@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        "/login" => vec![("username", "boss"), ("password", PASSWORD)],
        "/account/password" => vec![
            ("current_password", PASSWORD),
            ("new_password", "other-Lantern-orbit-31"),
            ("new_password_confirm", "other-Lantern-orbit-31"),
        ],
        "/account/api-keys" => vec![("name", "sneaky"), ("scope", "full")],
        "/account/two-factor/disable" | "/account/two-factor/enable" => {
            vec![("password", PASSWORD), ("code", "123456")]
        }
        "/account/two-factor/recovery-codes" | "/login/two-factor" => vec![("code", "123456")],
        "/admin/users/<id>/role" => vec![("role", "admin")],
        "/password/forgot" => vec![("username", "target")],
        "/password/reset/<token..>" => vec![
            ("password", "other-Lantern-orbit-31"),
            ("password_confirm", "other-Lantern-orbit-31"),
            ("code", "123456"),
        ],
        _ => vec![],
    }
}

/// A form post to send: method, URI with real ids, fields.
type FormPost = (Method, String, Vec<(&'static str, &'static str)>);

/// Every state-changing route of the site outside `/api/` (the API has its own CSRF test), read
/// from the mounted routes so a new form cannot be missed.
fn post_routes(app: &TestApp, t: &Targets) -> Vec<FormPost> {
    let mut routes: Vec<_> = app
        .client
        .rocket()
        .routes()
        .filter(|r| !matches!(r.method, Method::Get | Method::Head | Method::Options))
        .map(|r| (r.method, r.uri.path().to_string()))
        .filter(|(_, path)| !path.starts_with("/api/"))
        .map(|(method, route)| {
            let area = route.split('/').nth(1).unwrap_or_default().to_string();
            let uri = route
                .split('/')
                .map(|seg| match seg.strip_prefix('<') {
                    Some(name) => segment_value(t, &route, &area, name.trim_end_matches('>')),
                    None => seg,
                })
                .collect::<Vec<_>>()
                .join("/");
            (method, uri, fields_of(&route))
        })
        .collect();
    routes.sort_by(|a, b| a.1.cmp(&b.1));
    for known in ["/login", "/signup", "/logout", "/account/logout-everywhere"] {
        assert!(
            routes.iter().any(|(_, uri, _)| uri == known),
            "{known} among the routes read from the site"
        );
    }
    routes
}

/// Nothing the forms could change has changed.
fn assert_unchanged(app: &TestApp, t: &Targets) {
    assert_eq!(
        app.client.get("/private").dispatch().status(),
        Status::Ok,
        "still signed in"
    );
    let target = app.user("target").unwrap();
    assert_eq!(target.id, t.user_id);
    assert_eq!(
        target.email, "target@example.com",
        "the address is not put back"
    );
    assert_eq!(target.role, "user");
    assert!(!target.disabled);
    assert!(app.user("newbie").is_none());
    let boss = app.user("boss").unwrap();
    let mut conn = app.pool().get().unwrap();
    for sid in [&t.session_id, &t.own_session_id] {
        let row = Session::find(&mut conn, sid).unwrap().unwrap();
        assert!(row.revoked_at.is_none(), "session {sid} not revoked");
    }
    for (owner, key) in [(&target.id, &t.key_id), (&boss.id, &t.own_key_id)] {
        let keys = ApiKey::for_user(&mut conn, owner).unwrap();
        assert_eq!(keys.len(), 1, "no key added");
        assert_eq!(&keys[0].id, key);
        assert!(keys[0].revoked_at.is_none(), "key {key} not revoked");
    }
    assert!(
        TwoFactor::enabled(&mut conn, &target.id).unwrap().is_some(),
        "the target's two-factor sign-in is still on"
    );
    assert!(
        TwoFactor::find(&mut conn, &boss.id).unwrap().is_none(),
        "no two-factor set-up begun"
    );
    let lock = LoginAttempt::key_for_user(&target.id);
    let now = app.clock().db_now();
    assert!(
        LoginAttempt::locked_until(&mut conn, &lock, now)
            .unwrap()
            .is_some(),
        "the target is still locked out"
    );
    assert!(
        AccountToken::find_valid(&mut conn, TokenPurpose::AdminReset, &t.reset_link, now)
            .unwrap()
            .is_some(),
        "the target's reset link is unused"
    );
    assert!(
        AccountToken::find_valid(&mut conn, TokenPurpose::EmailUndo, &t.undo_link, now)
            .unwrap()
            .is_some(),
        "the target's undo link is unused"
    );
    let since = now - time::Duration::days(1);
    assert_eq!(
        AccountToken::issued_since(&mut conn, &target.id, TokenPurpose::PasswordReset, since)
            .unwrap(),
        0,
        "no reset link mailed"
    );
    drop(conn);
    app.logout();
    assert_eq!(
        app.login("boss", PASSWORD).status(),
        Status::SeeOther,
        "password unchanged"
    );
}

fn assert_refused_page(response: rocket::local::blocking::LocalResponse<'_>, what: &str) {
    assert_eq!(response.status(), Status::Forbidden, "{what}");
    let body = response.into_string().unwrap();
    assert!(body.contains(RELOAD), "{what}: the page says to reload");
}

/// Sends a form as `method` to `uri` with `extra` headers.
fn send<'c>(
    app: &'c TestApp,
    method: Method,
    uri: &str,
    fields: &[(&str, &str)],
    extra: &[(&'static str, &'static str)],
) -> rocket::local::blocking::LocalResponse<'c> {
    let mut request = app
        .client
        .req(method, uri.to_string())
        .header(ContentType::Form)
        .body(form(fields));
    for (name, value) in extra {
        request = request.header(Header::new(*name, *value));
    }
    request.dispatch()
}

#[test]
fn every_form_without_a_token_is_refused_and_changes_nothing() {
    let app = spawn_app_without_admin_two_factor();
    let t = setup(&app);
    for (method, uri, fields) in post_routes(&app, &t) {
        assert_refused_page(send(&app, method, &uri, &fields, &[]), &uri);
    }
    assert_unchanged(&app, &t);
}

#[test]
fn every_form_with_a_wrong_token_is_refused_and_changes_nothing() {
    let app = spawn_app_without_admin_two_factor();
    let t = setup(&app);
    // A token that is well-formed but made for another session.
    let other = second_instance(&app);
    let foreign = csrf_token_of(&other);
    for (method, uri, fields) in post_routes(&app, &t) {
        for bad in [foreign.as_str(), "not-a-token", ""] {
            let mut fields = fields.clone();
            fields.push(("csrf_token", bad));
            assert_refused_page(send(&app, method, &uri, &fields, &[]), &uri);
        }
    }
    assert_unchanged(&app, &t);
}

#[test]
fn every_form_posted_from_another_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app_without_admin_two_factor();
    let t = setup(&app);
    for (method, uri, fields) in post_routes(&app, &t) {
        for (name, value) in [
            ("Origin", "http://evil.example"),
            ("Origin", "null"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
        ] {
            let token = app.csrf_token();
            let mut fields = fields.clone();
            fields.push(("csrf_token", &token));
            let response = send(
                &app,
                method,
                &uri,
                &fields,
                &[("Host", "latchkey.test"), (name, value)],
            );
            assert_refused_page(response, &format!("{uri} with {name}: {value}"));
        }
    }
    assert_unchanged(&app, &t);
}

#[test]
fn same_origin_headers_are_accepted() {
    let app = spawn_app_without_admin_two_factor();
    app.create_user("boss", Role::Admin);
    let token = app.csrf_token();
    let response = app
        .client
        .post("/login")
        .header(ContentType::Form)
        .header(Header::new("Host", "latchkey.test:8000"))
        .header(Header::new("Origin", "http://latchkey.test:8000"))
        .header(Header::new("Sec-Fetch-Site", "same-origin"))
        .body(form(&[
            ("username", "boss"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::SeeOther);
}

#[test]
fn a_configured_public_origin_is_the_only_one_accepted() {
    let app = spawn_app_with(|f| f.merge(("public_origin", "https://login.example.com")));
    app.create_user("boss", Role::Admin);
    for (origin, expected) in [
        ("https://evil.example", Status::Forbidden),
        ("https://login.example.com", Status::SeeOther),
    ] {
        let token = app.csrf_token();
        let response = app
            .client
            .post("/login")
            .header(ContentType::Form)
            .header(Header::new("Origin", origin))
            .body(form(&[
                ("username", "boss"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ]))
            .dispatch();
        assert_eq!(response.status(), expected, "{origin}");
    }
}

#[test]
fn the_login_form_token_is_bound_to_the_pre_session_cookie() {
    let app = spawn_app_without_admin_two_factor();
    app.create_user("boss", Role::Admin);
    let page = app.client.get("/login").dispatch();
    let cookie = page
        .cookies()
        .get("latchkey_csrf")
        .expect("pre-session cookie")
        .clone();
    assert!(cookie.http_only().unwrap_or(false));
    let token = csrf_in(&page.into_string().unwrap()).unwrap();
    // Another browser (without that cookie) cannot use the token.
    let other = second_instance(&app);
    let response = other
        .post("/login")
        .header(ContentType::Form)
        .body(form(&[
            ("username", "boss"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ]))
        .dispatch();
    assert_eq!(response.status(), Status::Forbidden);
    assert!(token_from(&response).is_none());
}

#[test]
fn every_post_form_on_every_page_carries_the_token() {
    let app = spawn_app_without_admin_two_factor();
    let target = setup(&app).user_id;
    for page in [
        "/",
        "/private",
        "/account",
        "/account/sessions",
        "/admin",
        &format!("/admin/users/{target}"),
        "/admin/audit",
        "/login",
        "/signup",
        "/missing",
    ] {
        let body = app
            .client
            .get(page.to_string())
            .dispatch()
            .into_string()
            .unwrap();
        let forms = body.matches("method=\"post\"").count();
        assert!(forms > 0, "{page} has a form");
        assert_eq!(body.matches("name=\"csrf_token\"").count(), forms, "{page}");
    }
}
