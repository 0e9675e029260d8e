//! The circuit breaker in front of the pool: once a connection attempt fails, every query fails at
//! once with the same "unavailable" answer instead of each request waiting out the pool timeout,
//! and one background thread tries to connect again every [`PROBE_EVERY`] until it succeeds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::tokio::sync::watch;

/// How often the background probe tries to connect while the circuit is open.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Whether the database is believed reachable; shared by the pool's manager and [`super::Db`].
#[derive(Debug)]
pub struct Circuit {
    /// Open or not; a watch, so requests already waiting for a connection hear of it at once.
    open: watch::Sender<bool>,
    probing: AtomicBool,
    /// Why it opened, for the logs and the error.
    reason: Mutex<String>,
}

impl Circuit {
    /// A closed circuit (the database is assumed reachable until an attempt says otherwise).
    pub fn new() -> Arc<Circuit> {
        Arc::new(Circuit {
            open: watch::Sender::new(false),
            probing: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
        })
    }

    /// Whether queries should fail at once.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Resolves once the circuit is open (at once if it is).
    pub async fn opened(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }

    /// Why the circuit is open (the last connection failure).
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|_| "the database is unreachable".into())
    }

    /// Records a failed connection attempt; returns whether this opened the circuit.
    pub fn trip(&self, why: &str) -> bool {
        if let Ok(mut reason) = self.reason.lock() {
            why.clone_into(&mut reason);
        }
        let opened = !self.open.send_replace(true);
        if opened {
            log::warn!("database unavailable, failing fast until it answers again: {why}");
        }
        opened
    }

    /// Records a successful connection: queries go through again.
    pub fn close(&self) {
        if self.open.send_replace(false) {
            log::info!("database reachable again");
        }
    }

    /// Starts the probe unless one is running: every [`PROBE_EVERY`] it calls `attempt` until that
    /// succeeds, then closes the circuit. It stops when the circuit (the pool) is dropped.
    pub fn probe_in_background<F>(self: &Arc<Circuit>, attempt: F)
    where
        F: Fn() -> Result<(), String> + Send + 'static,
    {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let circuit = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("db-probe".into())
            .spawn(move || loop {
                std::thread::sleep(PROBE_EVERY);
                let result = attempt();
                let Some(circuit) = circuit.upgrade() else {
                    return; // the pool is gone
                };
                match result {
                    Ok(()) => {
                        // Probing ends before the circuit closes, so a failure right after
                        // starts a new probe rather than leaving the circuit open for good.
                        circuit.probing.store(false, Ordering::Release);
                        circuit.close();
                        return;
                    }
                    Err(why) => {
                        if let Ok(mut reason) = circuit.reason.lock() {
                            *reason = why;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the database probe: {e}");
            self.probing.store(false, Ordering::Release);
        }
    }
}
