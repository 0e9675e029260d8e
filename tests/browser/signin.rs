//! Signing in with a wrong password in the browser.

use latchkey::models::Role;

use crate::db::COOKIE;
use crate::flows::submit_sign_in;
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_error_beside_the_form() {
    let Some(scene) = Scene::new("a_wrong_password_shows_the_error_beside_the_form") else {
        return;
    };
    let site = scene.site().await;
    site.create_user("grace", Role::User).await;
    let browser = scene.browser("main").await;
    scene
        .run(async {
            let attempt = |login: &'static str| {
                let browser = browser.clone();
                let url = site.url("/login");
                async move {
                    browser.open(&url).await;
                    submit_sign_in(&browser, login, "not-the-password-1", false).await;
                    browser.text("form[action^='/login'] [role=alert]").await
                }
            };
            // An unknown name gets the very same answer: the form does not reveal who exists.
            let unknown = attempt("nobody-here").await;
            let wrong = attempt("grace").await;
            assert_eq!(wrong, unknown);
            assert!(
                wrong.contains("username") && wrong.contains("password"),
                "the error says what to check: {wrong:?}"
            );

            assert_eq!(browser.path().await, "/login");
            let kept = browser.find("#username").await.prop("value").await.unwrap();
            assert_eq!(kept.as_deref(), Some("grace"), "the name typed is kept");
            let password = browser.find("#password").await.prop("value").await.unwrap();
            assert_eq!(
                password.as_deref(),
                Some(""),
                "the password is never sent back"
            );
            let cookies = browser.client.get_all_cookies().await.unwrap();
            assert!(
                cookies.iter().all(|c| c.name() != COOKIE),
                "no session cookie after a failed sign-in"
            );
        })
        .await;
}
