//! The password as a first factor: per-client throttling (shared by instances), account lockout
//! (in the database, so every instance counts the same failures), argon2 verification against a
//! dummy hash for unknown names, and the audit trail. A browser holding a trusted device cookie
//! for the account skips the throttle and the lockout and is judged by its own failures.

use super::{wait_until, FirstStep, Proof, Refused, SignIn, Verified};
use crate::events::{Event, Who};
use crate::models::{AuditKind, LoginAttempt, TwoFactor, User};
use crate::validation::PASSWORD_MAX_CHARS;

/// What the database says about a sign-in before the password is checked.
struct Standing {
    user: Option<User>,
    key: String,
    /// The nonce of this browser's trusted device for the account, if any.
    device: Option<String>,
}

impl SignIn<'_> {
    /// Checks `login` (username or email) and `password`, counting failures and recording
    /// events. A right password for an account with two-factor asks for the second step.
    pub async fn password(&self, login: &str, password: String) -> Result<FirstStep, Refused> {
        let now = self.sessions.clock().db_now();
        let Standing { user, key, device } = self
            .db
            .run({
                let login = login.to_string();
                let devices = self.devices.clone();
                move |conn| {
                    let user = User::find_by_login(conn, &login)?;
                    let (key, device) = match &user {
                        Some(user) => (
                            LoginAttempt::key_for_user(&user.id),
                            devices.trusted(conn, &user.id, now)?,
                        ),
                        None => (LoginAttempt::key_for_name(&login), None),
                    };
                    Ok(Standing { user, key, device })
                }
            })
            .await?;
        if device.is_none() {
            self.throttled(AuditKind::LoginFailed, Some(Who::name(login)))
                .await?;
        }
        let subject = match &user {
            Some(u) => Who::user(&u.id, &u.username),
            None => Who::name(login),
        };
        if device.is_none() {
            let locked_until = {
                let key = key.clone();
                self.db
                    .run(move |conn| LoginAttempt::locked_until(conn, &key, now))
                    .await?
            };
            if let Some(until) = locked_until {
                self.record(
                    Event::new(AuditKind::LoginFailed, &self.peer)
                        .subject(subject)
                        .detail("locked"),
                )
                .await;
                return Err(Refused::Locked(wait_until(until, now)));
            }
        }

        // No account has a longer password; refusing before hashing keeps the work bounded.
        let verified = password.chars().count() <= PASSWORD_MAX_CHARS
            && self
                .hasher
                .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
                .await?;
        // A disabled account answers exactly as a wrong password does, after the same hash
        // check, and counts towards the same lockout: from outside, nothing tells a right
        // password for a disabled account from a wrong one. Only the log and the audit trail
        // know.
        let failure = match &user {
            None => Some("unknown_user"),
            Some(_) if !verified => Some("bad_password"),
            Some(u) if u.disabled => {
                log::info!("sign-in refused: account {} is disabled", u.id);
                Some("disabled")
            }
            _ => None,
        };
        if let Some(reason) = failure {
            return Err(match device {
                Some(nonce) => {
                    self.device_failed(AuditKind::LoginFailed, subject, reason, nonce, now)
                        .await
                }
                None => {
                    self.failed(AuditKind::LoginFailed, subject, reason, key, now)
                        .await
                }
            });
        }
        let Some(user) = user else {
            return Err(Refused::Invalid);
        };
        let id = user.id.clone();
        // A trusted device's success leaves the account's lockout as it is: strangers stay
        // locked out while the owner signs in.
        let clear_lockout = device.is_none();
        let needs_code = self
            .db
            .run(move |conn| {
                if TwoFactor::enabled(conn, &id)?.is_some() {
                    return Ok(true);
                }
                if clear_lockout {
                    LoginAttempt::clear(conn, &key)?;
                }
                User::record_login(conn, &id, now)?;
                Ok(false)
            })
            .await?;
        Ok(if needs_code {
            FirstStep::SecondFactor(user)
        } else {
            FirstStep::SignedIn(Verified {
                user,
                proof: Proof::Password,
            })
        })
    }
}
