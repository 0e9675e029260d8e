//! Two-factor sign-in in the browser: setting it up from the account page with the key it shows,
//! then signing in with the password and a recovery code.

use latchkey::auth::two_factor::code_at;
use latchkey::models::Role;

use crate::db::PASSWORD;
use crate::flows::{private_greeting, sign_in, submit_sign_in};
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_is_set_up_from_the_account_page_and_asked_for_at_sign_in() {
    let Some(scene) = Scene::new("two_factor_is_set_up_and_asked_for_at_sign_in") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("annie", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            sign_in(&browser, &site, "annie", false).await;
            browser.open(&site.url("/account")).await;
            browser.click("a[href='/account/two-factor']").await;
            browser.wait_for_path("/account/two-factor").await;
            browser
                .click("form[action='/account/two-factor/setup'] button")
                .await;
            // The set-up page after the redirect: a QR code to scan (waited for; the click
            // only starts the navigation).
            browser.find(".qr svg").await;
            let key = browser.text("code.secret").await.replace(' ', "");
            assert_eq!(key.len(), 32, "a 160-bit key in base32: {key}");

            // What the authenticator app would show for that key now.
            let code = code_at(&key, time::OffsetDateTime::now_utc()).unwrap();
            browser.fill("code", &code).await;
            browser.fill("password", PASSWORD).await;
            browser
                .click("form[action='/account/two-factor/enable'] button")
                .await;
            let codes: Vec<String> = {
                let mut codes = Vec::new();
                let list = browser.find(".recovery-codes").await;
                for item in list
                    .find_all(fantoccini::Locator::Css("code"))
                    .await
                    .unwrap()
                {
                    codes.push(item.text().await.unwrap());
                }
                codes
            };
            assert_eq!(codes.len(), 10, "ten recovery codes: {codes:?}");
            assert!(browser
                .page_text()
                .await
                .contains("Two-factor sign-in is on"));

            browser.click("form[action='/logout'] button").await;
            browser.wait_for_path("/").await;
            browser.open(&site.url("/login")).await;
            submit_sign_in(&browser, "annie", PASSWORD, false).await;
            browser.wait_for_path("/login/two-factor").await;
            browser.open(&site.url("/private")).await;
            browser.wait_for_path("/login").await;
            browser.client.back().await.unwrap();
            browser.wait_for_path("/login/two-factor").await;

            browser.fill("code", "000000").await;
            browser
                .click("form[action^='/login/two-factor'] button")
                .await;
            let error = browser.text("#code-error").await;
            assert!(error.contains("not right"), "{error}");

            browser.fill("code", &codes[0]).await;
            browser
                .click("form[action^='/login/two-factor'] button")
                .await;
            browser.wait_for_path("/private").await;
            assert_eq!(
                private_greeting(&browser).await.as_deref(),
                Some("Hello, annie")
            );
        })
        .await;
}
