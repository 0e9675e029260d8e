//! A real SMTP server for the mail tests, inside the test process: mailin-embedded over real TCP on
//! 127.0.0.1, optionally offering STARTTLS (a self-signed certificate for `localhost` and
//! 127.0.0.1, made here with the `openssl` crate) and optionally requiring a login (AUTH PLAIN and
//! LOGIN). Every message it accepts lands in a mailbox that the test reads back, decoded: subject,
//! text and HTML parts, the links in the text. Included by `tests/app` and `tests/browser` with
//! `#[path]`, so `cargo test` needs nothing but the Rust toolchain (no mail server on the machine).
//!
//! The server runs mailin-embedded's `serve()` on a background thread. `serve()` never returns and
//! cannot be stopped, so the thread (and its listening socket) lives until the test process exits:
//! dropping a [`MailServer`] only removes its certificate directory, which the server has already
//! read. One server per test is cheap (a socket and a few idle threads).
//!
//! mailin only offers AUTH after STARTTLS (mailin-embedded has no switch for plaintext AUTH), so a
//! login needs `starttls: true`; [`MailServer::start`] refuses the other combination.
//! mailin's `Handler` is not told whether a session is under TLS, so [`Received`] does not say.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailin_embedded::{response, AuthMechanism, Handler, Response, Server, SslConfig};

/// What the server offers and demands.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Offer STARTTLS (with a fresh self-signed certificate, see [`MailServer::ca_file`]).
    pub starttls: bool,
    /// Require AUTH PLAIN or LOGIN with this username and password (needs `starttls`).
    pub login: Option<(String, String)>,
}

impl Options {
    /// Plain SMTP, no TLS, no login.
    pub fn plain() -> Self {
        Self::default()
    }

    /// STARTTLS offered, no login.
    pub fn starttls() -> Self {
        Self {
            starttls: true,
            login: None,
        }
    }

    /// These options with a required login.
    pub fn with_login(mut self, username: &str, password: &str) -> Self {
        self.login = Some((username.to_owned(), password.to_owned()));
        self
    }
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

/// The running server and its mailbox. See the module docs for its lifetime.
pub struct MailServer {
    addr: SocketAddr,
    options: Options,
    mailbox: Arc<Mutex<Vec<Received>>>,
    ca_file: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// A port on 127.0.0.1 that was free a moment ago (bound, read, released), for a server started
/// later with [`MailServer::start_on`].
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl MailServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(options: Options) -> Self {
        Self::start_on(0, options)
    }

    /// Starts a server on 127.0.0.1:`port` (0: any free port). The socket is bound before this
    /// returns, so a client may connect at once.
    pub fn start_on(port: u16, options: Options) -> Self {
        assert!(
            options.login.is_none() || options.starttls,
            "mailin offers AUTH only after STARTTLS: a login needs `starttls: true`"
        );
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("SMTP test server: bind 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("local_addr");
        let mailbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Collector {
            mailbox: mailbox.clone(),
            login: options.login.clone(),
            current: None,
        };
        let mut server = Server::new(handler);
        server
            .with_name("localhost")
            // Pooled client connections each hold a thread while idle.
            .with_num_threads(16)
            .with_tcp_listener(listener);
        let (dir, ca_file) = if options.starttls {
            let dir = tempfile::tempdir().expect("tempdir");
            let (cert, key) = self_signed_certificate();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, cert).expect("write cert.pem");
            std::fs::write(&key_path, key).expect("write key.pem");
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.to_string_lossy().into_owned(),
                    key_path: key_path.to_string_lossy().into_owned(),
                })
                .expect("SMTP test server: TLS setup");
            (Some(dir), Some(cert_path))
        } else {
            (None, None)
        };
        if options.login.is_some() {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }
        std::thread::Builder::new()
            .name(format!("smtp-{}", addr.port()))
            .spawn(move || {
                // Runs until the process exits; returns only if the server fails.
                if let Err(e) = server.serve() {
                    eprintln!("SMTP test server on {addr} stopped: {e}");
                }
            })
            .expect("spawn SMTP server thread");
        MailServer {
            addr,
            options,
            mailbox,
            ca_file,
            _dir: dir,
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server certificate (PEM) when STARTTLS is offered: the file to trust (`smtp_ca_file`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The lettre connection URL: `smtp://[user:pass@]127.0.0.1:PORT[?tls=required]`.
    pub fn url(&self) -> String {
        let login = match &self.options.login {
            Some((user, pass)) => format!("{}:{}@", url_escape(user), url_escape(pass)),
            None => String::new(),
        };
        let tls = if self.options.starttls {
            "?tls=required"
        } else {
            ""
        };
        format!("smtp://{login}127.0.0.1:{}{tls}", self.addr.port())
    }

    /// Every message received so far, in order of arrival.
    pub fn messages(&self) -> Vec<Received> {
        self.mailbox.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages for `to` (case-insensitive) have arrived and returns
    /// them all; panics after `timeout`, listing what did arrive.
    pub fn wait_for(&self, to: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Received> = self
                .messages()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
                .collect();
            if found.len() >= count {
                return found;
            }
            if Instant::now() >= deadline {
                let arrived: Vec<String> = self
                    .messages()
                    .iter()
                    .map(|m| format!("  from {} to {:?}: {:?}", m.from, m.to, m.subject()))
                    .collect();
                panic!(
                    "SMTP test server {}: {count} message(s) to {to} expected within {timeout:?}, \
                     {} arrived for it; all messages received:\n{}",
                    self.url(),
                    found.len(),
                    if arrived.is_empty() {
                        "  (none)".to_owned()
                    } else {
                        arrived.join("\n")
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A self-signed certificate for `localhost` and 127.0.0.1 with a P-256 key: (cert PEM, key PEM).
fn self_signed_certificate() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand::random::<u32>() >> 1).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    (
        cert.to_pem().unwrap(),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
}

/// The per-connection handler (mailin-embedded clones it for each session).
#[derive(Clone)]
struct Collector {
    mailbox: Arc<Mutex<Vec<Received>>>,
    login: Option<(String, String)>,
    current: Option<Received>,
}

impl Collector {
    fn check_login(&self, username: &str, password: &str) -> Response {
        match &self.login {
            Some((u, p)) if u == username && p == password => response::AUTH_OK,
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(m) = &mut self.current {
            m.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(m) = self.current.take() {
            self.mailbox.lock().unwrap().push(m);
        }
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, username: &str, password: &str) -> Response {
        self.check_login(username, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.check_login(username, password)
    }
}

// ---- reading a received message -------------------------------------------------------------

impl Received {
    /// The envelope sender (MAIL FROM).
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The envelope recipients (RCPT TO).
    pub fn to(&self) -> &[String] {
        &self.to
    }

    /// The message as sent (after SMTP dot-unstuffing), CRLF line ends.
    pub fn raw(&self) -> &[u8] {
        &self.data
    }

    /// A top-level header, unfolded, RFC 2047 encoded words decoded; the first if repeated.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = split_entity(&self.data);
        header_in(&headers, name).map(|v| decode_words(&v))
    }

    /// The decoded Subject header ("" if absent).
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The text/plain part, its transfer encoding undone and CRLF line ends made `\n`; panics if
    /// there is none.
    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    /// The text/html part, like [`Received::text`].
    pub fn html(&self) -> String {
        self.part("text/html")
    }

    fn part(&self, mime: &str) -> String {
        let part = find_part(&self.data, mime).unwrap_or_else(|| {
            panic!(
                "no {mime} part in the message:\n{}",
                String::from_utf8_lossy(&self.data)
            )
        });
        part.replace("\r\n", "\n")
    }

    /// The first URL in the text part whose path starts with `path_prefix`, as path and query
    /// (scheme and host dropped); panics with the text if there is none.
    pub fn link(&self, path_prefix: &str) -> String {
        let text = self.text();
        for (i, _) in text.match_indices("://") {
            let start = text[..i]
                .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '-' && c != '.')
                .map_or(0, |p| p + 1);
            let scheme = &text[start..i];
            if scheme != "http" && scheme != "https" {
                continue;
            }
            let rest = &text[i + 3..];
            let end = rest
                .find(|c: char| c.is_whitespace() || "<>\"'".contains(c))
                .unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
            let Some(slash) = url.find('/') else { continue };
            let path = &url[slash..];
            if path.starts_with(path_prefix) {
                return path.to_owned();
            }
        }
        panic!("no link to {path_prefix}… in the text part:\n{text}")
    }
}

/// Splits an entity at its blank line: (unfolded header lines, body).
fn split_entity(data: &[u8]) -> (Vec<String>, &[u8]) {
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &data[data.len()..]),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut lines: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(line);
                continue;
            }
        }
        lines.push(line.to_owned());
    }
    (lines, body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header_in(lines: &[String], name: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A parameter of a structured header value (`boundary`, `charset`), unquoted.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The first part of type `mime` in the entity (searching nested multiparts), decoded.
fn find_part(entity: &[u8], mime: &str) -> Option<String> {
    let (headers, body) = split_entity(entity);
    let ctype = header_in(&headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("multipart/") {
        let boundary = param(&ctype, "boundary")?;
        let delimiter = format!("--{boundary}");
        let text = body;
        let mut parts = Vec::new();
        let mut rest = text;
        // Parts lie between delimiter lines; the one followed by "--" closes the multipart.
        while let Some(i) = find(rest, delimiter.as_bytes()) {
            let after = &rest[i + delimiter.len()..];
            if after.starts_with(b"--") {
                break;
            }
            let after = after
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&after[after.len()..], |n| &after[n + 1..]);
            let end = find(after, delimiter.as_bytes()).unwrap_or(after.len());
            // The CRLF before a delimiter belongs to the delimiter.
            let mut part = &after[..end];
            if part.ends_with(b"\r\n") {
                part = &part[..part.len() - 2];
            } else if part.ends_with(b"\n") {
                part = &part[..part.len() - 1];
            }
            parts.push(part);
            rest = &after[end..];
        }
        return parts.into_iter().find_map(|p| find_part(p, mime));
    }
    if essence != mime {
        return None;
    }
    let encoding = header_in(&headers, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` is a byte, `=` at a line end is a soft break.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                body.get(i + 1).copied().and_then(hex),
                body.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn decode_base64(body: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .unwrap_or_else(|e| panic!("bad base64 body ({e}): {}", String::from_utf8_lossy(body)))
}

/// Decodes RFC 2047 encoded words (`=?charset?B?…?=`, `=?charset?Q?…?=`, UTF-8 or ASCII charsets);
/// whitespace between two adjacent encoded words is dropped, and their bytes are joined before
/// UTF-8 decoding (a character may be split across words).
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new(); // bytes of consecutive encoded words
    let mut gap = String::new(); // whitespace seen since the last encoded word
    let mut rest = value;
    while !rest.is_empty() {
        if let Some((bytes, len)) = encoded_word(rest) {
            gap.clear();
            pending.extend(bytes);
            rest = &rest[len..];
            continue;
        }
        let c = rest.chars().next().unwrap();
        if c.is_whitespace() && !pending.is_empty() {
            gap.push(c);
        } else {
            out.push_str(&String::from_utf8_lossy(&pending));
            pending.clear();
            out.push_str(&gap);
            gap.clear();
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(&gap);
    out
}

/// An encoded word at the start of `s`: its bytes and its length in `s`.
fn encoded_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let len = s.len() - inner.len() + end + 2;
    let bytes = match encoding {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "Q" | "q" => {
            let t = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < t.len() {
                match t[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        out.push(hex(*t.get(i + 1)?)? << 4 | hex(*t.get(i + 2)?)?);
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    Some((bytes, len))
}
