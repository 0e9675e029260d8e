//! The rules for what people type: usernames, emails and passwords, with messages that say what to do.

use std::collections::BTreeMap;

use rocket::form;
use serde::Serialize;

/// Shortest password accepted, in characters (ASVS 2.1.1).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password accepted, in characters; longer ones are refused before hashing.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Lowest zxcvbn score (0–4) accepted.
const PASSWORD_MIN_SCORE: u8 = 3;

/// Messages keyed by form field name, shown beside each field; `form` is for the whole form.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// One message for the whole form.
    pub fn form(message: impl Into<String>) -> FieldErrors {
        let mut errors = FieldErrors::new();
        errors.add("form", message);
        errors
    }

    /// The messages of a submitted form's field validators.
    pub fn of(context: &form::Context<'_>) -> FieldErrors {
        let mut errors = FieldErrors::new();
        for error in context.errors() {
            let field = error
                .name
                .as_ref()
                .map_or_else(|| "form".to_string(), |n| n.to_string());
            let message = match &error.kind {
                form::error::ErrorKind::Validation(message) => message.to_string(),
                form::error::ErrorKind::Missing => "Fill in this field.".to_string(),
                _ => "This value could not be read. Check it and try again.".to_string(),
            };
            errors.add(field, message);
        }
        errors
    }

    /// Records a message for `field`, keeping the first one given.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub mod field;

/// A username: 3–32 of `A–Z a–z 0–9 _ . -`, surrounding spaces ignored.
pub fn username(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter a username.".into());
    }
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err("Use 3 to 32 characters for your username.".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("Use only letters A–Z, digits, and _ . - in your username.".into());
    }
    Ok(name.to_string())
}

/// An email address in the usual `name@domain.tld` form, surrounding spaces ignored.
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim();
    if email.is_empty() {
        return Err("Enter your email address.".into());
    }
    let invalid = || "Enter an email address like name@example.com.".to_string();
    if email.len() > 254 {
        return Err("That email address is too long.".into());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().count() >= 2);
    if local_ok && domain_ok {
        Ok(email.to_string())
    } else {
        Err(invalid())
    }
}

/// A new password's length: 12–128 characters of any kind.
pub fn password_length(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if password.is_empty() {
        Err("Enter a password.".into())
    } else if chars < PASSWORD_MIN_CHARS {
        Err(format!(
            "Use at least {PASSWORD_MIN_CHARS} characters; a few unrelated words make a good one."
        ))
    } else if chars > PASSWORD_MAX_CHARS {
        Err(format!("Use at most {PASSWORD_MAX_CHARS} characters."))
    } else {
        Ok(())
    }
}

/// Refuses common and guessable passwords (zxcvbn score below 3), with zxcvbn's advice.
/// `context` holds words the password must not lean on (username, email). CPU-bound: call it
/// from the blocking pool.
pub fn password_strength(password: &str, context: &[&str]) -> Result<(), String> {
    let estimate = zxcvbn::zxcvbn(password, context);
    if u8::from(estimate.score()) >= PASSWORD_MIN_SCORE {
        return Ok(());
    }
    let mut message = String::from("This password is too easy to guess.");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push(' ');
            message.push_str(&warning.to_string());
        }
        for suggestion in feedback.suggestions().iter().take(2) {
            message.push(' ');
            message.push_str(&suggestion.to_string());
        }
    }
    Err(message)
}

/// [`new_password`] on the blocking pool, never on the async workers (zxcvbn is slow), with
/// the form's other non-empty values (username, address) as context.
pub async fn new_password_off_workers(
    password: String,
    confirm: String,
    context: &[&str],
) -> Result<Vec<(&'static str, String)>, crate::error::Error> {
    let context: Vec<String> = context
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    rocket::tokio::task::spawn_blocking(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        new_password(&password, &confirm, &context)
    })
    .await
    .map_err(|e| crate::error::Error::Task(e.to_string()))
}

/// The whole check for a new password: length, then strength, then that both copies match.
pub fn new_password(
    password: &str,
    confirm: &str,
    context: &[&str],
) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    match password_length(password).and_then(|_| password_strength(password, context)) {
        Err(message) => errors.push(("password", message)),
        Ok(()) if password != confirm => errors.push((
            "password_confirm",
            "The two passwords do not match.".to_string(),
        )),
        Ok(()) => {}
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username("  alice_1.b-c ").unwrap(), "alice_1.b-c");
        for bad in [
            "",
            "ab",
            &"a".repeat(33),
            "al ice",
            "alice!",
            "élodie",
            "a<b>c",
            "bob\u{200b}",
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert!(email("a.b+tag@example.co.uk").is_ok());
        assert!(email("josé@exämple.org").is_ok());
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a@b.c", "a b@c.de", "a@@b.de", ".a@b.de", "a@-b.de",
            "<a>@b.de",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password_length("short").is_err());
        assert!(password_length(&"x".repeat(129)).is_err());
        assert!(password_strength("password1234", &[]).is_err());
        assert!(password_strength("correct horse battery staple", &[]).is_ok());
        assert!(password_strength("ünïcødé pässwörd ∂ƒ©˙∆", &[]).is_ok());
        assert!(password_strength("aliceexample12", &["aliceexample"]).is_err());
    }
}
