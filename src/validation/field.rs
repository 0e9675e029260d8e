//! Field validators for typed forms (`#[field(validate = field::…())]`): each turns a rule of
//! `validation` into a message beside its field.

use rocket::form;

fn rule<'v, T>(result: Result<T, String>) -> form::Result<'v, ()> {
    result
        .map(|_| ())
        .map_err(|message| form::Error::validation(message).into())
}

/// Something other than spaces was typed.
pub fn filled<'v>(value: &str, message: &'static str) -> form::Result<'v, ()> {
    rule(if value.trim().is_empty() {
        Err(message.to_string())
    } else {
        Ok(())
    })
}

/// Anything at all was typed (passwords: spaces count).
pub fn given<'v>(value: &str, message: &'static str) -> form::Result<'v, ()> {
    rule(if value.is_empty() {
        Err(message.to_string())
    } else {
        Ok(())
    })
}

/// A valid username ([`super::username`]).
pub fn username<'v>(value: &str) -> form::Result<'v, ()> {
    rule(super::username(value))
}

/// A valid email address ([`super::email`]).
pub fn email<'v>(value: &str) -> form::Result<'v, ()> {
    rule(super::email(value))
}
