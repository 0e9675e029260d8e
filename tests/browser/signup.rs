//! Signing up in the browser.

use latchkey::models::Role;

use crate::db::PASSWORD;
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_lands_on_the_private_page() {
    let Some(scene) = Scene::new("signing_up_lands_on_the_private_page") else {
        return;
    };
    let site = scene.site().await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            browser.open(&site.url("/")).await;
            browser.click("a[href='/signup']").await;
            browser.wait_for_path("/signup").await;
            browser.fill("username", "ada_lovelace").await;
            browser.fill("email", "ada@example.com").await;
            browser.fill("password", PASSWORD).await;
            browser.fill("password_confirm", PASSWORD).await;
            browser
                .click("form[action='/signup'] button[type=submit]")
                .await;

            browser.wait_for_path("/private").await;
            assert_eq!(browser.text(".card h1").await, "Hello, ada_lovelace");
            assert_eq!(browser.text(".nav-whoami strong").await, "ada_lovelace");
            assert!(
                !browser.has("a[href='/admin']").await,
                "a new account is not an admin"
            );
            let user = site.user("ada_lovelace").await.expect("the account exists");
            assert_eq!(user.role, Role::User.as_str());
            assert_eq!(user.email, "ada@example.com");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sign_up_says_why_beside_the_field_and_keeps_what_was_typed() {
    let Some(scene) = Scene::new("a_refused_sign_up_says_why_beside_the_field") else {
        return;
    };
    let site = scene.site().await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            browser.open(&site.url("/signup")).await;
            browser.fill("username", "<b>mallory</b>").await;
            browser.fill("email", "mallory@example.com").await;
            browser.fill("password", PASSWORD).await;
            browser.fill("password_confirm", PASSWORD).await;
            browser
                .click("form[action='/signup'] button[type=submit]")
                .await;

            let error = browser.text("#username-error").await;
            assert!(
                error.contains("letters A–Z, digits"),
                "the username error says what is allowed: {error:?}"
            );
            assert_eq!(browser.path().await, "/signup");
            let typed = browser.find("#username").await.prop("value").await.unwrap();
            assert_eq!(typed.as_deref(), Some("<b>mallory</b>"));
            let typed = browser.find("#email").await.prop("value").await.unwrap();
            assert_eq!(typed.as_deref(), Some("mallory@example.com"));
            assert!(
                !browser.has("main b").await,
                "markup in the name comes back as text, never as an element"
            );
            assert!(site.user("mallory@example.com").await.is_none());
        })
        .await;
}
