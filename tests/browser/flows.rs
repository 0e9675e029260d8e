//! Steps several tests take, done the way a person does them: through the forms.

use crate::chrome::Browser;
use crate::db::PASSWORD;
use crate::site::Site;

/// Signs `username` in with the test password through the sign-in form and waits for the page
/// it leads to (`/private` unless the form was opened with a `next`).
pub async fn sign_in(browser: &Browser, site: &Site, username: &str, remember: bool) {
    browser.open(&site.url("/login")).await;
    browser.fill("username", username).await;
    browser.fill("password", PASSWORD).await;
    if remember {
        browser.click("#remember").await;
    }
    browser
        .click("form[action^='/login'] button[type=submit]")
        .await;
    browser.wait_for_path("/private").await;
}

/// The greeting of the private page, when the browser shows it.
pub async fn private_greeting(browser: &Browser) -> Option<String> {
    if browser.path().await != "/private" || !browser.has(".card h1").await {
        return None;
    }
    Some(browser.text(".card h1").await)
}
