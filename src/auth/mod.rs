//! Who is asking: passwords, tokens, the keyring, the session cookie and the request guards.

pub mod cookie;
pub mod guards;
pub mod keyring;
pub mod next;
pub mod password;
pub mod tokens;

pub use guards::{Admin, AuthState, CurrentUser};
pub use keyring::Keyring;
pub use password::PasswordHasher;
pub use tokens::{Claims, TokenError, Tokens};
