//! Passkeys into the pipeline: a sign-in with a passkey alone (no name typed; the key and the
//! user's verification on it count as multi-factor), and a passkey as the second factor after
//! the password. A ceremony's first step (`begin_*`) stores its state in the database; the
//! second takes it out once (on any instance), verifies the answer with webauthn-rs and ends in
//! [`Verified`] like every other way in. A passkey is not a secret that can be guessed, so a
//! refused answer counts towards the client's sign-in limit, not the account's lockout — and a
//! lockout someone aimed at the account by guessing its password does not stop its owner's
//! passkey.

use serde_json::Value;
use webauthn_rs::prelude::Passkey as Credential;

use super::{Proof, Refused, SignIn, Verified};
use crate::auth::passkeys::{
    credential_from_json, credential_to_json, credentials_of, PasskeyRefusal, Passkeys,
};
use crate::error::Error;
use crate::events::{Event, Who};
use crate::models::{
    credential_id_text, passkey_ceremony, AuditKind, CeremonyPurpose, LoginAttempt, Passkey, User,
};

/// Why a passkey step did not let the person in.
#[derive(Debug)]
pub enum PasskeyRefused {
    /// The answer failed (see [`PasskeyRefusal`]).
    Refusal(PasskeyRefusal),
    /// Too many attempts from this client; try again after this long.
    Throttled(std::time::Duration),
    /// The site has passkeys turned off.
    Off,
    /// The check itself could not run.
    Failed(Error),
}

impl From<Error> for PasskeyRefused {
    fn from(e: Error) -> PasskeyRefused {
        PasskeyRefused::Failed(e)
    }
}

impl From<PasskeyRefusal> for PasskeyRefused {
    fn from(r: PasskeyRefusal) -> PasskeyRefused {
        PasskeyRefused::Refusal(r)
    }
}

/// A verified answer: the account, its passkey that answered, and that passkey's record as it
/// should be stored from now on when its counter or flags changed.
type Checked = (User, Passkey, Option<Credential>);

/// A refused answer, and the account it named when that much was known (for the audit trail).
struct Failure {
    refused: PasskeyRefused,
    user: Option<User>,
}

fn fail(refused: impl Into<PasskeyRefused>, user: Option<&User>) -> Failure {
    Failure {
        refused: refused.into(),
        user: user.cloned(),
    }
}

impl SignIn<'_> {
    fn relying_party(&self) -> Result<&Passkeys, PasskeyRefused> {
        self.passkeys.ok_or(PasskeyRefused::Off)
    }

    /// Counts a ceremony's first step towards the client's sign-in limit: each one is a row
    /// until it is used or expires.
    async fn passkey_throttle(&self, subject: Option<Who<'_>>) -> Result<(), PasskeyRefused> {
        match self.throttled(AuditKind::LoginFailed, subject).await {
            Ok(()) => Ok(()),
            Err(Refused::Throttled(wait)) => Err(PasskeyRefused::Throttled(wait)),
            Err(Refused::Failed(e)) => Err(PasskeyRefused::Failed(e)),
            Err(_) => Ok(()),
        }
    }

    /// Begins a passkey sign-in with no name typed: `{"ceremony": …, "publicKey": …}`.
    pub async fn begin_passkey(&self) -> Result<Value, PasskeyRefused> {
        let passkeys = self.relying_party()?;
        self.passkey_throttle(None).await?;
        let now = self.sessions.clock().db_now();
        let started = passkeys.start_sign_in()?;
        Ok(started
            .store(self.db, CeremonyPurpose::SignIn, None, now)
            .await?)
    }

    /// Finishes a passkey sign-in: the ceremony (once), the credential the answer names
    /// (registered here, owned by the account the answer claims, not disabled), and its
    /// signature, user verification and counter (webauthn-rs).
    pub async fn passkey(&self, ceremony: &str, answer: &str) -> Result<Verified, PasskeyRefused> {
        let checked = self.check_passkey(ceremony, answer).await;
        self.conclude(checked, |name| Proof::Passkey { name }).await
    }

    /// A checked answer's end: its use stored and [`Verified`] with `proof` (given the
    /// passkey's name), or the refusal recorded.
    async fn conclude(
        &self,
        checked: Result<Checked, Failure>,
        proof: fn(String) -> Proof,
    ) -> Result<Verified, PasskeyRefused> {
        let used = match checked {
            Ok((user, row, updated)) => match self.passkey_used(&user, &row, updated, true).await {
                Ok(()) => Ok(Verified {
                    user,
                    proof: proof(row.name),
                }),
                Err(f) => Err(f),
            },
            Err(f) => Err(f),
        };
        match used {
            Ok(verified) => Ok(verified),
            Err(f) => Err(self.passkey_failed(f, AuditKind::LoginFailed).await),
        }
    }

    async fn check_passkey(&self, ceremony: &str, answer: &str) -> Result<Checked, Failure> {
        let passkeys = self.relying_party().map_err(|r| fail(r, None))?;
        let now = self.sessions.clock().db_now();
        let ceremony = ceremony.to_string();
        let taken = self
            .db
            .run(move |conn| passkey_ceremony::take(conn, &ceremony, CeremonyPurpose::SignIn, now))
            .await
            .map_err(|e| fail(e, None))?
            .ok_or_else(|| fail(PasskeyRefusal::Expired, None))?;
        let (answer, handle, credential_id) =
            passkeys.identify(answer).map_err(|r| fail(r, None))?;
        let found = self
            .db
            .run(move |conn| {
                let Some(row) = Passkey::find_by_credential(conn, &credential_id)? else {
                    return Ok(None);
                };
                Ok(User::find(conn, &row.user_id)?.map(|user| (row, user)))
            })
            .await
            .map_err(|e| fail(e, None))?;
        let Some((row, user)) = found else {
            return Err(fail(PasskeyRefusal::Unknown, None));
        };
        if row.user_id != handle {
            // The answer's user handle names another account than the credential's owner.
            log::info!("passkey sign-in refused: user handle {handle} does not own the credential");
            return Err(fail(PasskeyRefusal::Unknown, Some(&user)));
        }
        if user.disabled {
            let why = format!("account {} is disabled", user.id);
            return Err(fail(PasskeyRefusal::NotVerified(why), Some(&user)));
        }
        let stored = credential_from_json(&row.passkey).map_err(|e| fail(e, Some(&user)))?;
        let updated = passkeys
            .finish_sign_in(&answer, &taken.state, &stored)
            .map_err(|r| fail(r, Some(&user)))?;
        Ok((user, row, updated))
    }

    /// Begins a passkey as the second factor for `user_id`, whose password was right a moment
    /// ago: any of the account's passkeys may answer.
    pub async fn begin_passkey_second_factor(
        &self,
        user_id: &str,
    ) -> Result<Value, PasskeyRefused> {
        self.begin_account_passkey(user_id, CeremonyPurpose::SecondFactor)
            .await
    }

    /// Begins "Confirm it's you" with a passkey for the signed-in `user_id` (sudo mode).
    pub async fn begin_passkey_confirm(&self, user_id: &str) -> Result<Value, PasskeyRefused> {
        self.begin_account_passkey(user_id, CeremonyPurpose::Confirm)
            .await
    }

    async fn begin_account_passkey(
        &self,
        user_id: &str,
        purpose: CeremonyPurpose,
    ) -> Result<Value, PasskeyRefused> {
        let passkeys = self.relying_party()?;
        self.passkey_throttle(None).await?;
        let id = user_id.to_string();
        let rows = self
            .db
            .run(move |conn| Passkey::for_user(conn, &id))
            .await?;
        if rows.is_empty() {
            return Err(PasskeyRefusal::Unknown.into());
        }
        let now = self.sessions.clock().db_now();
        let started = passkeys.start_second_factor(&credentials_of(&rows)?)?;
        Ok(started.store(self.db, purpose, Some(user_id), now).await?)
    }

    /// Finishes a passkey second factor for `user_id`: the ceremony begun for that account
    /// (once), and an answer from one of its passkeys.
    pub async fn passkey_second_factor(
        &self,
        user_id: &str,
        ceremony: &str,
        answer: &str,
    ) -> Result<Verified, PasskeyRefused> {
        let checked = self
            .check_account_passkey(user_id, ceremony, answer, CeremonyPurpose::SecondFactor)
            .await;
        self.conclude(checked, |name| Proof::PasswordAndPasskey { name })
            .await
    }

    /// Finishes "Confirm it's you" with a passkey for the signed-in `user_id`: the passkey's
    /// name. Not a sign-in: the sign-in time stays; a refusal is recorded as a failed proof.
    pub async fn passkey_confirm(
        &self,
        user_id: &str,
        ceremony: &str,
        answer: &str,
    ) -> Result<String, PasskeyRefused> {
        let checked = self
            .check_account_passkey(user_id, ceremony, answer, CeremonyPurpose::Confirm)
            .await;
        let used = match checked {
            Ok((user, row, updated)) => self
                .passkey_used(&user, &row, updated, false)
                .await
                .map(|()| row.name),
            Err(f) => Err(f),
        };
        match used {
            Ok(name) => Ok(name),
            Err(f) => Err(self.passkey_failed(f, AuditKind::SudoFailed).await),
        }
    }

    /// Checks an answer from one of `user_id`'s own passkeys to a ceremony begun for them.
    async fn check_account_passkey(
        &self,
        user_id: &str,
        ceremony: &str,
        answer: &str,
        purpose: CeremonyPurpose,
    ) -> Result<Checked, Failure> {
        let passkeys = self.relying_party().map_err(|r| fail(r, None))?;
        let now = self.sessions.clock().db_now();
        let (ceremony, id) = (ceremony.to_string(), user_id.to_string());
        let (taken, user, rows) = self
            .db
            .run(move |conn| {
                let taken = passkey_ceremony::take(conn, &ceremony, purpose, now)?;
                Ok((taken, User::find(conn, &id)?, Passkey::for_user(conn, &id)?))
            })
            .await
            .map_err(|e| fail(e, None))?;
        let Some(user) = user else {
            return Err(fail(PasskeyRefusal::Unknown, None));
        };
        let taken = match taken {
            Some(t) if t.user_id.as_deref() == Some(user_id) => t,
            _ => return Err(fail(PasskeyRefusal::Expired, Some(&user))),
        };
        if user.disabled {
            let why = format!("account {} is disabled", user.id);
            return Err(fail(PasskeyRefusal::NotVerified(why), Some(&user)));
        }
        let credentials = credentials_of(&rows).map_err(|e| fail(e, Some(&user)))?;
        let (credential_id, updated) = passkeys
            .finish_second_factor(answer, &taken.state, &credentials)
            .map_err(|r| fail(r, Some(&user)))?;
        let credential_id = credential_id_text(&credential_id);
        // webauthn-rs checked the answer against the credentials the ceremony allowed; one was
        // removed meanwhile if it is not among the rows read with the ceremony.
        let Some(row) = rows.into_iter().find(|r| r.credential_id == credential_id) else {
            return Err(fail(PasskeyRefusal::Unknown, Some(&user)));
        };
        Ok((user, row, updated))
    }

    /// A passkey proved `user`: its use (and new counter) stored — refused if it was removed a
    /// moment ago — the account's lockout cleared (its owner proved who they are) and, for a
    /// sign-in, the sign-in stamped.
    async fn passkey_used(
        &self,
        user: &User,
        row: &Passkey,
        updated: Option<Credential>,
        sign_in: bool,
    ) -> Result<(), Failure> {
        let updated = updated
            .as_ref()
            .map(credential_to_json)
            .transpose()
            .map_err(|e| fail(e, Some(user)))?;
        let now = self.sessions.clock().db_now();
        let (row_id, user_id) = (row.id.clone(), user.id.clone());
        let key = LoginAttempt::key_for_user(&user.id);
        let still_there = self
            .db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    if !Passkey::record_use(conn, &row_id, updated.as_deref(), now)? {
                        return Ok(false);
                    }
                    LoginAttempt::clear(conn, &key)?;
                    if sign_in {
                        User::record_login(conn, &user_id, now)?;
                    }
                    Ok(true)
                })
            })
            .await
            .map_err(|e| fail(e, Some(user)))?;
        if still_there {
            Ok(())
        } else {
            Err(fail(PasskeyRefusal::Unknown, Some(user)))
        }
    }

    /// Records a refused passkey answer as `failed` (a counter that went back as its own event:
    /// a cloned authenticator) and logs the detail.
    async fn passkey_failed(&self, failure: Failure, failed: AuditKind) -> PasskeyRefused {
        let Failure { refused, user } = failure;
        let (kind, reason) = match &refused {
            PasskeyRefused::Refusal(PasskeyRefusal::CounterRegressed) => (
                AuditKind::PasskeyCounterRegressed,
                "signature counter went back: the passkey may have been cloned".to_string(),
            ),
            PasskeyRefused::Refusal(r) => (failed, format!("passkey: {}", describe(r))),
            PasskeyRefused::Failed(e) => {
                log::error!("passkey sign-in could not be checked: {e}");
                return refused;
            }
            PasskeyRefused::Throttled(_) | PasskeyRefused::Off => return refused,
        };
        log::info!("passkey refused: {reason}");
        let mut event = Event::new(kind, &self.peer).detail(reason);
        if let Some(user) = &user {
            event = event.subject(Who::user(&user.id, &user.username));
        }
        self.record(event).await;
        refused
    }
}

fn describe(refusal: &PasskeyRefusal) -> String {
    match refusal {
        PasskeyRefusal::Malformed(why) => format!("malformed answer ({why})"),
        PasskeyRefusal::Expired => "ceremony unknown, used or expired".into(),
        PasskeyRefusal::Unknown => "credential not registered".into(),
        PasskeyRefusal::CounterRegressed => "signature counter went back".into(),
        PasskeyRefusal::NotVerified(why) => format!("not verified ({why})"),
    }
}
