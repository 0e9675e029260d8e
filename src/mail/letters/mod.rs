//! The letters latchkey writes, one constructor each, grouped by what they are about. Each
//! names its template (`templates/mail/<kind>.html.tera` and `<kind>_text.txt.tera`).

mod deletion;
mod email;
mod invitations;
mod notices;
mod password;
mod recovery;

pub use password::HowChanged;
pub use recovery::RESET_LINK_MINUTES;

use time::format_description::well_known::Rfc2822;
use time::PrimitiveDateTime;

/// A moment as mails show it (UTC, RFC 2822 without the zone, which the text names).
pub(crate) fn when(at: PrimitiveDateTime) -> String {
    at.assume_utc()
        .format(&Rfc2822)
        .map(|s| s.trim_end_matches(" +0000").to_string())
        .unwrap_or_else(|_| at.to_string())
}
