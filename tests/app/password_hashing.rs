//! Password hashing uses OWASP's argon2id parameters unless told otherwise.

use latchkey::auth::PasswordHasher;
use latchkey::config::Settings;
use latchkey::db::Db;
use latchkey::models::User;
use rocket::http::{ContentType, Status};
use rocket::local::blocking::Client;

use crate::helpers::*;

/// The start of a PHC string made with OWASP's argon2id parameters (m=19 MiB, t=2, p=1).
const OWASP: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

#[test]
fn default_argon2_parameters_are_owasps() {
    let defaults = Settings::default();
    assert_eq!(
        (
            defaults.argon2_memory_kib,
            defaults.argon2_iterations,
            defaults.argon2_parallelism
        ),
        (19_456, 2, 1),
        "argon2 memory KiB, iterations, lanes"
    );
    // The shipped Rocket.toml does not lower them in either profile.
    for profile in ["debug", "release"] {
        let figment = rocket::Config::figment().select(profile);
        let shipped = Settings::from_figment(&figment).unwrap();
        assert_eq!(
            (
                shipped.argon2_memory_kib,
                shipped.argon2_iterations,
                shipped.argon2_parallelism
            ),
            (19_456, 2, 1),
            "{profile} profile"
        );
    }

    let hasher = PasswordHasher::new(&defaults).unwrap();
    let hash = rocket::execute(hasher.hash(PASSWORD.to_string())).unwrap();
    assert!(hash.starts_with(OWASP), "{hash}");
    assert!(rocket::execute(hasher.verify(PASSWORD.to_string(), Some(hash))).unwrap());
}

#[test]
fn a_site_without_argon2_settings_stores_owasp_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    // The test settings without their cheap argon2 parameters.
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("database_url", db.url()))
        .merge(("jwt_secret", SECRET))
        // The default verification mails a link at sign-up: into the temp dir, not the repository.
        .merge(("mail_dir", dir.path().join("mail").display().to_string()));
    let client = Client::tracked(latchkey::rocket(figment)).expect("site starts");
    let csrf = csrf_token_of(&client);
    let response = client
        .post("/signup")
        .header(ContentType::Form)
        .body(form(&[
            ("username", "owasp"),
            ("email", "owasp@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &csrf),
        ]))
        .dispatch();
    // The built-in defaults verify addresses: the account is made and "Check your email" shown.
    assert_eq!(response.status(), Status::Ok);
    drop(response);
    let pool = client.rocket().state::<Db>().unwrap();
    let user = User::find_by_login(&mut pool.get().unwrap(), "owasp")
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash.starts_with(OWASP),
        "{}",
        user.password_hash
    );
}
