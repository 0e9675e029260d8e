//! Security notices: mailed to the account's current address after a change to how it signs
//! in, each one the operator can turn off (`mail_notices`).

use serde_json::json;
use time::PrimitiveDateTime;

use super::when;
use crate::mail::{Letter, Mailer};
use crate::models::User;

/// Longest browser description quoted in a mail.
const AGENT_CHARS: usize = 160;

/// What a notice is about: the letter's fields every notice shares.
fn notice(
    mailer: &Mailer,
    kind: &'static str,
    user: &User,
    subject: &str,
    at: PrimitiveDateTime,
    mut values: serde_json::Value,
) -> Letter {
    if let Some(map) = values.as_object_mut() {
        map.insert("username".into(), json!(user.username));
        map.insert("when".into(), json!(when(at)));
        map.insert("account_url".into(), json!(mailer.link("/account")));
        map.insert("forgot_url".into(), json!(mailer.link("/password/forgot")));
    }
    Letter {
        kind,
        to: user.email.clone(),
        user_id: Some(user.id.clone()),
        subject: subject.to_string(),
        values,
    }
}

impl Letter {
    /// "Two-factor sign-in was turned on/off".
    pub fn two_factor_changed(
        mailer: &Mailer,
        user: &User,
        on: bool,
        at: PrimitiveDateTime,
    ) -> Letter {
        let state = if on { "on" } else { "off" };
        notice(
            mailer,
            "two_factor_changed",
            user,
            &format!("Two-factor sign-in was turned {state}"),
            at,
            json!({ "state": state, "on": on }),
        )
    }

    /// "New recovery codes were made" (the old ones stopped working).
    pub fn recovery_codes_made(mailer: &Mailer, user: &User, at: PrimitiveDateTime) -> Letter {
        notice(
            mailer,
            "recovery_codes",
            user,
            "New recovery codes were made",
            at,
            json!({}),
        )
    }

    /// "A new API key was created": its name and expiry, never the key.
    pub fn api_key_created(
        mailer: &Mailer,
        user: &User,
        name: &str,
        expires_at: Option<PrimitiveDateTime>,
        at: PrimitiveDateTime,
    ) -> Letter {
        notice(
            mailer,
            "api_key_created",
            user,
            "A new API key was created",
            at,
            json!({
                "name": name,
                "expires": expires_at.map(when),
                "keys_url": mailer.link("/account/api-keys"),
            }),
        )
    }

    /// "A passkey was added" / "A passkey was removed" (by the owner or an administrator).
    pub fn passkey_changed(
        mailer: &Mailer,
        user: &User,
        name: &str,
        added: bool,
        at: PrimitiveDateTime,
    ) -> Letter {
        let subject = if added {
            "A passkey was added to your account"
        } else {
            "A passkey was removed from your account"
        };
        notice(
            mailer,
            "passkey_changed",
            user,
            subject,
            at,
            json!({
                "name": name,
                "added": added,
                "passkeys_url": mailer.link("/account/passkeys"),
            }),
        )
    }

    /// "A sign-in from a new browser": its User-Agent (truncated) and address.
    pub fn new_device(
        mailer: &Mailer,
        user: &User,
        user_agent: Option<&str>,
        ip: Option<String>,
        at: PrimitiveDateTime,
    ) -> Letter {
        let browser = user_agent
            .map(|ua| {
                let ua: String = ua.chars().filter(|c| !c.is_control()).collect();
                if ua.chars().count() > AGENT_CHARS {
                    let cut: String = ua.chars().take(AGENT_CHARS).collect();
                    format!("{cut}…")
                } else {
                    ua
                }
            })
            .filter(|ua| !ua.trim().is_empty());
        notice(
            mailer,
            "new_device",
            user,
            "A sign-in from a new browser",
            at,
            json!({
                "browser_name": user_agent.map(crate::peer::describe_browser),
                "browser": browser,
                "ip": ip,
                "sessions_url": mailer.link("/account/sessions"),
            }),
        )
    }
}

impl Mailer {
    /// Mails the notice `make` writes to user `user_id`'s current address, unless the operator
    /// turned `notice` off; failures are logged (the change it is about is already saved).
    pub async fn notify_user<F>(
        &self,
        db: &crate::db::Db,
        notice: crate::config::Notice,
        user_id: &str,
        now: PrimitiveDateTime,
        make: F,
    ) where
        F: FnOnce(&Mailer, &User) -> Letter,
    {
        if !self.notice_on(notice) {
            return;
        }
        let id = user_id.to_string();
        match db.run(move |conn| User::find(conn, &id)).await {
            Ok(Some(user)) => {
                let letter = make(self, &user);
                self.notify(db, notice, &letter, now).await;
            }
            Ok(None) => {}
            Err(e) => log::error!("notice for user {user_id} not queued: {e}"),
        }
    }
}
