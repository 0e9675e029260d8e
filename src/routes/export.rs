//! "Download your data": `GET /account/data`, everything latchkey keeps about you as one JSON
//! file — profile, sessions, API key metadata, trusted devices, mail sent to you and the audit
//! rows about you — and none of the secrets (no password hash, two-factor secret, recovery code
//! or key hash). It needs sudo mode: a stolen session alone must not be able to carry off a
//! person's data.

use rocket::http::{ContentType, Header};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::PrimitiveDateTime;

use crate::auth::Sudo;
use crate::error::Error;
use crate::events::Who;
use crate::models::{
    ApiKey, AuditEvent, AuditKind, OutboxMail, Passkey, Session, TrustedDevice, TwoFactor, User,
};
use crate::peer::describe_browser;
use crate::routes::services::Services;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![data]
}

/// The export's format name and version, so a reader knows what it holds.
const FORMAT: &str = "latchkey-account-export";
const VERSION: u32 = 1;

/// A JSON download, never cached.
#[derive(rocket::Responder)]
struct JsonDownload {
    body: String,
    content_type: ContentType,
    disposition: Header<'static>,
    cache: Header<'static>,
}

/// A moment in the export: RFC 3339, UTC.
fn iso(at: PrimitiveDateTime) -> String {
    at.assume_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn iso_opt(at: Option<PrimitiveDateTime>) -> Value {
    at.map_or(Value::Null, |at| Value::String(iso(at)))
}

/// The file name: the username, with anything unusual replaced (it goes in a header).
fn file_name(username: &str) -> String {
    let safe: String = username
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("latchkey-{safe}.json")
}

/// Everything stored about one user, read in one go.
struct Stored {
    user: User,
    two_factor: Option<TwoFactor>,
    sessions: Vec<Session>,
    keys: Vec<ApiKey>,
    passkeys: Vec<Passkey>,
    devices: Vec<TrustedDevice>,
    mail: Vec<OutboxMail>,
    audit: Vec<AuditEvent>,
}

fn export(stored: &Stored, generated_at: PrimitiveDateTime) -> Value {
    let user = &stored.user;
    let sessions: Vec<Value> = stored
        .sessions
        .iter()
        .map(|s| {
            json!({
                "created_at": iso(s.created_at),
                "last_seen_at": iso(s.last_seen_at),
                "expires_at": iso(s.expires_at),
                "browser": describe_browser(&s.user_agent),
                "user_agent": s.user_agent,
                "ip": s.ip,
                "remember_me": s.remember,
                "two_factor": s.two_factor,
                "revoked_at": iso_opt(s.revoked_at),
            })
        })
        .collect();
    let keys: Vec<Value> = stored
        .keys
        .iter()
        .map(|k| {
            json!({
                "name": k.name,
                "prefix": k.prefix,
                "scope": k.scope,
                "created_at": iso(k.created_at),
                "expires_at": iso_opt(k.expires_at),
                "last_used_at": iso_opt(k.last_used_at),
                "revoked_at": iso_opt(k.revoked_at),
            })
        })
        .collect();
    // Names and times; the public key and counter are the site's working data, not the person's.
    let passkeys: Vec<Value> = stored
        .passkeys
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "created_at": iso(p.created_at),
                "last_used_at": iso_opt(p.last_used_at),
            })
        })
        .collect();
    let devices: Vec<Value> = stored
        .devices
        .iter()
        .map(|d| {
            json!({
                "created_at": iso(d.created_at),
                "expires_at": iso(d.expires_at),
                "revoked_at": iso_opt(d.revoked_at),
            })
        })
        .collect();
    let mail: Vec<Value> = stored
        .mail
        .iter()
        .map(|m| {
            json!({
                "kind": m.kind,
                "to": m.recipient,
                "subject": m.subject,
                "created_at": iso(m.created_at),
                "sent_at": iso_opt(m.sent_at),
                "state": m.state().as_str(),
            })
        })
        .collect();
    // Addresses and browsers are the person's own only where they acted themself: an admin's
    // or a stranger's request about them stays out.
    let audit: Vec<Value> = stored
        .audit
        .iter()
        .map(|e| {
            let own = e.actor_id.as_deref() == Some(user.id.as_str());
            json!({
                "at": iso(e.at),
                "kind": e.kind,
                "actor": e.actor,
                "subject": e.subject,
                "ip": if own { e.ip.clone() } else { None },
                "user_agent": if own { e.user_agent.clone() } else { None },
                "detail": e.detail,
            })
        })
        .collect();
    let two_factor_since = stored.two_factor.as_ref().and_then(|t| t.enabled_at);
    json!({
        "format": FORMAT,
        "version": VERSION,
        "generated_at": iso(generated_at),
        "profile": {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "email_verified": user.email_verified_at.is_some(),
            "email_verified_at": iso_opt(user.email_verified_at),
            "role": user.role().as_str(),
            "disabled": user.disabled,
            "created_at": iso(user.created_at),
            "last_sign_in_at": iso_opt(user.last_login_at),
            "two_factor": two_factor_since.is_some(),
            "two_factor_since": iso_opt(two_factor_since),
        },
        "sessions": sessions,
        "api_keys": keys,
        "passkeys": passkeys,
        "trusted_devices": devices,
        "mail": mail,
        "audit_events": audit,
    })
}

/// Your data as a JSON download (after "Confirm it's you").
#[rocket::get("/account/data")]
async fn data(sudo: Sudo<'_>, site: Services<'_>) -> Result<JsonDownload, Error> {
    let id = sudo.0.id.clone();
    let stored = site
        .db
        .run(move |conn| {
            let user = User::find(conn, &id)?.ok_or(Error::NotFound)?;
            Ok(Stored {
                two_factor: TwoFactor::enabled(conn, &id)?,
                sessions: Session::all_for_user(conn, &id)?,
                keys: ApiKey::for_user(conn, &id)?,
                passkeys: Passkey::for_user(conn, &id)?,
                devices: TrustedDevice::for_user(conn, &id)?,
                mail: OutboxMail::for_user(conn, &id)?,
                audit: AuditEvent::about_user(conn, &id)?,
                user,
            })
        })
        .await?;
    let body = serde_json::to_string_pretty(&export(&stored, site.now()))
        .map_err(|e| Error::Task(e.to_string()))?;
    let who = Who::user(&stored.user.id, &stored.user.username);
    site.record_own(AuditKind::DataExported, who, None).await;
    Ok(JsonDownload {
        body,
        content_type: ContentType::JSON,
        disposition: Header::new(
            "Content-Disposition",
            format!(
                "attachment; filename=\"{}\"",
                file_name(&stored.user.username)
            ),
        ),
        cache: Header::new("Cache-Control", "no-store"),
    })
}
