//! Rendering a page from its skeleton: the template rendered once with placeholders in place of
//! its text values, then, for every request, the values escaped into the gaps.
//!
//! A page's *text* values (the title, the user's name, the CSRF token, what the busiest pages
//! print) are only ever printed: `{{ value }}`, or tested for emptiness (`{% if csrf_token %}`).
//! Everything else a template decides on (signed in? administrator? which text values are empty?)
//! is the page's *shape*. For each shape the template is rendered by Tera twice, with two
//! different sets of placeholders, and split at them; both splits must agree, and each
//! placeholder must come out either exactly as given or exactly as Tera's HTML escaping writes
//! it. So a value that a template passes through a filter, truncates or compares shows up as a
//! disagreement, and that shape is rendered by Tera every time instead (and logged once). A page
//! from a skeleton is byte for byte what Tera would have written (the tests render both ways).
//!
//! Pages with a flash message or with structured data (lists, forms) are rendered by Tera.

use std::collections::HashMap;
use std::sync::Arc;

use rocket_dyn_templates::tera::{Context, Tera};

/// The most text values a page may have and still be rendered from a skeleton.
const MAX_TEXTS: usize = 24;
/// The most skeletons kept (shapes are a handful per template; this bounds a surprise).
const MAX_SKELETONS: usize = 512;

/// Opens a placeholder; private-use code points, which no template or escaping produces.
const OPEN: char = '\u{E000}';
/// Closes a placeholder.
const CLOSE: char = '\u{E001}';

/// What decides a skeleton: the template, the flags it branches on, which text values are empty,
/// and the names of the text values (borrowed from the page: no allocation per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape<'a> {
    template: &'static str,
    /// Bit 0: signed in; bit 1: administrator; bit 2 + i: text value i is not empty.
    bits: u32,
    texts: &'a [(&'static str, &'a str)],
}

impl<'a> Shape<'a> {
    /// The shape of a page, or `None` when it has too many text values to have one.
    pub fn of(
        template: &'static str,
        signed_in: bool,
        admin: bool,
        texts: &'a [(&'static str, &'a str)],
    ) -> Option<Shape<'a>> {
        if texts.len() > MAX_TEXTS {
            return None;
        }
        let mut bits = u32::from(signed_in) | u32::from(admin) << 1;
        for (i, (_, value)) in texts.iter().enumerate() {
            if !value.is_empty() {
                bits |= 1 << (i + 2);
            }
        }
        Some(Shape {
            template,
            bits,
            texts,
        })
    }

    /// Whether `names` are this shape's text names, in order.
    fn has_names(&self, names: &[&'static str]) -> bool {
        names.len() == self.texts.len() && names.iter().zip(self.texts).all(|(a, (b, _))| a == b)
    }

    /// The context Tera renders the skeleton with: the flags, no flash, and for each text value
    /// an empty string or placeholder `variant`.
    fn context(&self, variant: usize) -> Context {
        let mut context = Context::new();
        context.insert("nav_signed_in", &(self.bits & 1 != 0));
        context.insert("nav_is_admin", &(self.bits & 2 != 0));
        context.insert("flash", &Option::<()>::None);
        for (i, (name, _)) in self.texts.iter().enumerate() {
            if self.bits & (1 << (i + 2)) != 0 {
                context.insert(*name, &placeholder(i, variant));
            } else {
                context.insert(*name, "");
            }
        }
        context
    }
}

/// Placeholder `i` of `variant` (1 or 2): `OPEN i xX & CLOSE` or `OPEN i xX & & CLOSE`: the
/// variants differ in length and in words, the letters show a change of case, the ampersands
/// show escaping.
fn placeholder(i: usize, variant: usize) -> String {
    format!("{OPEN}{i}xX{}{CLOSE}", marker(variant, false))
}

/// The end of placeholder `variant`, as given or as Tera's escaping writes it.
fn marker(variant: usize, escaped: bool) -> &'static str {
    match (variant, escaped) {
        (1, false) => "&",
        (1, true) => "&amp;",
        (_, false) => "& &",
        (_, true) => "&amp; &amp;",
    }
}

/// One gap in a skeleton.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    /// Which text value goes here.
    index: usize,
    /// Whether Tera escapes it here (autoescape) or prints it as it is (`| safe`).
    escaped: bool,
}

/// A page with gaps: literal text, a value, literal text, a value, …, literal text.
#[derive(Debug, PartialEq, Eq)]
pub struct Skeleton {
    /// Literal text before each gap; one more than `gaps`.
    literals: Vec<String>,
    gaps: Vec<Gap>,
    /// The literal text's length, for the output's capacity.
    literal_len: usize,
}

impl Skeleton {
    /// Renders `shape` with Tera twice and keeps the result if both agree (see the module).
    pub fn build(tera: &Tera, shape: &Shape) -> Result<Skeleton, String> {
        let mut splits = Vec::with_capacity(2);
        for variant in 1..=2 {
            let html = tera
                .render(shape.template, &shape.context(variant))
                .map_err(|e| format!("rendering the skeleton failed: {e}"))?;
            splits.push(Skeleton::split(&html, variant, shape.texts.len())?);
        }
        let second = splits.pop();
        let first = splits.pop();
        match (first, second) {
            (Some(first), Some(second)) if first == second => Ok(first),
            _ => Err("a text value is not printed as it is (a filter or a comparison?)".into()),
        }
    }

    /// Splits a rendered page at the placeholders of `variant`.
    fn split(html: &str, variant: usize, count: usize) -> Result<Skeleton, String> {
        let mut literals = Vec::new();
        let mut gaps = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find(OPEN) {
            literals.push(rest[..start].to_string());
            let after = &rest[start + OPEN.len_utf8()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let index: usize = after[..digits]
                .parse()
                .map_err(|_| "a placeholder lost its number".to_string())?;
            if index >= count {
                return Err("a placeholder with an unknown number".into());
            }
            let after = after[digits..]
                .strip_prefix("xX")
                .ok_or_else(|| "a placeholder was altered".to_string())?;
            let (after, was_escaped) = if let Some(a) = after.strip_prefix(marker(variant, true)) {
                (a, true)
            } else if let Some(a) = after.strip_prefix(marker(variant, false)) {
                (a, false)
            } else {
                return Err("a placeholder was altered".into());
            };
            rest = after
                .strip_prefix(CLOSE)
                .ok_or_else(|| "a placeholder was cut short".to_string())?;
            gaps.push(Gap {
                index,
                escaped: was_escaped,
            });
        }
        literals.push(rest.to_string());
        if literals.iter().any(|l| l.contains(CLOSE)) {
            return Err("a placeholder was cut short".into());
        }
        let literal_len = literals.iter().map(String::len).sum();
        Ok(Skeleton {
            literals,
            gaps,
            literal_len,
        })
    }

    /// The page with `texts` (in the shape's order) in the gaps.
    pub fn fill(&self, texts: &[(&'static str, &str)]) -> String {
        let values_len: usize = self.gaps.iter().map(|g| texts[g.index].1.len()).sum();
        let mut html = String::with_capacity(self.literal_len + values_len + values_len / 4);
        for (literal, gap) in self.literals.iter().zip(&self.gaps) {
            html.push_str(literal);
            let value = texts[gap.index].1;
            if gap.escaped {
                push_escaped(&mut html, value);
            } else {
                html.push_str(value);
            }
        }
        if let Some(last) = self.literals.last() {
            html.push_str(last);
        }
        html
    }
}

/// Appends `text` escaped exactly as Tera's `escape_html` does.
fn push_escaped(out: &mut String, text: &str) {
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            b'/' => "&#x2F;",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        out.push_str(entity);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
}

/// What was decided for one set of text names: a skeleton, or `None` (it cannot have one).
type Decided = (Vec<&'static str>, Option<Arc<Skeleton>>);

/// The skeletons built so far, by template and flags, then by text names.
#[derive(Default)]
pub struct Skeletons {
    by_shape: HashMap<(&'static str, u32), Vec<Decided>>,
    count: usize,
}

impl Skeletons {
    /// The skeleton for `shape`, if one was built (`Some(None)`: it cannot have one).
    pub fn get(&self, shape: &Shape<'_>) -> Option<Option<Arc<Skeleton>>> {
        self.by_shape
            .get(&(shape.template, shape.bits))?
            .iter()
            .find(|(names, _)| shape.has_names(names))
            .map(|(_, skeleton)| skeleton.clone())
    }

    /// Remembers what `Skeleton::build` said about `shape` (unless the map is full).
    pub fn insert(&mut self, shape: &Shape<'_>, skeleton: Option<Arc<Skeleton>>) {
        if self.count >= MAX_SKELETONS || self.get(shape).is_some() {
            return;
        }
        let names = shape.texts.iter().map(|(name, _)| *name).collect();
        self.by_shape
            .entry((shape.template, shape.bits))
            .or_default()
            .push((names, skeleton));
        self.count += 1;
    }

    /// Whether none has been built.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets every skeleton (the templates were reloaded).
    pub fn clear(&mut self) {
        self.by_shape.clear();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_tera() {
        let samples = [
            "",
            "plain",
            "<script>alert('x')</script>",
            "a&b&&c;&amp;",
            "\"quoted\" and 'single' / slash",
            "ünïcødé ✓ 👩‍💻 \u{202E}rtl",
            "&<>\"'/",
            "tail/",
        ];
        for sample in samples {
            let mut ours = String::new();
            push_escaped(&mut ours, sample);
            assert_eq!(
                ours,
                rocket_dyn_templates::tera::escape_html(sample),
                "{sample:?}"
            );
        }
    }

    fn tera(templates: &[(&str, &str)]) -> Tera {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(templates.to_vec()).unwrap();
        tera
    }

    fn shape<'a>(template: &'static str, texts: &'a [(&'static str, &'a str)]) -> Shape<'a> {
        Shape::of(template, true, false, texts).unwrap()
    }

    #[test]
    fn a_value_through_a_filter_or_a_comparison_has_no_skeleton() {
        let tera = tera(&[
            ("upper.html", "<p>{{ name | upper }}</p>"),
            ("length.html", "<p>{{ name | length }}</p>"),
            ("twice.html", "<p>{{ name | escape }}</p>"),
            ("slice.html", "<p>{{ name | truncate(length=2) }}</p>"),
            ("words.html", "<p>{{ name | wordcount }}</p>"),
            ("title.html", "<p>{{ name | title }}</p>"),
            (
                "fine.html",
                "<p>{{ name }}{% if name %}!{% endif %}{{ name | safe }}</p>",
            ),
        ]);
        for bad in [
            "upper.html",
            "length.html",
            "twice.html",
            "slice.html",
            "words.html",
            "title.html",
        ] {
            let texts = [("name", "x")];
            assert!(
                Skeleton::build(&tera, &shape(bad, &texts)).is_err(),
                "{bad}"
            );
        }
        let texts = [("name", "<b>")];
        let skeleton = Skeleton::build(&tera, &shape("fine.html", &texts)).unwrap();
        assert_eq!(skeleton.fill(&texts), "<p>&lt;b&gt;!<b></p>");
    }

    #[test]
    fn an_empty_value_is_part_of_the_shape() {
        let tera = tera(&[(
            "if.html",
            "{% if t %}<i>{{ t }}</i>{% else %}none{% endif %}",
        )]);
        let empty = [("t", "")];
        let full = [("t", "v")];
        assert_ne!(shape("if.html", &empty).bits, shape("if.html", &full).bits);
        let skeleton = Skeleton::build(&tera, &shape("if.html", &empty)).unwrap();
        assert_eq!(skeleton.fill(&empty), "none");
        let skeleton = Skeleton::build(&tera, &shape("if.html", &full)).unwrap();
        assert_eq!(skeleton.fill(&full), "<i>v</i>");
    }
}
