//! "Forgot your password?" in the browser, over a real SMTP server: the sign-in page's link,
//! the request, the mail, its link, a new password, signed in.

use std::time::Duration;

use latchkey::models::Role;

use crate::scene::Scene;
use crate::site::Site;
use crate::smtp::{MailServer, Options};

const NEW_PASSWORD: &str = "fresh-Meadow-compass-58";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let Some(scene) = Scene::new("a_forgotten_password_is_reset_through_the_mailed_link") else {
        return;
    };
    let server = MailServer::start(Options::plain());
    let site = Site::start_with_text(
        scene.db.url(),
        &[("mail_retry_secs", 1)],
        &[("smtp_url", &server.url())],
    )
    .await;
    site.create_user("alice", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            browser.open(&site.url("/login")).await;
            browser.click("a[href='/password/forgot']").await;
            browser.wait_for_path("/password/forgot").await;
            browser.fill("username", "alice").await;
            browser
                .click("form[action='/password/forgot'] button[type=submit]")
                .await;
            assert_eq!(browser.text(".card h1").await, "Check your email");

            let mail = tokio::task::block_in_place(|| {
                server.wait_for("alice@example.com", 1, Duration::from_secs(15))
            });
            assert_eq!(mail[0].subject(), "Reset your latchkey password");
            let link = mail[0].link("/password/reset/");
            browser.open(&site.url(&link)).await;
            assert_eq!(browser.text(".card h1").await, "Choose a new password");
            browser.fill("password", NEW_PASSWORD).await;
            browser.fill("password_confirm", NEW_PASSWORD).await;
            browser
                .click("form[action^='/password/reset/'] button[type=submit]")
                .await;

            browser.wait_for_path("/private").await;
            assert_eq!(browser.text(".nav-whoami strong").await, "alice");
            assert!(browser
                .page_text()
                .await
                .contains("Your password has been reset"));
            let notice = tokio::task::block_in_place(|| {
                server.wait_for("alice@example.com", 2, Duration::from_secs(15))
            });
            assert_eq!(notice[1].subject(), "Your latchkey password was reset");
        })
        .await;
}
