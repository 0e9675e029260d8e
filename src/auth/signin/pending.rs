//! The short-lived signed cookie that carries a sign-in from its password step to its code
//! step. Its MAC key is derived from the signing keys for this purpose alone, so no other token
//! the site makes (CSRF tokens included) can stand in for it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rocket::http::CookieJar;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::auth::cookie::{CookieKind, Cookies};
use crate::auth::Keyring;

/// How long the code step may follow the password step.
pub const PENDING_SECS: i64 = 5 * 60;

/// The purpose the cookie's MAC keys are derived for.
const PURPOSE: &str = "pending sign-in";

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The user.
    pub user_id: String,
    /// "Remember me" was ticked on the password step.
    pub remember: bool,
    /// Unix time after which the code step is refused.
    pub expires: i64,
}

fn mac(key: &[u8; 32], binding: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(binding.as_bytes());
    mac
}

impl PendingSignIn {
    /// A pending sign-in for `user_id` from `now` for [`PENDING_SECS`].
    pub fn new(user_id: &str, remember: bool, now: OffsetDateTime) -> PendingSignIn {
        PendingSignIn {
            user_id: user_id.to_string(),
            remember,
            expires: now.unix_timestamp() + PENDING_SECS,
        }
    }

    fn binding(&self) -> String {
        format!(
            "{}.{}.{}",
            self.user_id,
            u8::from(self.remember),
            self.expires
        )
    }

    /// Sets the signed cookie (HttpOnly, SameSite=Strict, for the browser session only).
    pub fn save(&self, jar: &CookieJar<'_>, keys: &Keyring, cookies: &Cookies) {
        let key = keys.purpose_keys(PURPOSE)[0];
        let binding = self.binding();
        let tag = URL_SAFE_NO_PAD.encode(mac(&key, &binding).finalize().into_bytes());
        jar.add(cookies.make(CookieKind::PendingSignIn, format!("{binding}.{tag}"), None));
    }

    /// The pending sign-in the browser holds, if its cookie is genuine and not expired.
    pub fn load(
        jar: &CookieJar<'_>,
        keys: &Keyring,
        cookies: &Cookies,
        now: OffsetDateTime,
    ) -> Option<PendingSignIn> {
        let value = jar
            .get(cookies.name(CookieKind::PendingSignIn))?
            .value()
            .to_string();
        let mut parts = value.splitn(4, '.');
        let user_id = parts.next()?.to_string();
        let remember = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let expires: i64 = parts.next()?.parse().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let pending = PendingSignIn {
            user_id,
            remember,
            expires,
        };
        let binding = pending.binding();
        let genuine = keys
            .purpose_keys(PURPOSE)
            .iter()
            .any(|key| mac(key, &binding).verify_slice(&tag).is_ok());
        (genuine && now.unix_timestamp() <= expires).then_some(pending)
    }

    /// Removes the cookie.
    pub fn clear(jar: &CookieJar<'_>, cookies: &Cookies) {
        jar.remove(cookies.removal(CookieKind::PendingSignIn));
    }
}
