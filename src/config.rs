//! Typed settings, read from Rocket's figment: `Rocket.toml`, `ROCKET_*`, `LATCHKEY_*` and `DATABASE_URL`.

use std::path::PathBuf;

use rocket::figment::providers::Env;
use rocket::figment::Figment;
use serde::Deserialize;

use crate::error::Error;

/// Every setting latchkey reads; field names are the keys in `Rocket.toml` and, upper-cased with a
/// `LATCHKEY_` prefix, in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `postgres://…` selects PostgreSQL; anything else is a SQLite file path.
    pub database_url: String,
    /// Most connections one instance keeps open.
    pub database_pool_size: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_timeout_secs: u64,
    /// A signing secret from the environment; when set, the key file is not used.
    pub jwt_secret: Option<String>,
    /// The keyring file (created by `latchkey keys rotate`, or by debug builds on first start).
    pub key_file: PathBuf,
    /// Create the key file when it is missing; defaults to on in debug builds, off in release.
    pub create_key_file: Option<bool>,
    /// How long a superseded key still verifies tokens after a rotation.
    pub key_grace_secs: i64,
    /// `iss` claim written and required.
    pub jwt_issuer: String,
    /// `aud` claim written and required.
    pub jwt_audience: String,
    /// Lifetime of an access token.
    pub token_ttl_secs: i64,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub jwt_leeway_secs: u64,
    /// Secure cookies with the `__Host-` prefix; defaults to on in release builds, off in debug.
    pub cookie_secure: Option<bool>,
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
    /// argon2id lanes (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Most password hashes computed at once; 0 means one per CPU core.
    pub hash_concurrency: usize,
    /// Where the stylesheet and other static files are served from.
    pub static_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "latchkey.db".into(),
            database_pool_size: 16,
            database_timeout_secs: 3,
            jwt_secret: None,
            key_file: "latchkey-keys.json".into(),
            create_key_file: None,
            key_grace_secs: 24 * 3600,
            jwt_issuer: "latchkey".into(),
            jwt_audience: "latchkey".into(),
            token_ttl_secs: 30 * 60,
            jwt_leeway_secs: 5,
            cookie_secure: None,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            static_dir: "static".into(),
        }
    }
}

impl Settings {
    /// Reads the settings from a figment (see [`figment`]).
    pub fn from_figment(figment: &Figment) -> Result<Settings, Error> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| Error::Config(format!("invalid settings: {e}")))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), Error> {
        if self.token_ttl_secs < 60 {
            return Err(Error::Config("token_ttl_secs must be at least 60".into()));
        }
        if self.jwt_leeway_secs > 30 {
            return Err(Error::Config("jwt_leeway_secs must be at most 30".into()));
        }
        if self.database_pool_size == 0 {
            return Err(Error::Config(
                "database_pool_size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Whether cookies are `Secure` and `__Host-` prefixed.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure.unwrap_or(!cfg!(debug_assertions))
    }

    /// Whether a missing key file is created (debug) or refused (release).
    pub fn create_key_file(&self) -> bool {
        self.create_key_file.unwrap_or(cfg!(debug_assertions))
    }

    /// How many password hashes may run at once.
    pub fn hash_concurrency(&self) -> usize {
        if self.hash_concurrency > 0 {
            self.hash_concurrency
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// The database URL with any password replaced, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        crate::db::redact_url(&self.database_url)
    }
}

/// The configuration sources in order of precedence (last wins): Rocket's defaults and
/// `Rocket.toml` (or the file named by `ROCKET_CONFIG`), `ROCKET_*` variables, `LATCHKEY_*`
/// variables, and `DATABASE_URL`.
pub fn figment() -> Figment {
    rocket::Config::figment()
        .merge(Env::prefixed("LATCHKEY_").global())
        .merge(Env::raw().only(&["DATABASE_URL"]).global())
}
