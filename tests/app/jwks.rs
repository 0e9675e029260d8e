//! Public-key signing (EdDSA, ES256), the JWKS at `/.well-known/jwks.json`, the algorithm pinned
//! per key, and key grace enforced by the clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use latchkey::auth::{KeyFile, Keyring};
use latchkey::config::{JwtAlgorithm, Settings};
use latchkey::models::Role;
use rocket::figment::Figment;
use rocket::http::{ContentType, Header as HttpHeader, Status};
use rocket::local::blocking::Client;
use serde_json::{json, Value};

use crate::helpers::*;

/// Settings that read `keys.json` in `dir` and sign with `alg`.
fn key_file_settings(
    dir: &std::path::Path,
    alg: JwtAlgorithm,
    grace_secs: i64,
) -> impl FnOnce(Figment) -> Figment {
    let path = dir.join("keys.json");
    move |f| {
        f.merge(("jwt_secret", ""))
            .merge(("key_file", path.display().to_string()))
            .merge(("jwt_algorithm", alg.as_str()))
            .merge(("key_grace_secs", grace_secs))
    }
}

/// A site on a fresh key file holding one `alg` key.
fn site_signing_with(alg: JwtAlgorithm) -> (TestApp, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    KeyFile::rotate_with(&keys.path().join("keys.json"), 86_400, alg).unwrap();
    let app = spawn_app_with(key_file_settings(keys.path(), alg, 86_400));
    (app, keys)
}

fn api_token(client: &Client, username: &str) -> String {
    let response = client
        .post("/api/token")
        .header(ContentType::JSON)
        .body(json!({"username": username, "password": PASSWORD}).to_string())
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn me_status(client: &Client, token: &str) -> Status {
    client
        .get("/api/me")
        .header(HttpHeader::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .status()
}

fn jwks(client: &Client) -> Value {
    let response = client.get("/.well-known/jwks.json").dispatch();
    assert_eq!(response.status(), Status::Ok);
    serde_json::from_str(&response.into_string().unwrap()).unwrap()
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn header_of(token: &str) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(token).unwrap()
}

/// The claims part of `token`, re-encoded under a header of our choosing, with a signature made
/// by `sign` over the new signing input.
fn reheader(token: &str, header: Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let input = format!(
        "{}.{payload}",
        URL_SAFE_NO_PAD.encode(header.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn eddsa_and_es256_sites_sign_tokens_another_verifier_checks_with_the_published_key() {
    for (alg, kty, crv) in [
        (JwtAlgorithm::EdDSA, "OKP", "Ed25519"),
        (JwtAlgorithm::ES256, "EC", "P-256"),
    ] {
        let (app, _keys) = site_signing_with(alg);
        app.create_user("ada", Role::User);
        let token = api_token(&app.client, "ada");
        let header = header_of(&token);
        assert_eq!(header.alg, Algorithm::from(alg), "{alg}");
        let kid = header.kid.unwrap();
        assert_eq!(me_status(&app.client, &token), Status::Ok, "{alg}");

        // Browsers too: the sign-in form (CSRF keys derived from the private key) and a page.
        app.sign_in_as("bea", Role::User);
        assert_eq!(
            app.client.get("/private").dispatch().status(),
            Status::Ok,
            "{alg}"
        );

        let response = app.client.get("/.well-known/jwks.json").dispatch();
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.content_type(), Some(ContentType::JSON));
        let cache = response
            .headers()
            .get_one("Cache-Control")
            .unwrap()
            .to_string();
        let max_age: i64 = cache
            .strip_prefix("public, max-age=")
            .unwrap_or_else(|| panic!("{cache}"))
            .parse()
            .unwrap();
        assert!(max_age > 0 && max_age < 86_400, "{cache}");
        let text = response.into_string().unwrap();
        let set: Value = serde_json::from_str(&text).unwrap();
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{text}");
        let jwk = &keys[0];
        assert_eq!(jwk["kid"], kid.as_str());
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["crv"], crv);
        assert!(jwk.get("d").is_none(), "no private part: {text}");

        // An independent check: only the published JWK, the pinned algorithm, iss and aud.
        let set: JwkSet = serde_json::from_str(&text).unwrap();
        let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::from(alg));
        validation.set_issuer(&["latchkey"]);
        validation.set_audience(&["latchkey"]);
        let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
            .unwrap_or_else(|e| panic!("{alg}: {e}"))
            .claims;
        assert_eq!(claims["sub"], app.user("ada").unwrap().id.as_str());
    }
}

#[test]
fn an_hs256_site_publishes_no_keys() {
    let app = spawn_app();
    let response = app.client.get("/.well-known/jwks.json").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert!(response
        .headers()
        .get_one("Cache-Control")
        .unwrap()
        .starts_with("public, max-age="));
    assert_eq!(response.into_string().unwrap(), r#"{"keys":[]}"#);

    // A ring that moved from HS256 to EdDSA publishes the pair only, never the old secret.
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("keys.json");
    KeyFile::rotate_with(&path, 86_400, JwtAlgorithm::HS256).unwrap();
    let pair = KeyFile::rotate_with(&path, 86_400, JwtAlgorithm::EdDSA).unwrap();
    let app = spawn_app_with(key_file_settings(keys.path(), JwtAlgorithm::EdDSA, 86_400));
    let set = jwks(&app.client);
    assert_eq!(kids(&set), vec![pair.new_kid], "{set}");
    assert!(!set.to_string().contains("\"oct\""), "{set}");
}

#[test]
fn a_token_with_alg_none_is_refused() {
    let (app, _keys) = site_signing_with(JwtAlgorithm::EdDSA);
    app.create_user("cyd", Role::User);
    let token = api_token(&app.client, "cyd");
    let kid = header_of(&token).kid.unwrap();
    for alg in ["none", "None", "NONE"] {
        let unsigned = reheader(
            &token,
            json!({"alg": alg, "typ": "JWT", "kid": kid}),
            |_| Vec::new(),
        );
        assert_eq!(
            me_status(&app.client, &unsigned),
            Status::Unauthorized,
            "alg {alg}, Bearer"
        );
        app.set_token(&unsigned);
        assert_eq!(
            app.get("/private").status(),
            Status::SeeOther,
            "alg {alg}, cookie"
        );
    }
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    // Algorithm confusion: the attacker knows the public key (it is published) and signs an
    // HS256 token with it as the HMAC secret, naming the EdDSA key's kid.
    let (app, _keys) = site_signing_with(JwtAlgorithm::EdDSA);
    app.create_user("dee", Role::User);
    let token = api_token(&app.client, "dee");
    let kid = header_of(&token).kid.unwrap();
    let jwk = jwks(&app.client)["keys"][0].clone();
    let x = jwk["x"].as_str().unwrap().to_string();
    let raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
    for secret in [raw, x.into_bytes(), jwk.to_string().into_bytes()] {
        let forged = reheader(
            &token,
            json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            |input| hmac_sha256(&secret, input),
        );
        assert_eq!(me_status(&app.client, &forged), Status::Unauthorized);
        app.set_token(&forged);
        assert_eq!(app.get("/private").status(), Status::SeeOther);
    }
    // The genuine token still works: the refusals above are about the forgery.
    assert_eq!(me_status(&app.client, &token), Status::Ok);
}

#[test]
fn a_retired_key_is_refused_after_its_grace_without_another_rotation() {
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("keys.json");
    let grace = 120;
    let first = KeyFile::rotate_with(&path, grace, JwtAlgorithm::EdDSA).unwrap();
    let app = spawn_app_with(key_file_settings(keys.path(), JwtAlgorithm::EdDSA, grace));
    app.create_user("eve", Role::User);
    let old = api_token(&app.client, "eve");
    assert_eq!(header_of(&old).kid.unwrap(), first.new_kid);

    let second = KeyFile::rotate_with(&path, grace, JwtAlgorithm::EdDSA).unwrap();
    latchkey::reload_keys(app.client.rocket()).unwrap(); // (unless the watcher was quicker)
    assert_eq!(app.tokens().keyring().active().kid, second.new_kid);
    assert_eq!(me_status(&app.client, &old), Status::Ok, "within the grace");
    assert_eq!(
        kids(&jwks(&app.client)),
        vec![second.new_kid.clone(), first.new_kid.clone()],
        "the retired key is published during its grace"
    );

    // Past the grace but well within the token's own lifetime (900 s): no rotation, no reload.
    app.clock().advance(time::Duration::seconds(grace + 60));
    assert_eq!(me_status(&app.client, &old), Status::Unauthorized);
    app.set_token(&old);
    assert_eq!(app.get("/private").status(), Status::SeeOther);
    assert_eq!(
        kids(&jwks(&app.client)),
        vec![second.new_kid.clone()],
        "the retired key is gone from the JWKS"
    );
    // And a new token from the active key is fine at the same moment.
    let new = api_token(&app.client, "eve");
    assert_eq!(header_of(&new).kid.unwrap(), second.new_kid);
    assert_eq!(me_status(&app.client, &new), Status::Ok);
}

fn start_error(figment: Figment) -> String {
    match Client::tracked(latchkey::rocket(figment)) {
        Ok(_) => panic!("the site started"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_mismatched_algorithm_stops_the_start_saying_what_to_run() {
    // A shared secret with a public-key algorithm.
    let settings = Settings {
        jwt_secret: Some(SECRET.into()),
        jwt_algorithm: JwtAlgorithm::EdDSA,
        ..Default::default()
    };
    let err = Keyring::load(&settings).unwrap_err().to_string();
    assert!(
        err.contains("LATCHKEY_JWT_SECRET") && err.contains("latchkey keys rotate --alg EdDSA"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(&dir);
    start_error(base_figment(db.url()).merge(("jwt_algorithm", "EdDSA")));

    // An active key of another algorithm than the setting.
    let keys = tempfile::tempdir().unwrap();
    KeyFile::rotate_with(&keys.path().join("keys.json"), 86_400, JwtAlgorithm::HS256).unwrap();
    let settings = Settings {
        jwt_secret: None,
        key_file: keys.path().join("keys.json"),
        jwt_algorithm: JwtAlgorithm::ES256,
        ..Default::default()
    };
    let err = Keyring::load(&settings).unwrap_err().to_string();
    assert!(
        err.contains("is HS256 but jwt_algorithm is ES256")
            && err.contains("latchkey keys rotate --alg ES256"),
        "{err}"
    );
    start_error(key_file_settings(keys.path(), JwtAlgorithm::ES256, 60)(
        base_figment(db.url()),
    ));

    // An unknown algorithm is a settings error, not a silent default.
    let err = Settings::from_figment(&base_figment(db.url()).merge(("jwt_algorithm", "RS256")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("HS256, EdDSA or ES256"), "{err}");
}

#[test]
fn key_files_record_each_keys_algorithm_and_old_files_are_hs256() {
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("keys.json");
    KeyFile::rotate_with(&path, 86_400, JwtAlgorithm::ES256).unwrap();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let stored = &file["keys"][0];
    assert_eq!(stored["alg"], "ES256");
    assert!(stored.get("secret").is_none());
    let der = URL_SAFE_NO_PAD
        .decode(stored["private_key"].as_str().unwrap())
        .unwrap();
    // PKCS#8 that another signer reads too.
    assert!(jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &json!({}),
        &EncodingKey::from_ec_der(&der)
    )
    .is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A file written before algorithms were recorded.
    let old = keys.path().join("old.json");
    std::fs::write(
        &old,
        json!({
            "active": "k1",
            "keys": [{
                "kid": "k1",
                "secret": URL_SAFE_NO_PAD.encode(SECRET),
                "created_at": "2026-01-01T00:00:00Z"
            }]
        })
        .to_string(),
    )
    .unwrap();
    let settings = Settings {
        jwt_secret: None,
        key_file: old,
        ..Default::default()
    };
    let ring = Keyring::load(&settings).unwrap();
    assert_eq!(ring.active().kid, "k1");
    assert_eq!(ring.active().alg(), JwtAlgorithm::HS256);
}

#[test]
fn a_debug_build_creates_a_key_pair_of_the_configured_algorithm() {
    let keys = tempfile::tempdir().unwrap();
    let app = spawn_app_with(key_file_settings(keys.path(), JwtAlgorithm::EdDSA, 86_400));
    let file = KeyFile::read(&keys.path().join("keys.json")).unwrap();
    assert_eq!(file.keys.len(), 1);
    assert_eq!(file.keys[0].alg, JwtAlgorithm::EdDSA);
    assert!(file.keys[0].private_key.is_some() && file.keys[0].secret.is_none());
    app.sign_in_as("fay", Role::User);
    let token = app.session_cookie().unwrap().value().to_string();
    assert_eq!(header_of(&token).alg, Algorithm::EdDSA);
}

#[test]
fn purpose_keys_come_from_each_private_key() {
    let keys = tempfile::tempdir().unwrap();
    let load = |name: &str, alg: JwtAlgorithm| {
        let path = keys.path().join(name);
        if !path.exists() {
            KeyFile::rotate_with(&path, 86_400, alg).unwrap();
        }
        Keyring::load(&Settings {
            jwt_secret: None,
            key_file: path,
            jwt_algorithm: alg,
            ..Default::default()
        })
        .unwrap()
    };
    for alg in [JwtAlgorithm::EdDSA, JwtAlgorithm::ES256] {
        let a = load(&format!("a-{alg}.json"), alg);
        let again = load(&format!("a-{alg}.json"), alg);
        let b = load(&format!("b-{alg}.json"), alg);
        assert_eq!(
            a.purpose_keys("csrf"),
            again.purpose_keys("csrf"),
            "{alg}: stable"
        );
        assert_ne!(
            a.purpose_keys("csrf"),
            b.purpose_keys("csrf"),
            "{alg}: per key"
        );
        assert_ne!(
            a.purpose_keys("csrf"),
            a.purpose_keys("pending"),
            "{alg}: per purpose"
        );
    }
}

#[test]
fn moving_from_hs256_to_eddsa_keeps_old_tokens_working_for_the_grace() {
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("keys.json");
    KeyFile::rotate_with(&path, 86_400, JwtAlgorithm::HS256).unwrap();
    let app = spawn_app_with(key_file_settings(keys.path(), JwtAlgorithm::HS256, 86_400));
    app.create_user("gus", Role::User);
    let old = api_token(&app.client, "gus");
    assert_eq!(header_of(&old).alg, Algorithm::HS256);

    // `keys rotate --alg EdDSA`, then the instance restarted with jwt_algorithm = EdDSA.
    KeyFile::rotate_with(&path, 86_400, JwtAlgorithm::EdDSA).unwrap();
    let figment = key_file_settings(keys.path(), JwtAlgorithm::EdDSA, 86_400)(app.figment.clone());
    let restarted = Client::tracked(latchkey::rocket(figment)).unwrap();
    assert_eq!(
        me_status(&restarted, &old),
        Status::Ok,
        "the HS256 token, checked as HS256 because its kid names the HS256 key"
    );
    let new = api_token(&restarted, "gus");
    assert_eq!(header_of(&new).alg, Algorithm::EdDSA);
    assert_eq!(me_status(&restarted, &new), Status::Ok);
}
