//! A new account's first sign-in (sign-up, an accepted invitation): one place for both.

use rocket::http::CookieJar;

use crate::auth::signin::{Delivery, Proof, SignIn, Verified};
use crate::error::Error;
use crate::models::User;
use crate::view::FormOutcome;

/// Signs a new account in (sign-up, an accepted invitation) and sends it to the private page.
pub(super) async fn welcome(
    signin: SignIn<'_>,
    user: User,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let verified = Verified {
        user,
        proof: Proof::NewAccount,
    };
    signin
        .finish(
            &verified,
            Delivery::Cookie {
                jar,
                remember: false,
            },
        )
        .await?;
    Ok(FormOutcome::success(
        "/private",
        format!(
            "Welcome, {}! Your account is ready.",
            verified.user.username
        ),
    ))
}
