//! `GET /.well-known/jwks.json`: the public keys that verify latchkey's access tokens (RFC 7517),
//! so another service can check a token without a secret that could also mint one.

use rocket::http::Header;
use rocket::State;

use crate::auth::Sessions;
use crate::config::Settings;

/// Routes of this module.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![jwks]
}

/// The longest a client may reuse the key set. Shorter than the key grace (see [`max_age`]), so a
/// cached set never outlives a retired key's grace by more than this.
const MAX_AGE_SECS: i64 = 300;

/// The key set, as JSON, with how long it may be cached.
#[derive(rocket::Responder)]
#[response(content_type = "json")]
struct KeySet {
    body: String,
    cache: Header<'static>,
}

/// Seconds the set may be cached: at most [`MAX_AGE_SECS`], and under half the key grace.
fn max_age(grace_secs: i64) -> i64 {
    (grace_secs / 2).clamp(0, MAX_AGE_SECS)
}

/// The signing key and the retired keys still within their grace, public halves only: an
/// HS256 secret is never published, so a ring of secrets answers `{"keys":[]}`.
#[rocket::get("/.well-known/jwks.json")]
fn jwks(sessions: &State<Sessions>, settings: &State<Settings>) -> KeySet {
    let now = sessions.clock().unix();
    let set = sessions.tokens().keyring().public_keys(now);
    KeySet {
        // A JwkSet of public keys always serialises; an empty set is the safe fallback.
        body: serde_json::to_string(&set).unwrap_or_else(|_| r#"{"keys":[]}"#.into()),
        cache: Header::new(
            "Cache-Control",
            format!("public, max-age={}", max_age(settings.key_grace_secs)),
        ),
    }
}
