//! latchkey: sign-up, sign-in and role-based access for a Rocket site, with a signed JWT in an
//! HttpOnly cookie, on SQLite or PostgreSQL.

pub mod auth;
pub mod catchers;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod models;
pub mod routes;
pub mod validation;
pub mod view;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::fs::FileServer;
use rocket::{Build, Rocket};
use rocket_dyn_templates::Template;

use crate::auth::cookie::SessionCookie;
use crate::auth::{Keyring, PasswordHasher, Tokens};
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;

pub use crate::config::figment;

/// Everything a running site shares, built once at start.
struct Parts {
    settings: Settings,
    db: Db,
    tokens: Tokens,
    hasher: PasswordHasher,
}

/// Reads settings, opens the database, applies migrations, loads keys. Blocking: run off the workers.
fn prepare(figment: &Figment) -> Result<Parts, Error> {
    let settings = Settings::from_figment(figment)?;
    let db = Db::new(&settings);
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
    let tokens = Tokens::new(&settings, keyring);
    let hasher = PasswordHasher::new(&settings)?;
    Ok(Parts {
        settings,
        db,
        tokens,
        hasher,
    })
}

/// The site, ready to launch: state, templates, routes, static files and catchers. Start-up
/// problems (unreachable database, missing key) stop the launch with a message saying what to do.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Template::fairing())
        .attach(AdHoc::try_on_ignite("latchkey", |rocket| async move {
            let figment = rocket.figment().clone();
            let prepared = rocket::tokio::task::spawn_blocking(move || prepare(&figment))
                .await
                .map_err(|e| Error::Task(e.to_string()))
                .and_then(|r| r);
            match prepared {
                Ok(parts) => {
                    let cookie = SessionCookie::new(parts.settings.cookie_secure());
                    let static_dir = parts.settings.static_dir.clone();
                    Ok(rocket
                        .manage(parts.db)
                        .manage(parts.tokens)
                        .manage(parts.hasher)
                        .manage(cookie)
                        .manage(parts.settings)
                        .mount("/static", FileServer::from(static_dir)))
                }
                Err(e) => {
                    log::error!("latchkey cannot start: {e}");
                    Err(rocket)
                }
            }
        }))
        .mount("/", routes::all())
        .register("/", catchers::all())
}
