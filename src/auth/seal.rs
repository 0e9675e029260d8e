//! Secrets at rest: two-factor secrets, and mail waiting in the outbox (which may carry a reset
//! or invitation link). Each is stored as `v1.<kid>.<base64url(nonce || ciphertext)>`, sealed with
//! XChaCha20-Poly1305 under a key derived from the signing key `kid` for one purpose alone, with
//! the row's owner (user id, mail id) as associated data (a sealed value moved to another row does
//! not open). A database dump alone gives no codes and no links.
//!
//! Rows are moved to the active key whenever the keyring is loaded or reloaded
//! ([`reseal_all`]), so a key can be pruned after its grace period without leaving a secret
//! behind; rows still in plain text (from before encryption) are sealed at the same time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::Keyring;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::TwoFactor;

/// The keyring purpose two-factor secrets are sealed for.
const TWO_FACTOR: &str = "totp-secret";
/// The keyring purpose outbox mail bodies are sealed for.
const OUTBOX: &str = "outbox-mail";
/// The format's prefix; a stored value without it is a plain secret from before encryption.
const V1: &str = "v1.";
/// XChaCha20's nonce: 192 random bits, so random nonces never repeat in practice.
const NONCE_BYTES: usize = 24;

/// The sealing keys of one keyring for one purpose: `(kid, key)`, active first.
pub struct Seal {
    purpose: &'static str,
    keys: Vec<(String, [u8; 32])>,
}

impl Seal {
    /// The keys that seal two-factor secrets, derived from every key on `ring`.
    pub fn two_factor(ring: &Keyring) -> Seal {
        Seal::for_purpose(ring, TWO_FACTOR)
    }

    /// The keys that seal mail bodies in the outbox, derived from every key on `ring`.
    pub fn outbox(ring: &Keyring) -> Seal {
        Seal::for_purpose(ring, OUTBOX)
    }

    fn for_purpose(ring: &Keyring, purpose: &'static str) -> Seal {
        let kids = ring.kids().into_iter().map(str::to_string);
        Seal {
            purpose,
            keys: kids.zip(ring.purpose_keys(purpose)).collect(),
        }
    }

    /// Adds the keys of `older` that this seal lacks, to open values sealed under them (a
    /// rotation that is about to drop them).
    pub fn with_older(mut self, older: &Keyring) -> Seal {
        for (kid, key) in Seal::for_purpose(older, self.purpose).keys {
            if !self.keys.iter().any(|(k, _)| *k == kid) {
                self.keys.push((kid, key));
            }
        }
        self
    }

    fn active_kid(&self) -> &str {
        &self.keys[0].0
    }

    fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(key.into())
    }

    /// `secret` sealed for `user_id` (the owning row) under the active key, with a fresh random
    /// nonce.
    pub fn seal(&self, user_id: &str, secret: &str) -> Result<String, Error> {
        let (kid, key) = &self.keys[0];
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let sealed = Seal::cipher(key)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| Error::SecretUnreadable("encryption failed".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        Ok(format!("{V1}{kid}.{}", URL_SAFE_NO_PAD.encode(blob)))
    }

    /// The secret in `stored` (sealed for `user_id`), or why it cannot be read: not sealed,
    /// sealed under a key no longer on the ring, or altered.
    pub fn open(&self, user_id: &str, stored: &str) -> Result<String, Error> {
        let purpose = self.purpose;
        let unreadable =
            |why: &str| Error::SecretUnreadable(format!("{purpose} of {user_id}: {why}"));
        let (kid, data) = stored
            .strip_prefix(V1)
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(|| unreadable("not in the v1 format (plain text?)"))?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid).ok_or_else(|| {
            unreadable(&format!("sealed under key {kid}, which is not on the ring"))
        })?;
        let blob = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| unreadable("not base64url"))?;
        if blob.len() < NONCE_BYTES {
            return Err(unreadable("too short"));
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| unreadable("too short"))?;
        let plain = Seal::cipher(key)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| {
                unreadable(&format!("does not open under key {kid} (altered or moved)"))
            })?;
        String::from_utf8(plain).map_err(|_| unreadable("not text"))
    }

    /// The value to store instead of `stored`, when it is in plain text or sealed under a key
    /// other than the active one; `None` when it is fine as it is.
    fn resealed(&self, user_id: &str, stored: &str) -> Result<Option<String>, Error> {
        let Some(rest) = stored.strip_prefix(V1) else {
            return self.seal(user_id, stored).map(Some);
        };
        if rest
            .split_once('.')
            .is_some_and(|(kid, _)| kid == self.active_kid())
        {
            return Ok(None);
        }
        let secret = self.open(user_id, stored)?;
        self.seal(user_id, &secret).map(Some)
    }
}

/// Seals plain secrets and moves sealed ones to the active key, the writes in one transaction;
/// each row is replaced only if it still holds the value read (another instance may be doing the
/// same), so running it again, or on several instances at once, is harmless. The rows are read
/// and encrypted before the transaction, which then only writes: a SQLite transaction that read
/// first could not take the write lock while another instance holds it (SQLITE_BUSY), and with
/// nothing to change there is no transaction at all. A row that cannot be opened is logged and
/// left as it is. Returns how many rows were rewritten.
pub fn reseal_all(conn: &mut DbConnection, seal: &Seal) -> Result<usize, Error> {
    let mut changes = Vec::new();
    for (user_id, stored) in TwoFactor::stored_secrets(conn)? {
        match seal.resealed(&user_id, &stored) {
            Ok(Some(new)) => changes.push((user_id, stored, new)),
            Ok(None) => {}
            Err(e) => log::error!("two-factor secret left as it is: {e}"),
        }
    }
    if changes.is_empty() {
        return Ok(0);
    }
    conn.write_transaction(|conn| {
        let mut changed = 0;
        for (user_id, old, new) in &changes {
            if TwoFactor::replace_secret(conn, user_id, old, new)? {
                changed += 1;
            }
        }
        Ok(changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_from(seed: u8) -> Keyring {
        let secret: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37) ^ seed).collect();
        Keyring::from_secret(&secret).unwrap()
    }

    fn ring() -> Keyring {
        ring_from(7)
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        let seal = Seal::two_factor(&ring());
        let stored = seal.seal("alice", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(stored.starts_with("v1.env-"));
        assert!(!stored.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(seal.open("alice", &stored).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(seal.open("bob", &stored).is_err(), "bound to the user id");
        assert_ne!(stored, seal.seal("alice", "JBSWY3DPEHPK3PXP").unwrap());
        let mut tampered = stored.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(seal
            .open("alice", &String::from_utf8(tampered).unwrap())
            .is_err());
        assert!(seal.open("alice", "JBSWY3DPEHPK3PXP").is_err(), "plain");
        let other = Seal::two_factor(&ring_from(8));
        assert!(other.open("alice", &stored).is_err(), "unknown key");
    }
}
