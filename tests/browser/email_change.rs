//! An address change in a real browser, with real mail: the owner (asked to confirm it's them,
//! the sign-in being old) asks for a new address, follows the link mailed to it and sees it on
//! the account page; then the notice at the old address, whose undo link puts it back and
//! signs the browser out.

use std::time::{Duration, Instant};

use latchkey::models::Role;

use crate::db::PASSWORD;
use crate::flows::sign_in;
use crate::scene::Scene;
use crate::smtp::{MailServer, Options};

/// The link starting with `prefix` in the first mail to `to` with `subject`, once it arrived.
async fn mailed_link(server: &MailServer, to: &str, subject: &str, prefix: &str) -> String {
    let started = Instant::now();
    loop {
        let found = server
            .messages()
            .into_iter()
            .find(|m| m.subject() == subject && m.to().iter().any(|t| t.eq_ignore_ascii_case(to)));
        if let Some(mail) = found {
            return mail.link(prefix);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no mail {subject:?} to {to}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_change_is_confirmed_from_the_new_mailbox_and_undone_from_the_old() {
    let Some(scene) = Scene::new("an_address_change_confirmed_and_undone") else {
        return;
    };
    let server = MailServer::start(Options::plain());
    let site = scene.site_mailing_to(&server).await;
    site.create_user("nina", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "nina", false).await;
            // Eleven minutes later: changing the address asks for the password again.
            site.clock().advance(time::Duration::minutes(11));
            browser.open(&site.url("/account")).await;
            browser.click("a[href='/account/email']").await;
            browser.wait_for_path("/confirm").await;
            browser.fill("password", PASSWORD).await;
            browser
                .click("form[action^='/confirm'] button[type=submit]")
                .await;
            browser.wait_for_path("/account/email").await;
            browser.fill("email", "nina.new@example.org").await;
            browser
                .click("form[action='/account/email'] button[type=submit]")
                .await;
            browser.wait_for_path("/account").await;
            let flash = browser.text(".flash-success").await;
            assert!(flash.contains("We sent a confirmation link"), "{flash}");

            let link = mailed_link(
                &server,
                "nina.new@example.org",
                "Confirm your new latchkey address",
                "/email/change/",
            )
            .await;
            browser.open(&site.url(&link)).await;
            browser.wait_for_path("/account").await;
            let page = browser.page_text().await;
            assert!(
                page.contains("Your address is now nina.new@example.org"),
                "{page}"
            );
            assert!(page.contains("nina.new@example.org"), "{page}");
            assert_eq!(
                site.user("nina").await.unwrap().email,
                "nina.new@example.org"
            );

            let undo = mailed_link(
                &server,
                "nina@example.com",
                "Your latchkey address was changed",
                "/email/undo/",
            )
            .await;
            browser.open(&site.url(&undo)).await;
            assert_eq!(
                site.user("nina").await.unwrap().email,
                "nina.new@example.org",
                "opening the link changes nothing"
            );
            browser
                .click("form[action^='/email/undo/'] button[type=submit]")
                .await;
            // The answer comes back at the same path: wait for its text.
            let started = std::time::Instant::now();
            let page = loop {
                let page = browser.page_text().await;
                if page.contains("Your address is back") {
                    break page;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "{page}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            assert!(page.contains("Your address is back"), "{page}");
            assert!(
                page.contains("every session of your account has been ended"),
                "{page}"
            );
            assert!(page.contains("Reset your password"), "{page}");
            assert!(browser.has("a[href='/login']").await);
            assert_eq!(site.user("nina").await.unwrap().email, "nina@example.com");

            // Signed out: the private page sends the browser to sign in.
            browser.open(&site.url("/private")).await;
            browser.wait_for_path("/login").await;
        })
        .await;
}
