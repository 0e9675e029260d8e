//! The API answers as `openapi.json` describes it: string bounds and query parameters are
//! enforced exactly at the documented limits (a value inside is taken, one outside is a 400), and
//! a method a path does not have is a 405 whose `Allow` lists the methods it has, on the API and
//! on the pages alike.

use latchkey::models::Role;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::local::blocking::LocalResponse;
use serde_json::{json, Value};

use crate::helpers::*;

fn spec(app: &TestApp) -> Value {
    let response = app.client.get("/api/openapi.json").dispatch();
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

fn json_body(response: LocalResponse<'_>) -> Value {
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

fn token_status(app: &TestApp, body: Value) -> (Status, Value) {
    let response = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch();
    (response.status(), json_body(response))
}

fn bearer(app: &TestApp, username: &str) -> Header<'static> {
    let (status, token) = token_status(app, json!({"username": username, "password": PASSWORD}));
    assert_eq!(status, Status::Ok, "{token}");
    Header::new(
        "Authorization",
        format!("Bearer {}", token["access_token"].as_str().unwrap()),
    )
}

/// A request schema property's `minLength`, `maxLength` and whether it has `pattern: "\S"`.
fn bounds(spec: &Value, schema: &str, field: &str) -> (u64, usize, bool) {
    let p = &spec["components"]["schemas"][schema]["properties"][field];
    assert_eq!(p["type"], "string", "{schema}.{field}");
    let min = p["minLength"].as_u64().unwrap_or(0);
    let max = p["maxLength"]
        .as_u64()
        .unwrap_or_else(|| panic!("{schema}.{field} has a maxLength"));
    let non_blank = match p.get("pattern") {
        None => false,
        Some(v) => {
            assert_eq!(v, "\\S", "{schema}.{field}: the only pattern used");
            true
        }
    };
    (min, max as usize, non_blank)
}

#[test]
fn token_fields_are_refused_exactly_outside_their_documented_bounds() {
    let app = spawn_app_with(|f| f.merge(("lockout_threshold", 1000)));
    app.create_user("bounds", Role::User);
    let spec = spec(&app);
    let base = json!({"username": "bounds", "password": PASSWORD});
    let cases = [
        ("PasswordGrant", "username"),
        ("PasswordGrant", "password"),
        ("PasswordGrant", "otp"),
        ("ApiKeyGrant", "api_key"),
    ];
    for (schema, field) in cases {
        let (min, max, non_blank) = bounds(&spec, schema, field);
        assert_eq!(min, 1, "{schema}.{field}: an empty value is never taken");
        let with = |value: String| {
            let mut body = if schema == "ApiKeyGrant" {
                json!({})
            } else {
                base.clone()
            };
            body[field] = Value::String(value);
            body
        };
        for outside in [String::new(), "é".repeat(max + 1)]
            .into_iter()
            .chain(non_blank.then(|| " \t ".to_string()))
        {
            let (status, error) = token_status(&app, with(outside.clone()));
            assert_eq!(status, Status::BadRequest, "{field} = {outside:?}: {error}");
            assert_eq!(error["error"], "invalid_request");
            assert!(
                error["message"].as_str().unwrap().contains(field),
                "{error}"
            );
        }
        // Inside the bounds the request is read and the credentials judged (never a 400).
        for inside in ["x".to_string(), "é".repeat(max)] {
            let (status, error) = token_status(&app, with(inside.clone()));
            assert_ne!(status, Status::BadRequest, "{field} = {inside:?}: {error}");
        }
    }
    // A whitespace-only password is a password (wrong here), not a malformed request.
    let (status, _) = token_status(&app, json!({"username": "bounds", "password": "   "}));
    assert_eq!(status, Status::Unauthorized);
}

fn users_page(app: &TestApp, auth: &Header<'static>, query: &str) -> (Status, Value) {
    let response = app
        .client
        .get(format!("/api/admin/users?{query}"))
        .header(auth.clone())
        .dispatch();
    (response.status(), json_body(response))
}

#[test]
fn admin_users_query_parameters_are_checked_as_documented() {
    let app = spawn_app_without_admin_two_factor();
    app.create_user("chief", Role::Admin);
    let auth = bearer(&app, "chief");
    let spec = spec(&app);
    let params = spec["paths"]["/api/admin/users"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let schema = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap()
    };
    let q_max = schema("q")["maxLength"].as_u64().unwrap() as usize;
    let page = schema("page");
    assert_eq!(page["type"], "integer");
    let (page_min, page_max) = (
        page["minimum"].as_i64().unwrap(),
        page["maximum"].as_i64().unwrap(),
    );
    assert_eq!(page_min, 1);
    assert!(
        spec["paths"]["/api/admin/users"]["get"]["responses"]["400"].is_object(),
        "the 400 is documented"
    );

    let (status, found) = users_page(&app, &auth, &format!("q={}", "c".repeat(q_max)));
    assert_eq!(status, Status::Ok, "{found}");
    let (status, found) = users_page(&app, &auth, "q=chief&page=1");
    assert_eq!(status, Status::Ok);
    assert_eq!(found["total"], 1);
    let (status, found) = users_page(&app, &auth, &format!("page={page_max}"));
    assert_eq!(status, Status::Ok, "{found}");
    assert_eq!(found["page"], page_max);
    assert_eq!(found["users"], json!([]), "past the last page: no users");

    let too_long = format!("q={}", "c".repeat(q_max + 1));
    let past_max = format!("page={}", page_max + 1);
    for query in [
        too_long.as_str(),
        "page=0",
        "page=-1",
        past_max.as_str(),
        "page=99999999999999999999999",
        "page=abc",
        "page=1.5",
        "page=",
        "page=null&page=null",
        "page=1&page=1",
        "q=a&q=b",
    ] {
        let (status, error) = users_page(&app, &auth, query);
        assert_eq!(status, Status::BadRequest, "{query}: {error}");
        assert_eq!(error["error"], "invalid_request", "{query}");
    }
}

const PROBES: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Patch,
    Method::Trace,
];

#[test]
fn every_api_path_answers_405_with_allow_for_the_methods_it_lacks() {
    let app = spawn_app();
    let spec = spec(&app);
    for (path, ops) in spec["paths"].as_object().unwrap() {
        let mut declared: Vec<String> = ops
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        if declared.iter().any(|m| m == "GET") {
            declared.push("HEAD".into());
        }
        for method in PROBES.into_iter().chain([Method::Options]) {
            if declared.iter().any(|m| m == method.as_str()) {
                continue;
            }
            // A path parameter gets a value (no user has it: the method is wrong either way).
            let uri = path.replace("{id}", "no-such-user");
            let response = app.client.req(method, uri).dispatch();
            assert_eq!(
                response.status(),
                Status::MethodNotAllowed,
                "{method} {path}"
            );
            let allow = response.headers().get_one("Allow").unwrap().to_string();
            let mut allowed: Vec<&str> = allow.split(", ").collect();
            allowed.sort_unstable();
            let mut expected: Vec<&str> = declared.iter().map(String::as_str).collect();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "Allow of {method} {path}");
            if method == Method::Head {
                continue; // no body
            }
            let error = json_body(response);
            assert_eq!(error["error"], "method_not_allowed", "{method} {path}");
            assert!(error["message"].as_str().unwrap().contains("Allow"));
        }
    }
}

#[test]
fn head_is_answered_where_get_is_and_unknown_paths_stay_404() {
    let app = spawn_app();
    assert_eq!(
        app.client.head("/api/openapi.json").dispatch().status(),
        Status::Ok
    );
    // HEAD /api/me reaches the route: not signed in, not "method not allowed".
    assert_eq!(
        app.client.head("/api/me").dispatch().status(),
        Status::Unauthorized
    );
    for method in PROBES {
        for path in ["/api/nope", "/api/me/more", "/no/such/page"] {
            let response = app.client.req(method, path).dispatch();
            assert_eq!(response.status(), Status::NotFound, "{method} {path}");
            assert!(response.headers().get_one("Allow").is_none());
        }
    }
}

#[test]
fn pages_answer_405_with_allow_in_the_site_layout() {
    let app = spawn_app();
    for (method, path, allow) in [
        (Method::Put, "/login", "GET, HEAD, POST"),
        (Method::Delete, "/", "GET, HEAD"),
        (Method::Get, "/logout", "POST"),
        (Method::Head, "/logout", "POST"),
        (Method::Patch, "/admin/users/some-id/role", "POST"),
        (Method::Post, "/healthz", "GET, HEAD"),
        (Method::Delete, "/static/css/app.css", "GET, HEAD"),
    ] {
        let response = app.client.req(method, path).dispatch();
        assert_eq!(
            response.status(),
            Status::MethodNotAllowed,
            "{method} {path}"
        );
        assert_eq!(
            response.headers().get_one("Allow"),
            Some(allow),
            "{method} {path}"
        );
        if method != Method::Head {
            assert_eq!(response.content_type(), Some(ContentType::HTML));
            let body = response.into_string().unwrap();
            assert!(body.contains("Not allowed"), "{method} {path}");
            assert!(body.contains("/static/css/app.css"), "site layout");
        }
    }
    // A route that exists for the method and answers 404 itself stays a 404.
    app.sign_in_as("boss", Role::Admin);
    let response = app.client.get("/admin/users/no-such-user").dispatch();
    assert_eq!(response.status(), Status::NotFound);
    assert!(response.headers().get_one("Allow").is_none());
}

/// Sends `request` (a whole HTTP/1.1 request) over a real connection; the answer as text.
fn raw_exchange(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_method_rocket_does_not_know_is_a_405_with_allow_too() {
    use rocket::fairing::AdHoc;
    // Only a real connection can carry a method Rocket has no name for (the local client cannot).
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    let figment = base_figment(db.url())
        .merge(("address", "127.0.0.1"))
        .merge(("port", 0))
        .merge(("shutdown.ctrlc", false))
        .merge(("shutdown.signals", Vec::<String>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let site = latchkey::rocket(figment).attach(AdHoc::on_liftoff("port", move |r| {
        Box::pin(async move {
            let _ = tx.send((r.config().port, r.shutdown()));
        })
    }));
    let runtime = rocket::tokio::runtime::Runtime::new().unwrap();
    runtime.spawn(async move { site.launch().await });
    let (port, shutdown) = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the site starts");

    for (path, allow, json) in [
        ("/api/me", "GET, HEAD", true),
        ("/api/token", "POST", true),
        ("/login", "GET, HEAD, POST", false),
    ] {
        let answer = raw_exchange(
            port,
            &format!("QUERY {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        );
        let lower = answer.to_ascii_lowercase();
        assert!(answer.starts_with("HTTP/1.1 405"), "QUERY {path}: {answer}");
        assert!(
            lower.contains(&format!("\r\nallow: {}\r\n", allow.to_ascii_lowercase())),
            "QUERY {path}: {answer}"
        );
        if json {
            assert!(
                answer.contains(r#""error":"method_not_allowed""#),
                "{answer}"
            );
        } else {
            assert!(answer.contains("Not allowed"), "{answer}");
        }
    }
    // A method Rocket knows on a path that has it is answered as usual.
    let answer = raw_exchange(
        port,
        "GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    shutdown.notify();
}
