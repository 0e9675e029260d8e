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
use std::collections::HashMap;

use rocket_dyn_templates::tera::{Context, Tera, Value as TeraValue};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::Value;

use crate::auth::{CsrfToken, CurrentUser};
use crate::models::Role;

mod chart;
mod context;
mod items;
mod pagination;
mod skeleton;

pub use chart::{BarChart, SeriesStyle};
pub use context::PageContext;
pub use items::{KeyView, PasskeyView, SessionView, UserView};
pub use pagination::Pagination;
use skeleton::{Shape, Skeleton, Skeletons};

/// The compiled templates, as rocket_dyn_templates last loaded them, and the skeletons built
/// from them; managed state.
#[derive(Clone, Default)]
pub struct Pages {
    tera: Arc<RwLock<Option<Tera>>>,
    skeletons: Arc<RwLock<Skeletons>>,
}

/// The template paths Tera escapes, as rocket_dyn_templates configures it (the `.txt` mail parts
/// are not escaped).
const AUTOESCAPE: [&str; 6] = [
    ".html.tera",
    ".htm.tera",
    ".xml.tera",
    ".html",
    ".htm",
    ".xml",
];

impl Pages {
    /// The template fairing: loads `template_dir` and hands each (re)load to `pages`. Templates
    /// may call `signup_open()`: whether anyone may sign up (`signup_mode = open`), and
    /// `passkeys_on()`: whether the site offers passkeys (`passkeys`).
    pub fn fairing(
        pages: Pages,
        signup_open: bool,
        passkeys: bool,
    ) -> impl rocket::fairing::Fairing {
        Template::custom(move |engines| {
            engines
                .tera
                .register_function("signup_open", move |_: &HashMap<String, TeraValue>| {
                    Ok(TeraValue::Bool(signup_open))
                });
            engines
                .tera
                .register_function("passkeys_on", move |_: &HashMap<String, TeraValue>| {
                    Ok(TeraValue::Bool(passkeys))
                });
            if let Ok(mut slot) = pages.tera.write() {
                *slot = Some(engines.tera.clone());
            }
            if let Ok(mut skeletons) = pages.skeletons.write() {
                skeletons.clear();
            }
        })
    }

    /// The page's HTML: from its skeleton when it has one, by Tera otherwise.
    fn render(&self, page: Page) -> Result<String, String> {
        let drawn_from_skeleton = match (&page.extra, &page.flash) {
            (None, None) => self.drawn_from_skeleton(&page)?,
            _ => None,
        };
        match drawn_from_skeleton {
            Some(html) => Ok(html),
            None => self.render_with_tera(page.name, &page.into_context()),
        }
    }

    /// The page filled into its shape's skeleton (built on first use), if the shape has one.
    fn drawn_from_skeleton(&self, page: &Page) -> Result<Option<String>, String> {
        let texts = page.texts();
        let Some(shape) = Shape::of(page.name, page.signed_in, page.admin, &texts) else {
            return Ok(None);
        };
        let known = self.skeletons.read().ok().and_then(|s| s.get(&shape));
        let skeleton = match known {
            Some(skeleton) => skeleton,
            None => {
                let built = self.with_tera(|tera| Ok(Skeleton::build(tera, &shape)))?;
                let skeleton = match built {
                    Ok(skeleton) => Some(Arc::new(skeleton)),
                    Err(reason) => {
                        log::warn!(
                            "page {} is rendered by Tera every time: {reason}",
                            page.name
                        );
                        None
                    }
                };
                if let Ok(mut skeletons) = self.skeletons.write() {
                    skeletons.insert(&shape, skeleton.clone());
                }
                skeleton
            }
        };
        Ok(skeleton.map(|skeleton| skeleton.fill(&texts)))
    }

    fn with_tera<T>(&self, f: impl FnOnce(&Tera) -> Result<T, String>) -> Result<T, String> {
        let guard = self.tera.read().map_err(|e| e.to_string())?;
        f(guard.as_ref().ok_or("templates are not loaded")?)
    }

    /// The mail templates of `template_dir` (`mail/…`), loaded without a running site: for
    /// mail written by the command line. Named as rocket_dyn_templates names them
    /// (`mail/base` for `mail/base.html.tera`).
    pub fn load_mail(template_dir: &std::path::Path) -> Result<Pages, String> {
        let dir = template_dir.join("mail");
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(stem) = file.strip_suffix(".tera") else {
                continue;
            };
            let name = stem.rsplit_once('.').map_or(stem, |(name, _)| name);
            files.push((path.clone(), Some(format!("mail/{name}"))));
        }
        let mut tera = Tera::default();
        // As rocket_dyn_templates sets it: the HTML parts are escaped, the text parts are not.
        tera.autoescape_on(AUTOESCAPE.to_vec());
        tera.add_template_files(files).map_err(|e| e.to_string())?;
        Ok(Pages {
            tera: Arc::new(RwLock::new(Some(tera))),
            skeletons: Default::default(),
        })
    }

    /// A mail part (`templates/mail/…`), rendered by Tera.
    pub fn render_mail(&self, name: &str, context: &Context) -> Result<String, String> {
        self.render_with_tera(name, context)
    }

    fn render_with_tera(&self, name: &str, context: &Context) -> Result<String, String> {
        self.with_tera(|tera| {
            tera.render(name, context).map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                message
            })
        })
    }
}

/// A page to render in the site layout: a template name, the layout's values, the page's text
/// values and any other data.
#[derive(Clone)]
pub struct Page {
    name: &'static str,
    title: String,
    signed_in: bool,
    admin: bool,
    username: String,
    csrf_token: String,
    flash: Option<(String, String)>,
    /// Values the template only prints (see `skeleton.rs`), in the order they were added.
    texts: Vec<(&'static str, String)>,
    /// Everything else; a page with none can be rendered from a skeleton.
    extra: Option<Box<Context>>,
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let pages = req
            .rocket()
            .state::<Pages>()
            .ok_or(Status::InternalServerError)?;
        let name = self.name;
        let html = pages.render(self).map_err(|e| {
            log::error!("template {name} failed: {e}");
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
    let extra = match extra {
        Value::Object(extra) if !extra.is_empty() => {
            let mut context = Context::new();
            for (key, value) in extra {
                context.insert(key, &value);
            }
            Some(Box::new(context))
        }
        _ => None,
    };
    Page {
        name: template,
        title: title.to_string(),
        signed_in: user.is_some(),
        admin: user.is_some_and(|u| u.role == Role::Admin),
        username: user.map_or_else(String::new, |u| u.username.clone()),
        csrf_token: csrf.0.clone(),
        flash: flash.map(|f| (f.kind().to_string(), f.message().to_string())),
        texts: Vec::new(),
        extra,
    }
}

impl Page {
    /// Adds a text value the template only prints (`{{ key }}`) or tests for emptiness: pages
    /// made of these and the layout's values are rendered from a skeleton (see `skeleton.rs`).
    pub fn text(mut self, key: &'static str, value: impl Into<String>) -> Page {
        self.texts.push((key, value.into()));
        self
    }

    /// The layout's text values, then the page's.
    fn texts(&self) -> Vec<(&'static str, &str)> {
        let mut texts = Vec::with_capacity(3 + self.texts.len());
        texts.push(("title", self.title.as_str()));
        texts.push(("nav_username", self.username.as_str()));
        texts.push(("csrf_token", self.csrf_token.as_str()));
        texts.extend(self.texts.iter().map(|(k, v)| (*k, v.as_str())));
        texts
    }

    /// The whole context, for Tera. Base keys are flat (`nav_username`, not `nav.username`):
    /// Tera allocates for every dotted lookup, and the layout's are on every page.
    fn into_context(mut self) -> Context {
        let mut context = self.extra.take().map_or_else(Context::new, |extra| *extra);
        for (key, value) in self.texts() {
            context.insert(key, value);
        }
        context.insert("nav_signed_in", &self.signed_in);
        context.insert("nav_is_admin", &self.admin);
        let flash = self
            .flash
            .as_ref()
            .map(|(kind, message)| FlashView { kind, message });
        context.insert("flash", &flash);
        context
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_loaded_for_the_command_line_escapes_the_html_part_only() {
        let pages = Pages::load_mail(std::path::Path::new("templates")).unwrap();
        let mut context = Context::new();
        for (key, value) in [
            ("username", "<b>eve</b>"),
            ("how", "changed"),
            ("when", "now"),
            ("forgot_url", "http://localhost/password/forgot"),
            ("site_url", "http://localhost/"),
            ("subject", "s"),
        ] {
            context.insert(key, value);
        }
        let html = pages
            .render_mail("mail/password_changed", &context)
            .unwrap();
        assert!(html.contains("&lt;b&gt;eve&lt;&#x2F;b&gt;"), "{html}");
        assert!(!html.contains("<b>eve"), "{html}");
        let text = pages
            .render_mail("mail/password_changed_text", &context)
            .unwrap();
        assert!(text.contains("Hello <b>eve</b>,"), "{text}");
    }

    /// The site's templates, loaded as rocket_dyn_templates loads them.
    fn pages() -> Pages {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let name = path.strip_prefix(&dir).unwrap().to_string_lossy();
                    // As rocket_dyn_templates names them: without `.tera` and the format's
                    // extension (`.html`, `.txt`).
                    let name = name.trim_end_matches(".tera");
                    let name = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
                    files.push((path.clone(), Some(name.to_string())));
                }
            }
        }
        let mut tera = Tera::default();
        tera.autoescape_on(AUTOESCAPE.to_vec());
        tera.add_template_files(files).unwrap();
        tera.register_function("signup_open", |_: &HashMap<String, TeraValue>| {
            Ok(TeraValue::Bool(true))
        });
        let pages = Pages::default();
        *pages.tera.write().unwrap() = Some(tera);
        pages
    }

    fn page(name: &'static str, signed_in: bool, admin: bool, text: &str, csrf: &str) -> Page {
        Page {
            name,
            title: format!("Title {text}"),
            signed_in,
            admin,
            username: if signed_in {
                text.to_string()
            } else {
                String::new()
            },
            csrf_token: csrf.to_string(),
            flash: None,
            texts: Vec::new(),
            extra: None,
        }
    }

    /// Every shape of the pages drawn from skeletons, with values that need escaping, empty
    /// values and odd Unicode: byte for byte what Tera writes.
    #[test]
    fn skeleton_pages_are_what_tera_renders() {
        let pages = pages();
        let values = [
            "alice",
            "<script>alert('x')</script>",
            "a&b \"q\" / 'x' &amp;",
            "ünï 👩‍💻 \u{202E}rtl \u{E000}0xX&\u{E001}",
            "",
        ];
        let mut drawn_from_skeletons = 0;
        for value in values {
            for (signed_in, admin) in [(false, false), (true, false), (true, true)] {
                for csrf in ["", "tok-EN_123"] {
                    let home = page("home", signed_in, admin, value, csrf).text("role", value);
                    let private = page("private", signed_in, admin, value, csrf)
                        .text("user_username", value)
                        .text("user_role", value)
                        .text("expires_at", value)
                        .text("expires_in", value);
                    for page in [home, private] {
                        let expected = pages
                            .render_with_tera(page.name, &page.clone().into_context())
                            .unwrap();
                        let drawn = pages.drawn_from_skeleton(&page).unwrap();
                        assert_eq!(drawn.as_deref(), Some(expected.as_str()), "{}", page.name);
                        assert_eq!(pages.render(page).unwrap(), expected);
                        drawn_from_skeletons += 1;
                    }
                }
            }
        }
        assert_eq!(drawn_from_skeletons, values.len() * 3 * 2 * 2);
    }

    /// A page with a flash message or structured data is rendered by Tera.
    #[test]
    fn pages_with_more_than_text_are_rendered_by_tera() {
        let pages = pages();
        let mut flashed = page("home", true, false, "bob", "t").text("role", "user");
        flashed.flash = Some(("success".into(), "Saved.".into()));
        let html = pages.render(flashed).unwrap();
        assert!(html.contains("Saved."));
        let mut extra = page("home", true, false, "bob", "t").text("role", "user");
        extra.extra = Some(Box::new(Context::new()));
        assert!(pages.render(extra).unwrap().contains("bob"));
        assert!(pages.skeletons.read().unwrap().is_empty());
    }
}
