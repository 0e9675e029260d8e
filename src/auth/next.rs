//! Where to go after signing in: only ever a path on this site.

/// Longest `next` value followed.
const MAX_NEXT_LEN: usize = 2048;

/// Returns `raw` if it is a plain local path (`/x`), else `None`. Refuses anything a browser could
/// read as another origin: `//host`, `/\host`, schemes, control characters or whitespace (browsers
/// strip tabs and newlines, turning `/\t/host` into `//host`), and the same tricks percent-encoded.
pub fn safe_next(raw: &str) -> Option<String> {
    if raw.len() > MAX_NEXT_LEN || !is_local_path(raw) {
        return None;
    }
    // A second look after decoding catches `/%2F%2Fevil.example` and `/%5Cevil.example`.
    let decoded = percent_decode(raw)?;
    let mut rest = decoded.chars();
    if rest.next() != Some('/')
        || matches!(rest.next(), Some('/') | Some('\\'))
        || decoded.contains('\\')
        || decoded.chars().any(char::is_control)
    {
        return None;
    }
    Some(raw.to_string())
}

fn is_local_path(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/') | Some('\\'))
        && !s.contains('\\')
        && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Decodes `%XX` escapes (repeatedly, so double encoding does not slip through); `None` if malformed.
fn percent_decode(s: &str) -> Option<String> {
    let mut current = s.to_string();
    for _ in 0..4 {
        if !current.contains('%') {
            return Some(current);
        }
        let bytes = current.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        let next = String::from_utf8(out).ok()?;
        if next == current {
            return Some(next);
        }
        current = next;
    }
    None
}

/// The local path of the page a request came from (`Referer` on this host), if it is a safe
/// place to send someone back to.
pub fn referer_path(req: &rocket::Request<'_>) -> Option<String> {
    let host = req.headers().get_one("Host").unwrap_or("");
    let path = req.headers().get_one("Referer").and_then(|referer| {
        let (_, rest) = referer.split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/')?);
        (authority.eq_ignore_ascii_case(host)).then_some(path)
    })?;
    safe_next(path)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_are_kept() {
        for ok in ["/private", "/admin?q=a&page=2", "/account", "/a%20b"] {
            assert_eq!(safe_next(ok).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn other_origins_are_refused() {
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%252F%252Fevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/%zz",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
