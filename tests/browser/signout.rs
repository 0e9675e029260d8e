//! Signing out in the browser, and what the back button shows afterwards.

use latchkey::models::Role;

use crate::flows::{private_greeting, sign_in};
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_signing_out_the_back_button_shows_nothing_private() {
    let Some(scene) = Scene::new("after_signing_out_the_back_button_shows_nothing_private") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("hopper", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "hopper", false).await;
            browser.click("a[href='/account']").await;
            browser.wait_for_path("/account").await;
            assert!(browser.page_text().await.contains("hopper@example.com"));
            browser.click("a[href='/private']").await;
            browser.wait_for_path("/private").await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, hopper")
            );

            browser.click("form[action='/logout'] button").await;
            browser.wait_for_path("/").await;
            assert!(browser.page_text().await.contains("You have signed out."));

            // Back to /private, then back to /account: neither comes from a cache, and the
            // server sends both to the sign-in page.
            for page in ["/private", "/account"] {
                browser.client.back().await.expect("back");
                let shown = browser.wait_for_path("/login").await;
                assert_eq!(shown, format!("/login?next={page}"), "back to {page}");
                let text = browser.page_text().await;
                assert!(
                    !text.contains("hopper"),
                    "nothing private on {page}: {text}"
                );
                assert!(!text.contains("Signed in as"), "{text}");
            }
        })
        .await;
}
