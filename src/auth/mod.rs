//! Who is asking: passwords, tokens, the keyring, sessions and revocation, the site's cookies,
//! CSRF, the one sign-in pipeline and the request guards. Nothing here knows about pages or
//! routes: it answers with types, and the routes turn them into pages and JSON.

mod cookie;
mod csrf;
mod guards;
mod key_reload;
mod keyring;
mod password;
mod revocations;
mod seal;
mod sessions;
mod sudo;
mod throttle;
mod tokens;

pub mod next;
pub mod passkeys;
pub mod signin;
pub mod two_factor;

pub use csrf::{
    check_header as check_csrf_header, Csrf, CsrfForm, CsrfOnly, CsrfRejected, CsrfToken,
};
pub use guards::{
    Admin, AdminRequired, AnyUser, AuthFailure, AuthState, CurrentUser, EmailUnverified, Via,
};
pub use key_reload::reload_keys;
pub use keyring::{check_strength, KeyFile, Keyring};
pub use passkeys::{PasskeyRefusal, Passkeys};
pub use password::PasswordHasher;
pub use seal::{reseal_all, Seal};
pub use sessions::{Factors, Refresh, Sessions, Started};
pub use sudo::{Sudo, SudoRequired};
pub use throttle::Throttle;
pub use tokens::{Claims, Subject, TokenError, Tokens};
