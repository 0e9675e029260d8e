//! Signing keys: one active key that signs, older keys that only verify, each named by a `kid`
//! and pinned to one algorithm (HS256 secrets, EdDSA or ES256 key pairs). They come from
//! `LATCHKEY_JWT_SECRET` or from the key file that `latchkey keys rotate` writes. A retired key
//! verifies until `retired_at + key_grace_secs` by the clock, whatever the file still holds.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{JwtAlgorithm, Settings};
use crate::error::Error;

/// Shortest secret accepted, in bytes (RFC 7518 §3.2: at least the hash size for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

const HOW_TO_MAKE_A_KEY: &str = "run `latchkey keys rotate` to create a key file, or set \
LATCHKEY_JWT_SECRET to at least 32 random bytes (for example the output of `openssl rand -base64 48`)";

/// One key of the ring.
pub struct SigningKey {
    /// The `kid` header value naming this key.
    pub kid: String,
    /// The only algorithm tokens naming this key are checked with (RFC 8725 §3.1).
    alg: JwtAlgorithm,
    /// Unix seconds after which it verifies nothing (`retired_at + key_grace_secs`); `None`
    /// while it signs, or for a key with no retirement on record.
    verifies_until: Option<i64>,
    /// Keys for other purposes (CSRF tokens, pending sign-ins) are derived from this.
    derived: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public half, as published in the JWKS (key pairs only; never an HS256 secret).
    public: Option<Jwk>,
}

impl SigningKey {
    /// An HS256 key from its shared secret.
    fn hmac(kid: String, secret: &[u8]) -> SigningKey {
        SigningKey {
            kid,
            alg: JwtAlgorithm::HS256,
            verifies_until: None,
            derived: derive(secret),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            public: None,
        }
    }

    /// An EdDSA or ES256 key from its private key (PKCS#8 DER); the reason when it is not one.
    fn pair(kid: String, alg: JwtAlgorithm, pkcs8: &[u8]) -> Result<SigningKey, String> {
        let (encoding, private) = match alg {
            JwtAlgorithm::HS256 => return Err("an HS256 key has a secret, not a key pair".into()),
            JwtAlgorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8)
                    .map_err(|e| format!("not an Ed25519 private key in PKCS#8: {e}"))?;
                // jsonwebtoken publishes only the bare RFC 8410 form (no public key inside).
                (
                    EncodingKey::from_ed_der(&ed25519_v1_der(&key)?),
                    key.to_bytes().to_vec(),
                )
            }
            JwtAlgorithm::ES256 => {
                let key = p256::SecretKey::from_pkcs8_der(pkcs8)
                    .map_err(|e| format!("not a P-256 private key in PKCS#8: {e}"))?;
                (EncodingKey::from_ec_der(pkcs8), key.to_bytes().to_vec())
            }
        };
        let mut public = Jwk::from_encoding_key(&encoding, alg.into())
            .map_err(|e| format!("its public key cannot be derived: {e}"))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&public)
            .map_err(|e| format!("its public key cannot be used: {e}"))?;
        Ok(SigningKey {
            kid,
            alg,
            verifies_until: None,
            derived: derive(&private),
            encoding,
            decoding,
            public: Some(public),
        })
    }

    /// For signing tokens.
    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// For verifying tokens.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The algorithm this key signs and verifies with, and no other.
    pub fn alg(&self) -> JwtAlgorithm {
        self.alg
    }

    /// The same, as jsonwebtoken names it.
    pub fn algorithm(&self) -> Algorithm {
        self.alg.into()
    }

    /// Unix seconds after which this key verifies nothing, if it is retired.
    pub fn verifies_until(&self) -> Option<i64> {
        self.verifies_until
    }

    /// Whether it still verifies at `now` (Unix seconds): signing, or retired within its grace.
    pub fn verifies_at(&self, now: i64) -> bool {
        self.verifies_until.is_none_or(|until| now <= until)
    }

    /// The public key as a JWK (`kid`, `alg`, `use: sig`); `None` for an HS256 secret.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public.as_ref()
    }
}

/// The 32-byte root of the other MACs, from a secret or a private key's bytes.
fn derive(secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"latchkey derived key v1\0");
    hasher.update(secret);
    hasher.finalize().into()
}

/// An Ed25519 private key as PKCS#8 v1 (RFC 8410: the seed alone, 48 bytes).
fn ed25519_v1_der(key: &ed25519_dalek::SigningKey) -> Result<Vec<u8>, String> {
    ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_der()
    .map(|doc| doc.as_bytes().to_vec())
    .map_err(|e| format!("cannot encode the Ed25519 key: {e}"))
}

/// A new private key for `alg`, as PKCS#8 DER.
fn generate_pair(alg: JwtAlgorithm) -> Result<Vec<u8>, Error> {
    let failed = |e: String| Error::Config(format!("cannot generate an {alg} key: {e}"));
    match alg {
        JwtAlgorithm::HS256 => Err(failed("HS256 uses a secret".into())),
        JwtAlgorithm::EdDSA => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
            ed25519_v1_der(&ed25519_dalek::SigningKey::from_bytes(&seed)).map_err(failed)
        }
        JwtAlgorithm::ES256 => p256::SecretKey::random(&mut rand::rngs::OsRng)
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|e| failed(e.to_string())),
    }
}

impl From<JwtAlgorithm> for Algorithm {
    fn from(alg: JwtAlgorithm) -> Algorithm {
        match alg {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        }
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
        let wanted = settings.jwt_algorithm;
        if let Some(secret) = settings.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            if wanted != JwtAlgorithm::HS256 {
                return Err(Error::Config(format!(
                    "jwt_algorithm is {wanted} but LATCHKEY_JWT_SECRET is set, and a shared secret \
                     signs only HS256: unset LATCHKEY_JWT_SECRET and run `latchkey keys rotate \
                     --alg {wanted}` to create a key pair in {}, or set jwt_algorithm = HS256",
                    settings.key_file.display()
                )));
            }
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
                KeyFile::rotate_with(path, settings.key_grace_secs, wanted)?;
            } else {
                return Err(Error::Config(format!(
                    "no signing key: {} does not exist and LATCHKEY_JWT_SECRET is not set; {HOW_TO_MAKE_A_KEY}",
                    path.display()
                )));
            }
        }
        let ring = KeyFile::read(path)?.into_keyring(path, settings.key_grace_secs)?;
        let active = ring.active();
        if active.alg != wanted {
            return Err(Error::Config(format!(
                "the active key {} in {} is {} but jwt_algorithm is {wanted}: run `latchkey keys \
                 rotate --alg {wanted}` to make a new {wanted} key active, or set jwt_algorithm = {} \
                 (LATCHKEY_JWT_ALGORITHM={})",
                active.kid,
                path.display(),
                active.alg,
                active.alg,
                active.alg
            )));
        }
        Ok(ring)
    }

    /// The ring in the key file at `path`, whatever its active key's algorithm (for `keys
    /// rotate`, which may switch it).
    pub fn from_file(path: &Path, grace_secs: i64) -> Result<Keyring, Error> {
        KeyFile::read(path)?.into_keyring(path, grace_secs)
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
            keys: vec![SigningKey::hmac(kid, secret)],
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

    /// The public keys that verify at `now` (Unix seconds), active first, for
    /// `/.well-known/jwks.json`: key pairs only, so a ring of HS256 secrets publishes none.
    pub fn public_keys(&self, now: i64) -> JwkSet {
        let active = std::iter::once(self.active());
        let others = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.active)
            .map(|(_, k)| k);
        JwkSet {
            keys: active
                .chain(others)
                .filter(|k| k.verifies_at(now))
                .filter_map(|k| k.public.clone())
                .collect(),
        }
    }

    /// A 32-byte key per ring key (active first), derived from each secret or private key, for
    /// other MACs.
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
    /// What it signs with; files written before key pairs existed hold HS256 secrets only.
    #[serde(default)]
    pub alg: JwtAlgorithm,
    /// An HS256 secret, base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// An EdDSA or ES256 private key: PKCS#8 DER, base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
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
    /// Its algorithm.
    pub alg: JwtAlgorithm,
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

    fn into_keyring(self, path: &Path, grace_secs: i64) -> Result<Keyring, Error> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for stored in &self.keys {
            let invalid = |why: String| {
                Error::Config(format!(
                    "key {} in {} is not usable: {why}; {HOW_TO_MAKE_A_KEY}",
                    stored.kid,
                    path.display()
                ))
            };
            let base64 = |field: &Option<String>, name: &str| {
                let text = field
                    .as_deref()
                    .ok_or_else(|| invalid(format!("an {} key needs `{name}`", stored.alg)))?;
                URL_SAFE_NO_PAD
                    .decode(text)
                    .map_err(|e| invalid(format!("`{name}` is not base64url: {e}")))
            };
            let mut key = match stored.alg {
                JwtAlgorithm::HS256 => {
                    let secret = base64(&stored.secret, "secret")?;
                    check_strength(&secret).map_err(|why| {
                        Error::Config(format!(
                            "key {} in {} is too weak: {why}; {HOW_TO_MAKE_A_KEY}",
                            stored.kid,
                            path.display()
                        ))
                    })?;
                    SigningKey::hmac(stored.kid.clone(), &secret)
                }
                alg => {
                    let der = base64(&stored.private_key, "private_key")?;
                    SigningKey::pair(stored.kid.clone(), alg, &der).map_err(invalid)?
                }
            };
            if stored.kid != self.active {
                key.verifies_until = stored
                    .retired_at
                    .map(|at| at.unix_timestamp().saturating_add(grace_secs));
            }
            keys.push(key);
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

    /// [`KeyFile::rotate_with`] an HS256 secret.
    pub fn rotate(path: &Path, grace_secs: i64) -> Result<Rotation, Error> {
        KeyFile::rotate_with(path, grace_secs, JwtAlgorithm::HS256)
    }

    /// Adds a new active key for `alg` (creating the file if needed), keeps the previous keys
    /// for verification and drops those retired more than `grace_secs` ago.
    pub fn rotate_with(path: &Path, grace_secs: i64, alg: JwtAlgorithm) -> Result<Rotation, Error> {
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
        let (secret, private_key) = if alg == JwtAlgorithm::HS256 {
            let mut secret = [0u8; 48];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            (Some(URL_SAFE_NO_PAD.encode(secret)), None)
        } else {
            (None, Some(URL_SAFE_NO_PAD.encode(generate_pair(alg)?)))
        };
        let kid_bytes: [u8; 6] = rand::random();
        let new_kid = format!("k{}-{}", now.unix_timestamp(), hex(&kid_bytes));
        let mut keys = vec![StoredKey {
            kid: new_kid.clone(),
            alg,
            secret,
            private_key,
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
            alg,
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
