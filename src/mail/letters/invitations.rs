//! Letters about invitations.

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::Role;

impl Letter {
    /// "You are invited": to the invited address, with the single-use link `link`, who invited,
    /// the role and when the link expires.
    pub fn invitation(
        mailer: &Mailer,
        to: &str,
        link: &str,
        invited_by: &str,
        role: Role,
        expires_at: PrimitiveDateTime,
    ) -> Letter {
        let role = match role {
            Role::Admin => "an administrator",
            Role::User => "a user",
        };
        Letter {
            kind: "invitation",
            to: to.to_string(),
            user_id: None,
            subject: "You are invited to latchkey".into(),
            values: json!({
                "link": link,
                "invited_by": invited_by,
                "role": role,
                "expires": when(expires_at),
                "site": mailer.link("/"),
            }),
        }
    }
}
