//! Rolling key rotation without restarts: re-reads the key file and, when its keys differ from
//! those in use, signs and verifies with them from now on. Tokens, CSRF tokens and pending
//! sign-ins made with a key still on the ring keep working. Two-factor secrets move to the new
//! active key at once, so none is left under a key that is later pruned.

use super::{reseal_all, Csrf, Keyring, Seal, Tokens};
use crate::config::Settings;
use crate::db::Db;
use crate::error::Error;

/// Reloads the key file into the services that use the keys; returns whether the keys changed.
/// Keys from the environment change only with a restart. Blocking (reads a file).
pub fn reload_keys(
    settings: &Settings,
    tokens: &Tokens,
    csrf: &Csrf,
    db: &Db,
) -> Result<bool, Error> {
    if settings.keys_from_environment() {
        return Ok(false);
    }
    let ring = Keyring::load(settings)?;
    if tokens.keyring().kids() == ring.kids() {
        return Ok(false);
    }
    log::info!(
        "signing keys reloaded from {}: signing with {} (verifying {:?})",
        settings.key_file.display(),
        ring.active().kid,
        ring.kids()
    );
    csrf.replace_keys(&ring);
    let seal = Seal::two_factor(&ring);
    tokens.replace_keyring(ring);
    // The keys are in use whatever happens here; a row left behind is moved at the next load.
    match db.get().and_then(|mut conn| reseal_all(&mut conn, &seal)) {
        Ok(0) => {}
        Ok(n) => log::info!("{n} two-factor secrets re-encrypted under the new key"),
        Err(e) => log::error!("two-factor secrets not re-encrypted under the new key: {e}"),
    }
    Ok(true)
}
