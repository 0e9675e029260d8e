//! Submitted forms, read as plain text fields. Every form is validated by our own rules (see
//! `validation.rs`), so a missing, repeated or malformed field becomes a message beside it rather
//! than a bare framework error.

use std::collections::HashMap;

use rocket::form::{self, DataField, FromForm, Options, ValueField};

/// Most distinct fields kept from one form; the body size limit bounds the rest.
const MAX_FIELDS: usize = 32;

/// The text fields of a submitted form; the first value of each name wins.
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// The submitted text of `name`, or "" when it was not sent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

#[rocket::async_trait]
impl<'r> FromForm<'r> for Fields {
    type Context = Fields;

    fn init(_: Options) -> Self::Context {
        <Fields as Default>::default()
    }

    fn push_value(ctx: &mut Self::Context, field: ValueField<'r>) {
        if ctx.0.len() < MAX_FIELDS || ctx.0.contains_key(field.name.source().as_str()) {
            ctx.0
                .entry(field.name.source().to_string())
                .or_insert_with(|| field.value.to_string());
        }
    }

    async fn push_data(_ctx: &mut Self::Context, _field: DataField<'r, '_>) {
        // File uploads are not part of any latchkey form; they are ignored.
    }

    fn finalize(ctx: Self::Context) -> form::Result<'r, Self> {
        Ok(ctx)
    }
}
