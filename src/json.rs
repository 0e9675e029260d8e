//! Answers for programs: every `/api` error is JSON `{"error", "message"}` (never HTML, never a
//! trace), with RFC 6750 `WWW-Authenticate` on 401/403 and `Retry-After` on 429.

use std::io::Cursor;

use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder, Response};
use serde_json::{json, Map, Value};

use crate::auth::AuthState;

/// A JSON error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: Status,
    error: &'static str,
    message: String,
    headers: Vec<Header<'static>>,
}

impl ApiError {
    /// An error with a status, a machine-readable code and a sentence for people.
    pub fn new(status: Status, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &'static str, value: String) -> ApiError {
        self.headers.push(Header::new(name, value));
        self
    }

    /// 400 for a body or field the client must fix.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Status::BadRequest, "invalid_request", message)
    }

    /// 429 with `Retry-After`.
    pub fn too_many(wait: std::time::Duration, message: impl Into<String>) -> ApiError {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::new(Status::TooManyRequests, "too_many_requests", message)
            .header("Retry-After", secs.max(1).to_string())
    }

    /// The RFC 6750 answer for a request whose credentials were missing or refused.
    pub fn unauthorized(state: &AuthState) -> ApiError {
        let (code, description) = match state {
            AuthState::Expired => (Some("invalid_token"), "The access token has expired."),
            AuthState::Revoked => (Some("invalid_token"), "The access token has been revoked."),
            AuthState::Stolen => (
                Some("invalid_token"),
                "The session was ended to protect the account. Sign in again.",
            ),
            AuthState::Invalid => (Some("invalid_token"), "The access token is invalid."),
            _ => (None, "An access token is required."),
        };
        let challenge = match code {
            Some(code) => format!(
                "Bearer realm=\"latchkey\", error=\"{code}\", error_description=\"{description}\""
            ),
            None => "Bearer realm=\"latchkey\"".to_string(),
        };
        ApiError::new(
            Status::Unauthorized,
            code.unwrap_or("unauthorized"),
            description,
        )
        .header("WWW-Authenticate", challenge)
    }

    /// The RFC 6750 answer for a token without the role or scope an endpoint needs.
    pub fn insufficient_scope() -> ApiError {
        ApiError::new(
            Status::Forbidden,
            "insufficient_scope",
            "The access token does not allow this request.",
        )
        .header(
            "WWW-Authenticate",
            "Bearer realm=\"latchkey\", error=\"insufficient_scope\", \
             error_description=\"The access token does not allow this request.\""
                .to_string(),
        )
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = json!({ "error": self.error, "message": self.message }).to_string();
        let mut response = Response::build();
        response
            .status(self.status)
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body));
        for header in self.headers {
            response.header_adjoin(header);
        }
        response.ok()
    }
}

/// A JSON object body, read within the `json` size limit; anything else is a 400 that says what
/// is wrong (a 413 when too large).
pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// A required string field, or a 400 naming it.
    pub fn string(&self, field: &str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::bad_request(format!(
                "Field \"{field}\" must be a string."
            ))),
            None => Err(ApiError::bad_request(format!("Missing field \"{field}\"."))),
        }
    }

    /// Whether a field is present at all.
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// A required string field within the bounds the OpenAPI document states for it, or a 400
    /// naming it: at most `bounds.max_chars` characters (code points, as JSON Schema counts),
    /// and not empty, nor (unless `bounds.blank_ok`) only whitespace.
    pub fn text(&self, field: &str, bounds: Bounds) -> Result<&str, ApiError> {
        let value = self.string(field)?;
        check_text(&format!("Field \"{field}\""), value, bounds)?;
        Ok(value)
    }
}

/// The bounds of a string field or parameter: `maxLength`, and `minLength: 1` with (unless
/// `blank_ok`) `pattern: "\\S"` in the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most characters (code points).
    pub max_chars: usize,
    /// Whether a value of only whitespace is taken (a password may be); an empty one never is.
    pub blank_ok: bool,
}

fn check_text(what: &str, value: &str, bounds: Bounds) -> Result<(), ApiError> {
    if value.is_empty() || (!bounds.blank_ok && value.trim().is_empty()) {
        return Err(ApiError::bad_request(format!("{what} must not be empty.")));
    }
    if value.chars().count() > bounds.max_chars {
        return Err(ApiError::bad_request(format!(
            "{what} must be at most {} characters.",
            bounds.max_chars
        )));
    }
    Ok(())
}

/// The query parameters of an API request, percent-decoded, read as `openapi.json` describes
/// them: each at most once (a repeated one is a 400, not silently dropped or merged).
pub struct ApiQuery<'r>(Vec<(&'r str, &'r str)>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiQuery<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let fields = req
            .query_fields()
            .map(|f| (f.name.source().as_str(), f.value));
        request::Outcome::Success(ApiQuery(fields.collect()))
    }
}

impl<'r> ApiQuery<'r> {
    /// The value of `name`, if given (once).
    fn one(&self, name: &str) -> Result<Option<&'r str>, ApiError> {
        let mut values = self.0.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "Parameter \"{name}\" must be given at most once."
            )));
        }
        Ok(first)
    }

    /// An optional text parameter of at most `max_chars` characters (an empty one is fine).
    pub fn text(&self, name: &str, max_chars: usize) -> Result<&'r str, ApiError> {
        let value = self.one(name)?.unwrap_or("");
        if value.chars().count() > max_chars {
            return Err(ApiError::bad_request(format!(
                "Parameter \"{name}\" must be at most {max_chars} characters."
            )));
        }
        Ok(value)
    }

    /// An optional whole-number parameter from 1 to `max` (1 when absent).
    pub fn page(&self, name: &str, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.one(name)? else {
            return Ok(1);
        };
        match raw.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) && !raw.starts_with('+') => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "Parameter \"{name}\" must be a whole number from 1 to {max}."
            ))),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for JsonObject {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let limit = req.limits().get("json").unwrap_or(16.kibibytes());
        let text = match data.open(limit).into_string().await {
            Ok(text) if text.is_complete() => text.into_inner(),
            Ok(_) => {
                let e = ApiError::new(
                    Status::PayloadTooLarge,
                    "payload_too_large",
                    format!("The body is larger than {limit}."),
                );
                return Outcome::Error((Status::PayloadTooLarge, e));
            }
            Err(_) => {
                let e = ApiError::bad_request("The body must be UTF-8 JSON.");
                return Outcome::Error((Status::BadRequest, e));
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Outcome::Success(JsonObject(map)),
            Ok(_) => Outcome::Error((
                Status::BadRequest,
                ApiError::bad_request("The body must be a JSON object."),
            )),
            Err(e) => {
                let message = format!(
                    "The body is not valid JSON (line {}, column {}).",
                    e.line(),
                    e.column()
                );
                Outcome::Error((Status::BadRequest, ApiError::bad_request(message)))
            }
        }
    }
}
