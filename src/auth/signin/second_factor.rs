//! The second step of a sign-in whose password was right: a code from the authenticator app
//! (each 30-second code works once, on any instance) or an unused recovery code. Wrong codes
//! count towards the same lockout as wrong passwords.

use super::{wait_until, Proof, Refused, SignIn, Verified};
use crate::auth::two_factor::{self, Redeemed};
use crate::auth::Seal;
use crate::db::DbConnection;
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{AuditKind, LoginAttempt, RecoveryCode, TwoFactor, User};

/// How the code step went, inside its database work.
pub(super) enum CodeCheck {
    Right,
    Recovery(i64),
    NotNeeded,
    Wrong(&'static str),
    Locked(time::PrimitiveDateTime),
    /// The stored secret does not open (altered, or its key is gone): why.
    Unreadable(String),
}

/// Checks `input` as the user's app code or an unused recovery code (used up when right), in the
/// caller's transaction: the one code check of the sign-in code step and the reset page.
pub(super) fn check_code(
    conn: &mut DbConnection,
    user_id: &str,
    seal: &Seal,
    input: &str,
    now: time::OffsetDateTime,
) -> Result<CodeCheck, Error> {
    let Some(tf) = TwoFactor::enabled(conn, user_id)? else {
        return Ok(CodeCheck::NotNeeded);
    };
    if input.is_empty() {
        return Ok(CodeCheck::Wrong("empty"));
    }
    let redeemed = match two_factor::redeem(conn, &tf, seal, input, now) {
        Err(Error::SecretUnreadable(why)) => return Ok(CodeCheck::Unreadable(why)),
        other => other?,
    };
    Ok(match redeemed {
        Redeemed::AppCode => CodeCheck::Right,
        Redeemed::RecoveryCode => CodeCheck::Recovery(RecoveryCode::remaining(conn, user_id)?),
        Redeemed::Reused => CodeCheck::Wrong("code_reused"),
        Redeemed::Wrong if two_factor::looks_like_app_code(input) => CodeCheck::Wrong("bad_code"),
        Redeemed::Wrong => CodeCheck::Wrong("bad_recovery_code"),
    })
}

impl SignIn<'_> {
    /// Checks `input` for the user whose password was right a moment ago.
    pub async fn second_factor(&self, user_id: &str, input: &str) -> Result<Verified, Refused> {
        let id = user_id.to_string();
        let found = self.db.run(move |conn| User::find(conn, &id)).await?;
        let Some(user) = found else {
            return Err(Refused::Invalid);
        };
        let subject = Who::user(&user.id, &user.username);
        let now = self.sessions.clock().now();
        let db_now = self.sessions.clock().db_now();
        let device = {
            let (devices, id) = (self.devices.clone(), user.id.clone());
            self.db
                .run(move |conn| devices.trusted(conn, &id, db_now))
                .await?
        };
        if device.is_none() {
            self.throttled(AuditKind::TwoFactorFailed, Some(subject))
                .await?;
        }
        let key = LoginAttempt::key_for_user(&user.id);
        let input = input.trim().to_string();
        let disabled = user.disabled;
        let seal = self.sessions.two_factor_seal();
        let outcome = self
            .db
            .run({
                let (id, key, trusted) = (user.id.clone(), key.clone(), device.is_some());
                move |conn| {
                    // A trusted device is judged by its own failures, not the account's.
                    let locked = match trusted {
                        true => None,
                        false => LoginAttempt::locked_until(conn, &key, db_now)?,
                    };
                    if let Some(until) = locked {
                        return Ok(CodeCheck::Locked(until));
                    }
                    if disabled {
                        // Disabled between the two steps: the same answer as a wrong code,
                        // counted the same way; the reason goes to the log and the audit trail.
                        log::info!("two-factor sign-in refused: account {id} is disabled");
                        return Ok(CodeCheck::Wrong("disabled"));
                    }
                    // Two-factor turned off (by an admin) since the password step: the password
                    // alone signs in now (NotNeeded).
                    check_code(conn, &id, &seal, &input, now)
                }
            })
            .await?;
        let proof = match outcome {
            CodeCheck::Locked(until) => {
                self.record(
                    Event::new(AuditKind::TwoFactorFailed, &self.peer)
                        .subject(subject)
                        .detail("locked"),
                )
                .await;
                return Err(Refused::Locked(wait_until(until, db_now)));
            }
            CodeCheck::Unreadable(why) => {
                // Not the user's fault and not a guess: no lockout count, a clear answer, and
                // the detail for the administrators.
                log::error!("two-factor sign-in refused: {why}");
                self.record(
                    Event::new(AuditKind::TwoFactorFailed, &self.peer)
                        .subject(subject)
                        .detail("secret_unreadable"),
                )
                .await;
                return Err(Refused::TwoFactorUnavailable);
            }
            CodeCheck::Wrong(reason) => {
                return Err(match device {
                    Some(nonce) => {
                        self.device_failed(
                            AuditKind::TwoFactorFailed,
                            subject,
                            reason,
                            nonce,
                            db_now,
                        )
                        .await
                    }
                    None => {
                        self.failed(AuditKind::TwoFactorFailed, subject, reason, key, db_now)
                            .await
                    }
                });
            }
            CodeCheck::Recovery(left) => {
                self.record(
                    Event::new(AuditKind::RecoveryCodeUsed, &self.peer)
                        .by_self(subject)
                        .detail(format!("{left} left")),
                )
                .await;
                Proof::PasswordAndRecoveryCode
            }
            CodeCheck::Right => Proof::PasswordAndCode,
            CodeCheck::NotNeeded => Proof::PasswordTwoFactorTurnedOff,
        };
        let id = user.id.clone();
        // As with the password: a trusted device's success leaves the account's lockout alone.
        let clear_lockout = device.is_none();
        self.db
            .run(move |conn| {
                if clear_lockout {
                    LoginAttempt::clear(conn, &key)?;
                }
                User::record_login(conn, &id, db_now)
            })
            .await?;
        Ok(Verified { user, proof })
    }
}
