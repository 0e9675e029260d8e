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

/// The new-password rules ([`validation::new_password`]: length, then zxcvbn, which is slow) run
/// off the async workers, with the form's other non-empty values as context; each problem is
/// added to `errors`. Shared by sign-up and accepting an invitation.
pub(super) async fn check_new_password(
    password: String,
    confirm: String,
    context: &[&str],
    errors: &mut FieldErrors,
) -> Result<(), Error> {
    let context: Vec<String> = context
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let problems = rocket::tokio::task::spawn_blocking(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        validation::new_password(&password, &confirm, &context)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    for (name, message) in problems {
        errors.add(name, message);
    }
    Ok(())
}
