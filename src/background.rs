//! Work each instance does on its own: keep the revocation list fresh (so revocations from other
//! instances arrive within a second even when no request asks) and prune ended sessions.

use std::time::Duration;

use rocket::{Orbit, Rocket};

use crate::auth::{Csrf, Sessions, Throttle};
use crate::config::Settings;
use crate::models::{passkey_ceremony, AccountToken, OutboxMail, Session, TrustedDevice};

/// How often rate-limit entries of quiet clients and old shared windows are dropped.
const FORGET_EVERY: Duration = Duration::from_secs(60);
/// How often ended sessions, expired devices and links, and old mail records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How long the record of a sent (or given-up) mail stays for the admin panel.
const KEEP_MAIL_RECORDS: time::Duration = time::Duration::days(30);

/// Reloads the key file on SIGHUP and when its modification time changes (checked every second),
/// so a rotation rolls out without a restart. Stops when the server shuts down.
pub fn watch_keys(rocket: &Rocket<Orbit>) {
    let (Some(settings), Some(sessions), Some(csrf)) = (
        rocket.state::<Settings>().cloned(),
        rocket.state::<Sessions>(),
        rocket.state::<Csrf>().cloned(),
    ) else {
        return;
    };
    if settings.keys_from_environment() {
        return;
    }
    let tokens = sessions.tokens_shared();
    let db = sessions.db().clone();
    let shutdown = rocket.shutdown();
    rocket::tokio::spawn(async move {
        let modified =
            |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut seen = modified(&settings.key_file);
        let mut tick = rocket::tokio::time::interval(Duration::from_secs(1));
        #[cfg(unix)]
        let mut hangup =
            rocket::tokio::signal::unix::signal(rocket::tokio::signal::unix::SignalKind::hangup())
                .ok();
        rocket::tokio::pin!(shutdown);
        loop {
            #[cfg(unix)]
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<Option<()>>();
            let forced = rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => false,
                _ = hup => true,
            };
            let now_seen = modified(&settings.key_file);
            if !forced && now_seen == seen {
                continue;
            }
            seen = now_seen;
            let (settings, tokens, csrf, db) =
                (settings.clone(), tokens.clone(), csrf.clone(), db.clone());
            let result = rocket::tokio::task::spawn_blocking(move || {
                crate::auth::reload_keys(&settings, &tokens, &csrf, &db)
            })
            .await;
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    log::error!("signing keys not reloaded (the old ones stay in use): {e}")
                }
                Err(e) => log::error!("signing keys not reloaded: {e}"),
            }
        }
    });
}

/// Starts the refresher; it stops when the server shuts down.
pub fn spawn(rocket: &Rocket<Orbit>, sessions: &Sessions) {
    let shutdown = rocket.shutdown();
    let throttle = rocket.state::<Throttle>().cloned();
    let revocations = sessions.revocations().clone();
    let db = sessions.db().clone();
    let clock = sessions.clock().clone();
    rocket::tokio::spawn(async move {
        let mut tick = rocket::tokio::time::interval(Duration::from_millis(250));
        let mut last_prune = std::time::Instant::now();
        let mut last_forget = std::time::Instant::now();
        let mut failing = false;
        rocket::tokio::pin!(shutdown);
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            if revocations.is_stale() {
                match revocations.refresh(&db, clock.unix()).await {
                    Ok(true) if failing => {
                        log::info!("revocation list refreshed again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        log::warn!("revocation list not refreshed: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            if last_forget.elapsed() >= FORGET_EVERY {
                last_forget = std::time::Instant::now();
                if let Some(throttle) = &throttle {
                    if let Err(e) = throttle.forget_idle().await {
                        log::warn!("rate counter pruning failed: {e}");
                    }
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = std::time::Instant::now();
                let now = clock.db_now();
                let pruned = db
                    .run(move |conn| {
                        Ok(Session::prune(conn, now)?
                            + TrustedDevice::prune(conn, now)?
                            + AccountToken::prune(conn, now)?
                            + OutboxMail::prune(conn, now, KEEP_MAIL_RECORDS)?
                            + passkey_ceremony::prune(conn, now)?)
                    })
                    .await;
                match pruned {
                    Ok(n) if n > 0 => log::info!(
                        "pruned {n} ended sessions, expired devices and links, and old mail records"
                    ),
                    Ok(_) => {}
                    Err(e) => log::warn!("session pruning failed: {e}"),
                }
            }
        }
    });
}
