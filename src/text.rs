//! Text for people and URLs: how times are written on pages, and percent-encoding for query
//! strings. Shared by every layer, so it depends on nothing of the site's.

use time::OffsetDateTime;

/// How times are shown on pages: `2026-11-22 21:30 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    // Written out digit by digit: `time`'s formatter, and even `format!` with padding, cost more
    // than the rest of the busiest page's context.
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return format!(
            "{year:04}-{:02}-{:02} {:02}:{:02} UTC",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        );
    }
    let mut out = String::with_capacity(20);
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let year = year as u32;
    for n in [year / 1000, year / 100, year / 10, year] {
        out.push(digit(n));
    }
    for (sep, n) in [
        ('-', u8::from(t.month())),
        ('-', t.day()),
        (' ', t.hour()),
        (':', t.minute()),
    ] {
        out.push(sep);
        out.push(digit(u32::from(n) / 10));
        out.push(digit(u32::from(n)));
    }
    out.push_str(" UTC");
    out
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

/// SHA-256 of a text, lowercase hex: how API keys, recovery codes and refresh values are stored.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::format_time;
    use time::macros::datetime;

    #[test]
    fn times_are_written_as_pages_show_them() {
        assert_eq!(
            format_time(datetime!(2026-11-02 09:05:59 UTC)),
            "2026-11-02 09:05 UTC"
        );
        assert_eq!(
            format_time(datetime!(0999-01-31 23:59 +02:00)),
            "0999-01-31 21:59 UTC"
        );
        assert_eq!(
            format_time(datetime!(2026-12-31 23:30 -01:00)),
            "2027-01-01 00:30 UTC"
        );
    }
}
