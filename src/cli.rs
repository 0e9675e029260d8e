//! The command line: `serve` (the default), `create-admin`, `reset-two-factor`, `reset-link`,
//! `keys rotate|list`, `invite`, `migrate`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::KeyFile;
use crate::auth::{reseal_all, Keyring, PasswordHasher, Seal};
use crate::config::{JwtAlgorithm, Settings};
use crate::db::{self, Db};
use crate::error::Error;
use crate::models::{
    AccountToken, AuditKind, Invitation, NewUser, NotInvited, Role, Session, TokenFor,
    TokenPurpose, TwoFactor, User,
};
use crate::validation;

/// latchkey: sign-up, sign-in and role-based access, served over HTTP.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// What to do; without one, serve the site.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the site (the default).
    Serve,
    /// Create an administrator. The password is read from stdin when piped, else prompted for.
    CreateAdmin {
        /// Username: 3–32 of A–Z a–z 0–9 _ . -
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
    },
    /// Turn off a user's two-factor sign-in (a lost phone, and no admin who can do it from the
    /// panel) and end their sessions.
    ResetTwoFactor {
        /// Username or email.
        #[arg(long)]
        username: String,
    },
    /// Print a one-time password reset link for a user (24 hours; an older one stops working),
    /// for when mail cannot reach them.
    ResetLink {
        /// Username or email.
        #[arg(long)]
        username: String,
    },
    /// Manage the token signing keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Invite someone: the invitation is stored, its mail queued (a running instance sends it)
    /// and its link printed, for handing over without mail.
    Invite {
        /// The address to invite.
        #[arg(long)]
        email: String,
        /// The role of the account: user (the default) or admin.
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
}

/// `latchkey keys …`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a new signing key; older keys keep verifying for `key_grace_secs`.
    Rotate {
        /// HS256 (a shared secret), EdDSA (an Ed25519 pair) or ES256 (a P-256 pair); default:
        /// the `jwt_algorithm` setting.
        #[arg(long)]
        alg: Option<JwtAlgorithm>,
    },
    /// Show the key ids and algorithms on the ring (never the secrets).
    List,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::CreateAdmin { username, email } => create_admin(&username, &email),
        Command::ResetTwoFactor { username } => reset_two_factor(&username),
        Command::ResetLink { username } => reset_link(&username),
        Command::Keys {
            action: KeysAction::Rotate { alg },
        } => rotate_keys(alg),
        Command::Keys {
            action: KeysAction::List,
        } => list_keys(),
        Command::Invite { email, role } => invite(&email, &role),
        Command::Migrate => migrate(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn settings() -> Result<Settings, Error> {
    Settings::from_figment(&crate::figment())
}

fn serve() -> Result<(), Error> {
    rocket::execute(crate::rocket(crate::figment()).launch())
        .map(|_| ())
        .map_err(|e| Error::Config(format!("the site could not start: {e}")))
}

fn migrate() -> Result<(), Error> {
    let settings = settings()?;
    let db = Db::new(&settings.database());
    db.create_if_missing()?;
    let applied = db::run_migrations(&mut *db.get()?)?;
    if applied.is_empty() {
        println!(
            "database {} is up to date",
            settings.database_url_redacted()
        );
    } else {
        println!(
            "applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

fn rotate_keys(alg: Option<JwtAlgorithm>) -> Result<(), Error> {
    let settings = settings()?;
    let alg = alg.unwrap_or(settings.jwt_algorithm);
    if settings.keys_from_environment() {
        return Err(Error::Config(
            "LATCHKEY_JWT_SECRET is set, so the key file is not used; unset it to rotate keys with the key file".into(),
        ));
    }
    let path = &settings.key_file;
    let before = Keyring::from_file(path, settings.key_grace_secs).ok();
    let rotation = KeyFile::rotate_with(path, settings.key_grace_secs, alg)?;
    println!(
        "new {} signing key {} in {}",
        rotation.alg,
        rotation.new_kid,
        settings.key_file.display()
    );
    if alg != settings.jwt_algorithm {
        println!(
            "note: jwt_algorithm is {}; set jwt_algorithm = {alg} (LATCHKEY_JWT_ALGORITHM={alg}) \
             where this key file is used, or instances refuse it",
            settings.jwt_algorithm
        );
    }
    if !rotation.kept.is_empty() {
        println!("still verifying: {}", rotation.kept.join(", "));
    }
    if !rotation.dropped.is_empty() {
        println!(
            "dropped (grace period over): {}",
            rotation.dropped.join(", ")
        );
    }
    println!(
        "running instances using this file sign with the new key within a second (or at once on \
         `kill -HUP`); copy the file, by a rename, to instances on other machines"
    );
    if let Some(before) = before {
        reseal_two_factor(&settings, &before);
    }
    Ok(())
}

/// Moves two-factor secrets to the new active key at once, opening them with the keys this
/// rotation may just have dropped, so pruning a key never strands a secret. Instances do the same
/// when they load the new file; this covers a rotation while none runs.
fn reseal_two_factor(settings: &Settings, before: &Keyring) {
    let resealed =
        Keyring::from_file(&settings.key_file, settings.key_grace_secs).and_then(|now| {
            let seal = Seal::two_factor(&now).with_older(before);
            reseal_all(&mut *Db::new(&settings.database()).get()?, &seal)
        });
    match resealed {
        Ok(n) => println!("two-factor secrets re-encrypted under the new key: {n}"),
        Err(e) => println!(
            "note: two-factor secrets not re-encrypted now ({e}); instances do it when they load \
             the new key, so keep the old keys on the ring until one has"
        ),
    }
}

fn list_keys() -> Result<(), Error> {
    let settings = settings()?;
    if settings.keys_from_environment() {
        let ring = Keyring::load(&settings)?;
        println!(
            "{} {} (from LATCHKEY_JWT_SECRET, active)",
            ring.active().kid,
            ring.active().alg()
        );
        return Ok(());
    }
    let file = KeyFile::read(&settings.key_file)?;
    let now = time::OffsetDateTime::now_utc();
    let grace = time::Duration::seconds(settings.key_grace_secs);
    for key in &file.keys {
        let state = if key.kid == file.active {
            "active".to_string()
        } else {
            match key.retired_at {
                Some(at) if at + grace >= now => {
                    format!("verify-only, retired {at}, verifies until {}", at + grace)
                }
                Some(at) => format!("retired {at}, grace over (verifies nothing)"),
                None => "verify-only".to_string(),
            }
        };
        println!(
            "{} {} created {} {}",
            key.kid, key.alg, key.created_at, state
        );
    }
    Ok(())
}

/// Reads the new admin's password: one line from a pipe, or twice without echo from a terminal.
fn read_password() -> Result<String, Error> {
    let io = |e: std::io::Error| Error::Io(format!("cannot read the password: {e}"));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(io)?;
        let second = rpassword::prompt_password("Repeat password: ").map_err(io)?;
        if first != second {
            return Err(Error::Config("the two passwords do not match".into()));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn create_admin(username: &str, email: &str) -> Result<(), Error> {
    let invalid = |field: &str, message: String| Error::Config(format!("{field}: {message}"));
    let username = validation::username(username).map_err(|m| invalid("username", m))?;
    let email = validation::email(email).map_err(|m| invalid("email", m))?;
    let settings = settings()?;
    let db = Db::new(&settings.database());
    db.create_if_missing()?;
    let mut conn = db.get()?;
    db::run_migrations(&mut conn)?;
    let conflict = User::conflicts(&mut conn, &username, &email)?;
    if conflict.username {
        return Err(Error::Config(format!(
            "username {username} is already taken"
        )));
    }
    if conflict.email {
        return Err(Error::Config(format!(
            "email {email} is already registered"
        )));
    }
    let password = read_password()?;
    validation::password_length(&password)
        .and_then(|_| validation::password_strength(&password, &[&username, &email]))
        .map_err(|m| invalid("password", m))?;
    let hasher = PasswordHasher::new(&settings)?;
    let hash = hasher.hash_blocking(&password)?;
    let clock = crate::clock::Clock::default();
    let new = NewUser::new(&username, &email, hash, Role::Admin, clock.db_now());
    match User::create(&mut conn, &new)? {
        Ok(user) => {
            let peer = crate::peer::Peer::default();
            crate::events::Event::new(AuditKind::AdminCreated, &peer)
                .subject(crate::events::Who::user(&user.id, &user.username))
                .detail("created with latchkey create-admin")
                .record_with(&mut conn, &clock)?;
            println!("created administrator {} <{}>", user.username, user.email);
            if settings.admin_requires_two_factor {
                println!(
                    "next: sign in as {} and set up two-factor sign-in (an authenticator app); \
                     the admin panel asks for it first",
                    user.username
                );
            }
            Ok(())
        }
        Err(_) => Err(Error::Config(format!(
            "username {username} or email {email} was taken meanwhile"
        ))),
    }
}

fn invite(email: &str, role: &str) -> Result<(), Error> {
    let email = validation::email(email).map_err(|m| Error::Config(format!("email: {m}")))?;
    let role = Role::parse(role.trim().to_lowercase().as_str())
        .ok_or_else(|| Error::Config(format!("role: {role} is not a role; use user or admin")))?;
    let figment = crate::figment();
    let settings = settings()?;
    let db = Db::new(&settings.database());
    db.create_if_missing()?;
    let mut conn = db.get()?;
    db::run_migrations(&mut conn)?;
    // The mail is sealed under the site's keys, so the running instances can open and send it.
    let tokens = std::sync::Arc::new(crate::auth::Tokens::new(
        &settings,
        Keyring::load(&settings)?,
    ));
    let template_dir: std::path::PathBuf = figment
        .extract_inner("template_dir")
        .unwrap_or_else(|_| "templates".into());
    let pages = crate::view::Pages::load_mail(&template_dir)
        .map_err(|e| Error::Config(format!("mail templates: {e}")))?;
    let origin = settings.public_origin.clone().unwrap_or_else(|| {
        let port: u16 = figment.extract_inner("port").unwrap_or(8000);
        format!("http://localhost:{port}")
    });
    let mailer = crate::mail::Mailer::new(&settings, origin, pages, tokens)?;
    let clock = crate::clock::Clock::default();
    let by = (None, "The administrator");
    match Invitation::make(&mut conn, &mailer, &email, role, by, clock.db_now())? {
        Ok(link) => {
            let peer = crate::peer::Peer::default();
            crate::events::Event::new(AuditKind::InvitationCreated, &peer)
                .subject(crate::events::Who::name(&email))
                .detail(format!("role {}, with latchkey invite", role.as_str()))
                .record_with(&mut conn, &clock)?;
            println!("invited {email} as {}", role.as_str());
            println!("the invitation mail is queued; a running latchkey sends it");
            println!("link (works once, for 7 days): {link}");
            Ok(())
        }
        Err(NotInvited::HasAccount) => Err(Error::Config(format!(
            "{email} already has an account; there is no one to invite"
        ))),
    }
}

fn reset_two_factor(login: &str) -> Result<(), Error> {
    let settings = settings()?;
    let db = Db::new(&settings.database());
    let mut conn = db.get()?;
    db::run_migrations(&mut conn)?;
    let user = User::find_by_login(&mut conn, login.trim())?
        .ok_or_else(|| Error::Config(format!("no user is called {login}")))?;
    if !TwoFactor::remove(&mut conn, &user.id)? {
        return Err(Error::Config(format!(
            "{} does not use two-factor sign-in",
            user.username
        )));
    }
    // The running instances pick the revocations up within a second.
    let ended = Session::revoke_all_for_user(&mut conn, &user.id, None)?.len();
    let peer = crate::peer::Peer::default();
    crate::events::Event::new(AuditKind::TwoFactorDisabled, &peer)
        .subject(crate::events::Who::user(&user.id, &user.username))
        .detail("reset with latchkey reset-two-factor")
        .record_with(&mut conn, &crate::clock::Clock::default())?;
    println!(
        "two-factor sign-in is off for {}; {ended} session(s) ended",
        user.username
    );
    Ok(())
}

fn reset_link(login: &str) -> Result<(), Error> {
    let figment = crate::figment();
    let settings = Settings::from_figment(&figment)?;
    let db = Db::new(&settings.database());
    let mut conn = db.get()?;
    db::run_migrations(&mut conn)?;
    let user = User::find_by_login(&mut conn, login.trim())?
        .ok_or_else(|| Error::Config(format!("no user is called {login}")))?;
    if user.disabled {
        return Err(Error::Config(format!(
            "{} is disabled; enable the account first, or the link will not work",
            user.username
        )));
    }
    let clock = crate::clock::Clock::default();
    let now = clock.db_now();
    let about = TokenFor {
        user_id: Some(user.id.clone()),
        ..TokenFor::default()
    };
    let issued = AccountToken::issue(
        TokenPurpose::AdminReset,
        about,
        now,
        time::Duration::hours(24),
    );
    AccountToken::replace(&mut conn, &issued, TokenPurpose::AdminReset, now)?;
    let peer = crate::peer::Peer::default();
    crate::events::Event::new(AuditKind::ResetLinkCreated, &peer)
        .subject(crate::events::Who::user(&user.id, &user.username))
        .detail("valid 24 hours, made with latchkey reset-link")
        .record_with(&mut conn, &clock)?;
    // The same origin as the links in mail: `public_origin`, else this machine's port.
    let origin = settings.public_origin.clone().unwrap_or_else(|| {
        let port: u16 = figment.extract_inner("port").unwrap_or(8000);
        format!("http://localhost:{port}")
    });
    println!(
        "{}/password/reset/{}",
        origin.trim_end_matches('/'),
        issued.raw
    );
    eprintln!(
        "a one-time password reset link for {}, valid 24 hours; any older one stopped working",
        user.username
    );
    Ok(())
}
