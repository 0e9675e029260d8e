//! Spawns the site on a fresh database per test (see `tests/common/db.rs`) behind Rocket's local
//! client, and the requests the tests send through it.

use latchkey::auth::{Claims, Sessions, Subject, Tokens};
use latchkey::clock::Clock;
use latchkey::db::Db;
use latchkey::models::{NewUser, Role, User};
use latchkey::text::percent_encode;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::blocking::{Client, LocalResponse};

#[path = "../common/db.rs"]
mod db;
pub use db::*;

/// One running site on its own database.
pub struct TestApp {
    /// The tracked client (keeps cookies like a browser).
    pub client: Client,
    /// Settings as given, for building tokens by hand.
    pub figment: Figment,
    /// Holds the database alive.
    pub db: TestDb,
    /// Holds the temp dir alive (SQLite file, key files).
    pub dir: tempfile::TempDir,
    /// A hand-made token to send as the cookie (see [`TestApp::set_token`]).
    token: std::cell::RefCell<Option<String>>,
    /// The authenticator secrets of users enrolled by [`TestApp::sign_in_as`], by username.
    secrets: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

/// A site with default test settings.
pub fn spawn_app() -> TestApp {
    spawn_app_with(|f| f)
}

/// A site whose settings `adjust` changes.
pub fn spawn_app_with(adjust: impl FnOnce(Figment) -> Figment) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::new(&dir);
    let mail_dir = dir.path().join("mail");
    let figment =
        adjust(base_figment(db.url()).merge(("mail_dir", mail_dir.display().to_string())));
    let client = Client::tracked(latchkey::rocket(figment.clone())).expect("site starts");
    TestApp {
        client,
        figment,
        db,
        dir,
        token: Default::default(),
        secrets: Default::default(),
    }
}

/// A site that lets admins use the panel after a password alone (`admin_requires_two_factor`
/// off), for tests about something else that sign admins in through other channels (a second
/// instance's client, a Bearer token).
pub fn spawn_app_without_admin_two_factor() -> TestApp {
    spawn_app_with(|f| f.merge(("admin_requires_two_factor", false)))
}

/// A site that sends its mail to `server` (a real SMTP server in this process), retrying after a
/// second, with settings `adjust` changes.
pub fn spawn_app_mailing_to(
    server: &crate::smtp::MailServer,
    adjust: impl FnOnce(Figment) -> Figment,
) -> TestApp {
    let url = server.url();
    let ca = server.ca_file().map(|p| p.display().to_string());
    spawn_app_with(move |f| {
        let f = f.merge(("smtp_url", url)).merge(("mail_retry_secs", 1));
        let f = match ca {
            Some(ca) => f.merge(("smtp_ca_file", ca)),
            None => f,
        };
        adjust(f)
    })
}

/// A second instance on the same database and settings (a different process, as far as state goes).
pub fn second_instance(app: &TestApp) -> Client {
    Client::tracked(latchkey::rocket(app.figment.clone())).expect("second instance starts")
}

/// Settings that take the keys from `dir/keys.json` instead of the test secret.
pub fn with_key_file(dir: &std::path::Path) -> impl FnOnce(Figment) -> Figment {
    let path = dir.join("keys.json");
    move |f| {
        f.merge(("jwt_secret", ""))
            .merge(("key_file", path.display().to_string()))
    }
}

/// URL-encodes form pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k, b""), percent_encode(v, b"")))
        .collect::<Vec<_>>()
        .join("&")
}

impl TestApp {
    /// The site's database pool.
    pub fn pool(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("db managed")
    }

    /// The site's sessions service.
    pub fn sessions(&self) -> &Sessions {
        self.client
            .rocket()
            .state::<Sessions>()
            .expect("sessions managed")
    }

    /// The site's token signer.
    pub fn tokens(&self) -> &Tokens {
        self.sessions().tokens()
    }

    /// The site's clock (tests move it forward).
    pub fn clock(&self) -> &Clock {
        self.sessions().clock()
    }

    /// The CSRF token a page would give this client now (signed in or not).
    pub fn csrf_token(&self) -> String {
        csrf_token_of(&self.client)
    }

    /// POSTs a form with a valid CSRF token, as the site's own pages would.
    pub fn post_form(&self, uri: &str, pairs: &[(&str, &str)]) -> LocalResponse<'_> {
        let token = self.csrf_token();
        let mut with_token: Vec<(&str, &str)> = pairs.to_vec();
        with_token.push(("csrf_token", &token));
        self.post_raw(uri, &with_token)
    }

    /// POSTs a form exactly as given (no CSRF token added).
    pub fn post_raw(&self, uri: &str, pairs: &[(&str, &str)]) -> LocalResponse<'_> {
        self.client
            .post(uri.to_string())
            .header(ContentType::Form)
            .body(form(pairs))
            .dispatch()
    }

    /// Signs up through the form.
    pub fn signup(&self, username: &str, email: &str, password: &str) -> LocalResponse<'_> {
        self.post_form(
            "/signup",
            &[
                ("username", username),
                ("email", email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
    }

    /// Signs in through the form.
    pub fn login(&self, username: &str, password: &str) -> LocalResponse<'_> {
        self.post_form("/login", &[("username", username), ("password", password)])
    }

    /// Signs out.
    pub fn logout(&self) -> LocalResponse<'_> {
        self.post_form("/logout", &[])
    }

    /// Inserts a user straight into the database (fast; the signup form has its own tests).
    pub fn create_user(&self, username: &str, role: Role) -> User {
        let hasher = self
            .client
            .rocket()
            .state::<latchkey::auth::PasswordHasher>()
            .unwrap();
        let hash = hasher.hash_blocking(PASSWORD).unwrap();
        let new = NewUser::new(
            username,
            &format!("{username}@example.com"),
            hash,
            role,
            self.clock().db_now(),
        );
        let mut conn = self.pool().get().unwrap();
        User::create(&mut conn, &new).unwrap().unwrap()
    }

    /// Creates a user and signs in as them. An admin, when the site requires two-factor of
    /// admins (the default), is enrolled first and signs in with a code, as a real one must.
    pub fn sign_in_as(&self, username: &str, role: Role) -> User {
        let user = self.create_user(username, role);
        let required = self
            .client
            .rocket()
            .state::<latchkey::config::Settings>()
            .is_some_and(|s| s.admin_requires_two_factor);
        if role == Role::Admin && required {
            let (secret, _) = self.enable_two_factor(&user);
            self.secrets
                .borrow_mut()
                .insert(username.to_string(), secret);
        }
        self.sign_in_again(username);
        user
    }

    /// Signs `username` in again through the form: the password, then (when they have an app,
    /// enrolled by [`TestApp::sign_in_as`]) its code.
    pub fn sign_in_again(&self, username: &str) {
        let response = self.login(username, PASSWORD);
        assert_eq!(
            response.status(),
            Status::SeeOther,
            "password of {username}"
        );
        let step = location(&response);
        drop(response);
        if step.starts_with("/login/two-factor") {
            let code = self.code_for(username);
            let response = self.post_form(&step, &[("code", &code)]);
            assert_eq!(response.status(), Status::SeeOther, "code of {username}");
        }
    }

    /// The code the authenticator app of `username` (enrolled by [`TestApp::sign_in_as`]) shows
    /// now; moves the clock on to the next 30-second step first, so each call gives an unused code.
    pub fn code_for(&self, username: &str) -> String {
        let secret = self
            .secrets
            .borrow()
            .get(username)
            .cloned()
            .expect("enrolled");
        self.clock().advance(time::Duration::seconds(30));
        latchkey::auth::two_factor::code_at(&secret, self.clock().now()).unwrap()
    }

    /// Turns two-factor on for `user` straight in the database (the set-up pages have their
    /// own tests); returns the secret and the recovery codes.
    pub fn enable_two_factor(&self, user: &User) -> (String, Vec<String>) {
        use latchkey::auth::two_factor::{new_recovery_codes, new_secret};
        use latchkey::models::TwoFactor;
        let secret = new_secret();
        let codes = new_recovery_codes();
        let now = self.clock().db_now();
        let mut conn = self.pool().get().unwrap();
        let sealed = self
            .sessions()
            .two_factor_seal()
            .seal(&user.id, &secret)
            .unwrap();
        TwoFactor::begin_setup(&mut conn, &user.id, &sealed, now).unwrap();
        assert!(TwoFactor::enable(&mut conn, &user.id, 0, &codes, now).unwrap());
        (secret, codes)
    }

    /// The user's two-factor secret (pending or on), decrypted as the site does.
    pub fn two_factor_secret(&self, user: &User) -> String {
        let row = latchkey::models::TwoFactor::find(&mut self.pool().get().unwrap(), &user.id)
            .unwrap()
            .expect("a two-factor row");
        self.sessions()
            .two_factor_seal()
            .open(&user.id, &row.secret)
            .unwrap()
    }

    /// Looks a user up by username.
    pub fn user(&self, username: &str) -> Option<User> {
        User::find_by_login(&mut self.pool().get().unwrap(), username).unwrap()
    }

    /// How many users exist.
    pub fn user_count(&self) -> i64 {
        use diesel::{QueryDsl, RunQueryDsl};
        use latchkey::db::schema::users;
        users::table
            .count()
            .get_result(&mut *self.pool().get().unwrap())
            .unwrap()
    }

    /// The session cookie the client holds, if any.
    pub fn session_cookie(&self) -> Option<Cookie<'static>> {
        self.client
            .cookies()
            .get(COOKIE)
            .map(|c| c.clone().into_owned())
    }

    /// Sends `token` as the session cookie on the following [`TestApp::get`] requests.
    pub fn set_token(&self, token: &str) {
        *self.token.borrow_mut() = Some(token.to_string());
    }

    /// GETs `uri` with the token given to [`TestApp::set_token`] as the session cookie.
    pub fn get(&self, uri: &str) -> LocalResponse<'_> {
        let request = self.client.get(uri.to_string());
        match self.token.borrow().as_deref() {
            Some(token) => request
                .cookie(Cookie::new(COOKIE, token.to_string()))
                .dispatch(),
            None => request.dispatch(),
        }
    }

    /// Valid claims for `user` (with a made-up session id), to be altered by a test.
    pub fn claims_for(&self, user: &User) -> Claims {
        let subject = Subject::of(user, "0123456789abcdef0123456789abcdef", false);
        let now = self.clock().now();
        let (_, claims) = self
            .tokens()
            .issue(&subject, now, now + time::Duration::hours(12))
            .unwrap();
        claims
    }

    /// The `sid` of the session the client holds.
    pub fn session_id(&self) -> String {
        let token = self
            .session_cookie()
            .expect("signed in")
            .value()
            .to_string();
        sid_of(&token)
    }
}

/// The Location header of a redirect.
pub fn location(response: &LocalResponse<'_>) -> String {
    response
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_string()
}

/// Every Set-Cookie header of a response.
pub fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .map(str::to_string)
        .collect()
}

/// The Set-Cookie header for the session cookie, if the response sets or removes it.
pub fn session_set_cookie(response: &LocalResponse<'_>, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The claims of a token (read without verification; tests only).
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The `sid` claim of a token (read without verification; tests only).
pub fn sid_of(token: &str) -> String {
    claims_of(token)["sid"].as_str().unwrap().to_string()
}

/// The value of the hidden `csrf_token` field in an HTML page, if any.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf_token" value=""#)?;
    let rest = &html[at + r#"name="csrf_token" value=""#.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The CSRF token the sign-in page gives a tracked client now.
pub fn csrf_token_of(client: &Client) -> String {
    let html = client
        .get("/login")
        .dispatch()
        .into_string()
        .unwrap_or_default();
    csrf_in(&html).expect("the sign-in page carries a CSRF token")
}

/// GETs `uri` on `client` with `token` as the session cookie (another browser, same account).
pub fn get_as<'c>(client: &'c Client, uri: &str, token: &str) -> LocalResponse<'c> {
    client
        .get(uri.to_string())
        .cookie(Cookie::new(COOKIE, token.to_string()))
        .dispatch()
}

/// POSTs a form on `client` as the holder of `token`, with the CSRF token its pages give.
pub fn post_as<'c>(
    client: &'c Client,
    uri: &str,
    token: &str,
    pairs: &[(&str, &str)],
) -> LocalResponse<'c> {
    let html = get_as(client, "/login", token)
        .into_string()
        .unwrap_or_default();
    let csrf = csrf_in(&html).expect("csrf token");
    let mut fields = pairs.to_vec();
    fields.push(("csrf_token", &csrf));
    client
        .post(uri.to_string())
        .header(ContentType::Form)
        .cookie(Cookie::new(COOKIE, token.to_string()))
        .body(form(&fields))
        .dispatch()
}

/// Polls `uri` with `token` on `client` until it is refused (a redirect to sign-in, or 403);
/// returns how long that took, or `None` if it was still accepted after `limit`.
pub fn time_until_refused(
    client: &Client,
    uri: &str,
    token: &str,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    // Time is taken when each request is sent: the contract is about requests arriving a
    // second after the revocation, however long a loaded test machine takes to answer them.
    let start = std::time::Instant::now();
    loop {
        let sent = start.elapsed();
        if sent > limit {
            return None;
        }
        let status = get_as(client, uri, token).status();
        if status == Status::SeeOther || status == Status::Forbidden {
            return Some(sent);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The session token a login response set, if any.
pub fn token_from(response: &LocalResponse<'_>) -> Option<String> {
    response
        .cookies()
        .get(COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// Signs `username` in on `client` (another instance or browser) and returns the session token.
pub fn login_on(client: &Client, username: &str, user_agent: Option<&str>) -> String {
    let csrf = csrf_token_of(client);
    let mut request = client.post("/login").header(ContentType::Form).body(form(&[
        ("username", username),
        ("password", PASSWORD),
        ("csrf_token", &csrf),
    ]));
    if let Some(ua) = user_agent {
        request = request.header(rocket::http::Header::new("User-Agent", ua.to_string()));
    }
    let response = request.dispatch();
    assert_eq!(response.status(), Status::SeeOther, "sign-in as {username}");
    token_from(&response).expect("session cookie")
}

/// POSTs the sign-in form on `client` (another instance or browser).
pub fn login_with<'c>(client: &'c Client, username: &str, password: &str) -> LocalResponse<'c> {
    login_carrying(client, username, password, None)
}

/// POSTs the sign-in form on `client`, sending `extra` as a cookie too (a copied cookie).
pub fn login_carrying<'c>(
    client: &'c Client,
    username: &str,
    password: &str,
    extra: Option<Cookie<'static>>,
) -> LocalResponse<'c> {
    let csrf = csrf_token_of(client);
    let mut request = client.post("/login").header(ContentType::Form).body(form(&[
        ("username", username),
        ("password", password),
        ("csrf_token", &csrf),
    ]));
    if let Some(cookie) = extra {
        request = request.cookie(cookie);
    }
    request.dispatch()
}

/// The audit rows of `kind` (the first thousand).
pub fn audit_events(app: &TestApp, kind: &str) -> Vec<latchkey::models::AuditEvent> {
    let filter = latchkey::models::AuditFilter {
        kind: Some(kind.into()),
        ..Default::default()
    };
    latchkey::models::AuditEvent::search(&mut app.pool().get().unwrap(), &filter, 1, 1000)
        .unwrap()
        .0
}
