//! `/api/openapi.json` is kept true: every documented operation exists and every `/api` (and
//! `/.well-known`) route is documented, and real responses have exactly the documented fields.

use std::collections::BTreeSet;

use latchkey::models::Role;
use rocket::http::{ContentType, Header, Status};
use serde_json::{json, Value};

use crate::helpers::*;

fn spec(app: &TestApp) -> Value {
    let response = app.client.get("/api/openapi.json").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

/// The properties of a schema, which must equal its `required` list (responses are exact).
fn fields(spec: &Value, schema: &str) -> BTreeSet<String> {
    let s = &spec["components"]["schemas"][schema];
    let props: BTreeSet<String> = s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let required: BTreeSet<String> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        props, required,
        "{schema}: every property is always present"
    );
    props
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn documented_operations_are_exactly_the_api_routes() {
    let app = spawn_app();
    let spec = spec(&app);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let mounted: BTreeSet<String> = app
        .client
        .rocket()
        .routes()
        .filter(|r| {
            let path = r.uri.path();
            path.starts_with("/api/") || path.starts_with("/.well-known/")
        })
        // Rocket writes a path parameter `<id>`, OpenAPI `{id}`.
        .map(|r| {
            let path = r.uri.path().replace('<', "{").replace('>', "}");
            format!("{} {path}", r.method)
        })
        .collect();
    assert_eq!(documented, mounted);
}

#[test]
fn responses_have_exactly_the_documented_fields() {
    let app = spawn_app_without_admin_two_factor();
    let spec = spec(&app);
    app.create_user("boss", Role::Admin);

    let token = app
        .client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(json!({"username": "boss", "password": PASSWORD}).to_string())
        .dispatch();
    let token: Value = serde_json::from_str(&token.into_string().unwrap()).unwrap();
    assert_eq!(keys(&token), fields(&spec, "Token"));
    let bearer = Header::new(
        "Authorization",
        format!("Bearer {}", token["access_token"].as_str().unwrap()),
    );

    let me: Value = serde_json::from_str(
        &app.client
            .get("/api/me")
            .header(bearer.clone())
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys(&me), fields(&spec, "Me"));

    let page: Value = serde_json::from_str(
        &app.client
            .get("/api/admin/users")
            .header(bearer.clone())
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys(&page), fields(&spec, "UserPage"));
    assert_eq!(keys(&page["users"][0]), fields(&spec, "User"));

    let out: Value = serde_json::from_str(
        &app.client
            .post("/api/logout")
            .header(bearer.clone())
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys(&out), fields(&spec, "SignedOut"));

    let error: Value = serde_json::from_str(
        &app.client
            .get("/api/me")
            .header(bearer)
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys(&error), fields(&spec, "Error"));

    let request = &spec["paths"]["/api/token"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["oneOf"];
    assert_eq!(request.as_array().unwrap().len(), 2);
    // A request schema: `otp` is optional (only accounts with two-factor sign-in send it).
    let grant = &spec["components"]["schemas"]["PasswordGrant"];
    assert_eq!(
        keys(&grant["properties"]),
        ["otp", "password", "username"].map(String::from).into()
    );
    assert_eq!(grant["required"], json!(["username", "password"]));
    assert_eq!(
        fields(&spec, "ApiKeyGrant"),
        ["api_key"].map(String::from).into()
    );
}
