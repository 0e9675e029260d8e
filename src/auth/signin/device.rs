//! The device cookie (OWASP's "device cookies"): a browser that signed in to an account keeps a
//! signed entry naming the account and a random nonce (a `trusted_devices` row). Its MAC key is
//! derived from the signing keys for this purpose alone, and every key of the ring verifies, so
//! entries survive a key rotation within its grace. One cookie holds the entries of up to
//! [`MAX_ACCOUNTS`] accounts, newest first.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rocket::http::CookieJar;
use sha2::Sha256;

use crate::auth::cookie::{CookieKind, Cookies};
use crate::auth::Keyring;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::TrustedDevice;

/// The purpose the cookie's MAC keys are derived for.
const PURPOSE: &str = "device cookie";

/// Most accounts one browser's cookie remembers (the oldest is dropped).
pub const MAX_ACCOUNTS: usize = 5;

/// Separates entries in the cookie's value.
const ENTRY_SEPARATOR: char = '~';

/// One account this browser signed in to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    user_id: String,
    nonce: String,
}

/// The genuine entries of a browser's device cookie.
#[derive(Debug, Clone, Default)]
pub struct DeviceCookie {
    entries: Vec<Entry>,
}

fn mac(key: &[u8; 32], entry: &Entry) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(entry.user_id.as_bytes());
    mac.update(b"\0");
    mac.update(entry.nonce.as_bytes());
    mac
}

fn parse(part: &str, keys: &[[u8; 32]]) -> Option<Entry> {
    let mut fields = part.split('.');
    let (user_id, nonce, tag) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let entry = Entry {
        user_id: user_id.to_string(),
        nonce: nonce.to_string(),
    };
    keys.iter()
        .any(|key| mac(key, &entry).verify_slice(&tag).is_ok())
        .then_some(entry)
}

impl DeviceCookie {
    /// The entries of the browser's cookie whose MAC verifies (forged or tampered ones are
    /// dropped, and so is anything past [`MAX_ACCOUNTS`]).
    pub fn load(jar: &CookieJar<'_>, keys: &Keyring, cookies: &Cookies) -> DeviceCookie {
        let Some(cookie) = jar.get(cookies.name(CookieKind::Device)) else {
            return DeviceCookie::default();
        };
        let keys = keys.purpose_keys(PURPOSE);
        let entries = cookie
            .value()
            .split(ENTRY_SEPARATOR)
            .take(MAX_ACCOUNTS)
            .filter_map(|part| parse(part, &keys))
            .collect();
        DeviceCookie { entries }
    }

    /// The nonce this browser holds for `user_id`, if any.
    pub fn nonce_for(&self, user_id: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.user_id == user_id)
            .map(|e| e.nonce.as_str())
    }

    /// The nonce of this browser's device for `user_id` if that device is still trusted (a
    /// database read only when the cookie holds a genuine entry for that account).
    pub fn trusted(
        &self,
        conn: &mut DbConnection,
        user_id: &str,
        now: time::PrimitiveDateTime,
    ) -> Result<Option<String>, Error> {
        let Some(nonce) = self.nonce_for(user_id) else {
            return Ok(None);
        };
        Ok(TrustedDevice::is_trusted(conn, nonce, user_id, now)?.then(|| nonce.to_string()))
    }

    /// Puts `user_id`'s new nonce first (replacing an older one) and sets the cookie for
    /// `max_age`.
    pub fn save_with(
        mut self,
        user_id: &str,
        nonce: &str,
        jar: &CookieJar<'_>,
        keys: &Keyring,
        cookies: &Cookies,
        max_age: time::Duration,
    ) {
        self.entries.retain(|e| e.user_id != user_id);
        self.entries.insert(
            0,
            Entry {
                user_id: user_id.to_string(),
                nonce: nonce.to_string(),
            },
        );
        self.entries.truncate(MAX_ACCOUNTS);
        let key = keys.purpose_keys(PURPOSE)[0];
        let value = self
            .entries
            .iter()
            .map(|e| {
                let tag = URL_SAFE_NO_PAD.encode(mac(&key, e).finalize().into_bytes());
                format!("{}.{}.{tag}", e.user_id, e.nonce)
            })
            .collect::<Vec<_>>()
            .join(&ENTRY_SEPARATOR.to_string());
        jar.add(cookies.make(CookieKind::Device, value, Some(max_age)));
    }
}
