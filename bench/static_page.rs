//! `bench-static-page`: the physical limit for `/private` in bench/run.sh. A bare Rocket route
//! that answers `GET /private` with a page captured from the running site, from memory: the same
//! body, status and response headers (security headers, content type, any cookies), with no
//! guard, no template and no per-request allocation of its own. bench/run.sh starts it beside
//! the site and compares the two; it is not part of the product.
//!
//! Reads `BENCH_PAGE_BODY` (the body, as bytes) and `BENCH_PAGE_HEADERS` (the response head as
//! `curl -D` writes it: a status line, then `Name: value` lines); address and port come from
//! `ROCKET_ADDRESS` / `ROCKET_PORT` as for any Rocket app.

use std::io::Cursor;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::shield::Shield;
use rocket::State;

/// Headers the HTTP layer writes itself: replaying them would duplicate or contradict it.
const HOP_BY_HOP: [&str; 5] = [
    "content-length",
    "date",
    "server",
    "connection",
    "transfer-encoding",
];

/// The captured answer, leaked once at start so each response only borrows it.
struct Captured {
    status: Status,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static [u8],
}

/// One response of the captured page.
struct Replay(&'static Captured);

impl<'r> Responder<'r, 'static> for Replay {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.0.status);
        for (name, value) in &self.0.headers {
            response.raw_header_adjoin(*name, *value);
        }
        response
            .sized_body(self.0.body.len(), Cursor::new(self.0.body))
            .ok()
    }
}

#[rocket::get("/private")]
fn private(page: &State<&'static Captured>) -> Replay {
    Replay(page.inner())
}

fn read_env_file(var: &str) -> Result<Vec<u8>, String> {
    let path = std::env::var(var).map_err(|_| format!("{var} is not set"))?;
    std::fs::read(&path).map_err(|e| format!("{var}={path}: {e}"))
}

fn captured() -> Result<Captured, String> {
    let body = read_env_file("BENCH_PAGE_BODY")?;
    let head = String::from_utf8(read_env_file("BENCH_PAGE_HEADERS")?)
        .map_err(|e| format!("BENCH_PAGE_HEADERS is not UTF-8: {e}"))?;
    let mut lines = head.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let status_line = lines.next().ok_or("BENCH_PAGE_HEADERS is empty")?;
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no status in {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        if HOP_BY_HOP.contains(&name.trim().to_ascii_lowercase().as_str()) {
            continue;
        }
        let name: &'static str = Box::leak(name.trim().to_string().into_boxed_str());
        let value: &'static str = Box::leak(value.trim().to_string().into_boxed_str());
        headers.push((name, value));
    }
    Ok(Captured {
        status: Status::new(code),
        headers,
        body: Box::leak(body.into_boxed_slice()),
    })
}

#[rocket::launch]
fn rocket() -> _ {
    let page = match captured() {
        Ok(page) => page,
        Err(e) => {
            eprintln!("bench-static-page: {e}");
            std::process::exit(2);
        }
    };
    let page: &'static Captured = Box::leak(Box::new(page));
    // An empty Shield replaces Rocket's default one: the captured headers are all there is.
    rocket::build()
        .attach(Shield::new())
        .manage(page)
        .mount("/", rocket::routes![private])
}
