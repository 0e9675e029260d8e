//! Rolling key rotation without restarts: re-reads the key file and, when its keys differ from
//! those in use, signs and verifies with them from now on. Tokens, CSRF tokens and pending
//! sign-ins made with a key still on the ring keep working.

use super::{Csrf, Keyring, Tokens};
use crate::config::Settings;
use crate::error::Error;

/// Reloads the key file into the services that use the keys; returns whether the keys changed.
/// Keys from the environment change only with a restart. Blocking (reads a file).
pub fn reload_keys(settings: &Settings, tokens: &Tokens, csrf: &Csrf) -> Result<bool, Error> {
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
    tokens.replace_keyring(ring);
    Ok(true)
}
