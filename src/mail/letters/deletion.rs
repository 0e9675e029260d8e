//! Letters about deleting an account.

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::User;

impl Letter {
    /// "Your account was deleted": the last mail to the address of a deleted account. It names
    /// no account (`user_id` is `None`), so it is not deleted with the account's rows, and is
    /// sent whatever the operator's notices say.
    pub fn account_deleted(
        mailer: &Mailer,
        user: &User,
        by_admin: bool,
        at: PrimitiveDateTime,
    ) -> Letter {
        Letter {
            kind: "account_deleted",
            to: user.email.clone(),
            user_id: None,
            subject: "Your latchkey account was deleted".to_string(),
            values: json!({
                "username": user.username,
                "by_admin": by_admin,
                "when": when(at),
                "signup_url": mailer.link("/signup"),
            }),
        }
    }
}
