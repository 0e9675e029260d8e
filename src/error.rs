//! The one error type: what went wrong inside, and how it is shown outside (a page, never a trace).

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

/// Everything that can fail below the routes. Bad user input is not an error: forms re-render.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No database connection could be had (down, unreachable, pool exhausted).
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Database(#[from] diesel::result::Error),
    /// Migrations could not be applied.
    #[error("migrations failed: {0}")]
    Migration(String),
    /// Password hashing or verification could not run.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// A token could not be signed.
    #[error("token signing failed: {0}")]
    TokenSigning(String),
    /// Settings or key material are missing or unusable.
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The change would leave no active administrator.
    #[error("the last active administrator cannot be demoted or disabled")]
    LastAdmin,
    /// The row the request names does not exist.
    #[error("not found")]
    NotFound,
    /// A change refused for a reason its caller shows as it is (nothing was changed).
    #[error("{0}")]
    Refused(String),
    /// A change could not be saved, so none of it was (its transaction rolled back).
    #[error("change not saved, nothing changed: {0}")]
    NotSaved(String),
    /// A stored two-factor secret cannot be decrypted (altered, moved, or its key is gone).
    #[error("two-factor secret unreadable: {0}")]
    SecretUnreadable(String),
    /// A passkey ceremony could not be prepared, or a stored passkey could not be read.
    #[error("passkey: {0}")]
    Passkey(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// For a change made in one transaction: a refusal of the change's own (the last admin, a
    /// missing row) stays as it is; any other failure means nothing was saved.
    pub fn not_saved(self) -> Error {
        match self {
            Error::LastAdmin | Error::NotFound | Error::NotSaved(_) | Error::Refused(_) => self,
            other => Error::NotSaved(other.to_string()),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> Status {
        match self {
            Error::DatabaseUnavailable(_) | Error::NotSaved(_) => Status::ServiceUnavailable,
            Error::NotFound => Status::NotFound,
            Error::LastAdmin | Error::Refused(_) => Status::Conflict,
            _ => Status::InternalServerError,
        }
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            log::error!("{} {} failed: {}", req.method(), req.uri().path(), self);
        } else {
            log::warn!("{} {}: {}", req.method(), req.uri().path(), self);
        }
        // The catcher for `status` renders the page in the site's layout.
        Err(status)
    }
}
