//! The tables as types; queries are methods on the model they belong to.

mod account_token;
mod api_key;
mod audit;
mod audit_stats;
mod invitation;
mod login_attempt;
mod outbox;
mod passkey;
pub mod passkey_ceremony;
mod rate_counter;
mod refresh_token;
mod session;
mod trusted_device;
mod two_factor;
mod user;

pub use account_token::{token_hash, AccountToken, IssuedToken, TokenFor, TokenPurpose};
pub use api_key::{ApiKey, KeyScope};
pub use audit::{AuditEvent, AuditFilter, AuditKind, NewAuditEvent, DELETED_USER};
pub use audit_stats::{Bucket, SecurityStats, Series};
pub use invitation::{Invitation, NotAccepted, NotInvited, PendingInvitation, INVITATION_TTL};
pub use login_attempt::{LockoutPolicy, LoginAttempt};
pub use outbox::{MailState, OutboxCounts, OutboxMail};
pub use passkey::{credential_id_text, Passkey, MAX_PASSKEYS};
pub use passkey_ceremony::CeremonyPurpose;
pub use rate_counter::RateCounter;
pub use refresh_token::RefreshToken;
pub use session::{RevokedSession, Session};
pub use trusted_device::{DevicePolicy, TrustedDevice};
pub use two_factor::{RecoveryCode, TwoFactor};
pub use user::{DeletedAccount, DeletedBy, NewUser, Role, SignupConflict, User};
