//! Signing keys: one active key that signs, older keys that only verify, each named by a `kid`.
//! They come from `LATCHKEY_JWT_SECRET` or from the key file that `latchkey keys rotate` writes.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::Error;

/// Shortest secret accepted, in bytes (RFC 7518 §3.2: at least the hash size for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

const HOW_TO_MAKE_A_KEY: &str = "run `latchkey keys rotate` to create a key file, or set \
LATCHKEY_JWT_SECRET to at least 32 random bytes (for example the output of `openssl rand -base64 48`)";

/// One key of the ring.
pub struct SigningKey {
    /// The `kid` header value naming this key.
    pub kid: String,
    /// Keys for other purposes (CSRF tokens) are derived from this secret.
    derived: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    fn new(kid: String, secret: &[u8]) -> SigningKey {
        let mut hasher = Sha256::new();
        hasher.update(b"latchkey derived key v1\0");
        hasher.update(secret);
        SigningKey {
            kid,
            derived: hasher.finalize().into(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// For signing tokens.
    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// For verifying tokens.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The active key plus the verify-only keys still inside their grace period.
pub struct Keyring {
    active: usize,
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active().kid)
            .field("kids", &self.kids())
            .finish()
    }
}

impl Keyring {
    /// Loads the keys the settings name. Debug builds create a key file when there is none.
    pub fn load(settings: &Settings) -> Result<Keyring, Error> {
        if let Some(secret) = settings.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            return Keyring::from_secret(secret.as_bytes());
        }
        let path = &settings.key_file;
        if !path.exists() {
            if settings.create_key_file() {
                log::warn!(
                    "no signing key configured: created {} for this debug build; \
                     production needs a key of its own ({HOW_TO_MAKE_A_KEY})",
                    path.display()
                );
                KeyFile::rotate(path, settings.key_grace_secs)?;
            } else {
                return Err(Error::Config(format!(
                    "no signing key: {} does not exist and LATCHKEY_JWT_SECRET is not set; {HOW_TO_MAKE_A_KEY}",
                    path.display()
                )));
            }
        }
        KeyFile::read(path)?.into_keyring(path)
    }

    /// A ring of one key from a secret given directly (environment or tests).
    pub fn from_secret(secret: &[u8]) -> Result<Keyring, Error> {
        check_strength(secret).map_err(|why| {
            Error::Config(format!(
                "LATCHKEY_JWT_SECRET is too weak: {why}; {HOW_TO_MAKE_A_KEY}"
            ))
        })?;
        let digest = Sha256::digest(secret);
        let kid = format!("env-{}", hex(&digest[..6]));
        Ok(Keyring {
            active: 0,
            keys: vec![SigningKey::new(kid, secret)],
        })
    }

    /// The key new tokens are signed with.
    pub fn active(&self) -> &SigningKey {
        &self.keys[self.active]
    }

    /// The key named `kid`, if it is on the ring.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// A 32-byte key per ring key (active first), derived from each secret, for other MACs.
    pub fn derived_keys(&self) -> Vec<[u8; 32]> {
        let mut keys = vec![self.active().derived];
        keys.extend(
            self.keys
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.active)
                .map(|(_, k)| k.derived),
        );
        keys
    }

    /// A 32-byte key per ring key (active first) for one purpose alone: a MAC made for one
    /// purpose never verifies for another.
    pub fn purpose_keys(&self, purpose: &str) -> Vec<[u8; 32]> {
        self.derived_keys()
            .iter()
            .map(|derived| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(derived)
                    .expect("HMAC takes any key length");
                mac.update(b"latchkey purpose key v1\0");
                mac.update(purpose.as_bytes());
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    /// Every `kid` on the ring, active first.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids = vec![self.active().kid.as_str()];
        kids.extend(
            self.keys
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.active)
                .map(|(_, k)| k.kid.as_str()),
        );
        kids
    }
}

/// Why a secret is unfit to sign tokens, if it is.
pub fn check_strength(secret: &[u8]) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "it is {} bytes long and at least {MIN_SECRET_BYTES} are required",
            secret.len()
        ));
    }
    let mut seen = [false; 256];
    secret.iter().for_each(|b| seen[*b as usize] = true);
    if seen.iter().filter(|s| **s).count() < 8 {
        return Err("it repeats too few distinct characters to be random".into());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key file as stored on disk (JSON, mode 0600).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// The `kid` that signs.
    pub active: String,
    /// Every key, active and verify-only.
    pub keys: Vec<StoredKey>,
}

/// One key in the file.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredKey {
    /// Its name in token headers.
    pub kid: String,
    /// The secret, base64url without padding.
    pub secret: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a newer key replaced it; it verifies until `retired_at + key_grace_secs`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

/// What `keys rotate` did.
#[derive(Debug)]
pub struct Rotation {
    /// The new active key.
    pub new_kid: String,
    /// Keys kept for verification.
    pub kept: Vec<String>,
    /// Keys dropped because their grace period had passed.
    pub dropped: Vec<String>,
}

impl KeyFile {
    /// Reads and parses the key file.
    pub fn read(path: &Path) -> Result<KeyFile, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("cannot read key file {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("key file {} is not valid: {e}", path.display())))
    }

    fn into_keyring(self, path: &Path) -> Result<Keyring, Error> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for stored in &self.keys {
            let secret = URL_SAFE_NO_PAD.decode(&stored.secret).map_err(|e| {
                Error::Config(format!(
                    "key {} in {} is not base64url: {e}",
                    stored.kid,
                    path.display()
                ))
            })?;
            check_strength(&secret).map_err(|why| {
                Error::Config(format!(
                    "key {} in {} is too weak: {why}; {HOW_TO_MAKE_A_KEY}",
                    stored.kid,
                    path.display()
                ))
            })?;
            keys.push(SigningKey::new(stored.kid.clone(), &secret));
        }
        let active = keys
            .iter()
            .position(|k| k.kid == self.active)
            .ok_or_else(|| {
                Error::Config(format!(
                    "key file {} names active key {} but does not contain it",
                    path.display(),
                    self.active
                ))
            })?;
        Ok(Keyring { active, keys })
    }

    /// Adds a new active key (creating the file if needed), keeps the previous keys for
    /// verification and drops those retired more than `grace_secs` ago.
    pub fn rotate(path: &Path, grace_secs: i64) -> Result<Rotation, Error> {
        let now = OffsetDateTime::now_utc();
        let mut file = if path.exists() {
            KeyFile::read(path)?
        } else {
            KeyFile {
                active: String::new(),
                keys: Vec::new(),
            }
        };
        for key in file.keys.iter_mut() {
            if key.retired_at.is_none() {
                key.retired_at = Some(now);
            }
        }
        let grace = time::Duration::seconds(grace_secs);
        let (kept, dropped): (Vec<StoredKey>, Vec<StoredKey>) = file
            .keys
            .into_iter()
            .partition(|k| k.retired_at.is_none_or(|r| r + grace > now));
        let mut secret = [0u8; 48];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let kid_bytes: [u8; 6] = rand::random();
        let new_kid = format!("k{}-{}", now.unix_timestamp(), hex(&kid_bytes));
        let mut keys = vec![StoredKey {
            kid: new_kid.clone(),
            secret: URL_SAFE_NO_PAD.encode(secret),
            created_at: now,
            retired_at: None,
        }];
        let kept_kids = kept.iter().map(|k| k.kid.clone()).collect();
        keys.extend(kept);
        let file = KeyFile {
            active: new_kid.clone(),
            keys,
        };
        file.write(path)?;
        Ok(Rotation {
            new_kid,
            kept: kept_kids,
            dropped: dropped.into_iter().map(|k| k.kid).collect(),
        })
    }

    /// Writes atomically (temp file + rename), readable by the owner only.
    fn write(&self, path: &Path) -> Result<(), Error> {
        let io =
            |e: std::io::Error| Error::Io(format!("cannot write key file {}: {e}", path.display()));
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Io(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(io)?;
        f.write_all(json.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }
}
