//! The test SMTP server (`tests/common/smtp.rs`) proved against lettre, the client the app sends
//! with: plain SMTP, STARTTLS with a login, a client that does not trust the certificate, a wrong
//! password. The decoding it offers the mail tests (subject, text, HTML, links) is checked here
//! against messages lettre encoded itself.

use std::error::Error;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::smtp::{free_port, MailServer, Options};

type Result = std::result::Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);
const SUBJECT: &str = "Réinitialiser — 🔑";
// Non-ASCII, a line longer than 76 characters (soft line breaks in quoted-printable), `=` signs
// (`=3D`) and a URL at the end of that line.
const TEXT: &str = "Bonjour Zoë,\n\nPour réinitialiser votre mot de passe, ouvrez ce lien dans \
les 30 minutes qui suivent : http://127.0.0.1:8000/password/reset/AbC-123_xyz?next=%2Faccount&x=1\n\
\nSi vous n'avez rien demandé, ignorez ce message. Ligne = égale.\n";
const HTML: &str = "<p>Bonjour Zoë,</p>\n<p><a href=\"http://127.0.0.1:8000/password/reset/AbC-123_xyz?next=%2Faccount&amp;x=1\">Réinitialiser le mot de passe</a> — dans les 30 minutes qui suivent.</p>\n";

fn message(to: &str, subject: &str, text: &str, html: &str) -> Message {
    Message::builder()
        .from(
            "Latchkey <noreply@latchkey.test>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to(to.parse::<Mailbox>().unwrap())
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        ))
        .unwrap()
}

fn trusting(domain: &str, server: &MailServer) -> std::result::Result<Tls, Box<dyn Error>> {
    let pem = std::fs::read(server.ca_file().expect("STARTTLS server has a certificate"))?;
    let params = TlsParameters::builder(domain.into())
        .add_root_certificate(Certificate::from_pem(&pem)?)
        .build()?;
    Ok(Tls::Required(params))
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_smtp_message_is_received_and_decoded() -> Result {
    let server = MailServer::start(Options::plain());
    assert_eq!(server.url(), format!("smtp://127.0.0.1:{}", server.port()));
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?.build();
    mailer
        .send(message("zoe@example.test", SUBJECT, TEXT, HTML))
        .await?;

    let got = server.wait_for("zoe@example.test", 1, WAIT);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.from(), "noreply@latchkey.test");
    assert_eq!(m.to(), ["zoe@example.test".to_owned()]);
    // lettre encoded the subject (RFC 2047) and the text part (quoted-printable, soft breaks).
    let raw = String::from_utf8_lossy(m.raw()).into_owned();
    assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
    assert!(raw.contains("quoted-printable"), "{raw}");
    assert!(raw.contains("=\r\n"), "no soft line break: {raw}");
    assert_eq!(m.subject(), SUBJECT);
    assert_eq!(m.header("To").as_deref(), Some("zoe@example.test"));
    assert_eq!(m.text(), TEXT);
    assert_eq!(m.html(), HTML);
    assert_eq!(
        m.link("/password/reset/"),
        "/password/reset/AbC-123_xyz?next=%2Faccount&x=1"
    );

    // Mostly non-ASCII bodies come base64-encoded; a second message on the pooled connection.
    let greek = "Γειά σου κόσμε — επαναφορά κωδικού: https://example.test/password/reset/Ωmega\n";
    mailer
        .send(message(
            "Zoe@Example.test",
            "ελληνικά",
            greek,
            "<p>Γειά σου</p>",
        ))
        .await?;
    let got = server.wait_for("zoe@example.test", 2, WAIT);
    let m = &got[1];
    assert!(String::from_utf8_lossy(m.raw()).contains("base64"));
    assert_eq!(m.subject(), "ελληνικά");
    assert_eq!(m.text(), greek);
    assert_eq!(m.html(), "<p>Γειά σου</p>");
    assert_eq!(m.link("/password/reset/"), "/password/reset/Ωmega");
    assert_eq!(server.messages().len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_with_login_is_received() -> Result {
    // A port chosen before the server starts, as a test that configures the app first would.
    let port = free_port();
    let server = MailServer::start_on(
        port,
        Options::starttls().with_login("mailer", "s3cret p@ss"),
    );
    assert_eq!(
        server.url(),
        format!("smtp://mailer:s3cret%20p%40ss@127.0.0.1:{port}?tls=required")
    );
    // The certificate names both `localhost` and 127.0.0.1 (the URL's host).
    for domain in ["localhost", "127.0.0.1"] {
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?
            .tls(trusting(domain, &server)?)
            .build();
        mailer
            .send(message(
                &format!("{domain}@example.test"),
                "Bienvenue",
                "Hello\n",
                "<p>Hello</p>",
            ))
            .await?;
        let got = server.wait_for(&format!("{domain}@example.test"), 1, WAIT);
        assert_eq!(got[0].subject(), "Bienvenue");
        assert_eq!(got[0].text(), "Hello\n");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_certificate_and_wrong_password_are_refused() -> Result {
    let server = MailServer::start(Options::starttls().with_login("mailer", "right"));

    // The URL alone trusts only the system's roots: the self-signed certificate fails.
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?.build();
    let err = mailer
        .send(message("a@example.test", "x", "x\n", "x"))
        .await
        .expect_err("a client that does not trust the certificate must fail");
    // lettre files a failed STARTTLS handshake under `Connection`, not `is_tls()`.
    let why = format!("{err:?}");
    assert!(
        why.contains("certificate verify failed") && why.contains("self-signed"),
        "expected a certificate verification failure, got {why}"
    );

    // Trusted certificate, but a name it does not carry.
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())?
        .tls(trusting("mail.example.com", &server)?)
        .build();
    let err = mailer
        .send(message("a@example.test", "x", "x\n", "x"))
        .await
        .expect_err("a host name the certificate does not carry must fail");
    let why = format!("{err:?}");
    assert!(
        why.contains("certificate verify failed") && why.contains("mismatch"),
        "expected a host name mismatch, got {why}"
    );

    // Trusted certificate, wrong password.
    let url = server.url().replace(":right@", ":wrong@");
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)?
        .tls(trusting("localhost", &server)?)
        .build();
    let err = mailer
        .send(message("a@example.test", "x", "x\n", "x"))
        .await
        .expect_err("a wrong password must be refused");
    assert!(err.is_permanent(), "expected 535, got {err:?}");
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("535"));

    // No login at all: the server refuses the mail.
    let url = server.url().replace("mailer:right@", "");
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)?
        .tls(trusting("localhost", &server)?)
        .build();
    let err = mailer
        .send(message("a@example.test", "x", "x\n", "x"))
        .await
        .expect_err("mail without a login must be refused");
    assert!(err.is_permanent(), "expected 530, got {err:?}");

    assert!(server.messages().is_empty());
    Ok(())
}
