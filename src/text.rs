//! Text for people and URLs: how times are written on pages, and percent-encoding for query
//! strings. Shared by every layer, so it depends on nothing of the site's.

use time::OffsetDateTime;

/// How times are shown on pages: `2026-11-22 21:30 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    // Written out: `time`'s formatter costs more than the rest of the busiest page's context.
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// [`format_time`] for database timestamps (stored in UTC).
pub fn format_db_time(t: time::PrimitiveDateTime) -> String {
    format_time(t.assume_utc())
}

/// Percent-encodes `s` for a query-string value, leaving unreserved characters (RFC 3986) and
/// those in `keep` as they are.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
