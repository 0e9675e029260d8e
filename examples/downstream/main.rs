//! A second service that trusts latchkey's access tokens without holding any secret: it checks
//! them with the public keys latchkey publishes at `/.well-known/jwks.json` (latchkey must sign
//! with EdDSA or ES256). One protected route, `GET /hello`, for `Authorization: Bearer <token>`.
//!
//! ```sh
//! JWKS_URL=http://127.0.0.1:8000/.well-known/jwks.json ROCKET_PORT=8100 \
//!     cargo run --example downstream
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8100/hello
//! ```
//!
//! Settings (environment): `JWKS_URL` (default above), `TOKEN_ISSUER` and `TOKEN_AUDIENCE`
//! (default `latchkey`, as latchkey's `jwt_issuer`/`jwt_audience`), Rocket's `ROCKET_*`
//! (port 8100 unless `ROCKET_PORT` says otherwise).
//!
//! What it checks: the key named by the token's `kid`, with that key's `alg` from the JWKS and
//! no other (never `none`, never HS256 keyed with a public key), the signature, `iss`, `aud`,
//! `exp` and `nbf` (5 s leeway). What it cannot check: revocation. A signed-out session's token
//! still passes here until its `exp` (at most latchkey's `token_ttl_secs`), so keep that short.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::tokio::sync::Mutex;
use serde::Deserialize;

/// Never fetch the key set more often than this, however many unknown `kid`s arrive (a forged
/// token with a random `kid` must not turn this service into a flood against latchkey). Short,
/// because right after a key rotation the new key's tokens wait for the next allowed fetch.
const REFETCH_FLOOR: Duration = Duration::from_secs(2);

/// Reuse a fetched set this long when the answer names no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

/// The public keys latchkey publishes, fetched when needed and cached.
struct Jwks {
    url: hyper::Uri,
    client: Client<HttpConnector, Empty<Bytes>>,
    cache: Mutex<Cache>,
}

/// The last fetched set: each key with the one algorithm it verifies.
#[derive(Default)]
struct Cache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
    max_age: Duration,
}

impl Jwks {
    fn new(url: hyper::Uri) -> Jwks {
        Jwks {
            url,
            client: Client::builder(TokioExecutor::new()).build_http(),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The key named `kid` and its algorithm; refetches when the set is stale or does not know
    /// `kid`, but not within [`REFETCH_FLOOR`] of the last fetch.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let mut cache = self.cache.lock().await;
        let age = cache.fetched.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age > cache.max_age);
        let unknown = !cache.keys.contains_key(kid);
        let may_fetch = age.is_none_or(|age| age >= REFETCH_FLOOR);
        if (stale || unknown) && may_fetch {
            cache.fetched = Some(Instant::now());
            match self.fetch().await {
                Ok((keys, max_age)) => {
                    cache.keys = keys;
                    cache.max_age = max_age;
                }
                // Keep the keys we had: latchkey being briefly unreachable should not fail
                // tokens signed by keys we already know.
                Err(e) => eprintln!("downstream: cannot fetch {}: {e}", self.url),
            }
        }
        cache.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<(HashMap<String, (DecodingKey, Algorithm)>, Duration), String> {
        let response =
            rocket::tokio::time::timeout(Duration::from_secs(5), self.client.get(self.url.clone()))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(hyper::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age=")?.parse().ok())
            })
            .map_or(DEFAULT_MAX_AGE, Duration::from_secs);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            // Only the public-key algorithms latchkey uses, and only as the JWK states them.
            let alg = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                _ => continue,
            };
            let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            keys.insert(kid.clone(), (key, alg));
        }
        Ok((keys, max_age))
    }
}

/// What this service expects in `iss` and `aud`.
struct Expected {
    issuer: String,
    audience: String,
}

/// The claims this service reads; the signature covers all of them.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    role: String,
}

/// A caller with a valid latchkey access token.
struct Caller(Claims);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = &'static str;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let refuse = |why: &'static str| Outcome::Error((Status::Unauthorized, why));
        let (Some(jwks), Some(expected)) = (
            req.rocket().state::<Jwks>(),
            req.rocket().state::<Expected>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, "not configured"));
        };
        // Bearer only: no cookie, no query parameter (RFC 6750 §2.3: URLs leak).
        let Some(token) = req
            .headers()
            .get_one("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return refuse("no bearer token");
        };
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return refuse("malformed token");
        };
        let Some(kid) = header.kid else {
            return refuse("token has no kid");
        };
        let Some((key, alg)) = jwks.key(&kid).await else {
            return refuse("unknown kid");
        };
        // The key's algorithm decides, never the token's header (RFC 8725 §3.1).
        if header.alg != alg {
            return refuse("algorithm does not match the key");
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&expected.issuer]);
        validation.set_audience(&[&expected.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
            Ok(data) => Outcome::Success(Caller(data.claims)),
            Err(_) => refuse("invalid token"),
        }
    }
}

/// The protected route.
#[rocket::get("/hello")]
fn hello(caller: Caller) -> Json<Value> {
    Json(json!({ "hello": caller.0.sub, "role": caller.0.role }))
}

/// Up and serving (for scripts that wait for it).
#[rocket::get("/healthz")]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A 401 as RFC 6750 says: JSON plus `WWW-Authenticate`.
#[derive(rocket::Responder)]
#[response(status = 401, content_type = "json")]
struct Unauthorized {
    body: Json<Value>,
    challenge: Header<'static>,
}

#[rocket::catch(401)]
fn unauthorized() -> Unauthorized {
    Unauthorized {
        body: Json(json!({
            "error": "invalid_token",
            "message": "Send a valid latchkey access token as Authorization: Bearer.",
        })),
        challenge: Header::new("WWW-Authenticate", r#"Bearer error="invalid_token""#),
    }
}

#[rocket::launch]
fn rocket() -> _ {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let url = env("JWKS_URL", "http://127.0.0.1:8000/.well-known/jwks.json");
    let url: hyper::Uri = url
        .parse()
        .unwrap_or_else(|e| panic!("JWKS_URL {url:?} is not a URL: {e}"));
    // Rocket's defaults and ROCKET_* only: the Rocket.toml beside it is latchkey's.
    let figment = Figment::from(rocket::Config::default())
        .merge(Serialized::default("port", 8100))
        .merge(Env::prefixed("ROCKET_").global());
    rocket::custom(figment)
        .manage(Jwks::new(url))
        .manage(Expected {
            issuer: env("TOKEN_ISSUER", "latchkey"),
            audience: env("TOKEN_AUDIENCE", "latchkey"),
        })
        .mount("/", rocket::routes![hello, healthz])
        .register("/", rocket::catchers![unauthorized])
}
