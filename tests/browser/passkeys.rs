//! Passkeys in Chromium with a virtual authenticator (the WebDriver WebAuthn extension:
//! CTAP2, internal, resident keys, user verification): an admin registers one from the account
//! page, signs in with it and no username (which also opens the admin panel, where two-factor is
//! required), uses it as the second factor after the password, removes it and sees it refused.
//! The site is opened at `http://localhost:<port>`: a passkey's relying party is a domain name.

use fantoccini::wd::WebDriverCompatibleCommand;
use latchkey::models::Role;
use webauthn_rs::prelude::Url;

use crate::chrome::Browser;
use crate::db::PASSWORD;
use crate::flows::{second_factor, submit_sign_in};
use crate::scene::Scene;
use crate::site::Site;

/// `POST /session/{id}/webauthn/authenticator`: a platform authenticator that keeps
/// discoverable credentials and verifies its user.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &Url) -> (hyper::Method, Option<String>) {
        let body = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// `path` on the site by name, not address.
fn at(site: &Site, path: &str) -> String {
    site.url(path).replace("127.0.0.1", "localhost")
}

async fn sign_out(browser: &Browser) {
    browser.click("form[action='/logout'] button").await;
    browser.wait_for_path("/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_registered_signs_in_alone_and_as_second_factor_and_is_refused_once_removed() {
    let Some(scene) = Scene::new("passkeys") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("pat", Role::Admin).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            browser
                .client
                .issue_cmd(AddVirtualAuthenticator)
                .await
                .expect("chromedriver adds a virtual authenticator");

            // The password and a recovery code, then a passkey from the account page.
            browser.open(&at(&site, "/login")).await;
            submit_sign_in(&browser, "pat", PASSWORD, false).await;
            second_factor(&browser, &site, "pat").await;
            browser.wait_for_path("/private").await;
            browser.open(&at(&site, "/account/passkeys")).await;
            browser.fill("name", "Test laptop").await;
            browser
                .click("form[data-passkey='create'] button[type=submit]")
                .await;
            browser.find("div.flash-success").await;
            let text = browser.page_text().await;
            assert!(text.contains("Passkey \"Test laptop\" added"), "{text}");
            assert!(text.contains("Test laptop"));
            sign_out(&browser).await;

            // No username: the passkey alone, and it counts as two-factor for the admin panel.
            browser.open(&at(&site, "/login")).await;
            browser
                .click("form[action^='/login/passkey'] button[type=submit]")
                .await;
            browser.wait_for_path("/private").await;
            assert!(browser.page_text().await.contains("pat"));
            browser.open(&at(&site, "/admin")).await;
            assert_eq!(
                browser.path().await,
                "/admin",
                "a passkey sign-in opens the panel"
            );
            sign_out(&browser).await;

            // The password, then the passkey instead of a code.
            browser.open(&at(&site, "/login")).await;
            submit_sign_in(&browser, "pat", PASSWORD, false).await;
            browser.wait_for_path("/login/two-factor").await;
            browser
                .click("form[action^='/login/two-factor/passkey'] button[type=submit]")
                .await;
            browser.wait_for_path("/private").await;

            // Removed: the authenticator still offers it; the site refuses it.
            browser.open(&at(&site, "/account/passkeys")).await;
            browser
                .click("form[action$='/remove'] button[type=submit]")
                .await;
            browser.find("div.flash-success").await;
            assert!(browser.page_text().await.contains("removed"));
            sign_out(&browser).await;
            browser.open(&at(&site, "/login")).await;
            browser
                .click("form[action^='/login/passkey'] button[type=submit]")
                .await;
            browser.find("div.flash-error").await;
            let text = browser.page_text().await;
            assert!(text.contains("not registered here"), "{text}");
            assert_eq!(browser.path().await, "/login");
        })
        .await;
}
