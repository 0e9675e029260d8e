//! Your passkeys: add one (behind sudo mode: a passkey signs in on its own), list them with when
//! they were made and last used, rename, remove (sudo mode too). Adding is two posts: the
//! options for `navigator.credentials.create` as JSON (static/passkeys.js asks for them), then
//! the page's form with the browser's answer. Without JavaScript the list, rename and remove
//! still work; the page says adding needs it.

use rocket::http::Status;
use rocket::serde::json::Json;
use serde_json::{json, Value};

use super::passkey_signin::{options_answer, refusal_words};
use crate::auth::passkeys::{credential_to_json, credentials_of, PasskeyRefusal, Passkeys};
use crate::auth::signin::PasskeyRefused;
use crate::auth::{CsrfForm, CsrfOnly, CurrentUser, Sudo};
use crate::config::Notice;
use crate::error::Error;
use crate::events::Who;
use crate::mail::Letter;
use crate::models::{passkey_ceremony, AuditKind, CeremonyPurpose, Passkey, MAX_PASSKEYS};
use crate::routes::services::Services;
use crate::validation::FieldErrors;
use crate::view::{FormOutcome, Page, PageContext, PasskeyView};

/// Longest passkey name.
const MAX_NAME_CHARS: usize = 64;

const PAGE: &str = "/account/passkeys";

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, options, add, rename, remove]
}

/// The add form: the name, and the browser's answer.
#[derive(Debug, rocket::FromForm)]
struct NewPasskey {
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    ceremony: String,
    #[field(default = String::new())]
    credential: String,
}

/// The rename form.
#[derive(Debug, rocket::FromForm)]
struct Rename {
    #[field(default = String::new())]
    name: String,
}

/// A name as stored: trimmed, control characters out; `Err` with the sentence otherwise.
fn clean_name(raw: &str) -> Result<String, &'static str> {
    let name: String = raw.trim().chars().filter(|c| !c.is_control()).collect();
    if name.is_empty() {
        return Err("Give the passkey a name, such as the device it is on.");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("Use at most 64 characters for the name.");
    }
    Ok(name)
}

async fn passkeys_page(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    user: &CurrentUser,
    fresh: bool,
    errors: &FieldErrors,
    values: Value,
) -> Result<Page, Error> {
    let uid = user.id.clone();
    let rows = site
        .db
        .run(move |conn| Passkey::for_user(conn, &uid))
        .await?;
    Ok(ctx.page(
        "account/passkeys",
        "Passkeys",
        json!({
            "passkeys": rows.iter().map(PasskeyView::of).collect::<Vec<_>>(),
            "fresh": fresh,
            "full": rows.len() >= MAX_PASSKEYS,
            "max": MAX_PASSKEYS,
            "errors": errors,
            "values": values,
        }),
    ))
}

/// Your passkeys and the button to add one.
#[rocket::get("/account/passkeys")]
async fn list(
    user: CurrentUser,
    fresh: Option<Sudo<'_>>,
    passkeys: &rocket::State<Option<Passkeys>>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Option<Page>, Error> {
    if passkeys.is_none() {
        return Ok(None);
    }
    let errors = FieldErrors::new();
    let page = passkeys_page(ctx, &site, &user, fresh.is_some(), &errors, json!({})).await?;
    Ok(Some(page))
}

/// The options for adding a passkey (sudo mode: a passkey is a way in on its own).
#[rocket::post("/account/passkeys/options", data = "<_form>")]
async fn options(
    user: CurrentUser,
    fresh: Option<Sudo<'_>>,
    _form: CsrfOnly<'_>,
    passkeys: &rocket::State<Option<Passkeys>>,
    site: Services<'_>,
) -> (Status, Json<Value>) {
    let Some(passkeys) = passkeys.as_ref() else {
        return options_answer(Err(PasskeyRefused::Off));
    };
    if fresh.is_none() {
        let message = "Confirm it's you first: adding a passkey needs a recent sign-in.";
        return (
            Status::Forbidden,
            Json(json!({ "error": message, "confirm": "/confirm?next=/account/passkeys" })),
        );
    }
    let (uid, now) = (user.id.clone(), site.now());
    let begun = async {
        let rows = site
            .db
            .run(move |conn| Passkey::for_user(conn, &uid))
            .await?;
        let existing = credentials_of(&rows)?;
        passkeys
            .start_registration(&user.id, &user.username, &existing)?
            .store(site.db, CeremonyPurpose::Register, Some(&user.id), now)
            .await
    };
    options_answer(begun.await.map_err(PasskeyRefused::from))
}

/// Checks the browser's answer and stores the new passkey.
#[rocket::post("/account/passkeys", data = "<form>")]
async fn add(
    user: CurrentUser,
    _fresh: Sudo<'_>,
    form: CsrfForm<'_, NewPasskey>,
    passkeys: &rocket::State<Option<Passkeys>>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<Option<FormOutcome>, Error> {
    let Some(passkeys) = passkeys.as_ref() else {
        return Ok(None);
    };
    let values = json!({ "name": form.submitted("name").trim() });
    let new = form.parsed().unwrap_or(NewPasskey {
        name: String::new(),
        ceremony: String::new(),
        credential: String::new(),
    });
    let redo = |message: &str, field: &'static str| {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        errors
    };
    let name = match clean_name(&new.name) {
        Ok(name) => name,
        Err(message) => {
            let errors = redo(message, "name");
            let page = passkeys_page(ctx, &site, &user, true, &errors, values).await?;
            return Ok(Some(FormOutcome::redo(page)));
        }
    };
    let (ceremony, uid, now) = (new.ceremony.clone(), user.id.clone(), site.now());
    let taken = site
        .db
        .run(move |conn| passkey_ceremony::take(conn, &ceremony, CeremonyPurpose::Register, now))
        .await?;
    let checked = match taken {
        Some(t) if t.user_id.as_deref() == Some(uid.as_str()) => {
            passkeys.finish_registration(&new.credential, &t.state)
        }
        _ => Err(PasskeyRefusal::Expired),
    };
    let credential = match checked {
        Ok(credential) => credential,
        Err(refusal) => {
            log::info!("passkey registration refused for {}: {refusal:?}", user.id);
            let errors = redo(registration_words(&refusal), "form");
            let page = passkeys_page(ctx, &site, &user, true, &errors, values).await?;
            return Ok(Some(FormOutcome::redo(page)));
        }
    };
    let row = Passkey::new(
        &user.id,
        credential.cred_id(),
        &name,
        credential_to_json(&credential)?,
        now,
    );
    let stored = site
        .db
        .run(move |conn| match row.insert_within_limit(conn) {
            Err(Error::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => Ok(None),
            other => other.map(Some),
        })
        .await?;
    let message = match stored {
        Some(true) => None,
        Some(false) => Some(format!(
            "You have {MAX_PASSKEYS} passkeys already. Remove one you no longer use first."
        )),
        None => Some("That passkey is registered already.".to_string()),
    };
    if let Some(message) = message {
        let errors = redo(&message, "form");
        let page = passkeys_page(ctx, &site, &user, true, &errors, values).await?;
        return Ok(Some(FormOutcome::redo(page)));
    }
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::PasskeyAdded, who, Some(name.clone()))
        .await;
    site.mail
        .notify_user(site.db, Notice::PasskeysChanged, &user.id, now, |m, u| {
            Letter::passkey_changed(m, u, &name, true, now)
        })
        .await;
    Ok(Some(FormOutcome::success(
        PAGE,
        format!("Passkey \"{name}\" added. You can sign in with it from now on."),
    )))
}

/// What a person is told when the browser's answer to "add a passkey" was not accepted.
fn registration_words(refusal: &PasskeyRefusal) -> &'static str {
    match refusal {
        PasskeyRefusal::Expired | PasskeyRefusal::Malformed(_) | PasskeyRefusal::NotVerified(_) => {
            "The passkey could not be added. Please try again."
        }
        other => refusal_words(other),
    }
}

/// Renames one of your passkeys.
#[rocket::post("/account/passkeys/<id>/rename", data = "<form>")]
async fn rename(
    user: CurrentUser,
    id: &str,
    form: CsrfForm<'_, Rename>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let raw = form.parsed().map(|r| r.name).unwrap_or_default();
    let name = match clean_name(&raw) {
        Ok(name) => name,
        Err(message) => return Ok(FormOutcome::error(PAGE, message)),
    };
    let (id, uid, new) = (id.to_string(), user.id.clone(), name.clone());
    let renamed = site
        .db
        .run(move |conn| Passkey::rename(conn, &uid, &id, &new))
        .await?;
    Ok(match renamed {
        true => FormOutcome::success(PAGE, format!("Renamed to \"{name}\".")),
        false => FormOutcome::error(PAGE, "That passkey is no longer on your account."),
    })
}

/// Removes one of your passkeys (sudo mode): it signs nobody in from this moment, on every
/// instance (the sign-in reads the row).
#[rocket::post("/account/passkeys/<id>/remove", data = "<_form>")]
async fn remove(
    user: CurrentUser,
    _fresh: Sudo<'_>,
    id: &str,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let (id, uid) = (id.to_string(), user.id.clone());
    let removed = site
        .db
        .run(move |conn| Passkey::remove(conn, &uid, &id))
        .await?;
    let Some(name) = removed else {
        return Ok(FormOutcome::error(
            PAGE,
            "That passkey is no longer on your account.",
        ));
    };
    let who = Who::user(&user.id, &user.username);
    site.record_own(AuditKind::PasskeyRemoved, who, Some(name.clone()))
        .await;
    let now = site.now();
    site.mail
        .notify_user(site.db, Notice::PasskeysChanged, &user.id, now, |m, u| {
            Letter::passkey_changed(m, u, &name, false, now)
        })
        .await;
    Ok(FormOutcome::success(
        PAGE,
        format!("Passkey \"{name}\" removed. It no longer signs you in."),
    ))
}
