//! Letters about addresses: proving one, a sign-up with one that is already registered, and
//! changing one (the link to the new address, the notice with its undo link to the old one).

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::User;

impl Letter {
    /// "Confirm your address": the verification link, to the account's address.
    pub fn verify_email(mailer: &Mailer, user: &User, raw_token: &str) -> Letter {
        Letter {
            kind: "verify_email",
            to: user.email.clone(),
            user_id: Some(user.id.clone()),
            subject: "Confirm your latchkey address".to_string(),
            values: json!({
                "username": user.username,
                "link": mailer.link(&format!("/email/verify/{raw_token}")),
                "hours": 48,
            }),
        }
    }

    /// "Someone tried to sign up with your address": to the owner of an address that was given
    /// again at sign-up (the form answered as for a new account, so it tells nobody else).
    pub fn signup_attempt(mailer: &Mailer, user: &User, at: PrimitiveDateTime) -> Letter {
        Letter {
            kind: "signup_attempt",
            to: user.email.clone(),
            user_id: Some(user.id.clone()),
            subject: "Someone tried to sign up with your address".to_string(),
            values: json!({
                "username": user.username,
                "when": when(at),
                "login_url": mailer.link("/login"),
                "forgot_url": mailer.link("/password/forgot"),
            }),
        }
    }

    /// "Confirm your new address": the change link, to the new address.
    pub fn email_change(mailer: &Mailer, user: &User, new_email: &str, raw_token: &str) -> Letter {
        Letter {
            kind: "email_change",
            to: new_email.to_string(),
            user_id: Some(user.id.clone()),
            subject: "Confirm your new latchkey address".to_string(),
            values: json!({
                "username": user.username,
                "link": mailer.link(&format!("/email/change/{raw_token}")),
                "hours": 24,
            }),
        }
    }

    /// "Your address was changed": to the old address, with the link that puts it back.
    pub fn email_changed(
        mailer: &Mailer,
        user: &User,
        old_email: &str,
        new_domain: &str,
        raw_token: &str,
        at: PrimitiveDateTime,
    ) -> Letter {
        Letter {
            kind: "email_changed",
            to: old_email.to_string(),
            user_id: Some(user.id.clone()),
            subject: "Your latchkey address was changed".to_string(),
            values: json!({
                "username": user.username,
                "when": when(at),
                "new_domain": new_domain,
                "undo_url": mailer.link(&format!("/email/undo/{raw_token}")),
                "days": 7,
            }),
        }
    }
}
