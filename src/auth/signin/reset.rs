//! A reset link as a first factor: the link proves the mailbox (or an admin's word), and an
//! account with two-factor still needs its code — the reset never bypasses it. Wrong codes
//! count per client (the sign-in limit) and per account under their own lockout key, so a
//! link gives no more guesses at the code than the sign-in form does.

use super::second_factor::{check_code, CodeCheck};
use super::{wait_until, Proof, Refused, SignIn};
use crate::events::{Event, Who};
use crate::models::{AuditKind, LoginAttempt, User};

impl SignIn<'_> {
    /// Checks `input` (an app code or a recovery code, used up when right) for `user`, who
    /// holds a valid reset link; answers the proof the new session carries. Two-factor turned
    /// off meanwhile: the link alone.
    pub async fn reset_code(&self, user: &User, input: &str) -> Result<Proof, Refused> {
        let subject = Who::user(&user.id, &user.username);
        self.throttled(AuditKind::TwoFactorFailed, Some(subject))
            .await?;
        let key = LoginAttempt::key_for_reset(&user.id);
        let now = self.sessions.clock().now();
        let db_now = self.sessions.clock().db_now();
        let seal = self.sessions.two_factor_seal();
        let input = input.trim().to_string();
        let outcome = self
            .db
            .run({
                let (id, key) = (user.id.clone(), key.clone());
                move |conn| {
                    if let Some(until) = LoginAttempt::locked_until(conn, &key, db_now)? {
                        return Ok(CodeCheck::Locked(until));
                    }
                    check_code(conn, &id, &seal, &input, now)
                }
            })
            .await?;
        match outcome {
            CodeCheck::Right => Ok(Proof::ResetLinkAndCode),
            CodeCheck::Recovery(left) => {
                self.record(
                    Event::new(AuditKind::RecoveryCodeUsed, &self.peer)
                        .by_self(subject)
                        .detail(format!("{left} left, on the reset page")),
                )
                .await;
                Ok(Proof::ResetLinkAndRecoveryCode)
            }
            CodeCheck::NotNeeded => Ok(Proof::ResetLink),
            CodeCheck::Wrong(reason) => Err(self
                .failed(
                    AuditKind::TwoFactorFailed,
                    subject,
                    &format!("{reason} (reset link)"),
                    key,
                    db_now,
                )
                .await),
            CodeCheck::Locked(until) => {
                self.record(
                    Event::new(AuditKind::TwoFactorFailed, &self.peer)
                        .subject(subject)
                        .detail("locked (reset link)"),
                )
                .await;
                Err(Refused::Locked(wait_until(until, db_now)))
            }
            CodeCheck::Unreadable(why) => {
                log::error!("two-factor code on the reset page not checked: {why}");
                Err(Refused::TwoFactorUnavailable)
            }
        }
    }
}
