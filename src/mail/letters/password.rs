//! Letters about passwords.

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::User;

/// How a password came to change.
#[derive(Debug, Clone, Copy)]
pub enum HowChanged {
    /// Its owner changed it on the account page.
    Changed,
    /// It was set through a reset link.
    Reset,
}

impl Letter {
    /// "Your password was changed": to the account's address, after a change or a reset.
    pub fn password_changed(
        mailer: &Mailer,
        user: &User,
        how: HowChanged,
        ip: Option<String>,
        at: PrimitiveDateTime,
    ) -> Letter {
        let how = match how {
            HowChanged::Changed => "changed",
            HowChanged::Reset => "reset",
        };
        Letter {
            kind: "password_changed",
            to: user.email.clone(),
            user_id: Some(user.id.clone()),
            subject: format!("Your latchkey password was {how}"),
            values: json!({
                "username": user.username,
                "how": how,
                "when": when(at),
                "ip": ip,
                "forgot_url": mailer.link("/password/forgot"),
            }),
        }
    }
}
