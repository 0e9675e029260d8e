//! Your API keys: create (the secret is shown once), list, revoke.

use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::State;
use serde_json::{json, Value};
use time::Duration;

use crate::auth::{CsrfForm, CsrfToken, CurrentUser, Sessions};
use crate::db::Db;
use crate::error::Error;
use crate::events::{Audit, Event, Who};
use crate::models::{ApiKey, AuditKind, KeyScope};
use crate::peer::Peer;
use crate::validation::FieldErrors;
use crate::view::{format_db_time, page, Page};

/// Longest key name.
const MAX_NAME_CHARS: usize = 64;
/// Most keys one user may hold (active or not, for the record).
const MAX_KEYS: usize = 50;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, revoke]
}

/// A key as the pages show it.
pub(crate) fn key_view(key: &ApiKey, now: time::PrimitiveDateTime) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "created_at": format_db_time(key.created_at),
        "expires_at": key.expires_at.map(format_db_time).unwrap_or_default(),
        "last_used_at": key.last_used_at.map(format_db_time).unwrap_or_default(),
        "status": key.status(now),
    })
}

async fn keys_page(
    user: &CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: &CsrfToken,
    db: &Db,
    sessions: &Sessions,
    extra: Value,
) -> Result<Page, Error> {
    let (uid, now) = (user.id.clone(), sessions.clock().db_now());
    let keys = db.run(move |conn| ApiKey::for_user(conn, &uid)).await?;
    let mut context = json!({
        "keys": keys.iter().map(|k| key_view(k, now)).collect::<Vec<_>>(),
        "new_key": "",
        "errors": {},
        "values": {},
    });
    if let (Some(base), Value::Object(extra)) = (context.as_object_mut(), extra) {
        base.extend(extra);
    }
    Ok(page(
        "account/api_keys",
        "API keys",
        Some(user),
        flash,
        csrf,
        context,
    ))
}

/// Your keys and the form to make one.
#[rocket::get("/account/api-keys")]
async fn list(
    user: CurrentUser,
    flash: Option<FlashMessage<'_>>,
    csrf: CsrfToken,
    db: &State<Db>,
    sessions: &State<Sessions>,
) -> Result<Page, Error> {
    keys_page(&user, flash, &csrf, db, sessions, json!({})).await
}

/// Makes a key and shows its secret this once (a page, not a redirect, so it never sits in a cookie).
#[rocket::post("/account/api-keys", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn create(
    user: CurrentUser,
    form: CsrfForm,
    csrf: CsrfToken,
    db: &State<Db>,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<(Status, Page), Error> {
    let name = form.get("name").trim().to_string();
    let scope_raw = form.get("scope");
    let days_raw = form.get("expires_in_days").trim().to_string();
    let mut errors = FieldErrors::new();
    if name.is_empty() {
        errors.add("name", "Give the key a name, so you know what it is for.");
    } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        errors.add(
            "name",
            format!("Use at most {MAX_NAME_CHARS} characters, without control characters."),
        );
    }
    let scope = KeyScope::parse(scope_raw);
    if scope.is_none() {
        errors.add("scope", "Choose read only or full access.");
    }
    let days = match days_raw.as_str() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(d) if (1..=365).contains(&d) => Some(d),
            _ => {
                errors.add(
                    "expires_in_days",
                    "Enter a number of days from 1 to 365, or leave it empty.",
                );
                None
            }
        },
    };
    let values = json!({ "name": name, "expires_in_days": days_raw, "scope": scope_raw });
    let (Some(scope), true) = (scope, errors.is_empty()) else {
        let page = keys_page(
            &user,
            None,
            &csrf,
            db,
            sessions,
            json!({ "errors": errors, "values": values }),
        )
        .await?;
        return Ok((Status::UnprocessableEntity, page));
    };
    let now = sessions.clock().db_now();
    let (key, secret) = ApiKey::generate(
        &user.id,
        &name,
        scope,
        now,
        days.map(|d| now + Duration::days(d)),
    );
    let (row, uid) = (key.clone(), user.id.clone());
    let stored = db
        .run(move |conn| {
            if ApiKey::for_user(conn, &uid)?.len() >= MAX_KEYS {
                return Ok(false);
            }
            row.insert(conn)?;
            Ok(true)
        })
        .await?;
    if !stored {
        let mut errors = FieldErrors::new();
        errors.add(
            "form",
            format!("You have {MAX_KEYS} keys already. Revoke one you no longer use first."),
        );
        let page = keys_page(
            &user,
            None,
            &csrf,
            db,
            sessions,
            json!({ "errors": errors, "values": values }),
        )
        .await?;
        return Ok((Status::UnprocessableEntity, page));
    }
    audit
        .record(
            Event::new(AuditKind::ApiKeyCreated, &peer)
                .by_self(Who::user(&user.id, &user.username))
                .detail(format!("{} {} ({})", key.prefix, key.name, key.scope)),
        )
        .await;
    let page = keys_page(
        &user,
        None,
        &csrf,
        db,
        sessions,
        json!({ "new_key": secret }),
    )
    .await?;
    Ok((Status::Ok, page))
}

/// Revokes one of your keys; tokens already issued from it live out their 15 minutes at most.
#[rocket::post("/account/api-keys/<id>/revoke", data = "<_form>")]
async fn revoke(
    user: CurrentUser,
    id: &str,
    _form: CsrfForm,
    db: &State<Db>,
    sessions: &State<Sessions>,
    audit: &State<Audit>,
    peer: Peer,
) -> Result<Flash<Redirect>, Error> {
    let (id, uid, now) = (id.to_string(), user.id.clone(), sessions.clock().db_now());
    let Some(key) = db
        .run(move |conn| ApiKey::revoke(conn, &id, &uid, now))
        .await?
    else {
        return Ok(Flash::error(
            Redirect::to("/account/api-keys"),
            "That key is already revoked.",
        ));
    };
    audit
        .record(
            Event::new(AuditKind::ApiKeyRevoked, &peer)
                .by_self(Who::user(&user.id, &user.username))
                .detail(format!("{} {}", key.prefix, key.name)),
        )
        .await;
    Ok(Flash::success(
        Redirect::to("/account/api-keys"),
        format!("The key \"{}\" has been revoked.", key.name),
    ))
}
