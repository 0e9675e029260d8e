//! A new account (sign-up, an accepted invitation): its password check and its first sign-in,
//! one place for both.

use rocket::http::CookieJar;

use crate::auth::signin::{Delivery, Proof, SignIn, Verified};
use crate::error::Error;
use crate::models::User;
use crate::validation::{self, FieldErrors};
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

/// The new-password rules ([`validation::new_password`], off the async workers), each problem
/// added to `errors` under the form's own field names (`password`, `password_confirm`). Shared by
/// sign-up, accepting an invitation and the reset page.
pub(super) async fn check_new_password(
    password: String,
    confirm: String,
    context: &[&str],
    errors: &mut FieldErrors,
) -> Result<(), Error> {
    for (name, message) in validation::new_password_off_workers(password, confirm, context).await? {
        errors.add(name, message);
    }
    Ok(())
}
