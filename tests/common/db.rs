//! What both test binaries share: the test settings and a fresh database per test, a temp SQLite
//! file by default or a new PostgreSQL database when `DATABASE_URL` (or `LATCHKEY_TEST_DATABASE_URL`)
//! is a `postgres://` URL. Included by `tests/app` and `tests/browser` with `#[path]`.

use diesel::{Connection, PgConnection, RunQueryDsl};
use rocket::figment::Figment;

/// A strong password accepted by the signup rules.
pub const PASSWORD: &str = "correct-Horse-battery-77";
/// The test signing secret (48 bytes).
pub const SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxy";
/// Cookie name with `cookie_secure` off (debug default).
pub const COOKIE: &str = "latchkey";

/// The PostgreSQL server URL to create per-test databases on, if tests run on PostgreSQL.
pub fn postgres_base_url() -> Option<String> {
    std::env::var("LATCHKEY_TEST_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A database that exists for one test.
pub enum TestDb {
    /// A file in a temp dir, removed with it.
    Sqlite { url: String },
    /// A database created on the server, dropped at the end.
    Postgres {
        server: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    /// Creates a fresh, empty database.
    pub fn new(dir: &tempfile::TempDir) -> TestDb {
        match postgres_base_url() {
            Some(base) => {
                let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&base).expect("connect to PostgreSQL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let url = replace_db_name(&base, &name);
                TestDb::Postgres {
                    server: base,
                    name,
                    url,
                }
            }
            None => TestDb::Sqlite {
                url: dir.path().join("latchkey.db").display().to_string(),
            },
        }
    }

    /// The URL to give the site.
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url } | TestDb::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { server, name, .. } = self {
            if let Ok(mut conn) = PgConnection::establish(server) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// `postgres://u@h:p/old?x` → `postgres://u@h:p/new?x`
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("url has a scheme");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The settings every test app starts from; cheap argon2 so the suite runs quickly (the OWASP
/// defaults are checked by their own test).
pub fn base_figment(db_url: &str) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("database_url", db_url))
        .merge(("jwt_secret", SECRET))
        .merge(("argon2_memory_kib", 256))
        .merge(("argon2_iterations", 1))
        .merge(("database_pool_size", 4))
        // Most tests sign up and expect to be signed in at once; the tests of the verification
        // modes (tests/app/email_verification.rs) set `optional` or `required` themselves.
        .merge(("email_verification", "off"))
        // Every notice but the new-browser one: nearly every test signs in from a "new browser",
        // and tests that count mail would count those. tests/app/notices.rs turns them all on.
        .merge((
            "mail_notices",
            vec![
                "password_changed",
                "two_factor_changed",
                "recovery_codes",
                "api_key_created",
                "email_changed",
                "passkeys_changed",
            ],
        ))
}
