//! Who is asking: passwords, tokens, the keyring, sessions and revocation, the session cookie
//! and the request guards.

pub mod cookie;
pub mod csrf;
pub mod guards;
pub mod keyring;
pub mod next;
pub mod password;
pub mod revocations;
pub mod sessions;
pub mod signin;
pub mod throttle;
pub mod tokens;
pub mod two_factor;

pub use csrf::{Csrf, CsrfForm, CsrfToken};
pub use guards::{Admin, AuthState, CurrentUser, Via};
pub use keyring::Keyring;
pub use password::PasswordHasher;
pub use revocations::Revocations;
pub use sessions::Sessions;
pub use throttle::Throttle;
pub use tokens::{Claims, Subject, TokenError, Tokens};
