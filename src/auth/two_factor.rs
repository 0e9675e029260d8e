//! Two-factor sign-in: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew) with totp-rs,
//! the otpauth URI and its QR code, and recovery codes. (The cookie that carries a sign-in from
//! its password step to its code step is `signin::PendingSignIn`.)

use qrcode::render::svg;
use qrcode::QrCode;
use rand::Rng;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::Seal;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::{RecoveryCode, TwoFactor};
use crate::text::percent_encode;

/// What a user is told when their stored secret cannot be decrypted (the detail is logged).
pub const UNAVAILABLE: &str = "Two-factor sign-in with your authenticator app is unavailable for \
     this account. Enter one of your recovery codes, or contact an administrator, who can reset it.";

/// What a user is told when a form asks for the app's current code and gets something else.
pub const WRONG_APP_CODE: &str =
    "That code is not right, or was already used. Enter the 6-digit code your app shows now.";

/// Seconds per code.
const STEP_SECS: i64 = 30;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// A new random shared secret (160 bits, as RFC 4226 recommends), base32.
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::from(bytes)
        .to_base32()
        .trim_end_matches('=')
        .to_string()
}

fn totp(secret: &str) -> Option<Totp> {
    let bytes = Secret::try_from_base32(secret).ok()?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS as u64)
        .with_secret(bytes)
        .build()
        .ok()
}

/// The step whose code `code` is, at `now` give or take one step; `None` if it is no such code.
pub fn check_code(secret: &str, code: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = u64::try_from(now.unix_timestamp()).ok()?;
    // Compares in constant time over the window of one step either side.
    let step = totp(secret)?.check(&code, time)?;
    i64::try_from(step).ok()
}

/// What a code typed at a second-factor prompt turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The app's current code, not used before; its step is now used.
    AppCode,
    /// An unused recovery code; it is now used up.
    RecoveryCode,
    /// The app's code for a step that was already used.
    Reused,
    /// Neither.
    Wrong,
}

/// Accepts `input` as the app's current code for `tf` (its secret opened with `seal`), once per
/// 30-second step (on any instance). `Error::SecretUnreadable` when the secret does not open.
pub fn redeem_app_code(
    conn: &mut DbConnection,
    tf: &TwoFactor,
    seal: &Seal,
    input: &str,
    now: OffsetDateTime,
) -> Result<Redeemed, Error> {
    let secret = seal.open(&tf.user_id, &tf.secret)?;
    Ok(match check_code(&secret, input, now) {
        Some(step) if TwoFactor::accept_step(conn, &tf.user_id, step)? => Redeemed::AppCode,
        Some(_) => Redeemed::Reused,
        None => Redeemed::Wrong,
    })
}

/// Accepts `input` as the app's current code or, when it does not look like one, as one of
/// the user's unused recovery codes (which work even when the secret does not open).
pub fn redeem(
    conn: &mut DbConnection,
    tf: &TwoFactor,
    seal: &Seal,
    input: &str,
    now: OffsetDateTime,
) -> Result<Redeemed, Error> {
    if looks_like_app_code(input) {
        return redeem_app_code(conn, tf, seal, input, now);
    }
    let now = now.to_offset(time::UtcOffset::UTC);
    let at = time::PrimitiveDateTime::new(now.date(), now.time());
    Ok(if RecoveryCode::redeem(conn, &tf.user_id, input, at)? {
        Redeemed::RecoveryCode
    } else {
        Redeemed::Wrong
    })
}

/// The code an authenticator app shows at `now` (tests, and the CLI's checks).
pub fn code_at(secret: &str, now: OffsetDateTime) -> Option<String> {
    let time = u64::try_from(now.unix_timestamp()).ok()?;
    Some(totp(secret)?.generate(time).to_string())
}

/// Whether `input` looks like a code from the app rather than a recovery code.
pub fn looks_like_app_code(input: &str) -> bool {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The `otpauth://` URI authenticator apps read from the QR code.
pub fn otpauth_uri(issuer: &str, username: &str, secret: &str) -> String {
    let issuer = percent_encode(issuer, b"");
    format!(
        "otpauth://totp/{issuer}:{}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        percent_encode(username, b""),
    )
}

/// The URI as an inline SVG QR code (no script, no inline style: fine under the CSP).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_string())
}

/// Fresh recovery codes, `xxxxx-xxxxx` from an unambiguous alphabet (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut code = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    code.push('-');
                }
                code.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
            }
            code
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_accepted_in_its_step_and_the_neighbours_only() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let code = code_at(&secret, now).unwrap();
        let step = now.unix_timestamp() / STEP_SECS;
        assert_eq!(check_code(&secret, &code, now), Some(step));
        assert_eq!(check_code(&secret, &format!(" {code} "), now), Some(step));
        let later = now + time::Duration::seconds(STEP_SECS);
        assert_eq!(check_code(&secret, &code, later), Some(step));
        let too_late = now + time::Duration::seconds(3 * STEP_SECS);
        assert_eq!(check_code(&secret, &code, too_late), None);
        assert_eq!(check_code(&secret, "12345", now), None);
        assert_eq!(check_code(&secret, "abcdef", now), None);
        assert_eq!(check_code("not base32!", &code, now), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_well_formed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(!looks_like_app_code(code));
        }
    }

    #[test]
    fn the_uri_names_the_site_and_the_user() {
        let uri = otpauth_uri("latchkey", "ada lovelace", "ABC");
        assert_eq!(
            uri,
            "otpauth://totp/latchkey:ada%20lovelace?secret=ABC&issuer=latchkey&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&uri).unwrap().starts_with("<svg"));
    }
}
