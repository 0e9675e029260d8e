//! Access tokens: JWTs signed by the keyring's active key, checked only with the algorithm of
//! the key their `kid` names, `iss`/`aud`/`exp`/`nbf` required.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Keyring;
use crate::config::Settings;
use crate::error::Error;
use crate::models::{Role, User};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The `typ` header of every access token (RFC 9068 §2.1): a token is only accepted with it, so
/// a JWT made for another purpose (or by another system sharing the key) cannot stand in.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What an access token says: who (an opaque id), which session, what role, how it was proven and
/// how long it lives. No email, username or other personal data (RFC 8725 §3.10 / ASVS 3.5):
/// a Bearer token or a copied cookie reveals nothing about the person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer; must equal `jwt_issuer`.
    pub iss: String,
    /// Audience; must equal `jwt_audience`.
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The session this token belongs to.
    pub sid: String,
    /// When that session ends at the latest (Unix seconds); tokens are renewed up to it.
    pub sexp: i64,
    /// `user` or `admin`.
    pub role: Role,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not valid before (Unix seconds).
    pub nbf: i64,
    /// Expires at (Unix seconds); hard: never accepted after it (plus the leeway), never renewed
    /// from itself.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// `read` for tokens from a read-only API key (GET requests only); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// How the session's sign-in was authenticated (RFC 8176): `["pwd", "otp"]` after
    /// two-factor sign-in; absent after a password (or an API key) alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the session's owner last proved who they are (Unix seconds; OpenID Connect's
    /// `auth_time`): at sign-in, then at each "Confirm it's you". Sensitive actions need it
    /// within `sudo_window_secs`. Absent from tokens made from an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Present (and `true`) only when the site requires a verified address and the user has
    /// not verified theirs: such a session reaches the "Confirm your address" page and nothing
    /// else. Carried here so the hot path needs no database read; renewals recompute it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub email_unverified: bool,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Genuine and well-formed, but past its `exp` (and the leeway). An expired token is never
    /// renewed from itself: only the session's refresh value continues the session.
    Expired,
    /// Anything else: forged, tampered, wrong algorithm, unknown key, wrong issuer… (the reason, for the log).
    Invalid(String),
}

/// Who a token is for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// User id.
    pub user_id: &'a str,
    /// Current role.
    pub role: Role,
    /// Session id.
    pub session_id: &'a str,
    /// A read-only token (from a read-only API key).
    pub read_only: bool,
    /// The session's sign-in passed two-factor.
    pub two_factor: bool,
    /// A passkey proved the session's sign-in (`amr` says `hwk`).
    pub passkey: bool,
    /// When the session's owner last proved who they are (Unix seconds); `None` for API keys.
    pub auth_time: Option<i64>,
    /// The site requires a verified address and this user's is not (see [`Claims`]).
    pub email_unverified: bool,
}

/// Most verified tokens remembered; the cache is emptied when it fills.
const VERIFIED_CACHE_MAX: usize = 50_000;

impl<'a> Subject<'a> {
    /// A token for `user` in session `session_id`.
    pub fn of(user: &'a User, session_id: &'a str, read_only: bool) -> Subject<'a> {
        Subject {
            user_id: &user.id,
            role: user.role(),
            session_id,
            read_only,
            two_factor: false,
            passkey: false,
            auth_time: None,
            email_unverified: false,
        }
    }

    /// The same subject, marked as held back until the address is verified (or not).
    pub fn with_email_unverified(mut self, unverified: bool) -> Subject<'a> {
        self.email_unverified = unverified;
        self
    }

    /// The same subject, with the time of the owner's last proof (sign-in or sudo mode).
    pub fn with_auth_time(mut self, auth_time: Option<i64>) -> Subject<'a> {
        self.auth_time = auth_time;
        self
    }

    /// The same subject, marked as having passed two-factor sign-in (or not).
    pub fn with_two_factor(mut self, two_factor: bool) -> Subject<'a> {
        self.two_factor = two_factor;
        self
    }

    /// The same subject, marked as signed in with a passkey (or not).
    pub fn with_passkey(mut self, passkey: bool) -> Subject<'a> {
        self.passkey = passkey;
        self
    }
}

/// RFC 8176 methods of the session's sign-in: a passkey (a hardware-bound key, user verified:
/// `hwk`, `user`), or a password and an app or recovery code (`pwd`, `otp`); nothing for a
/// password alone. A passkey or a code counts as multi-factor ([`crate::auth::CurrentUser`]).
fn amr(subject: &Subject<'_>) -> Vec<String> {
    let methods: &[&str] = if subject.passkey {
        &["hwk", "user"]
    } else if subject.two_factor {
        &["pwd", "otp"]
    } else {
        &[]
    };
    methods.iter().map(|m| m.to_string()).collect()
}

/// A token that passed the full check: its claims (shared, not copied, by every request that
/// presents it) and when its signing key stops verifying (Unix seconds), if it is retired.
type Verified = (Arc<Claims>, Option<i64>);

/// The verified-token cache's hasher: SipHash with a random key, as usual, but over the last 32
/// bytes of each write only, the end of the token's signature, instead of the whole ~480-byte
/// token. Only tokens that passed the full check are stored, and nobody can choose their
/// signatures without the signing key, so the map's buckets cannot be stacked; a hit still
/// compares the whole text.
#[derive(Default)]
struct SignatureTail(RandomState);

impl BuildHasher for SignatureTail {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// See [`SignatureTail`].
struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(&bytes[bytes.len().saturating_sub(32)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Signs and verifies access tokens.
pub struct Tokens {
    /// Tokens that passed the full check, by their exact text, so a busy page does not repeat the
    /// base64, JSON and HMAC work on every request. Time checks (`exp`, `nbf`, the signing key's
    /// grace: the second field) still run each time, and revocation is checked by the caller.
    verified: RwLock<HashMap<String, Verified, SignatureTail>>,
    /// Swapped whole when the key file is reloaded.
    keyring: RwLock<Arc<Keyring>>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    leeway_secs: i64,
    validation: Validation,
}

impl Tokens {
    /// Builds the signer/verifier from the settings and a loaded keyring.
    pub fn new(settings: &Settings, keyring: Keyring) -> Tokens {
        // The algorithm is set per key in `verify_signature`.
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` and `nbf` are checked below against the site's clock (tests move it); the
        // library still insists they are present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Tokens {
            verified: RwLock::new(HashMap::default()),
            keyring: RwLock::new(Arc::new(keyring)),
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_secs: settings.token_ttl_secs,
            leeway_secs: settings.jwt_leeway_secs as i64,
            validation,
        }
    }

    /// The keyring in use.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Signs with (and verifies against) a new keyring from now on; forgets verified tokens, so
    /// a key dropped from the ring stops working at once.
    pub fn replace_keyring(&self, keyring: Keyring) {
        if let Ok(mut ring) = self.keyring.write() {
            *ring = Arc::new(keyring);
        }
        if let Ok(mut cache) = self.verified.write() {
            cache.clear();
        }
    }

    /// Lifetime of a new token, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a fresh token for a user's session with the active key; it never outlives `not_after`.
    pub fn issue(
        &self,
        subject: &Subject<'_>,
        now: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(String, Claims), Error> {
        let now = now.unix_timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id.to_string(),
            sid: subject.session_id.to_string(),
            sexp: not_after.unix_timestamp(),
            role: subject.role,
            iat: now,
            nbf: now,
            exp: (now + self.ttl_secs).min(not_after.unix_timestamp()),
            jti: uuid::Uuid::new_v4().to_string(),
            scp: subject.read_only.then(|| "read".to_string()),
            auth_time: subject.auth_time,
            email_unverified: subject.email_unverified,
            amr: amr(subject),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs arbitrary claims with the active key (also used by tests to build edge cases).
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let ring = self.keyring();
        let key = ring.active();
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_string());
        jsonwebtoken::encode(&header, claims, key.encoding())
            .map_err(|e| Error::TokenSigning(e.to_string()))
    }

    /// Checks a token at time `now`: size, header, algorithm, key, signature, then claims (the
    /// signature and claim checks only once per token text).
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenError> {
        let cached = self
            .verified
            .read()
            .ok()
            .and_then(|cache| cache.get(token).cloned());
        let (claims, key_until) = match cached {
            Some(verified) => verified,
            None => {
                let (claims, key_until) = self.verify_signature(token)?;
                let verified = (Arc::new(claims), key_until);
                if let Ok(mut cache) = self.verified.write() {
                    if cache.len() >= VERIFIED_CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(token.to_string(), verified.clone());
                }
                verified
            }
        };
        if key_until.is_some_and(|until| now > until) {
            return Err(TokenError::Invalid(
                "signed by a retired key whose grace period is over".into(),
            ));
        }
        if claims.nbf > now + self.leeway_secs {
            return Err(TokenError::Invalid("token is not valid yet (nbf)".into()));
        }
        if claims.auth_time.is_some_and(|t| t > claims.iat) {
            return Err(TokenError::Invalid("auth_time is after iat".into()));
        }
        if claims.exp - claims.iat > self.ttl_secs {
            return Err(TokenError::Invalid(format!(
                "token lives {} s, longer than token_ttl_secs",
                claims.exp - claims.iat
            )));
        }
        if claims.exp + self.leeway_secs < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The full cryptographic and structural check, without the time checks; also when the
    /// signing key stops verifying (Unix seconds), if it is retired.
    fn verify_signature(&self, token: &str) -> Result<(Claims, Option<i64>), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid(format!(
                "token is {} bytes, over the limit",
                token.len()
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("malformed token: {e}")))?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::Invalid(format!(
                "token type {:?} is not an access token",
                header.typ
            )));
        }
        if has_crit(token) {
            return Err(TokenError::Invalid(
                "token has a crit header, and no extension is understood".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("token has no kid".into()))?;
        let ring = self.keyring();
        let key = ring
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid(format!("unknown kid {kid:?}")))?;
        // The key decides the algorithm, never the token (RFC 8725 §3.1).
        if header.alg != key.algorithm() {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not key {kid}'s {}",
                header.alg,
                key.alg()
            )));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm()];
        jsonwebtoken::decode::<Claims>(token, key.decoding(), &validation)
            .map(|data| (data.claims, key.verifies_until()))
            .map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))
    }
}

/// Whether the token's header names critical extensions (`crit`, RFC 7515 §4.1.11). latchkey
/// understands none, so such a token must be refused; jsonwebtoken's `Header` drops the field.
fn has_crit(token: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let Some(encoded) = token.split('.').next() else {
        return true;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')) else {
        return true;
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
        Ok(header) => header.contains_key("crit"),
        Err(_) => true,
    }
}
