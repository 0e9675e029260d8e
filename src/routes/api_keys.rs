//! Your API keys: create (the secret is shown once), list, revoke.

use rocket::form::{self, FromFormField, ValueField};
use rocket::http::Status;
use serde_json::{json, Value};
use time::Duration;

use crate::auth::two_factor::WRONG_APP_CODE;
use crate::auth::{CsrfForm, CsrfOnly, CurrentUser, Sudo};
use crate::config::Notice;
use crate::error::Error;
use crate::events::Who;
use crate::mail::Letter;
use crate::models::{ApiKey, AuditKind, KeyScope};
use crate::routes::services::Services;
use crate::validation::{field, FieldErrors};
use crate::view::{FormOutcome, KeyView, Page, PageContext};

/// Longest key name.
const MAX_NAME_CHARS: usize = 64;
/// Most keys one user may hold (active or not, for the record).
const MAX_KEYS: usize = 50;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, revoke]
}

/// The new-key form.
#[derive(Debug, rocket::FromForm)]
struct NewKey {
    #[field(default = String::new(), validate = key_name())]
    name: String,
    scope: Scope,
    expires_in_days: Days,
}

fn key_name<'v>(name: &str) -> form::Result<'v, ()> {
    field::filled(name, "Give the key a name, so you know what it is for.")?;
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        let message =
            format!("Use at most {MAX_NAME_CHARS} characters, without control characters.");
        return Err(form::Error::validation(message).into());
    }
    Ok(())
}

/// What the key may do: `read` or `full`.
#[derive(Debug)]
struct Scope(KeyScope);

impl<'v> FromFormField<'v> for Scope {
    fn from_value(field: ValueField<'v>) -> form::Result<'v, Self> {
        KeyScope::parse(field.value)
            .map(Scope)
            .ok_or_else(|| form::Error::validation("Choose read only or full access.").into())
    }
}

/// Days until the key expires, a whole number from 1; empty (or absent) for the site's default.
/// The site's maximum (`api_key_max_days`) is checked by the handler.
#[derive(Debug)]
struct Days(Option<i64>);

impl<'v> FromFormField<'v> for Days {
    fn from_value(field: ValueField<'v>) -> form::Result<'v, Self> {
        let days = match field.value.trim() {
            "" => return Ok(Days(None)),
            raw => raw.parse::<i64>().ok().filter(|d| (1..=3650).contains(d)),
        };
        days.map(|d| Days(Some(d))).ok_or_else(|| {
            form::Error::validation("Enter a whole number of days, or leave it empty.").into()
        })
    }

    fn default() -> Option<Self> {
        Some(Days(None))
    }
}

/// The keys page: your keys, plus `extra` (a new key's secret, or a form's errors and values).
async fn keys_page(
    ctx: PageContext<'_>,
    site: &Services<'_>,
    user: &CurrentUser,
    extra: Value,
) -> Result<Page, Error> {
    let (uid, now) = (user.id.clone(), site.now());
    let keys = site
        .db
        .run(move |conn| ApiKey::for_user(conn, &uid))
        .await?;
    let two_factor = site.has_two_factor(&user.id).await?;
    let mut context = json!({
        "two_factor": two_factor,
        "default_days": site.settings.api_key_default_days,
        "max_days": site.settings.api_key_max_days,
        "keys": keys.iter().map(|k| KeyView::of(k, now)).collect::<Vec<_>>(),
        "new_key": "",
        "errors": {},
        "values": {},
    });
    if let (Some(base), Value::Object(extra)) = (context.as_object_mut(), extra) {
        base.extend(extra);
    }
    Ok(ctx.page("account/api_keys", "API keys", context))
}

/// Your keys and the form to make one.
#[rocket::get("/account/api-keys")]
async fn list(user: CurrentUser, ctx: PageContext<'_>, site: Services<'_>) -> Result<Page, Error> {
    keys_page(ctx, &site, &user, json!({})).await
}

/// Makes a key and shows its secret this once (a page, not a redirect, so it never sits in a
/// cookie). A key outlives the session, so it needs a fresh proof (sudo mode).
#[rocket::post("/account/api-keys", data = "<form>")]
async fn create(
    user: CurrentUser,
    _fresh: Sudo<'_>,
    form: CsrfForm<'_, NewKey>,
    ctx: PageContext<'_>,
    site: Services<'_>,
) -> Result<(Status, Page), Error> {
    let values = json!({
        "name": form.submitted("name").trim(),
        "expires_in_days": form.submitted("expires_in_days").trim(),
        "scope": form.submitted("scope"),
    });
    let code = form.submitted("code").to_string();
    let new = match form.parsed() {
        Ok(new) => new,
        Err(errors) => {
            let extra = json!({ "errors": errors, "values": values });
            let page = keys_page(ctx, &site, &user, extra).await?;
            return Ok((Status::UnprocessableEntity, page));
        }
    };
    let (default_days, max_days) = (
        site.settings.api_key_default_days,
        site.settings.api_key_max_days,
    );
    let days = new.expires_in_days.0.unwrap_or(default_days);
    let mut errors = FieldErrors::new();
    if days > max_days {
        errors.add(
            "expires_in_days",
            format!("Keys live at most {max_days} days. Enter a smaller number."),
        );
    }
    // A key outlives the session: with two-factor on, it takes the current code too.
    if site.has_two_factor(&user.id).await? {
        let refused = site
            .code_refusal(&user.id, &code, false, WRONG_APP_CODE)
            .await?;
        if let Some(message) = refused {
            errors.add("code", message);
        }
    }
    if !errors.is_empty() {
        let extra = json!({ "errors": errors, "values": values });
        let page = keys_page(ctx, &site, &user, extra).await?;
        return Ok((Status::UnprocessableEntity, page));
    }
    let now = site.now();
    let (key, secret) = ApiKey::generate(
        &user.id,
        new.name.trim(),
        new.scope.0,
        now,
        Some(now + Duration::days(days)),
    );
    let (row, uid) = (key.clone(), user.id.clone());
    let stored = site
        .db
        .run(move |conn| {
            if ApiKey::for_user(conn, &uid)?.len() >= MAX_KEYS {
                return Ok(false);
            }
            row.insert(conn)?;
            Ok(true)
        })
        .await?;
    if !stored {
        let errors = FieldErrors::form(format!(
            "You have {MAX_KEYS} keys already. Revoke one you no longer use first."
        ));
        let extra = json!({ "errors": errors, "values": values });
        let page = keys_page(ctx, &site, &user, extra).await?;
        return Ok((Status::UnprocessableEntity, page));
    }
    let who = Who::user(&user.id, &user.username);
    let detail = format!("{} {} ({})", key.prefix, key.name, key.scope);
    site.record_own(AuditKind::ApiKeyCreated, who, Some(detail))
        .await;
    let (name, expires) = (key.name.clone(), key.expires_at);
    site.mail
        .notify_user(site.db, Notice::ApiKeyCreated, &user.id, now, |m, u| {
            Letter::api_key_created(m, u, &name, expires, now)
        })
        .await;
    let page = keys_page(ctx, &site, &user, json!({ "new_key": secret })).await?;
    Ok((Status::Ok, page))
}

/// Revokes one of your keys; tokens already issued from it live out their 15 minutes at most.
#[rocket::post("/account/api-keys/<id>/revoke", data = "<_form>")]
async fn revoke(
    user: CurrentUser,
    id: &str,
    _form: CsrfOnly<'_>,
    site: Services<'_>,
) -> Result<FormOutcome, Error> {
    let (id, uid, now) = (id.to_string(), user.id.clone(), site.now());
    let Some(key) = site
        .db
        .run(move |conn| ApiKey::revoke(conn, &id, &uid, now))
        .await?
    else {
        return Ok(FormOutcome::error(
            "/account/api-keys",
            "That key is already revoked.",
        ));
    };
    let who = Who::user(&user.id, &user.username);
    let detail = format!("{} {}", key.prefix, key.name);
    site.record_own(AuditKind::ApiKeyRevoked, who, Some(detail))
        .await;
    Ok(FormOutcome::success(
        "/account/api-keys",
        format!("The key \"{}\" has been revoked.", key.name),
    ))
}
