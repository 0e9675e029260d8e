//! Passkeys (WebAuthn) through webauthn-rs: the relying party — its id is the host of
//! `public_origin` (`localhost` when unset), the only origin it accepts is that origin — and the
//! two steps of each ceremony. The state between the steps is kept in the database
//! ([`Started::store`], `models::passkey_ceremony`), so any instance finishes what another began;
//! taking it out again, and the passkey rows, are the callers' (the sign-in pipeline, the routes).

use serde_json::{json, Value};
use time::PrimitiveDateTime;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey as Credential, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::db::Db;
use crate::error::Error;
use crate::models::{passkey_ceremony, CeremonyPurpose, Passkey};

/// Why a passkey's answer was not accepted. The routes turn it into a sentence; the detail goes
/// to the log.
#[derive(Debug)]
pub enum PasskeyRefusal {
    /// The answer is not a credential at all (malformed JSON, missing fields).
    Malformed(String),
    /// The ceremony is unknown, used or expired: start again.
    Expired,
    /// No account holds this credential (never registered here, or removed).
    Unknown,
    /// The signature counter did not grow: the authenticator may have been cloned.
    CounterRegressed,
    /// Any other failed check (wrong origin or relying party, bad signature, no user
    /// verification, a credential already registered).
    NotVerified(String),
}

/// The relying party; managed state.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Webauthn,
    rp_id: String,
}

/// A ceremony's first step: the options for the browser and the state to keep.
pub struct Started {
    /// `{"publicKey": …}` for `navigator.credentials.create/get`.
    pub options: Value,
    /// webauthn-rs's state, JSON, for the database.
    pub state: String,
}

impl Passkeys {
    /// The relying party for `public_origin`, or for `http://localhost:<port>` (any port) when
    /// it is unset. An origin whose host is not a domain name (an IP address) cannot be a
    /// relying party: a start-up error that says what to set.
    pub fn new(public_origin: Option<&str>, port: u16) -> Result<Passkeys, Error> {
        let (origin, any_port) = match public_origin {
            Some(o) => (o.to_string(), false),
            None => (format!("http://localhost:{port}"), true),
        };
        let refuse = |why: String| {
            Error::Config(format!(
                "passkeys cannot use public_origin {origin}: {why}. Set LATCHKEY_PUBLIC_ORIGIN to \
                 the address people reach the site at by name (https://id.example.com, or \
                 http://localhost:{port} on this machine), or turn passkeys off \
                 (LATCHKEY_PASSKEYS=false)"
            ))
        };
        let url = Url::parse(&origin).map_err(|e| refuse(format!("not a URL ({e})")))?;
        let Some(rp_id) = url.domain().map(str::to_string) else {
            return Err(refuse(
                "its host is not a domain name, and a passkey's relying-party id must be one"
                    .into(),
            ));
        };
        if url.scheme() != "https" && rp_id != "localhost" {
            return Err(refuse(
                "browsers offer passkeys only over https (or on localhost)".into(),
            ));
        }
        let webauthn = WebauthnBuilder::new(&rp_id, &url)
            .and_then(|b| b.rp_name("latchkey").allow_any_port(any_port).build())
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Passkeys { webauthn, rp_id })
    }

    /// The relying-party id (the host passkeys are bound to).
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Starts adding a passkey to account `user_id` (a UUID: the WebAuthn user handle, no personal
    /// data), excluding the credentials it holds already. The browser is asked for a
    /// discoverable credential, so the passkey signs in with no name typed.
    pub fn start_registration(
        &self,
        user_id: &str,
        username: &str,
        existing: &[Credential],
    ) -> Result<Started, Error> {
        let handle = Uuid::parse_str(user_id)
            .map_err(|e| Error::Passkey(format!("user id {user_id} is not a UUID: {e}")))?;
        let exclude = existing.iter().map(|c| c.cred_id().clone()).collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(handle, username, username, Some(exclude))
            .map_err(|e| Error::Passkey(format!("passkey registration: {e}")))?;
        let mut options = to_value(&options)?;
        // webauthn-rs asks for "discouraged" and does not check residency either way; a passkey
        // here must be discoverable, so the browser is asked to make one.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = "required".into();
            selection["requireResidentKey"] = true.into();
        }
        Ok(Started {
            options,
            state: to_json(&state)?,
        })
    }

    /// Checks the browser's answer to a registration; the new credential.
    pub fn finish_registration(
        &self,
        answer: &str,
        state: &str,
    ) -> Result<Credential, PasskeyRefusal> {
        let answer: RegisterPublicKeyCredential = parse(answer)?;
        let state: PasskeyRegistration = from_state(state)?;
        self.webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(refusal)
    }

    /// Starts a sign-in with no name typed: any discoverable passkey of this site may answer.
    pub fn start_sign_in(&self) -> Result<Started, Error> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| Error::Passkey(format!("passkey sign-in: {e}")))?;
        let mut options = to_value(&options)?;
        // A button press, not form autofill: the browser shows its passkey picker at once.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok(Started {
            options,
            state: to_json(&state)?,
        })
    }

    /// Reads which account and credential a sign-in answer claims (the user handle and the
    /// credential id); nothing is verified yet.
    pub fn identify(
        &self,
        answer: &str,
    ) -> Result<(PublicKeyCredential, String, Vec<u8>), PasskeyRefusal> {
        let answer: PublicKeyCredential = parse(answer)?;
        let (handle, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(|e| PasskeyRefusal::Malformed(format!("no user handle: {e}")))?;
        let credential_id = credential_id.to_vec();
        Ok((answer, handle.to_string(), credential_id))
    }

    /// Verifies a sign-in answer against the stored credential it named; the credential as it
    /// should be stored from now on when its counter or flags changed.
    pub fn finish_sign_in(
        &self,
        answer: &PublicKeyCredential,
        state: &str,
        stored: &Credential,
    ) -> Result<Option<Credential>, PasskeyRefusal> {
        let state: DiscoverableAuthentication = from_state(state)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(answer, state, stored)
            .map_err(refusal)?;
        let mut updated = stored.clone();
        Ok(match updated.update_credential(&result) {
            Some(true) => Some(updated),
            _ => None,
        })
    }

    /// Starts a second-factor step for an account holding `credentials`.
    pub fn start_second_factor(&self, credentials: &[Credential]) -> Result<Started, Error> {
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(credentials)
            .map_err(|e| Error::Passkey(format!("passkey second factor: {e}")))?;
        Ok(Started {
            options: to_value(&options)?,
            state: to_json(&state)?,
        })
    }

    /// Verifies a second-factor answer: which credential answered (its raw id) and, when its
    /// counter or flags changed, that credential as it should be stored from now on.
    pub fn finish_second_factor(
        &self,
        answer: &str,
        state: &str,
        credentials: &[Credential],
    ) -> Result<(Vec<u8>, Option<Credential>), PasskeyRefusal> {
        let answer: PublicKeyCredential = parse(answer)?;
        let state: PasskeyAuthentication = from_state(state)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&answer, &state)
            .map_err(refusal)?;
        let updated = credentials.iter().find_map(|c| {
            let mut c = c.clone();
            matches!(c.update_credential(&result), Some(true)).then_some(c)
        });
        Ok((result.cred_id().clone(), updated))
    }
}

impl Started {
    /// Stores the ceremony (for `purpose`, begun for `user_id` when known) and answers the
    /// browser's options with `"ceremony": <its id>` added.
    pub async fn store(
        self,
        db: &Db,
        purpose: CeremonyPurpose,
        user_id: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<Value, Error> {
        let (state, user_id) = (self.state, user_id.map(str::to_string));
        let id = db
            .run(move |conn| passkey_ceremony::begin(conn, purpose, user_id.as_deref(), state, now))
            .await?;
        let mut options = self.options;
        if let Some(o) = options.as_object_mut() {
            o.insert("ceremony".into(), json!(id));
        }
        Ok(options)
    }
}

/// webauthn-rs's records of an account's passkey rows.
pub fn credentials_of(rows: &[Passkey]) -> Result<Vec<Credential>, Error> {
    rows.iter()
        .map(|r| credential_from_json(&r.passkey))
        .collect()
}

/// webauthn-rs's `Passkey` from its stored JSON.
pub fn credential_from_json(json: &str) -> Result<Credential, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::Passkey(format!("stored passkey unreadable: {e}")))
}

/// A credential as stored.
pub fn credential_to_json(credential: &Credential) -> Result<String, Error> {
    to_json(credential)
}

fn refusal(e: WebauthnError) -> PasskeyRefusal {
    match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyRefusal::CounterRegressed,
        other => PasskeyRefusal::NotVerified(other.to_string()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(answer: &str) -> Result<T, PasskeyRefusal> {
    serde_json::from_str(answer).map_err(|e| PasskeyRefusal::Malformed(e.to_string()))
}

fn from_state<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, PasskeyRefusal> {
    // Written by this code a moment ago: unreadable only across an upgrade that changed it.
    serde_json::from_str(state).map_err(|e| {
        log::warn!("passkey ceremony state unreadable: {e}");
        PasskeyRefusal::Expired
    })
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::Passkey(format!("passkey options: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Passkey(format!("passkey state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::Passkeys;

    #[test]
    fn the_relying_party_comes_from_public_origin_and_must_be_a_domain() {
        assert_eq!(
            Passkeys::new(Some("https://id.example.com"), 8000)
                .unwrap()
                .rp_id(),
            "id.example.com"
        );
        assert_eq!(Passkeys::new(None, 8000).unwrap().rp_id(), "localhost");
        for bad in [
            "http://127.0.0.1:8000",
            "http://id.example.com",
            "not a url",
        ] {
            let e = Passkeys::new(Some(bad), 8000).err().expect(bad).to_string();
            assert!(e.contains("LATCHKEY_PUBLIC_ORIGIN"), "{bad}: {e}");
        }
    }
}
