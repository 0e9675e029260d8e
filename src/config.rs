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
    /// How new keys sign: `HS256` (a shared secret), `EdDSA` (Ed25519) or `ES256` (P-256); the
    /// active key must be of this kind.
    pub jwt_algorithm: JwtAlgorithm,
    /// `iss` claim written and required.
    pub jwt_issuer: String,
    /// `aud` claim written and required.
    pub jwt_audience: String,
    /// Lifetime of an access token; it is renewed from the session row when half is used.
    pub token_ttl_secs: i64,
    /// Absolute lifetime of a session without "remember me" (ASVS 3.3).
    pub session_ttl_secs: i64,
    /// Absolute lifetime of a session with "remember me".
    pub remember_ttl_secs: i64,
    /// A session without "remember me" ends after this long without activity.
    pub idle_timeout_secs: i64,
    /// Revocations made on other instances are seen within this many milliseconds.
    pub revocation_refresh_ms: u64,
    /// While the database cannot be read, signed-in requests are still decided from the
    /// in-memory revocation list until it is this old; then they answer 503.
    pub revocation_max_age_secs: u64,
    /// Failed sign-ins in a row that lock an account (or an unknown name).
    pub lockout_threshold: i32,
    /// Successive lockout durations in seconds; the last one repeats.
    pub lockout_steps_secs: Vec<i64>,
    /// Sign-in attempts (forms and `/api/token`) allowed per client IP per minute, counted in
    /// the database so all instances together allow this many.
    pub login_per_ip_per_minute: u32,
    /// Sign-up attempts allowed per client IP per minute, counted in the database.
    pub signup_per_ip_per_minute: u32,
    /// "Forgot your password?" requests allowed per client IP per minute, counted in the
    /// database like sign-in attempts.
    pub password_reset_per_ip_per_minute: u32,
    /// Reset mails one account may be sent per hour; requests beyond get the same answer and
    /// no mail, so nobody can flood an inbox.
    pub password_reset_per_account_per_hour: i64,
    /// Failed sign-ins a trusted device (a browser with a device cookie) may make within
    /// `device_failure_window_secs` before it loses its trust.
    pub device_failure_limit: i32,
    /// The window over which a trusted device's failures are counted.
    pub device_failure_window_secs: i64,
    /// How long a device cookie (and its trust) lasts after the browser's latest sign-in.
    pub device_trust_days: i64,
    /// Password-change attempts allowed per user per minute (per instance).
    pub password_change_per_user_per_minute: u32,
    /// Clock skew tolerated on `exp` and `nbf` (at most 30 s).
    pub jwt_leeway_secs: u64,
    /// How long a refresh value that was just replaced still renews the access token (parallel
    /// tabs renewing at once); presented later, it ends the session as stolen. At most 30 s.
    pub refresh_grace_secs: i64,
    /// How long a proof (the password, or the two-factor code) counts for sensitive actions:
    /// "sudo mode" (60–3600, default 600).
    /// Days an API key lives when its maker leaves the expiry empty (default 90).
    pub api_key_default_days: i64,
    /// The longest an API key may live, in days (default 365, at most 3650).
    pub api_key_max_days: i64,
    pub sudo_window_secs: i64,
    /// The site's origin as browsers see it (`https://example.com`); form posts must come from
    /// it. When unset, the request's `Host` header is the expected origin.
    pub public_origin: Option<String>,
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
    /// When set, every response carries `X-Instance: <name>` (to see which instance answered
    /// behind a load balancer).
    pub instance_name: Option<String>,
    /// The admin panel (and the admin API) only for sessions that passed two-factor sign-in.
    pub admin_requires_two_factor: bool,
    /// Passkeys (WebAuthn) for sign-in and as a second factor. Their relying-party id is the host
    /// of `public_origin` (`http://localhost:<port>` when unset), which must be a domain name.
    pub passkeys: bool,
    /// The mail server: `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (implicit TLS), with optional login. Unset: every mail is
    /// written as an `.eml` file into `mail_dir` and its link logged (for development).
    pub smtp_url: Option<String>,
    /// A PEM certificate to trust for the mail server's TLS, beside the system's (a private CA,
    /// a self-signed test server).
    pub smtp_ca_file: Option<PathBuf>,
    /// The From of every mail: `Name <address>` or an address.
    pub mail_from: String,
    /// Where mails go as `.eml` files when `smtp_url` is unset.
    pub mail_dir: PathBuf,
    /// Seconds before the first retry of a mail the server did not take; each retry waits twice
    /// as long as the one before, up to an hour.
    pub mail_retry_secs: i64,
    /// Delivery attempts before a mail is given up (shown as failed in the admin panel).
    pub mail_max_attempts: i32,
    /// Whether addresses are verified: `off`, `optional` (a link is sent; nothing waits for
    /// it) or `required` (an unverified account sees only "confirm your address").
    pub email_verification: EmailVerification,
    /// Who may sign up: `open`, or `invite_only` (only with an admin's invitation).
    pub signup_mode: SignupMode,
    /// The security notices mailed to account owners; remove one to stop it (an operator's
    /// choice, never a user's: a session thief could silence them). All on by default.
    pub mail_notices: Vec<Notice>,
}

/// How much the site relies on proved addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailVerification {
    /// No verification mail; sign-up signs in at once.
    Off,
    /// A verification link is mailed; an unverified account works as before.
    #[default]
    Optional,
    /// An unverified account can sign in but sees only the page asking to confirm the address.
    Required,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignupMode {
    /// Anyone.
    #[default]
    Open,
    /// Only someone holding an admin's invitation.
    InviteOnly,
}

/// A security notice mailed to an account's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The password was changed or reset.
    PasswordChanged,
    /// Two-factor sign-in was turned on or off.
    TwoFactorChanged,
    /// New recovery codes were made.
    RecoveryCodes,
    /// An API key was created.
    ApiKeyCreated,
    /// The address was changed (sent to the old address, with the undo link).
    EmailChanged,
    /// A sign-in from a browser not seen before.
    NewDevice,
    /// A passkey was added to the account or removed from it.
    PasskeysChanged,
}

impl Notice {
    /// Every notice, the default of `mail_notices`.
    pub const ALL: [Notice; 7] = [
        Notice::PasswordChanged,
        Notice::TwoFactorChanged,
        Notice::RecoveryCodes,
        Notice::ApiKeyCreated,
        Notice::EmailChanged,
        Notice::NewDevice,
        Notice::PasskeysChanged,
    ];
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
            jwt_algorithm: JwtAlgorithm::HS256,
            jwt_issuer: "latchkey".into(),
            jwt_audience: "latchkey".into(),
            token_ttl_secs: 15 * 60,
            session_ttl_secs: 12 * 3600,
            remember_ttl_secs: 30 * 24 * 3600,
            idle_timeout_secs: 30 * 60,
            revocation_refresh_ms: 500,
            revocation_max_age_secs: 30,
            lockout_threshold: 5,
            lockout_steps_secs: vec![60, 300, 900, 3600],
            login_per_ip_per_minute: 30,
            signup_per_ip_per_minute: 10,
            password_reset_per_ip_per_minute: 5,
            password_reset_per_account_per_hour: 3,
            device_failure_limit: 5,
            device_failure_window_secs: 3600,
            device_trust_days: 365,
            password_change_per_user_per_minute: 10,
            jwt_leeway_secs: 5,
            refresh_grace_secs: 10,
            sudo_window_secs: 600,
            api_key_default_days: 90,
            api_key_max_days: 365,
            cookie_secure: None,
            public_origin: None,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            static_dir: "static".into(),
            instance_name: None,
            admin_requires_two_factor: true,
            passkeys: true,
            smtp_url: None,
            smtp_ca_file: None,
            mail_from: "latchkey <latchkey@localhost>".into(),
            mail_dir: "mail".into(),
            mail_retry_secs: 30,
            mail_max_attempts: 12,
            email_verification: EmailVerification::Optional,
            signup_mode: SignupMode::Open,
            mail_notices: Notice::ALL.to_vec(),
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
        if self.session_ttl_secs < self.token_ttl_secs
            || self.remember_ttl_secs < self.token_ttl_secs
        {
            return Err(Error::Config(
                "session_ttl_secs and remember_ttl_secs must be at least token_ttl_secs".into(),
            ));
        }
        if self.revocation_refresh_ms == 0 || self.revocation_refresh_ms > 1000 {
            return Err(Error::Config(
                "revocation_refresh_ms must be between 1 and 1000".into(),
            ));
        }
        if self.revocation_max_age_secs < 2 || self.revocation_max_age_secs > 3600 {
            return Err(Error::Config(
                "revocation_max_age_secs must be between 2 and 3600".into(),
            ));
        }
        if self.lockout_threshold < 1
            || self.lockout_steps_secs.is_empty()
            || self.lockout_steps_secs.iter().any(|s| *s < 1)
        {
            return Err(Error::Config(
                "lockout_threshold must be at least 1 and lockout_steps_secs a list of positive seconds".into(),
            ));
        }
        if self.device_failure_limit < 1
            || self.device_failure_window_secs < 1
            || !(1..=400).contains(&self.device_trust_days)
        {
            return Err(Error::Config(
                "device_failure_limit and device_failure_window_secs must be at least 1, and device_trust_days between 1 and 400".into(),
            ));
        }
        if self.jwt_leeway_secs > 30 {
            return Err(Error::Config("jwt_leeway_secs must be at most 30".into()));
        }
        if !(0..=30).contains(&self.refresh_grace_secs) {
            return Err(Error::Config(
                "refresh_grace_secs must be between 0 and 30".into(),
            ));
        }
        if !(1..=3650).contains(&self.api_key_max_days)
            || !(1..=self.api_key_max_days).contains(&self.api_key_default_days)
        {
            return Err(Error::Config(
                "api_key_max_days must be between 1 and 3650, and api_key_default_days between 1 and it".into(),
            ));
        }
        if !(60..=3600).contains(&self.sudo_window_secs) {
            return Err(Error::Config(
                "sudo_window_secs must be between 60 and 3600".into(),
            ));
        }
        if self.key_grace_secs < 0 {
            return Err(Error::Config("key_grace_secs must be 0 or more".into()));
        }
        if !(1..=3600).contains(&self.mail_retry_secs)
            || !(1..=100).contains(&self.mail_max_attempts)
        {
            return Err(Error::Config(
                "mail_retry_secs must be between 1 and 3600, and mail_max_attempts between 1 and 100".into(),
            ));
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Error::Config(format!(
                "mail_from {:?} is not an address: use `Name <user@example.com>` or `user@example.com`",
                self.mail_from
            )));
        }
        if !(1..=1000).contains(&self.password_reset_per_ip_per_minute)
            || !(1..=100).contains(&self.password_reset_per_account_per_hour)
        {
            return Err(Error::Config(
                "password_reset_per_ip_per_minute must be between 1 and 1000, and password_reset_per_account_per_hour between 1 and 100".into(),
            ));
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

    /// The account lockout rule.
    pub fn lockout_policy(&self) -> crate::models::LockoutPolicy {
        crate::models::LockoutPolicy {
            threshold: self.lockout_threshold,
            steps: self
                .lockout_steps_secs
                .iter()
                .map(|s| time::Duration::seconds(*s))
                .collect(),
        }
    }

    /// The failure rule of trusted devices.
    pub fn device_policy(&self) -> crate::models::DevicePolicy {
        crate::models::DevicePolicy {
            limit: self.device_failure_limit,
            window: time::Duration::seconds(self.device_failure_window_secs),
        }
    }

    /// How long a device cookie lasts.
    pub fn device_trust(&self) -> time::Duration {
        time::Duration::days(self.device_trust_days)
    }

    /// Whether the signing key comes from `jwt_secret` (then the key file is not used).
    pub fn keys_from_environment(&self) -> bool {
        self.jwt_secret.as_deref().is_some_and(|s| !s.is_empty())
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

    /// What the database pool needs.
    pub fn database(&self) -> crate::db::DbSettings {
        crate::db::DbSettings {
            url: self.database_url.clone(),
            pool_size: self.database_pool_size,
            timeout_secs: self.database_timeout_secs,
        }
    }

    /// The database URL with any password replaced, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        crate::db::redact_url(&self.database_url)
    }
}

/// A token signing algorithm latchkey offers (RFC 7518 names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256: one shared secret signs and verifies.
    #[default]
    HS256,
    /// Ed25519 signatures: the private key signs, the public key (in the JWKS) verifies.
    EdDSA,
    /// ECDSA on P-256 with SHA-256: the private key signs, the public key verifies.
    ES256,
}

impl JwtAlgorithm {
    /// Its name in JWT headers and JWKs.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::EdDSA => "EdDSA",
            JwtAlgorithm::ES256 => "ES256",
        }
    }

    /// Whether it signs with a private key whose public half others may have.
    pub fn is_public_key(self) -> bool {
        self != JwtAlgorithm::HS256
    }
}

impl std::fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JwtAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            JwtAlgorithm::HS256,
            JwtAlgorithm::EdDSA,
            JwtAlgorithm::ES256,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown signing algorithm {s:?}: use HS256, EdDSA or ES256"))
    }
}

impl TryFrom<String> for JwtAlgorithm {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<JwtAlgorithm> for String {
    fn from(a: JwtAlgorithm) -> String {
        a.as_str().to_string()
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
