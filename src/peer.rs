//! Who is on the other end of a request, for session rows, logs and the audit trail.

use std::convert::Infallible;
use std::net::IpAddr;

use rocket::request::{FromRequest, Outcome, Request};

/// Longest User-Agent kept.
const MAX_USER_AGENT: usize = 512;

/// The client's address (as Rocket sees it; see `ip_header`) and User-Agent.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// Client address, if known.
    pub ip: Option<IpAddr>,
    /// The User-Agent header, truncated; empty when absent.
    pub user_agent: String,
}

impl Peer {
    /// Reads the peer of a request.
    pub fn of(req: &Request<'_>) -> Peer {
        Peer {
            ip: req.client_ip(),
            user_agent: req
                .headers()
                .get_one("User-Agent")
                .unwrap_or("")
                .chars()
                .take(MAX_USER_AGENT)
                .collect(),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Peer {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(Peer::of(req))
    }
}

/// A short human description of a User-Agent: "Firefox on Linux", "Safari on iPhone", or
/// "Unknown browser" (for API clients, "curl", and the like, their first product token).
pub fn describe_browser(user_agent: &str) -> String {
    let ua = user_agent;
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chromium/") {
        "Chromium"
    } else if has("Chrome/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else {
        ""
    };
    let os = if has("iPhone") {
        "iPhone"
    } else if has("iPad") {
        "iPad"
    } else if has("Android") {
        "Android"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Linux") || has("X11") {
        "Linux"
    } else {
        ""
    };
    match (browser, os) {
        ("", "") => {
            let product: String = ua
                .split(['/', ' '])
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(40)
                .collect();
            if product.is_empty() {
                "Unknown browser".into()
            } else {
                product
            }
        }
        ("", os) => format!("Browser on {os}"),
        (browser, "") => browser.to_string(),
        (browser, os) => format!("{browser} on {os}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn browsers_are_named() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_browser(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(describe_browser(chrome), "Chrome on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_browser(safari), "Safari on iPhone");
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0";
        assert_eq!(describe_browser(edge), "Edge on Windows");
        assert_eq!(describe_browser("curl/8.5.0"), "curl");
        assert_eq!(describe_browser(""), "Unknown browser");
        assert_eq!(describe_browser("<script>"), "script");
    }
}
