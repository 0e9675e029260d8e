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
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> Status {
        match self {
            Error::DatabaseUnavailable(_) => Status::ServiceUnavailable,
            Error::NotFound => Status::NotFound,
            Error::LastAdmin => Status::Conflict,
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
