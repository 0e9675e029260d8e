//! How a mail leaves: over SMTP (lettre; plain, STARTTLS or implicit TLS, optional login, an
//! extra trusted certificate), or, with no server configured, as an `.eml` file whose link is
//! logged — so a fresh `cargo run` can still reset a password.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Body;
use crate::config::Settings;
use crate::error::Error;
use crate::models::OutboxMail;

/// How long one delivery may take (connect, TLS, login, data).
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where mail goes.
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files (no server configured).
    Files(PathBuf),
}

impl Transport {
    /// The transport the settings ask for; a malformed `smtp_url` or unreadable certificate
    /// stops the start with a sentence saying what to fix.
    pub fn from_settings(settings: &Settings) -> Result<Transport, Error> {
        let Some(url) = settings
            .smtp_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(Transport::Files(settings.mail_dir.clone()));
        };
        let bad = |why: String| {
            Error::Config(format!(
                "smtp_url {}: {why} (use smtp://host:25, smtp://host:587?tls=required or \
                 smtps://user:password@host:465)",
                redact(url)
            ))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| bad(e.to_string()))?
            .timeout(Some(SEND_TIMEOUT));
        if let Some(path) = &settings.smtp_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Config(format!("smtp_ca_file {}: {e}", path.display())))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "smtp_ca_file {}: not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            let host = host_of(url).ok_or_else(|| bad("no host".into()))?;
            let parameters = TlsParameters::builder(host)
                .add_root_certificate(certificate)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            let tls = match tls_mode(url) {
                TlsMode::Wrapper => Tls::Wrapper(parameters),
                TlsMode::Required => Tls::Required(parameters),
                TlsMode::Opportunistic => Tls::Opportunistic(parameters),
                TlsMode::None => {
                    return Err(bad(
                        "smtp_ca_file is set but the URL asks for no TLS; add ?tls=required".into(),
                    ))
                }
            };
            builder = builder.tls(tls);
        }
        Ok(Transport::Smtp(builder.build()))
    }

    /// Where mail goes, for the start-up log (no password).
    pub fn describe(&self, settings: &Settings) -> String {
        match self {
            Transport::Smtp(_) => format!(
                "mail is sent through {}",
                redact(settings.smtp_url.as_deref().unwrap_or_default())
            ),
            Transport::Files(dir) => format!(
                "no smtp_url: mail is written to {}/ as .eml files and its links are logged",
                dir.display()
            ),
        }
    }

    /// Delivers one mail; the error says why not (kept on the outbox row, shown to admins).
    pub async fn deliver(
        &self,
        from: &Mailbox,
        mail: &OutboxMail,
        body: Body,
        message_host: &str,
    ) -> Result<(), String> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| format!("recipient address not usable: {e}"))?;
        let link = first_link(&body.text);
        let message = Message::builder()
            .message_id(Some(format!("<{}@{message_host}>", mail.id)))
            .from(from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(body.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(body.html),
                    ),
            )
            .map_err(|e| format!("message not built: {e}"))?;
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("mail server: {e}")),
            Transport::Files(dir) => {
                let path = dir.join(format!("{}.eml", mail.id));
                let bytes = message.formatted();
                let dir = dir.clone();
                rocket::tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(&path, bytes).map(|_| path)
                })
                .await
                .map_err(|e| e.to_string())?
                .map(|path| {
                    log::info!(
                        "mail {} ({}) written to {}{}",
                        mail.id,
                        mail.kind,
                        path.display(),
                        link.map(|l| format!("; its link: {l}")).unwrap_or_default()
                    )
                })
                .map_err(|e| format!("mail file not written: {e}"))
            }
        }
    }
}

/// The first http(s) URL in a text.
fn first_link(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_string)
}

enum TlsMode {
    None,
    Required,
    Opportunistic,
    Wrapper,
}

fn tls_mode(url: &str) -> TlsMode {
    if url.starts_with("smtps://") {
        TlsMode::Wrapper
    } else if url.contains("tls=required") {
        TlsMode::Required
    } else if url.contains("tls=opportunistic") {
        TlsMode::Opportunistic
    } else {
        TlsMode::None
    }
}

/// The host of an `smtp://[user[:pass]@]host[:port][/name][?…]` URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The URL with any password replaced, for logs and messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_host_and_hide_their_password() {
        assert_eq!(
            host_of("smtp://mail.example.com:587?tls=required").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(
            host_of("smtps://u:p@w@127.0.0.1:465").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("smtp://[::1]:25").as_deref(), Some("::1"));
        assert_eq!(
            redact("smtps://user:secret@host:465"),
            "smtps://user:***@host:465"
        );
        assert_eq!(redact("smtp://host:25"), "smtp://host:25");
        assert!(!redact("smtp://u:s3cr3t@h/x?tls=required").contains("s3cr3t"));
    }
}
