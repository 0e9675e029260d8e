//! Rendering pages: every template gets the same base context (title, nav, flash, CSRF token)
//! plus its own.
//!
//! rocket_dyn_templates loads, compiles and (in debug builds) reloads the templates; pages are
//! rendered with its Tera instance directly from a `tera::Context`. Going through
//! `Template::render` converted every context twice more (to figment values, then to Tera's), and
//! that cost more than the rendering itself on the busiest page.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FlashMessage, Request};
use rocket::response::{self, Flash, Redirect, Responder, Response};
use rocket_dyn_templates::tera::{Context, Tera};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::Value;

use crate::auth::{CsrfToken, CurrentUser};
use crate::models::Role;

mod context;
mod items;
mod pagination;

pub use context::PageContext;
pub use items::{KeyView, SessionView, UserView};
pub use pagination::Pagination;

/// The compiled templates, as rocket_dyn_templates last loaded them; managed state.
#[derive(Clone, Default)]
pub struct Pages(Arc<RwLock<Option<Tera>>>);

impl Pages {
    /// The template fairing: loads `template_dir` and hands each (re)load to `pages`.
    pub fn fairing(pages: Pages) -> impl rocket::fairing::Fairing {
        Template::custom(move |engines| {
            if let Ok(mut slot) = pages.0.write() {
                *slot = Some(engines.tera.clone());
            }
        })
    }

    fn render(&self, name: &str, context: &Context) -> Result<String, String> {
        let guard = self.0.read().map_err(|e| e.to_string())?;
        let tera = guard.as_ref().ok_or("templates are not loaded")?;
        tera.render(name, context).map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            message
        })
    }
}

/// A page to render in the site layout: a template name and its context.
pub struct Page {
    name: &'static str,
    context: Box<Context>,
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let pages = req
            .rocket()
            .state::<Pages>()
            .ok_or(Status::InternalServerError)?;
        let html = pages.render(self.name, &self.context).map_err(|e| {
            log::error!("template {} failed: {e}", self.name);
            Status::InternalServerError
        })?;
        Response::build()
            .header(ContentType::HTML)
            .sized_body(html.len(), Cursor::new(html))
            .ok()
    }
}

/// A flash message as templates see it.
#[derive(Serialize)]
struct FlashView<'a> {
    kind: &'a str,
    message: &'a str,
}

/// Renders `template` in the site layout. `extra` must be a JSON object; its keys join the base ones.
pub fn page(
    template: &'static str,
    title: &str,
    user: Option<&CurrentUser>,
    flash: Option<FlashMessage<'_>>,
    csrf: &CsrfToken,
    extra: Value,
) -> Page {
    // Base keys are flat (`nav_username`, not `nav.username`): Tera allocates for every dotted
    // lookup, and the layout's are on every page.
    let mut context = Context::new();
    context.insert("title", title);
    context.insert("nav_signed_in", &user.is_some());
    context.insert("nav_username", user.map_or("", |u| u.username.as_str()));
    context.insert("nav_is_admin", &user.is_some_and(|u| u.role == Role::Admin));
    let flash = flash.as_ref().map(|f| FlashView {
        kind: f.kind(),
        message: f.message(),
    });
    context.insert("flash", &flash);
    context.insert("csrf_token", &csrf.0);
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            context.insert(key, &value);
        }
    }
    Page {
        name: template,
        context: Box::new(context),
    }
}

impl Page {
    /// Adds `key` to the page's context (a typed value, without building JSON first).
    pub fn with<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Page {
        self.context.insert(key, value);
        self
    }
}

/// A form handler's answer: on to the next page with a message, or the same form again with errors.
// Returned once per request and consumed at once; boxing the redirect would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Responder)]
pub enum FormOutcome {
    /// A page, 200.
    Show(Page),
    /// Success: a 303 with a flash message.
    Done(Flash<Redirect>),
    /// A form page with its status: 200 when first shown, 4xx when shown again with its errors.
    Redo((Status, Page)),
    /// The form again with 429 and how long to wait.
    Wait(Throttled),
}

impl FormOutcome {
    /// On to `to` with a success message.
    pub fn success(to: impl Into<String>, message: impl Into<String>) -> FormOutcome {
        FormOutcome::Done(Flash::success(Redirect::to(to.into()), message.into()))
    }

    /// On to `to` with an error message.
    pub fn error(to: impl Into<String>, message: impl Into<String>) -> FormOutcome {
        FormOutcome::Done(Flash::error(Redirect::to(to.into()), message.into()))
    }

    /// The form again with its errors: 422.
    pub fn redo(page: Page) -> FormOutcome {
        FormOutcome::Redo((Status::UnprocessableEntity, page))
    }

    /// The form again with 429 and `Retry-After`.
    pub fn wait(page: Page, wait: std::time::Duration) -> FormOutcome {
        FormOutcome::Wait(Throttled::new(page, wait))
    }
}

/// A 429 answer with `Retry-After`.
#[derive(Responder)]
#[response(status = 429)]
pub struct Throttled {
    /// The page to show.
    pub page: Page,
    /// Seconds to wait.
    pub retry_after: Header<'static>,
}

impl Throttled {
    /// `page` with a `Retry-After` of `wait` (rounded up to whole seconds, at least 1).
    pub fn new(page: Page, wait: std::time::Duration) -> Throttled {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Throttled {
            page,
            retry_after: Header::new("Retry-After", secs.max(1).to_string()),
        }
    }
}

/// "1 minute", "5 minutes", "30 seconds": how long to wait, in words.
pub fn wait_words(wait: std::time::Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs < 60 {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}
