//! CSRF protection for every POST form: a hidden `csrf_token` that is an HMAC of the session id
//! (or, before sign-in, of a random pre-session cookie), plus an `Origin`/`Sec-Fetch-Site` check.
//! Forms are read through [`CsrfForm`], a data guard that refuses a missing or wrong token with
//! 403 before the handler runs, so nothing changes; the JSON API checks a header instead
//! ([`check_header`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rocket::data::{self, Data, FromData};
use rocket::form::{self, Contextual, Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::request::{self, FromRequest, Request};
use sha2::Sha256;

use super::cookie::{CookieKind, Cookies};
use super::{AuthState, Keyring};
use crate::events::{Audit, Event};
use crate::models::AuditKind;
use crate::peer::Peer;
use crate::validation::FieldErrors;

type HmacSha256 = Hmac<Sha256>;

/// Most tokens remembered; the cache is emptied when it fills.
const TOKEN_CACHE_MAX: usize = 50_000;

/// Makes and checks CSRF tokens; managed state (cheap to clone: the state is shared).
#[derive(Clone)]
pub struct Csrf {
    /// Tokens already computed, by binding: every signed-in page needs one.
    issued: Arc<RwLock<HashMap<String, String>>>,
    /// Derived from the keyring, active key first, so tokens survive a key rotation.
    keys: Arc<RwLock<Vec<[u8; 32]>>>,
    cookies: Cookies,
    public_origin: Option<String>,
}

/// Set in the request cache when a form fails the check, so the 403 page can say what to do.
#[derive(Debug, Clone, Copy)]
pub struct CsrfRejected;

impl Csrf {
    /// Keys from the ring; cookie flags and the expected origin from the settings.
    pub fn new(keyring: &Keyring, secure: bool, public_origin: Option<String>) -> Csrf {
        Csrf {
            issued: Arc::new(RwLock::new(HashMap::new())),
            keys: Arc::new(RwLock::new(keyring.derived_keys())),
            cookies: Cookies::new(secure),
            public_origin,
        }
    }

    fn pre_session_cookie(&self) -> &'static str {
        self.cookies.name(CookieKind::PreSession)
    }

    fn mac(key: &[u8; 32], binding: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"csrf\0");
        mac.update(binding.as_bytes());
        mac
    }

    /// Uses the keys derived from a reloaded keyring from now on.
    pub fn replace_keys(&self, keyring: &Keyring) {
        if let Ok(mut keys) = self.keys.write() {
            *keys = keyring.derived_keys();
        }
        if let Ok(mut issued) = self.issued.write() {
            issued.clear();
        }
    }

    /// The token for a binding (`sid:…` or `pre:…`).
    pub fn token_for(&self, binding: &str) -> String {
        if let Some(token) = self
            .issued
            .read()
            .ok()
            .and_then(|t| t.get(binding).cloned())
        {
            return token;
        }
        let active = match self.keys.read() {
            Ok(keys) => keys[0],
            Err(poisoned) => poisoned.into_inner()[0],
        };
        let token = URL_SAFE_NO_PAD.encode(Csrf::mac(&active, binding).finalize().into_bytes());
        if let Ok(mut issued) = self.issued.write() {
            if issued.len() >= TOKEN_CACHE_MAX {
                issued.clear();
            }
            issued.insert(binding.to_string(), token.clone());
        }
        token
    }

    /// Whether `token` was made for `binding` with any key on the ring (constant-time compare).
    pub fn verify(&self, binding: &str, token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter()
            .any(|key| Csrf::mac(key, binding).verify_slice(&bytes).is_ok())
    }

    /// The pre-session binding, creating the cookie if the browser has none.
    fn pre_session_binding(&self, jar: &CookieJar<'_>) -> String {
        let value = match jar.get(self.pre_session_cookie()) {
            Some(cookie) if !cookie.value().is_empty() => cookie.value().to_string(),
            _ => {
                let value = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
                jar.add(
                    self.cookies
                        .make(CookieKind::PreSession, value.clone(), None),
                );
                value
            }
        };
        format!("pre:{value}")
    }

    /// The bindings a submitted token may match: the session's, and the pre-session cookie's
    /// (a form rendered just before signing in, in another tab).
    fn accepted_bindings(&self, state: &AuthState, jar: &CookieJar<'_>) -> Vec<String> {
        let mut bindings = Vec::with_capacity(2);
        if let Some(user) = state.user() {
            bindings.push(format!("sid:{}", user.session_id));
        }
        if let Some(cookie) = jar.get(self.pre_session_cookie()) {
            if !cookie.value().is_empty() {
                bindings.push(format!("pre:{}", cookie.value()));
            }
        }
        bindings
    }

    /// Whether the request comes from this site: `Sec-Fetch-Site` is `same-origin` or `none`
    /// when sent, and `Origin` (when sent) names this site.
    fn same_origin(&self, req: &Request<'_>) -> Result<(), String> {
        if let Some(site) = req.headers().get_one("Sec-Fetch-Site") {
            if !matches!(site, "same-origin" | "none") {
                return Err(format!("Sec-Fetch-Site is {site}"));
            }
        }
        let Some(origin) = req.headers().get_one("Origin") else {
            return Ok(());
        };
        // A page sent with `Referrer-Policy: no-referrer` (one with a secret link in its URL,
        // like an invitation) makes the browser post `Origin: null`; the browser's own
        // `Sec-Fetch-Site` (no page can set it) still says where the form came from.
        if origin == "null" && req.headers().get_one("Sec-Fetch-Site") == Some("same-origin") {
            return Ok(());
        }
        let expected = match &self.public_origin {
            Some(public) => public.trim_end_matches('/').to_string(),
            None => {
                let host = req.headers().get_one("Host").unwrap_or("");
                let authority = origin.split_once("://").map_or("", |(_, a)| a);
                if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
                    return Ok(());
                }
                return Err(format!("Origin {origin:?} is not this site ({host:?})"));
            }
        };
        if origin.eq_ignore_ascii_case(&expected) {
            Ok(())
        } else {
            Err(format!("Origin {origin:?} is not {expected:?}"))
        }
    }
}

/// The token to put in this page's forms.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let Some(csrf) = req.rocket().state::<Csrf>() else {
            return request::Outcome::Success(CsrfToken(String::new()));
        };
        let binding = match AuthState::of(req).await.user() {
            Some(user) => format!("sid:{}", user.session_id),
            None => csrf.pre_session_binding(req.cookies()),
        };
        request::Outcome::Success(CsrfToken(csrf.token_for(&binding)))
    }
}

/// A submitted form whose origin and CSRF token were checked before the handler runs (a missing
/// or wrong token is a 403 and nothing changes), parsed into `T` with Rocket's field validators.
/// When a field fails its validator the form comes back with its values and errors, to show it
/// again.
pub struct CsrfForm<'r, T> {
    form: Contextual<'r, T>,
}

impl<'r, T> CsrfForm<'r, T> {
    /// The text submitted for `field`, or "".
    pub fn submitted(&self, field: &str) -> &'r str {
        self.form.context.field_value(field).unwrap_or("")
    }

    /// The parsed form, or — when a field failed its validator — the message for each field,
    /// to show the form again (its values are still at [`CsrfForm::submitted`]).
    pub fn parsed(self) -> Result<T, FieldErrors> {
        match self.form.value {
            Some(value) => Ok(value),
            None => Err(FieldErrors::of(&self.form.context)),
        }
    }
}

/// A form with no fields but its CSRF token (buttons such as "Sign out").
#[derive(Debug)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: form::Options) -> Self::Context {}

    fn push_value(_: &mut Self::Context, _: form::ValueField<'r>) {}

    async fn push_data(_: &mut Self::Context, _: form::DataField<'r, '_>) {}

    fn finalize(_: Self::Context) -> form::Result<'r, Self> {
        Ok(NoFields)
    }
}

/// A button form: only its CSRF token.
pub type CsrfOnly<'r> = CsrfForm<'r, NoFields>;

async fn reject(req: &Request<'_>, why: String) -> (Status, String) {
    req.local_cache(|| Some(CsrfRejected));
    let peer = Peer::of(req);
    let state = AuthState::of(req).await;
    if let Some(audit) = req.rocket().state::<Audit>() {
        let path = req.uri().path().to_string();
        let mut event = Event::new(AuditKind::CsrfRejected, &peer).detail(format!("{path}: {why}"));
        if let Some(user) = state.user() {
            event = event.by_self(crate::events::Who::user(&user.id, &user.username));
        }
        audit.record(event).await;
    }
    (Status::Forbidden, why)
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + Send + 'r> FromData<'r> for CsrfForm<'r, T> {
    type Error = String;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let Some(csrf) = req.rocket().state::<Csrf>() else {
            return data::Outcome::Error((
                Status::InternalServerError,
                "CSRF not configured".into(),
            ));
        };
        if let Err(why) = csrf.same_origin(req) {
            return data::Outcome::Error(reject(req, why).await);
        }
        let form = match Form::<Contextual<'r, T>>::from_data(req, data).await {
            data::Outcome::Success(form) => form.into_inner(),
            data::Outcome::Error((status, errors)) => {
                return data::Outcome::Error((status, errors.to_string()));
            }
            data::Outcome::Forward(f) => return data::Outcome::Forward(f),
        };
        let token = form.context.field_value("csrf_token").unwrap_or("");
        if token.is_empty() {
            return data::Outcome::Error(reject(req, "no csrf_token".into()).await);
        }
        let state = AuthState::of(req).await;
        if !csrf
            .accepted_bindings(state, req.cookies())
            .iter()
            .any(|binding| csrf.verify(binding, token))
        {
            return data::Outcome::Error(reject(req, "csrf_token does not match".into()).await);
        }
        data::Outcome::Success(CsrfForm { form })
    }
}

/// Checks a cookie-authenticated request that sends its CSRF token in `X-CSRF-Token` (the JSON
/// API; Bearer requests carry no ambient credential and need none). A refusal is recorded and
/// marked for the error answer, like a refused form.
pub async fn check_header(req: &Request<'_>) -> Result<(), Status> {
    let state = AuthState::of(req).await;
    let Some(user) = state.user() else {
        return Ok(()); // the auth guard answers for this
    };
    if user.via == super::Via::Bearer {
        return Ok(());
    }
    let Some(csrf) = req.rocket().state::<Csrf>() else {
        return Err(Status::InternalServerError);
    };
    let token = req.headers().get_one("X-CSRF-Token").unwrap_or("");
    let bindings = csrf.accepted_bindings(state, req.cookies());
    if !token.is_empty() && bindings.iter().any(|b| csrf.verify(b, token)) {
        return Ok(());
    }
    let why = "cookie-authenticated API request without a valid X-CSRF-Token";
    Err(reject(req, why.into()).await.0)
}
