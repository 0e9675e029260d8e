//! Users, sessions and API keys as the pages show them: one shape each, shared by the account
//! pages and the admin panel.

use serde::Serialize;
use time::PrimitiveDateTime;

use crate::models::{ApiKey, Passkey, Session, User};
use crate::peer::describe_browser;
use crate::text::format_db_time;

/// A user's profile on a page.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// `user` or `admin`.
    pub role: &'static str,
    /// An admin disabled the account.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: String,
    /// The last sign-in, or empty.
    pub last_login_at: String,
}

impl UserView {
    /// The view of a user row.
    pub fn of(user: &User) -> UserView {
        UserView {
            id: user.id.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role().as_str(),
            disabled: user.disabled,
            created_at: format_db_time(user.created_at),
            last_login_at: user.last_login_at.map(format_db_time).unwrap_or_default(),
        }
    }
}

/// A session on the devices pages.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// The session id (for its sign-out button).
    pub id: String,
    /// "Firefox on Linux".
    pub browser: String,
    /// The address it signed in from.
    pub ip: String,
    /// When it started.
    pub created_at: String,
    /// Last renewal.
    pub last_seen_at: String,
    /// When it ends at the latest.
    pub expires_at: String,
    /// "Remember me" was ticked.
    pub remember: bool,
    /// It is the session of this request.
    pub current: bool,
}

impl SessionView {
    /// The view of a session; `current_sid` marks this request's own.
    pub fn of(session: &Session, current_sid: Option<&str>) -> SessionView {
        SessionView {
            id: session.id.clone(),
            browser: describe_browser(&session.user_agent),
            ip: session.ip.clone(),
            created_at: format_db_time(session.created_at),
            last_seen_at: format_db_time(session.last_seen_at),
            expires_at: format_db_time(session.expires_at),
            remember: session.remember,
            current: current_sid == Some(session.id.as_str()),
        }
    }
}

/// An API key on the keys pages (never its secret).
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// Id.
    pub id: String,
    /// What its owner called it.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// `read` or `full`.
    pub scope: String,
    /// When it was made.
    pub created_at: String,
    /// When it expires, or empty.
    pub expires_at: String,
    /// When it was last exchanged for a token, or empty.
    pub last_used_at: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
}

impl KeyView {
    /// The view of a key at `now`.
    pub fn of(key: &ApiKey, now: PrimitiveDateTime) -> KeyView {
        KeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            scope: key.scope.clone(),
            created_at: format_db_time(key.created_at),
            expires_at: key.expires_at.map(format_db_time).unwrap_or_default(),
            last_used_at: key.last_used_at.map(format_db_time).unwrap_or_default(),
            status: key.status(now),
        }
    }
}

/// A passkey on the account and admin pages (never its key material).
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    /// Row id.
    pub id: String,
    /// What its owner called it.
    pub name: String,
    /// When it was registered.
    pub created_at: String,
    /// When it last signed in, or empty.
    pub last_used_at: String,
}

impl PasskeyView {
    /// The view of a passkey.
    pub fn of(passkey: &Passkey) -> PasskeyView {
        PasskeyView {
            id: passkey.id.clone(),
            name: passkey.name.clone(),
            created_at: format_db_time(passkey.created_at),
            last_used_at: passkey.last_used_at.map(format_db_time).unwrap_or_default(),
        }
    }
}
