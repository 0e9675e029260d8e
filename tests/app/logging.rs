//! The real binary's log: one structured line per auth event, never a password or a token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A `latchkey serve` child process whose stdout lines are collected.
struct Server {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(db_url: &str, dir: &std::path::Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("DATABASE_URL", db_url)
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_LOG_LEVEL", "normal")
            .env("LATCHKEY_JWT_SECRET", SECRET)
            .env("LATCHKEY_KEY_FILE", dir.join("unused.json"))
            // Mail (a sign-in's new-browser notice) goes into the temp dir, not the checkout.
            .env("LATCHKEY_MAIL_DIR", dir.join("mail"))
            .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
            .env("LATCHKEY_ARGON2_ITERATIONS", "1")
            // This test signs up and goes on signed in.
            .env("LATCHKEY_EMAIL_VERIFICATION", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let server = Server {
            child,
            port,
            lines,
            seen: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.request("GET", "/healthz", "", None).0 == 200 {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not start");
    }

    /// A minimal HTTP/1.1 request; returns (status, raw response).
    fn request(&self, method: &str, path: &str, body: &str, cookie: Option<&str>) -> (u16, String) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    /// Waits until a log line contains every needle; returns it.
    fn expect_line(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self
                .seen
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no log line with {needles:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

#[test]
fn auth_events_are_logged_one_line_each_with_ip_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    let mut server = Server::start(db.url(), dir.path());

    // A browser first loads the form: it gets the pre-session cookie and the CSRF token.
    let (_, page) = server.request("GET", "/signup", "", None);
    let pre = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: latchkey_csrf="))
        .map(|v| format!("latchkey_csrf={}", v.split(';').next().unwrap()))
        .expect("pre-session cookie");
    let csrf = csrf_in(&page).expect("csrf token");
    let post = |server: &Server, path: &str, fields: &[(&str, &str)], session: Option<&str>| {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &csrf));
        let cookie = match session {
            Some(token) => format!("{pre}; latchkey={token}"),
            None => pre.clone(),
        };
        server.request("POST", path, &form(&fields), Some(&cookie))
    };

    let signup = [
        ("username", "logan"),
        ("email", "logan@example.com"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let (status, response) = post(&server, "/signup", &signup, None);
    assert_eq!(status, 303);
    let token = response
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: latchkey="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("session cookie");
    server.expect_line(&["auth event=signup", "user=\"logan\"", "ip=127.0.0.1"]);

    let bad = [("username", "logan"), ("password", "Wrong-password-123")];
    assert_eq!(post(&server, "/login", &bad, None).0, 422);
    server.expect_line(&[
        "auth event=login_failed",
        "user=\"logan\"",
        "detail=\"bad_password\"",
        "ip=127.0.0.1",
    ]);

    let ghost = [
        ("username", "ghost\nauth event=login_ok"),
        ("password", "Wrong-password-123"),
    ];
    post(&server, "/login", &ghost, None);
    let line = server.expect_line(&["auth event=login_failed", "detail=\"unknown_user\""]);
    assert!(
        line.contains(r#"user="ghost\nauth event=login_ok""#),
        "newline escaped: {line}"
    );

    let good = [("username", "logan"), ("password", PASSWORD)];
    assert_eq!(post(&server, "/login", &good, None).0, 303);
    server.expect_line(&["auth event=login_ok", "user=\"logan\"", "ip=127.0.0.1"]);

    server.request("GET", "/private", "", Some(&format!("latchkey={token}")));
    server.request("GET", "/private", "", Some("latchkey=forged.token.value"));
    server.expect_line(&["auth event=token_rejected", "ip=127.0.0.1"]);

    assert_eq!(post(&server, "/logout", &[], Some(&token)).0, 303);
    server.expect_line(&["auth event=logout", "user=\"logan\""]);

    assert_eq!(
        post(&server, "/logout", &[], None).0,
        303,
        "signed-out logout is harmless"
    );
    let (status, _) = server.request("POST", "/login", &form(&good), Some(&pre));
    assert_eq!(status, 403, "no CSRF token");
    server.expect_line(&["auth event=csrf_rejected", "ip=127.0.0.1"]);

    for line in &server.seen {
        assert!(!line.contains(PASSWORD), "password in log: {line}");
        assert!(
            !line.contains("Wrong-password-123"),
            "password in log: {line}"
        );
        assert!(!line.contains(&token), "token in log: {line}");
        assert!(!line.contains(&csrf), "CSRF token in log: {line}");
    }
}
