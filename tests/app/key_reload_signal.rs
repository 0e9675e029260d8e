//! The real server re-reads its key file on `kill -HUP`, even when the file's modification time
//! did not change (so only the signal can have caused the reload).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey::auth::{Claims, KeyFile, Keyring, Tokens};
use latchkey::config::Settings;
use latchkey::models::Role;

use crate::helpers::*;

/// `latchkey` with the test's database and `key_file`.
fn latchkey(db_url: &str, key_file: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", db_url)
        .env("LATCHKEY_KEY_FILE", key_file)
        // Mail (a sign-in's new-browser notice) goes beside the key file, not into the checkout.
        .env(
            "LATCHKEY_MAIL_DIR",
            key_file.parent().unwrap_or(Path::new(".")).join("mail"),
        )
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "256")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env_remove("LATCHKEY_JWT_SECRET");
    command
}

/// `latchkey keys rotate` on `key_file`; returns the new active kid.
fn rotate(db_url: &str, key_file: &Path) -> String {
    let out = latchkey(db_url, key_file)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    KeyFile::read(key_file).unwrap().active
}

/// The server process, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(db_url: &str, key_file: &Path, log: PathBuf) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = std::fs::File::create(&log).unwrap();
        let child = latchkey(db_url, key_file)
            .arg("serve")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start latchkey");
        let server = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server
            .try_request("GET /healthz", &[], "")
            .map(|r| r.status)
            != Some(200)
        {
            assert!(Instant::now() < deadline, "not up: {}", server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_request(&self, line: &str, headers: &[String], body: &str) -> Option<Reply> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let mut request = format!(
            "{line} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let cookies = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.trim().to_string())
            .collect();
        Some(Reply {
            status,
            cookies,
            body: body.to_string(),
        })
    }

    fn request(&self, line: &str, headers: &[String], body: &str) -> Reply {
        self.try_request(line, headers, body)
            .unwrap_or_else(|| panic!("{line}: no answer; log:\n{}", self.log()))
    }

    /// The status of `/private` with `token` as the session cookie.
    fn private_status(&self, token: &str) -> u16 {
        self.request("GET /private", &[format!("Cookie: {COOKIE}={token}")], "")
            .status
    }

    /// Signs `username` in through the form; returns the session token.
    fn sign_in(&self, username: &str) -> String {
        let page = self.request("GET /login", &[], "");
        let pre_session = page.cookie("latchkey_csrf").expect("pre-session cookie");
        let csrf = csrf_in(&page.body).expect("csrf token");
        let reply = self.request(
            "POST /login",
            &[
                format!("Cookie: latchkey_csrf={pre_session}"),
                "Content-Type: application/x-www-form-urlencoded".into(),
            ],
            &form(&[
                ("username", username),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ]),
        );
        assert_eq!(reply.status, 303, "sign-in: {}", reply.body);
        reply.cookie(COOKIE).expect("session cookie")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    cookies: Vec<String>,
    body: String,
}

impl Reply {
    /// The value a Set-Cookie header gives cookie `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{name}="))?;
            Some(value.split(';').next().unwrap_or_default().to_string())
        })
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[test]
fn sighup_reloads_the_key_file_even_when_its_modification_time_is_unchanged() {
    let app = spawn_app();
    app.create_user("hup", Role::User);
    let dir = app.dir.path();
    let key_file = dir.join("keys.json");
    let first_kid = rotate(app.db.url(), &key_file);
    let server = Server::start(app.db.url(), &key_file, dir.join("server.log"));
    let old_token = server.sign_in("hup");
    assert_eq!(kid_of(&old_token), first_kid);

    // Rotate a copy, give it the old modification time, and move it into place atomically:
    // the file the server watches never shows a new modification time.
    let old_mtime = std::fs::metadata(&key_file).unwrap().modified().unwrap();
    let next = dir.join("keys.next.json");
    std::fs::copy(&key_file, &next).unwrap();
    let new_kid = rotate(app.db.url(), &next);
    assert_ne!(new_kid, first_kid);
    std::fs::File::options()
        .write(true)
        .open(&next)
        .unwrap()
        .set_modified(old_mtime)
        .unwrap();
    std::fs::rename(&next, &key_file).unwrap();
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().modified().unwrap(),
        old_mtime
    );

    // A token signed with the new key, for the live session.
    let settings = Settings {
        jwt_secret: None,
        key_file: key_file.clone(),
        create_key_file: Some(false),
        ..Settings::default()
    };
    let tokens = Tokens::new(&settings, Keyring::load(&settings).unwrap());
    let claims: Claims = serde_json::from_value(claims_of(&old_token)).unwrap();
    let new_token = tokens.sign(&claims).unwrap();
    assert_eq!(kid_of(&new_token), new_kid);

    // The watcher checks the modification time every second: give it more than two looks.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        server.private_status(&new_token),
        303,
        "the new key is not known before the signal"
    );
    assert_eq!(
        kid_of(&server.sign_in("hup")),
        first_kid,
        "still signs with the old key"
    );

    // Sent directly (a minimal Debian has no `kill` binary).
    let pid = libc::pid_t::try_from(server.child.id()).expect("a pid");
    // SAFETY: kill(2) with a pid this test spawned and a valid signal number; no memory involved.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(sent, 0, "SIGHUP sent");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.private_status(&new_token) != 200 {
        assert!(
            Instant::now() < deadline,
            "a token signed with the new key is still refused 5 s after SIGHUP; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        kid_of(&server.sign_in("hup")),
        new_kid,
        "signs with the new key"
    );
    assert_eq!(
        server.private_status(&old_token),
        200,
        "the old key still verifies"
    );
}
