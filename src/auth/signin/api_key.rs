//! An API key as a first factor (programs only): the key must be active and its owner enabled.
//! Attempts count against the client's sign-in limit; a bad key is recorded.

use super::{Proof, Refused, SignIn, Verified};
use crate::events::{Event, Who};
use crate::models::{ApiKey, AuditKind, User};

impl SignIn<'_> {
    /// Checks an API key secret; a usable key signs its owner in with the key's scope.
    pub async fn api_key(&self, secret: &str) -> Result<Verified, Refused> {
        self.throttled(AuditKind::LoginFailed, None).await?;
        let (secret, now) = (secret.trim().to_string(), self.sessions.clock().db_now());
        let found = self
            .db
            .run(move |conn| {
                let Some(key) = ApiKey::redeem(conn, &secret, now)? else {
                    return Ok(None);
                };
                Ok(User::find(conn, &key.user_id)?.map(|u| (key, u)))
            })
            .await?;
        let (key, user) = match found {
            Some((key, user)) if !user.disabled => (key, user),
            // A disabled owner's key answers as an unknown key does; the reason is recorded.
            Some((key, user)) => {
                log::info!("API key {} refused: its owner is disabled", key.prefix);
                self.record(
                    Event::new(AuditKind::LoginFailed, &self.peer)
                        .subject(Who::user(&user.id, &user.username))
                        .detail("disabled"),
                )
                .await;
                return Err(Refused::Invalid);
            }
            None => {
                self.record(Event::new(AuditKind::LoginFailed, &self.peer).detail("bad_api_key"))
                    .await;
                return Err(Refused::Invalid);
            }
        };
        let proof = Proof::ApiKey {
            scope: key.scope(),
            prefix: key.prefix,
        };
        Ok(Verified { user, proof })
    }
}
