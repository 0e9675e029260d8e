//! The `latchkey` binary: create-admin, keys, migrate, and clear errors with exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use latchkey::models::Role;
use rocket::http::Status;

use crate::helpers::*;

fn latchkey(db_url: &str, dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    latchkey_with(db_url, dir, args, stdin, &[])
}

/// [`latchkey`] with more environment variables.
fn latchkey_with(
    db_url: &str,
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", db_url)
        .env("LATCHKEY_KEY_FILE", dir.join("cli-keys.json"))
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env_remove("LATCHKEY_JWT_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn create_admin_reads_the_password_from_stdin_and_the_admin_can_use_the_panel() {
    let app = spawn_app();
    let out = latchkey(
        app.db.url(),
        app.dir.path(),
        &[
            "create-admin",
            "--username",
            "chief",
            "--email",
            "chief@example.com",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created administrator chief"));
    assert!(
        text(&out.stdout).contains("set up two-factor sign-in"),
        "says what comes next"
    );
    assert_eq!(app.user("chief").unwrap().role, "admin");
    // The first run: sign in, the panel leads to enrolment, enrol, the panel opens.
    assert_eq!(app.login("chief", PASSWORD).status(), Status::SeeOther);
    let response = app.client.get("/admin").dispatch();
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(&response), "/account/two-factor");
    drop(response);
    let settings_page = || {
        app.client
            .get("/account/two-factor")
            .dispatch()
            .into_string()
            .unwrap()
    };
    assert!(settings_page().contains("The admin panel needs two-factor sign-in."));
    assert_eq!(
        app.post_form("/account/two-factor/setup", &[]).status(),
        Status::SeeOther
    );
    let page = settings_page();
    let marker = r#"<code class="secret">"#;
    let at = page.find(marker).expect("the key to type in") + marker.len();
    let secret: String = page[at..at + page[at..].find('<').unwrap()]
        .split_whitespace()
        .collect();
    let code = latchkey::auth::two_factor::code_at(&secret, app.clock().now()).unwrap();
    let response = app.post_form(
        "/account/two-factor/enable",
        &[("code", &code), ("password", PASSWORD)],
    );
    assert_eq!(response.status(), Status::Ok);
    assert!(response.into_string().unwrap().contains(r#"href="/admin""#));
    assert_eq!(app.client.get("/admin").dispatch().status(), Status::Ok);
}

#[test]
fn create_admin_applies_the_same_rules() {
    let app = spawn_app();
    let weak = latchkey(
        app.db.url(),
        app.dir.path(),
        &[
            "create-admin",
            "--username",
            "chief",
            "--email",
            "chief@example.com",
        ],
        "password1234\n",
    );
    assert_eq!(weak.status.code(), Some(1));
    assert!(
        text(&weak.stderr).contains("password"),
        "{}",
        text(&weak.stderr)
    );

    let bad_name = latchkey(
        app.db.url(),
        app.dir.path(),
        &[
            "create-admin",
            "--username",
            "x",
            "--email",
            "chief@example.com",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(text(&bad_name.stderr).contains("username"));
    assert_eq!(app.user_count(), 0);

    app.create_user("taken", Role::User);
    let dup = latchkey(
        app.db.url(),
        app.dir.path(),
        &[
            "create-admin",
            "--username",
            "TAKEN",
            "--email",
            "new@example.com",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(text(&dup.stderr).contains("already taken"));

    let usage = latchkey(app.db.url(), app.dir.path(), &["create-admin"], "");
    assert_eq!(
        usage.status.code(),
        Some(2),
        "missing arguments are a usage error"
    );
}

#[test]
fn keys_rotate_creates_then_extends_the_key_file() {
    let app = spawn_app();
    let first = latchkey(app.db.url(), app.dir.path(), &["keys", "rotate"], "");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = latchkey(app.db.url(), app.dir.path(), &["keys", "rotate"], "");
    assert!(text(&second.stdout).contains("still verifying"));
    let list = latchkey(app.db.url(), app.dir.path(), &["keys", "list"], "");
    let listing = text(&list.stdout);
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(listing.contains("active") && listing.contains("verify-only"));
    let file = std::fs::read_to_string(app.dir.path().join("cli-keys.json")).unwrap();
    for line in listing.lines() {
        let kid = line.split_whitespace().next().unwrap();
        assert!(file.contains(kid));
    }
}

#[test]
fn keys_rotate_makes_key_pairs_on_request_and_list_shows_each_algorithm() {
    let app = spawn_app();
    let dir = app.dir.path();
    let hs = latchkey(app.db.url(), dir, &["keys", "rotate"], "");
    assert!(
        text(&hs.stdout).contains("new HS256 signing key"),
        "{}",
        text(&hs.stdout)
    );
    let ed = latchkey(app.db.url(), dir, &["keys", "rotate", "--alg", "EdDSA"], "");
    assert!(ed.status.success(), "{}", text(&ed.stderr));
    let said = text(&ed.stdout);
    assert!(said.contains("new EdDSA signing key"), "{said}");
    assert!(
        said.contains("set jwt_algorithm = EdDSA"),
        "the setting still says HS256: {said}"
    );
    let es = latchkey(app.db.url(), dir, &["keys", "rotate", "--alg", "es256"], "");
    assert!(text(&es.stdout).contains("new ES256 signing key"));
    let bad = latchkey(app.db.url(), dir, &["keys", "rotate", "--alg", "RS256"], "");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("HS256, EdDSA or ES256"),
        "{}",
        text(&bad.stderr)
    );

    let listing = text(&latchkey(app.db.url(), dir, &["keys", "list"], "").stdout);
    let algs: Vec<&str> = listing
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(algs, ["ES256", "EdDSA", "HS256"], "{listing}");
    assert!(listing.contains("verifies until"), "{listing}");
    let file = std::fs::read_to_string(dir.join("cli-keys.json")).unwrap();
    assert_eq!(file.matches("\"private_key\"").count(), 2, "{file}");
    assert_eq!(file.matches("\"secret\"").count(), 1, "{file}");
}

#[test]
fn migrate_applies_migrations_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    let out = latchkey(db.url(), dir.path(), &["migrate"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied"));
    let again = latchkey(db.url(), dir.path(), &["migrate"], "");
    assert!(text(&again.stdout).contains("up to date"));
}

#[test]
fn an_unreachable_database_is_reported_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = latchkey(
        "postgres://latchkey:hunter2@127.0.0.1:1/latchkey",
        dir.path(),
        &["migrate"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach the database at postgres://latchkey:***@127.0.0.1:1/latchkey"),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("hunter2"), "password not printed");
    assert!(!err.contains("panicked"));
}

#[test]
fn keys_rotate_moves_two_factor_secrets_to_the_new_key_before_dropping_the_old() {
    use latchkey::auth::two_factor::code_at;
    use latchkey::auth::KeyFile;

    let key_file = tempfile::tempdir().unwrap();
    let path = key_file.path().join("keys.json");
    let first = KeyFile::rotate(&path, 86_400).unwrap();
    let app = spawn_app_with(with_key_file(key_file.path()));
    let user = app.create_user("rotated", Role::User);
    let (secret, _) = app.enable_two_factor(&user);
    let kid = || {
        latchkey::models::TwoFactor::find(&mut app.pool().get().unwrap(), &user.id)
            .unwrap()
            .unwrap()
            .secret
            .split('.')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(kid(), first.new_kid);

    // No grace period: the old key leaves the file in this very rotation.
    let out = latchkey_with(
        app.db.url(),
        key_file.path(),
        &["keys", "rotate"],
        "",
        &[
            ("LATCHKEY_KEY_GRACE_SECS", "0"),
            ("LATCHKEY_KEY_FILE", path.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("dropped") && said.contains(&first.new_kid),
        "{said}"
    );
    assert!(
        said.contains("two-factor secrets re-encrypted under the new key: 1"),
        "{said}"
    );
    let file = KeyFile::read(&path).unwrap();
    assert_eq!(file.keys.len(), 1);
    assert_eq!(kid(), file.active);

    latchkey::reload_keys(app.client.rocket()).unwrap();
    assert_eq!(
        location(&app.login("rotated", PASSWORD)),
        "/login/two-factor"
    );
    let code = code_at(&secret, app.clock().now()).unwrap();
    let response = app.post_form("/login/two-factor", &[("code", &code)]);
    assert!(token_from(&response).is_some(), "still readable");
}

#[test]
fn reset_two_factor_turns_it_off_and_ends_the_sessions() {
    use latchkey::auth::two_factor::code_at;
    use latchkey::models::TwoFactor;

    let app = spawn_app();
    let user = app.create_user("lostphone", Role::Admin);
    let (secret, _) = app.enable_two_factor(&user);
    assert_eq!(
        location(&app.login("lostphone", PASSWORD)),
        "/login/two-factor"
    );
    let code = code_at(&secret, app.clock().now()).unwrap();
    let response = app.post_form("/login/two-factor", &[("code", &code)]);
    let token = token_from(&response).expect("signed in with both steps");
    drop(response);

    let out = latchkey(
        app.db.url(),
        app.dir.path(),
        &["reset-two-factor", "--username", "lostphone"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("two-factor sign-in is off for lostphone; 1 session(s) ended")
    );
    assert!(TwoFactor::find(&mut app.pool().get().unwrap(), &user.id)
        .unwrap()
        .is_none());
    assert!(
        time_until_refused(
            &app.client,
            "/private",
            &token,
            std::time::Duration::from_secs(2)
        )
        .is_some(),
        "the session ended on the running instance"
    );
    assert_eq!(
        location(&app.login("lostphone", PASSWORD)),
        "/private",
        "the password alone signs in"
    );

    let again = latchkey(
        app.db.url(),
        app.dir.path(),
        &["reset-two-factor", "--username", "lostphone"],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("does not use two-factor sign-in"));
    let unknown = latchkey(
        app.db.url(),
        app.dir.path(),
        &["reset-two-factor", "--username", "nobody"],
        "",
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no user is called nobody"));
}
