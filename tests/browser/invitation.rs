//! An invitation end to end: an admin invites an address in the browser, the mail arrives at a
//! real SMTP server, and a fresh browser follows its link, completes the form and is signed in
//! with the invited role.

use std::time::Duration;

use latchkey::models::Role;

use crate::flows::sign_in;
use crate::scene::Scene;
use crate::smtp::{MailServer, Options};

const NEW_PASSWORD: &str = "quiet-Harbour-lantern-58";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_made_in_the_panel_is_mailed_and_accepted_in_a_fresh_browser() {
    let Some(scene) = Scene::new("an_invitation_made_in_the_panel_is_mailed_and_accepted") else {
        return;
    };
    let server = MailServer::start(Options::plain());
    let site = scene.site_with_text(&[("smtp_url", &server.url())]).await;
    site.create_user("chief", Role::Admin).await;
    let admin = scene.browser("admin").await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&admin, &site, "chief", false).await;
            admin.click("a[href='/admin/invitations']").await;
            admin.wait_for_path("/admin/invitations").await;
            admin.fill("email", "newcomer@example.com").await;
            admin
                .find("select[name=role] option[value=admin]")
                .await
                .click()
                .await
                .expect("choose admin");
            admin
                .click("form[action='/admin/invitations'] button[type=submit]")
                .await;
            let field = admin.find("#invitation-link").await;
            let shown = field
                .prop("value")
                .await
                .expect("the link's value")
                .unwrap_or_default();
            assert!(
                field.attr("readonly").await.expect("readonly").is_some(),
                "the link is read-only"
            );

            let mail = tokio::task::block_in_place(|| {
                server.wait_for("newcomer@example.com", 1, Duration::from_secs(20))
            });
            let path = mail[0].link("/invite/");
            assert!(shown.ends_with(&path), "{shown} / {path}");

            browser.open(&site.url(&path)).await;
            assert!(browser.page_text().await.contains("newcomer@example.com"));
            assert!(
                !browser.has("input[name=email]").await,
                "the address is fixed"
            );
            browser.fill("username", "newcomer").await;
            browser.fill("password", NEW_PASSWORD).await;
            browser.fill("password_confirm", NEW_PASSWORD).await;
            browser
                .click("form[action^='/invite/'] button[type=submit]")
                .await;
            browser.wait_for_path("/private").await;
            assert_eq!(browser.text(".nav-whoami strong").await, "newcomer");
            let user = site.user("newcomer").await.expect("the account");
            assert_eq!(user.role(), Role::Admin);
            assert_eq!(user.email, "newcomer@example.com");
            assert!(user.email_verified_at.is_some());
        })
        .await;
}
