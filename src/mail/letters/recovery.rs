//! Letters about getting back into an account.

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::User;

/// How long a mailed reset link works, in minutes (the letter says so).
pub const RESET_LINK_MINUTES: i64 = 30;

impl Letter {
    /// "Reset your password": the single-use link `raw` opens, to the account's address, with
    /// when and from where it was asked for.
    pub fn password_reset(
        mailer: &Mailer,
        user: &User,
        raw: &str,
        ip: Option<String>,
        at: PrimitiveDateTime,
    ) -> Letter {
        Letter {
            kind: "password_reset",
            to: user.email.clone(),
            user_id: Some(user.id.clone()),
            subject: "Reset your latchkey password".into(),
            values: json!({
                "username": user.username,
                "reset_url": mailer.link(&format!("/password/reset/{raw}")),
                "minutes": RESET_LINK_MINUTES,
                "when": when(at),
                "ip": ip,
            }),
        }
    }
}
