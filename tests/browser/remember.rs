//! "Remember me" across a browser restart on the same profile.

use latchkey::models::Role;

use crate::flows::{private_greeting, sign_in};
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remember_me_survives_a_browser_restart() {
    let Some(scene) = Scene::new("remember_me_survives_a_browser_restart") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("katherine", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "katherine", true).await;
            let browser = scene.restart(browser).await;
            browser.open(&site.url("/private")).await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, katherine"),
                "still signed in after the restart"
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_sign_in_ends_when_the_browser_closes() {
    let Some(scene) = Scene::new("a_plain_sign_in_ends_when_the_browser_closes") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("dorothy", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "dorothy", false).await;
            browser.open(&site.url("/private")).await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, dorothy")
            );
            let browser = scene.restart(browser).await;
            browser.open(&site.url("/private")).await;
            assert_eq!(
                browser.wait_for_path("/login").await,
                "/login?next=/private",
                "signed out by the restart"
            );
            assert!(private_greeting(&browser).await.is_none());
        })
        .await;
}
