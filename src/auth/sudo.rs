//! Sudo mode: sensitive actions (an admin's changes to a user, creating an API key) need a proof
//! of the person — the password, or the two-factor code when two-factor is on — within
//! `sudo_window_secs` (10 minutes by default). The proof's time travels in the token as
//! `auth_time`, set at sign-in and at each "Confirm it's you" (`routes/confirm.rs`), and is kept
//! in the session row so renewals carry it; a renewal never refreshes it.

use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};

use super::{AuthFailure, CurrentUser, Sessions};
use crate::config::Settings;

/// A signed-in user whose last proof is recent enough for a sensitive action.
pub struct Sudo<'r>(pub &'r CurrentUser);

/// Set in the request cache when [`Sudo`] refuses, so the catcher sends people to "Confirm
/// it's you" and programs a `reauthentication_required` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SudoRequired;

/// Whether a proof at `auth_time` still counts at `now` (Unix seconds) with a window of
/// `window` seconds.
pub fn is_fresh(auth_time: Option<i64>, now: i64, window: i64) -> bool {
    auth_time.is_some_and(|t| now - t <= window)
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Sudo<'r> {
    type Error = AuthFailure;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let user = try_outcome!(req.guard::<&'r CurrentUser>().await);
        let rocket = req.rocket();
        let fresh = match (rocket.state::<Sessions>(), rocket.state::<Settings>()) {
            (Some(sessions), Some(settings)) => is_fresh(
                user.auth_time,
                sessions.clock().now().unix_timestamp(),
                settings.sudo_window_secs,
            ),
            _ => false,
        };
        if fresh {
            Outcome::Success(Sudo(user))
        } else {
            req.local_cache(|| Some(SudoRequired));
            Outcome::Error((Status::Forbidden, AuthFailure::Reauthenticate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_fresh;

    #[test]
    fn a_proof_counts_for_the_window_only() {
        assert!(is_fresh(Some(1_000), 1_600, 600));
        assert!(!is_fresh(Some(1_000), 1_601, 600));
        assert!(!is_fresh(None, 1_000, 600));
    }
}
