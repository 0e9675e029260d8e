//! The refresh cookie in a real browser: a tab left open past its access token's life carries on
//! without a sign-in (the token is renewed from the refresh cookie, which rotates), and a copy of
//! the old refresh cookie replayed from another browser ends the session for both holders.
//!
//! One test, so the suite waits out a token's life once (about a minute, the shortest
//! `token_ttl_secs` allowed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::models::{AuditEvent, AuditFilter, Role};
use rocket::http::Cookie;
use serde_json::Value;

use crate::chrome::Browser;
use crate::db::COOKIE;
use crate::flows::{private_greeting, sign_in};
use crate::scene::Scene;

/// The refresh cookie's name with `cookie_secure` off.
const REFRESH: &str = "latchkey_refresh";
/// What the sign-in page says to both holders of a session ended as stolen.
const STOLEN: &str = "Your session was ended to protect your account. Please sign in again.";
/// The access token's life here: the shortest allowed.
const TTL: i64 = 60;

/// The cookie `name` as the browser holds it (WebDriver reads HttpOnly cookies too).
async fn cookie(browser: &Browser, name: &str) -> Cookie<'static> {
    browser
        .client
        .get_named_cookie(name)
        .await
        .unwrap_or_else(|e| panic!("[{}] no cookie {name}: {e}", browser.label))
}

/// The value of the cookie `name` as the browser holds it.
async fn value(browser: &Browser, name: &str) -> String {
    cookie(browser, name).await.value().to_string()
}

/// The payload of a JWT, unverified (the test only reads the times and the session id).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&json).expect("a JSON payload")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Waits until the clock reads `unix` (whole seconds), which must be less than `TTL` + 5 s away.
async fn wait_until(unix: i64) {
    let wait = unix as f64 - unix_now();
    assert!(
        wait < (TTL + 5) as f64,
        "{wait:.1} s to wait: the site did not take token_ttl_secs={TTL}"
    );
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
    while unix_now() < unix as f64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_past_its_token_renews_and_a_replayed_refresh_cookie_ends_the_session() {
    let Some(scene) =
        Scene::new("a_tab_past_its_token_renews_and_a_replayed_refresh_cookie_ends_the_session")
    else {
        return;
    };
    // No leeway, so the token is refused one second after its exp; no grace, so a replaced
    // refresh value presented again at all is a replay.
    let site = scene
        .site_with(&[
            ("token_ttl_secs", TTL),
            ("jwt_leeway_secs", 0),
            ("refresh_grace_secs", 0),
        ])
        .await;
    site.create_user("lovelace", Role::User).await;
    let browser = scene.browser("main").await;
    let other = scene.browser("copy").await;
    scene
        .run(async {
            sign_in(&browser, &site, "lovelace", false).await;
            // What a copy of this browser's cookies, taken now, would hold.
            let copied = [
                cookie(&browser, COOKIE).await,
                cookie(&browser, REFRESH).await,
            ];
            let first_token = copied[0].value().to_string();
            let first_refresh = copied[1].value().to_string();
            assert!(first_refresh.starts_with("lkr_"), "{first_refresh}");
            let first = claims(&first_token);
            let exp = first["exp"].as_i64().expect("exp");
            assert!(
                exp - first["iat"].as_i64().expect("iat") <= TTL,
                "token life: {first}"
            );

            // (a) The tab is left alone until its access token is past exp (no leeway), well
            // within the idle timeout (30 minutes); the next page renews it from the refresh
            // cookie: no sign-in, the same session, a new token and a new refresh value.
            wait_until(exp + 1).await;
            browser.open(&site.url("/private")).await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, lovelace"),
                "a tab past its token's life carries on without a sign-in"
            );
            let renewed_token = value(&browser, COOKIE).await;
            let renewed = claims(&renewed_token);
            assert_ne!(renewed_token, first_token, "the access token was renewed");
            assert_eq!(renewed["sid"], first["sid"], "the same session goes on");
            assert!(
                renewed["exp"].as_i64().expect("exp") as f64 > unix_now(),
                "the renewed token is current: {renewed}"
            );
            let renewed_refresh = value(&browser, REFRESH).await;
            assert!(renewed_refresh.starts_with("lkr_"), "{renewed_refresh}");
            assert_ne!(
                renewed_refresh, first_refresh,
                "the refresh cookie was rotated"
            );

            // (b) Someone copied the first browser's cookies before the renewal and replays them
            // from another profile: the old refresh value comes back after it was replaced.
            other.open(&site.url("/login")).await;
            for copy in copied {
                other.client.add_cookie(copy).await.expect("add cookie");
            }
            other.open(&site.url("/private")).await;
            assert_eq!(
                other.wait_for_path("/login").await,
                "/login?next=/private",
                "the replayed refresh cookie signs nobody in"
            );
            let text = other.page_text().await;
            assert!(text.contains(STOLEN), "the copy's sign-in page: {text}");
            assert!(!text.contains("lovelace"), "{text}");

            // The session is over for its owner too, who is told why on the next page.
            browser.open(&site.url("/private")).await;
            assert_eq!(
                browser.wait_for_path("/login").await,
                "/login?next=/private",
                "the first browser is signed out"
            );
            let text = browser.page_text().await;
            assert!(text.contains(STOLEN), "the owner's sign-in page: {text}");
            assert!(private_greeting(&browser).await.is_none());
            for name in [COOKIE, REFRESH] {
                assert!(
                    browser.client.get_named_cookie(name).await.is_err(),
                    "the first browser no longer holds {name}"
                );
            }
            let kinds: Vec<String> = site
                .db()
                .run(|conn| {
                    let filter = AuditFilter {
                        kind: Some("refresh_reuse".into()),
                        ..AuditFilter::default()
                    };
                    AuditEvent::search(conn, &filter, 1, 10)
                })
                .await
                .expect("audit log")
                .0
                .into_iter()
                .map(|e| e.subject.unwrap_or_default())
                .collect();
            assert_eq!(kinds, ["lovelace"], "one refresh_reuse event, for lovelace");
        })
        .await;
}
