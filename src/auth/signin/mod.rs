//! The one sign-in pipeline. Every way into a session goes through it: a first factor (a
//! password, an API key, a new account) answers with a typed step — *signed in*, or *needs a
//! second factor* — and a second factor answers *signed in*; then [`SignIn::finish`] writes the
//! session row, the token, the cookie (browsers) and the audit event, for the HTML pages, the
//! two-factor step and the JSON API alike. New ways in (a reset link, a passkey) add a first
//! factor here and end in the same `finish`.

mod api_key;
mod device;
mod passkey;
mod password;
mod pending;
mod reset;
mod second_factor;

pub use device::DeviceCookie;
pub use passkey::PasskeyRefused;
pub use pending::PendingSignIn;

use std::time::Duration;

use rocket::http::CookieJar;
use rocket::request::{FromRequest, Outcome, Request};

use super::sessions::{Factors, Kind, Started};
use super::{Passkeys, PasswordHasher, Sessions, Throttle};
use crate::config::{Notice, Settings};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::mail::{Letter, Mailer};
use crate::models::{AuditKind, KeyScope, LoginAttempt, TrustedDevice, User};
use crate::peer::Peer;
use crate::text::format_db_time;

/// How a sign-in was proven. Decides what the session's tokens say (`amr`, read-only scope) and
/// what the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The password alone (the account has no second factor).
    Password,
    /// The password, then the authenticator app's current code.
    PasswordAndCode,
    /// The password, then an unused recovery code (now used up).
    PasswordAndRecoveryCode,
    /// The password, and two-factor was turned off (by an admin) between the two steps.
    PasswordTwoFactorTurnedOff,
    /// An API key (programs only); read-only keys give read-only tokens.
    ApiKey {
        /// The key's visible prefix, for the audit trail.
        prefix: String,
        /// What the key allows.
        scope: KeyScope,
    },
    /// The account was created a moment ago by the person now signed in.
    NewAccount,
    /// A reset link (mailed, or an admin's) and a new password; the account has no second factor.
    ResetLink,
    /// A reset link, a new password and the authenticator app's current code.
    ResetLinkAndCode,
    /// A reset link, a new password and an unused recovery code (now used up).
    ResetLinkAndRecoveryCode,
    /// A passkey alone (no name typed): possession of the key and the user's verification on
    /// it (PIN, fingerprint), which counts as multi-factor.
    Passkey {
        /// The passkey's name, for the audit trail.
        name: String,
    },
    /// The password, then a passkey as the second factor.
    PasswordAndPasskey {
        /// The passkey's name, for the audit trail.
        name: String,
    },
}

impl Proof {
    /// Whether a second factor was checked.
    fn two_factor(&self) -> bool {
        matches!(
            self,
            Proof::PasswordAndCode
                | Proof::PasswordAndRecoveryCode
                | Proof::ResetLinkAndCode
                | Proof::ResetLinkAndRecoveryCode
                | Proof::Passkey { .. }
                | Proof::PasswordAndPasskey { .. }
        )
    }

    /// Whether a passkey was checked.
    fn passkey(&self) -> bool {
        matches!(
            self,
            Proof::Passkey { .. } | Proof::PasswordAndPasskey { .. }
        )
    }

    /// Whether the session's tokens may only read.
    fn read_only(&self) -> bool {
        matches!(
            self,
            Proof::ApiKey {
                scope: KeyScope::Read,
                ..
            }
        )
    }

    /// The audit trail's words for it.
    fn describe(&self) -> String {
        match self {
            Proof::Password => "password".into(),
            Proof::PasswordAndCode => "two-factor code".into(),
            Proof::PasswordAndRecoveryCode => "recovery code".into(),
            Proof::PasswordTwoFactorTurnedOff => {
                "password (two-factor turned off meanwhile)".into()
            }
            Proof::ApiKey { prefix, scope } => format!("api key {prefix} ({})", scope.as_str()),
            Proof::NewAccount => "new account".into(),
            Proof::ResetLink => "reset link".into(),
            Proof::ResetLinkAndCode => "reset link and two-factor code".into(),
            Proof::ResetLinkAndRecoveryCode => "reset link and recovery code".into(),
            Proof::Passkey { name } => format!("passkey \"{name}\""),
            Proof::PasswordAndPasskey { name } => format!("password and passkey \"{name}\""),
        }
    }
}

/// A sign-in every check let through: who, and how they proved it.
#[derive(Debug)]
pub struct Verified {
    /// The account, as read during the checks.
    pub user: User,
    /// How.
    pub proof: Proof,
}

/// What the first factor (the password) leads to.
#[derive(Debug)]
pub enum FirstStep {
    /// Nothing more to prove.
    SignedIn(Verified),
    /// Right password; the account asks for a code too. Nothing is cleared or stamped until the
    /// code is right.
    SecondFactor(User),
}

/// Why a sign-in step did not let the person in.
#[derive(Debug)]
pub enum Refused {
    /// Wrong password, unknown name, wrong or used code, unknown key, disabled account (never
    /// says which).
    Invalid,
    /// Locked after too many failures; try again after this long.
    Locked(Duration),
    /// The account's stored two-factor secret cannot be decrypted (recovery codes still work).
    TwoFactorUnavailable,
    /// Too many attempts from this client; try again after this long.
    Throttled(Duration),
    /// The check itself could not run (database unreachable…).
    Failed(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Failed(e)
    }
}

/// Where a finished sign-in's token goes.
pub enum Delivery<'a, 'c> {
    /// A browser: the session cookie, persistent only with "remember me".
    Cookie {
        /// The response's cookies.
        jar: &'a CookieJar<'c>,
        /// "Remember me" was ticked.
        remember: bool,
    },
    /// A program: the token is returned; the session lasts as long as that one token.
    Bearer,
}

/// What checking credentials and starting sessions needs, as one request guard.
pub struct SignIn<'r> {
    db: &'r Db,
    hasher: &'r PasswordHasher,
    sessions: &'r Sessions,
    throttle: &'r Throttle,
    audit: &'r Audit,
    settings: &'r Settings,
    mail: &'r Mailer,
    /// The relying party; `None` when the site has passkeys off.
    passkeys: Option<&'r Passkeys>,
    peer: Peer,
    /// The genuine entries of the browser's device cookie (none for programs).
    devices: DeviceCookie,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignIn<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let r = req.rocket();
        match (
            r.state::<Db>(),
            r.state::<PasswordHasher>(),
            r.state::<Sessions>(),
            r.state::<Throttle>(),
            r.state::<Audit>(),
            r.state::<Settings>(),
            r.state::<Mailer>(),
        ) {
            (
                Some(db),
                Some(hasher),
                Some(sessions),
                Some(throttle),
                Some(audit),
                Some(settings),
                Some(mail),
            ) => Outcome::Success(SignIn {
                db,
                hasher,
                sessions,
                throttle,
                audit,
                settings,
                mail,
                passkeys: r.state::<Option<Passkeys>>().and_then(Option::as_ref),
                peer: Peer::of(req),
                devices: DeviceCookie::load(
                    req.cookies(),
                    &sessions.tokens().keyring(),
                    sessions.cookies(),
                ),
            }),
            _ => Outcome::Error((rocket::http::Status::InternalServerError, ())),
        }
    }
}

/// How long from `now` until a lock set to end at `until` ends (at least a second).
fn wait_until(until: time::PrimitiveDateTime, now: time::PrimitiveDateTime) -> Duration {
    Duration::from_secs((until - now).whole_seconds().max(1) as u64)
}

impl SignIn<'_> {
    /// Holds a sign-in whose password was right until its second factor arrives: a signed
    /// cookie, valid for five minutes.
    pub fn hold(&self, jar: &CookieJar<'_>, user: &User, remember: bool) {
        PendingSignIn::new(&user.id, remember, self.sessions.clock().now()).save(
            jar,
            &self.sessions.tokens().keyring(),
            self.sessions.cookies(),
        );
    }

    /// The sign-in this browser holds for its second factor, if genuine and not expired.
    pub fn held(&self, jar: &CookieJar<'_>) -> Option<PendingSignIn> {
        PendingSignIn::load(
            jar,
            &self.sessions.tokens().keyring(),
            self.sessions.cookies(),
            self.sessions.clock().now(),
        )
    }

    /// Forgets the held sign-in.
    pub fn release(&self, jar: &CookieJar<'_>) {
        PendingSignIn::clear(jar, self.sessions.cookies());
    }

    /// Counts an attempt against this client's sign-in limit (shared by all instances) and
    /// records a refusal.
    async fn throttled(&self, kind: AuditKind, subject: Option<Who<'_>>) -> Result<(), Refused> {
        let Err(wait) = self.throttle.login(self.peer.ip).await? else {
            return Ok(());
        };
        let mut event = Event::new(kind, &self.peer).detail("throttled");
        if let Some(subject) = subject {
            event = event.subject(subject);
        }
        self.record(event).await;
        Err(Refused::Throttled(wait))
    }

    async fn record(&self, event: Event<'_>) {
        self.audit.record(event).await;
    }

    /// Counts a failure towards the lockout of `key` and records it: `Locked` if this one
    /// locked the account (or name), `Invalid` otherwise.
    async fn failed(
        &self,
        kind: AuditKind,
        subject: Who<'_>,
        reason: &str,
        key: String,
        now: time::PrimitiveDateTime,
    ) -> Refused {
        let policy = self.settings.lockout_policy();
        let locked = match self
            .db
            .run(move |conn| LoginAttempt::record_failure(conn, &key, now, &policy))
            .await
        {
            Ok(locked) => locked,
            Err(e) => return Refused::Failed(e),
        };
        self.record(Event::new(kind, &self.peer).subject(subject).detail(reason))
            .await;
        let Some(until) = locked else {
            return Refused::Invalid;
        };
        let detail = format!("locked until {}", format_db_time(until));
        self.record(
            Event::new(AuditKind::LoginLocked, &self.peer)
                .subject(subject)
                .detail(detail),
        )
        .await;
        Refused::Locked(wait_until(until, now))
    }

    /// Counts a failure from trusted device `nonce` against the device's own limit (not the
    /// account's lockout) and records it; a device over its limit loses its trust. Always
    /// `Invalid`: the next attempt from it is judged like any stranger's.
    async fn device_failed(
        &self,
        kind: AuditKind,
        subject: Who<'_>,
        reason: &str,
        nonce: String,
        now: time::PrimitiveDateTime,
    ) -> Refused {
        let policy = self.settings.device_policy();
        let revoked = match self
            .db
            .run(move |conn| TrustedDevice::record_failure(conn, &nonce, now, policy))
            .await
        {
            Ok(revoked) => revoked,
            Err(e) => return Refused::Failed(e),
        };
        self.record(
            Event::new(kind, &self.peer)
                .subject(subject)
                .detail(format!("{reason} (trusted device)")),
        )
        .await;
        if revoked {
            let detail = format!(
                "{} failed sign-ins within {} s",
                policy.limit,
                policy.window.whole_seconds()
            );
            self.record(
                Event::new(AuditKind::DeviceTrustRevoked, &self.peer)
                    .subject(subject)
                    .detail(detail),
            )
            .await;
        }
        Refused::Invalid
    }

    /// Gives this browser a device cookie for `user`: a new `trusted_devices` row and the audit
    /// event, or, when it already holds a trusted one, that device's counter cleared and its
    /// expiry moved to `device_trust_days` from now. Either way the cookie is written again,
    /// signed with the active key, so trust outlives key rotations as long as the browser signs
    /// in now and then. Trust is a convenience: a failure here is logged and the sign-in goes on.
    /// Returns whether this browser was new to the account (it held no trusted entry for it).
    async fn trust_device(&self, jar: &CookieJar<'_>, user: &User) -> bool {
        let now = self.sessions.clock().db_now();
        let ttl = self.settings.device_trust();
        let devices = self.devices.clone();
        let id = user.id.clone();
        let trusted = self
            .db
            .run(move |conn| {
                if let Some(nonce) = devices.trusted(conn, &id, now)? {
                    TrustedDevice::renew(conn, &nonce, now + ttl)?;
                    return Ok((nonce, false));
                }
                TrustedDevice::grant(conn, &id, now, ttl).map(|device| (device.nonce, true))
            })
            .await;
        let (nonce, new) = match trusted {
            Ok(trusted) => trusted,
            Err(e) => {
                log::warn!("device trust not granted: {e}");
                return false;
            }
        };
        self.devices.clone().save_with(
            &user.id,
            &nonce,
            jar,
            &self.sessions.tokens().keyring(),
            self.sessions.cookies(),
            ttl,
        );
        if new {
            self.record(
                Event::new(AuditKind::DeviceTrustGranted, &self.peer)
                    .by_self(Who::user(&user.id, &user.username)),
            )
            .await;
        }
        new
    }

    /// Mails the owner that `user` signed in from a browser not seen before (unless the operator
    /// turned that notice off).
    async fn new_device_notice(&self, user: &User) {
        let now = self.sessions.clock().db_now();
        let agent = (!self.peer.user_agent.is_empty()).then_some(self.peer.user_agent.as_str());
        let ip = self.peer.ip.map(|ip| ip.to_string());
        self.mail
            .notify_user(self.db, Notice::NewDevice, &user.id, now, |m, u| {
                Letter::new_device(m, u, agent, ip, now)
            })
            .await;
    }

    /// Starts the session of a verified sign-in: the session row, the token, the cookie (for a
    /// browser) and the audit event. Returns the token and what it says.
    pub async fn finish(
        &self,
        verified: &Verified,
        delivery: Delivery<'_, '_>,
    ) -> Result<Started, Error> {
        let Verified { user, proof } = verified;
        let (kind, channel) = match &delivery {
            Delivery::Cookie { remember, .. } => (
                Kind::Browser {
                    remember: *remember,
                },
                if *remember { "remember" } else { "session" },
            ),
            Delivery::Bearer => (
                Kind::Api {
                    read_only: proof.read_only(),
                    refreshable: !matches!(proof, Proof::ApiKey { .. }),
                },
                "api",
            ),
        };
        let started = self
            .sessions
            .start(
                user,
                kind,
                Factors {
                    two_factor: proof.two_factor(),
                    passkey: proof.passkey(),
                },
                &self.peer,
            )
            .await?;
        if let Delivery::Cookie { jar, .. } = delivery {
            self.sessions.set_cookie(jar, &started);
            // The device cookie lives on the sign-in pages only (Path=/login): a sign-up cannot
            // read the browser's other entries to keep them, so the first sign-in grants it.
            // A browser with no trusted entry for the account is one not seen before: its owner
            // hears of it (not at sign-up, and never for programs, which have no such cookie).
            if !matches!(proof, Proof::NewAccount) && self.trust_device(jar, user).await {
                self.new_device_notice(user).await;
            }
        }
        let who = Who::user(&user.id, &user.username);
        let event = match proof {
            Proof::NewAccount => Event::new(AuditKind::Signup, &self.peer).by_self(who),
            _ => Event::new(AuditKind::LoginOk, &self.peer)
                .by_self(who)
                .detail(format!("{channel}, {}", proof.describe())),
        };
        self.record(event).await;
        Ok(started)
    }
}
