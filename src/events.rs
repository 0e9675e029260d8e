//! Auth events in the log: one line each, `key=value`, with the client IP, so fail2ban and log
//! search can read them. Values are Debug-quoted so a username cannot forge a line. Never a
//! password or a token.

use std::net::IpAddr;

const TARGET: &str = "latchkey::auth";

fn ip(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// A new account was created.
pub fn signup(username: &str, addr: Option<IpAddr>) {
    log::info!(target: TARGET, "auth event=signup user={username:?} ip={}", ip(addr));
}

/// A sign-in succeeded.
pub fn login_ok(username: &str, addr: Option<IpAddr>) {
    log::info!(target: TARGET, "auth event=login_ok user={username:?} ip={}", ip(addr));
}

/// A sign-in failed; `reason` is for operators only (the user always sees the same message).
pub fn login_failed(username: &str, reason: &str, addr: Option<IpAddr>) {
    log::warn!(
        target: TARGET,
        "auth event=login_failed user={username:?} reason={reason} ip={}",
        ip(addr)
    );
}

/// Someone signed out.
pub fn logout(username: &str, addr: Option<IpAddr>) {
    log::info!(target: TARGET, "auth event=logout user={username:?} ip={}", ip(addr));
}

/// A password was changed by its owner.
pub fn password_changed(username: &str, addr: Option<IpAddr>) {
    log::info!(target: TARGET, "auth event=password_changed user={username:?} ip={}", ip(addr));
}

/// An admin changed a user's role.
pub fn role_changed(actor: &str, subject: &str, role: &str, addr: Option<IpAddr>) {
    log::info!(
        target: TARGET,
        "auth event=role_changed actor={actor:?} user={subject:?} role={role} ip={}",
        ip(addr)
    );
}

/// An admin disabled or enabled a user.
pub fn disabled_changed(actor: &str, subject: &str, disabled: bool, addr: Option<IpAddr>) {
    let event = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    log::info!(
        target: TARGET,
        "auth event={event} actor={actor:?} user={subject:?} ip={}",
        ip(addr)
    );
}

/// A presented token failed verification.
pub fn token_rejected(reason: &str, addr: Option<IpAddr>) {
    log::warn!(target: TARGET, "auth event=token_rejected reason={reason:?} ip={}", ip(addr));
}

/// An administrator was created from the command line.
pub fn admin_created(username: &str) {
    log::info!(target: TARGET, "auth event=admin_created user={username:?} ip=-");
}
