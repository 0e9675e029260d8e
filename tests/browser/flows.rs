//! Steps several tests take, done the way a person does them: through the forms.

use crate::chrome::Browser;
use crate::db::PASSWORD;
use crate::site::Site;

/// Signs `username` in with the test password through the sign-in form — and, for an admin the
/// test site enrolled in two-factor, one of their recovery codes at the code step — and waits
/// for `/private`.
pub async fn sign_in(browser: &Browser, site: &Site, username: &str, remember: bool) {
    browser.open(&site.url("/login")).await;
    submit_sign_in(browser, username, PASSWORD, remember).await;
    if site.recovery_code_needed(username) {
        second_factor(browser, site, username).await;
    }
    browser.wait_for_path("/private").await;
}

/// At the code step of a sign-in, enters an unused recovery code of `username`.
pub async fn second_factor(browser: &Browser, site: &Site, username: &str) {
    browser.wait_for_path("/login/two-factor").await;
    let code = site.recovery_code(username).expect("an enrolled admin");
    browser.fill("code", &code).await;
    browser
        .click("form[action^='/login/two-factor'] button[type=submit]")
        .await;
}

/// Fills in the sign-in form the browser shows and submits it (without waiting for where it
/// leads).
pub async fn submit_sign_in(browser: &Browser, username: &str, password: &str, remember: bool) {
    browser.fill("username", username).await;
    browser.fill("password", password).await;
    if remember {
        browser.click("#remember").await;
    }
    browser
        .click("form[action^='/login'] button[type=submit]")
        .await;
}

/// The greeting of the private page, when the browser shows it.
pub async fn private_greeting(browser: &Browser) -> Option<String> {
    if browser.path().await != "/private" || !browser.has(".card h1").await {
        return None;
    }
    Some(browser.text(".card h1").await)
}
