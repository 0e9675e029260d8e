//! latchkey: sign-up, sign-in and role-based access for a Rocket site, with a signed JWT in an
//! HttpOnly cookie, on SQLite or PostgreSQL.

mod allow;
pub mod auth;
mod background;
mod catchers;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
mod events;
mod headers;
mod json;
pub mod mail;
pub mod models;
mod peer;
mod routes;
pub mod text;
mod validation;
mod view;

use crate::view::Pages;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::fs::FileServer;
use rocket::{Build, Orbit, Rocket};

use crate::auth::{Csrf, Keyring, Passkeys, PasswordHasher, Seal, Sessions, Throttle, Tokens};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;
use crate::events::Audit;
use crate::mail::worker::Sender;
use crate::mail::{Mailer, Transport};

pub use crate::config::figment;

/// Everything a running site shares, built once at start.
struct Parts {
    settings: Settings,
    db: Db,
    sessions: Sessions,
    hasher: PasswordHasher,
    csrf: Csrf,
    mailer: Mailer,
    sender: Sender,
    passkeys: Option<Passkeys>,
}

/// Reads settings, opens the database, applies migrations, loads keys. Blocking: run off the workers.
fn prepare(figment: &Figment, pages: Pages) -> Result<Parts, Error> {
    let settings = Settings::from_figment(figment)?;
    if !settings.static_dir.is_dir() {
        return Err(Error::Config(format!(
            "static_dir {} is not a directory: start latchkey from its repository folder, or set \
             LATCHKEY_STATIC_DIR (and ROCKET_TEMPLATE_DIR) to where static/ and templates/ are",
            settings.static_dir.display()
        )));
    }
    let db = Db::new(&settings.database());
    db.create_if_missing()?;
    let applied = db::run_migrations(&mut *db.get()?)?;
    if !applied.is_empty() {
        log::info!("applied migrations: {}", applied.join(", "));
    }
    let keyring = Keyring::load(&settings)?;
    log::info!(
        "signing key {} (verifying {:?})",
        keyring.active().kid,
        keyring.kids()
    );
    // Plain secrets from before encryption, and secrets under an older key, move to the active
    // key now (SQL has no key, so a migration cannot do it).
    let resealed = auth::reseal_all(&mut *db.get()?, &Seal::two_factor(&keyring))?;
    if resealed > 0 {
        log::info!(
            "{resealed} two-factor secrets encrypted under key {}",
            keyring.active().kid
        );
    }
    let csrf = Csrf::new(
        &keyring,
        settings.cookie_secure(),
        settings.public_origin.clone(),
    );
    let tokens = Tokens::new(&settings, keyring);
    let sessions = Sessions::new(&settings, db.clone(), tokens, Clock::default());
    let hasher = PasswordHasher::new(&settings)?;
    if settings.public_origin.is_none() && settings.smtp_url.is_some() && !cfg!(debug_assertions) {
        log::warn!(
            "public_origin is not set: links in mail will point to http://localhost; set \
             LATCHKEY_PUBLIC_ORIGIN to the address people reach the site at"
        );
    }
    let port: u16 = figment.extract_inner("port").unwrap_or(8000);
    let passkeys = match settings.passkeys {
        true => Some(Passkeys::new(settings.public_origin.as_deref(), port)?),
        false => None,
    };
    let origin = settings
        .public_origin
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    let mailer = Mailer::new(&settings, origin, pages, sessions.tokens_shared())?;
    let transport = Transport::from_settings(&settings)?;
    log::info!("{}", transport.describe(&settings));
    let sender = Sender::new(
        &settings,
        db.clone(),
        sessions.clock().clone(),
        mailer.clone(),
        transport,
    );
    Ok(Parts {
        settings,
        db,
        sessions,
        hasher,
        csrf,
        mailer,
        sender,
        passkeys,
    })
}

/// The site, ready to launch: state, templates, routes, static files and catchers. Start-up
/// problems (unreachable database, missing key) stop the launch with a message saying what to do.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let pages = Pages::default();
    let signup_open = figment
        .extract_inner::<config::SignupMode>("signup_mode")
        .map_or(true, |mode| mode == config::SignupMode::Open);
    let passkeys_on = figment.extract_inner::<bool>("passkeys").unwrap_or(true);
    rocket::custom(figment)
        .attach(Pages::fairing(pages.clone(), signup_open, passkeys_on))
        .manage(pages.clone())
        .attach(AdHoc::try_on_ignite("latchkey", |rocket| async move {
            let figment = rocket.figment().clone();
            let prepared = rocket::tokio::task::spawn_blocking(move || prepare(&figment, pages))
                .await
                .map_err(|e| Error::Task(e.to_string()))
                .and_then(|r| r);
            match prepared {
                Ok(parts) => {
                    let static_dir = parts.settings.static_dir.clone();
                    let clock = parts.sessions.clock().clone();
                    Ok(rocket
                        .attach(headers::shield())
                        .attach(headers::SecurityHeaders::new(
                            parts.settings.cookie_secure(),
                            parts.settings.instance_name.clone(),
                        ))
                        .manage(Audit::new(parts.db.clone(), clock.clone()))
                        .manage(Throttle::new(
                            &parts.settings,
                            parts.db.clone(),
                            clock.clone(),
                        ))
                        .manage(parts.csrf)
                        .manage(parts.mailer)
                        .manage(parts.passkeys)
                        .manage(std::sync::Arc::new(parts.sender))
                        .manage(clock)
                        .manage(parts.db)
                        .manage(parts.sessions)
                        .manage(parts.hasher)
                        .manage(parts.settings)
                        .mount("/static", FileServer::from(static_dir)))
                }
                Err(e) => {
                    log::error!("latchkey cannot start: {e}");
                    Err(rocket)
                }
            }
        }))
        .attach(AdHoc::on_liftoff("revocation refresher", |rocket| {
            Box::pin(async move {
                if let Some(sessions) = rocket.state::<Sessions>() {
                    background::spawn(rocket, sessions);
                }
                mail::worker::spawn(rocket);
                background::watch_keys(rocket);
            })
        }))
        .mount("/", routes::all())
        .register("/", catchers::all())
}

/// Re-reads the key file and, when its keys differ from those in use, signs and verifies with
/// them from now on (see `auth::key_reload`); returns whether the keys changed. Blocking.
pub fn reload_keys(rocket: &Rocket<Orbit>) -> Result<bool, Error> {
    match (
        rocket.state::<Settings>(),
        rocket.state::<Sessions>(),
        rocket.state::<Csrf>(),
    ) {
        (Some(settings), Some(sessions), Some(csrf)) => {
            auth::reload_keys(settings, sessions.tokens(), csrf, sessions.db())
        }
        _ => Ok(false),
    }
}
