//! Work each instance does on its own: keep the revocation list fresh (so revocations from other
//! instances arrive within a second even when no request asks) and prune ended sessions.

use std::time::Duration;

use rocket::{Orbit, Rocket};

use crate::auth::{Sessions, Throttle};
use crate::models::Session;

/// How often rate-limit entries of quiet clients are dropped.
const FORGET_EVERY: Duration = Duration::from_secs(60);
/// How often ended sessions are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

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
                    Ok(()) if failing => {
                        log::info!("revocation list refreshed again");
                        failing = false;
                    }
                    Ok(()) => {}
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
                    throttle.forget_idle();
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = std::time::Instant::now();
                let now = clock.db_now();
                match db.run(move |conn| Session::prune(conn, now)).await {
                    Ok(n) if n > 0 => log::info!("pruned {n} ended sessions"),
                    Ok(_) => {}
                    Err(e) => log::warn!("session pruning failed: {e}"),
                }
            }
        }
    });
}
