//! Signing in with a passkey: alone from `/login` ("Sign in with a passkey", no name typed), or
//! as the second factor on the code step. Each is two posts: the first answers the options for
//! `navigator.credentials.get` as JSON (static/passkeys.js asks for them); the second is the
//! page's own form, carrying the browser's answer, and answers like every other form. The checks
//! are the sign-in pipeline's (`auth::signin::passkey`).

use rocket::http::{CookieJar, Status};
use rocket::serde::json::Json;
use serde_json::{json, Value};

use crate::auth::next::safe_next;
use crate::auth::passkeys::PasskeyRefusal;
use crate::auth::signin::{PasskeyRefused, SignIn};
use crate::auth::{CsrfForm, CsrfOnly};
use crate::error::Error;
use crate::view::{wait_words, FormOutcome};

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        sign_in_options,
        sign_in,
        second_factor_options,
        second_factor
    ]
}

/// The browser's answer, posted by the page's form.
#[derive(Debug, rocket::FromForm)]
pub(crate) struct PasskeyAnswer {
    /// The ceremony the options came with.
    #[field(default = String::new())]
    pub ceremony: String,
    /// The credential, as JSON (static/passkeys.js).
    #[field(default = String::new())]
    pub credential: String,
    /// "Remember me on this device" (the sign-in form's box).
    #[field(default = false)]
    pub remember: bool,
}

/// What a person is told when a passkey did not let them in.
pub(crate) fn refusal_sentence(refused: &PasskeyRefused) -> String {
    match refused {
        PasskeyRefused::Refusal(r) => refusal_words(r).to_string(),
        PasskeyRefused::Throttled(wait) => format!(
            "Too many attempts from your network. Please wait {} and try again.",
            wait_words(*wait)
        ),
        PasskeyRefused::Off => "Passkeys are turned off on this site.".into(),
        PasskeyRefused::Failed(_) => {
            "Your passkey could not be checked just now. Please try again in a moment.".into()
        }
    }
}

/// The sentence for a refused answer (sign-in and registration alike).
pub(crate) fn refusal_words(refusal: &PasskeyRefusal) -> &'static str {
    match refusal {
        PasskeyRefusal::Expired => {
            "That passkey request expired or was already used. Please try again."
        }
        PasskeyRefusal::Unknown => {
            "That passkey is not registered here, or was removed. Sign in another way, or choose \
             another passkey."
        }
        PasskeyRefusal::CounterRegressed => {
            "That passkey was refused because it may have been copied. Sign in another way and \
             check the passkeys on your account."
        }
        PasskeyRefusal::Malformed(_) | PasskeyRefusal::NotVerified(_) => {
            "Your passkey could not be verified. Please try again."
        }
    }
}

/// A ceremony's options as JSON, or `{"error": sentence}` with its status.
pub(crate) fn options_answer(result: Result<Value, PasskeyRefused>) -> (Status, Json<Value>) {
    match result {
        Ok(options) => (Status::Ok, Json(options)),
        Err(refused) => {
            let status = match &refused {
                PasskeyRefused::Throttled(_) => Status::TooManyRequests,
                PasskeyRefused::Off => Status::NotFound,
                PasskeyRefused::Failed(e) => {
                    log::error!("passkey options: {e}");
                    e.status()
                }
                PasskeyRefused::Refusal(_) => Status::UnprocessableEntity,
            };
            (status, Json(json!({ "error": refusal_sentence(&refused) })))
        }
    }
}

/// Where a refused passkey sign-in goes: back to `page`, with the sentence.
fn refused_to(
    page: &str,
    next: Option<&str>,
    refused: PasskeyRefused,
) -> Result<FormOutcome, Error> {
    if let PasskeyRefused::Failed(e) = refused {
        return Err(e);
    }
    let to = match next {
        Some(next) => format!("{page}?next={}", crate::text::percent_encode(next, b"/")),
        None => page.to_string(),
    };
    Ok(FormOutcome::error(to, refusal_sentence(&refused)))
}

/// The options for a sign-in with no name typed.
#[rocket::post("/login/passkey/options", data = "<_form>")]
async fn sign_in_options(_form: CsrfOnly<'_>, signin: SignIn<'_>) -> (Status, Json<Value>) {
    options_answer(signin.begin_passkey().await)
}

/// Checks the passkey's answer and starts the session.
#[rocket::post("/login/passkey?<next>", data = "<form>")]
async fn sign_in(
    next: Option<&str>,
    form: CsrfForm<'_, PasskeyAnswer>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let next = next.and_then(safe_next);
    let Ok(answer) = form.parsed() else {
        return refused_to("/login", next.as_deref(), PasskeyRefusal::Expired.into());
    };
    match signin.passkey(&answer.ceremony, &answer.credential).await {
        Ok(verified) => {
            super::signin::signed_in(&signin, jar, &verified, answer.remember, next).await
        }
        Err(refused) => refused_to("/login", next.as_deref(), refused),
    }
}

/// The options for a passkey as the second factor of the sign-in this browser holds.
#[rocket::post("/login/two-factor/passkey/options", data = "<_form>")]
async fn second_factor_options(
    _form: CsrfOnly<'_>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> (Status, Json<Value>) {
    let Some(pending) = signin.held(jar) else {
        let message = super::signin::EXPIRED;
        return (Status::Unauthorized, Json(json!({ "error": message })));
    };
    options_answer(signin.begin_passkey_second_factor(&pending.user_id).await)
}

/// Checks a passkey as the second factor and starts the session.
#[rocket::post("/login/two-factor/passkey?<next>", data = "<form>")]
async fn second_factor(
    next: Option<&str>,
    form: CsrfForm<'_, PasskeyAnswer>,
    signin: SignIn<'_>,
    jar: &CookieJar<'_>,
) -> Result<FormOutcome, Error> {
    let Some(pending) = signin.held(jar) else {
        return Ok(FormOutcome::error("/login", super::signin::EXPIRED));
    };
    let next = next.and_then(safe_next);
    let Ok(answer) = form.parsed() else {
        return refused_to(
            "/login/two-factor",
            next.as_deref(),
            PasskeyRefusal::Expired.into(),
        );
    };
    let checked = signin
        .passkey_second_factor(&pending.user_id, &answer.ceremony, &answer.credential)
        .await;
    match checked {
        Ok(verified) => {
            signin.release(jar);
            super::signin::signed_in(&signin, jar, &verified, pending.remember, next).await
        }
        Err(refused) => refused_to("/login/two-factor", next.as_deref(), refused),
    }
}
