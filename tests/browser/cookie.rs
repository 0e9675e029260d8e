//! The session cookie as page scripts see it: not at all.

use latchkey::models::Role;

use crate::db::COOKIE;
use crate::flows::{private_greeting, sign_in};
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_invisible_to_document_cookie() {
    let Some(scene) = Scene::new("the_session_cookie_is_invisible_to_document_cookie") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("turing", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "turing", true).await;

            // The browser holds the cookie...
            let cookie = browser
                .client
                .get_named_cookie(COOKIE)
                .await
                .expect("the browser holds the session cookie");
            assert!(cookie.value().len() > 100, "a JWT: {}", cookie.value());
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
            assert_eq!(cookie.path(), Some("/"));

            // ...and no script on the page can read it.
            let seen = browser.eval("return document.cookie").await;
            let seen = seen.as_str().expect("a string");
            assert!(
                !seen.contains("latchkey="),
                "document.cookie shows {seen:?}"
            );
            assert!(
                !seen.contains(cookie.value()),
                "document.cookie shows the token"
            );

            // Nor replace it: the write is ignored and the real session goes on.
            browser
                .eval("document.cookie = 'latchkey=forged; path=/'; return document.cookie")
                .await;
            let after = browser.client.get_named_cookie(COOKIE).await.unwrap();
            assert_eq!(after.value(), cookie.value());
            browser.open(&site.url("/private")).await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, turing")
            );
        })
        .await;
}
