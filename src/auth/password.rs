//! argon2id hashing, slow on purpose: it runs on the blocking pool behind a semaphore sized to the
//! cores, so a login flood neither stalls page requests nor allocates a hash's memory per request.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use rocket::tokio::sync::Semaphore;

use crate::config::Settings;
use crate::error::Error;

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does not exist so a
    /// failed login takes as long whether or not the account exists.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher from the argon2 settings; computes the dummy hash once.
    pub fn new(settings: &Settings) -> Result<PasswordHasher, Error> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| Error::Config(format!("invalid argon2 parameters: {e}")))?;
        let random: [u8; 24] = rand::random();
        let dummy = hash_with(&params, &random)?;
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(settings.hash_concurrency())),
            dummy_hash: dummy.into(),
        })
    }

    /// Hashes now, on the calling thread (CLI use).
    pub fn hash_blocking(&self, password: &str) -> Result<String, Error> {
        hash_with(&self.params, password.as_bytes())
    }

    /// Hashes a password into a PHC string, off the async workers.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let params = self.params.clone();
        rocket::tokio::task::spawn_blocking(move || hash_with(&params, password.as_bytes()))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is no user
    /// (the answer is then always false, after the same work).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = rocket::tokio::task::spawn_blocking(move || verify_with(&password, &hash))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        Ok(exists && ok)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, Error> {
    argon2(params)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

fn verify_with(password: &str, stored: &str) -> Result<bool, Error> {
    let parsed = PasswordHash::new(stored)
        .map_err(|e| Error::PasswordHash(format!("stored hash unreadable: {e}")))?;
    // Verification uses the parameters recorded in the hash, so old hashes keep working after
    // the cost settings change.
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}
